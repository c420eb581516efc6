//! Rebalancing an immutable object: stream its bytes from the node back into the node.
//!
//! Tahoe never repairs a healthy file, but an upload of the same bytes through the node that
//! first uploaded them gets the same storage index (convergent encryption), finds the shares
//! already placed and puts the missing ones on servers holding none, until `shares.happy`
//! servers are used. Nothing passes through memory beyond one chunk: the download's body is the
//! upload's body, and each chunk waits for the budget in both directions.

use futures::StreamExt;
use tahoe_jobs_engine::{BudgetHandle, ByteRequest};

use super::caps::underlying_chk;
use super::record::{Findings, Rebalance};
use crate::tahoe::{Cap, CheckOptions, TahoeClient, TahoeError};

/// Re-uploads the object at `cap` (`size` bytes, as its cap says) and checks it again. Errors
/// that may pass (the node is unreachable) are returned; the node's refusals become
/// [`Rebalance::Failed`].
pub async fn reupload(
    client: &TahoeClient,
    budget: &BudgetHandle,
    cap: &Cap,
    size: u64,
    hosts_before: u64,
) -> Result<Rebalance, TahoeError> {
    let Some(chk) = underlying_chk(cap) else {
        return Ok(Rebalance::Impossible {
            reason: "only immutable objects can be uploaded again".into(),
        });
    };
    match copy_through(client, budget, &chk, size).await {
        Ok(new) if new == chk => {}
        Ok(_) => {
            return Ok(Rebalance::Impossible {
                reason: "this node encrypts the same bytes differently (the original upload used another convergence secret): no share was re-placed".into(),
            })
        }
        Err(e) if e.is_unreachable() => return Err(e),
        Err(e) => {
            return Ok(Rebalance::Failed {
                error: e.to_string(),
            })
        }
    }
    let after = client.check(cap, "", CheckOptions::default()).await?;
    Ok(Rebalance::Done {
        hosts_before,
        hosts_after: Findings::from_results(&after.results).good_hosts,
    })
}

async fn copy_through(
    client: &TahoeClient,
    budget: &BudgetHandle,
    chk: &Cap,
    size: u64,
) -> Result<Cap, TahoeError> {
    let response = client.download(chk).await?;
    let budget = budget.clone();
    let body = response.bytes_stream().then(move |chunk| {
        let budget = budget.clone();
        async move {
            if let Ok(bytes) = &chunk {
                let n = bytes.len() as u64;
                budget.acquire(ByteRequest::download(n)).await;
                budget.acquire(ByteRequest::upload(n)).await;
            }
            chunk
        }
    });
    client.upload(reqwest::Body::wrap_stream(body), size).await
}
