//! The immutable upload endpoints of the storage protocol (`http_server.py`, "Immutable APIs"):
//! allocate buckets (`POST /storage/v1/immutable/<si>`), write share bytes (`PATCH` with
//! `Content-Range`; the answer lists the ranges still required) and abort an upload
//! (`PUT .../<shnum>/abort`). Every write carries the upload secret chosen at allocation; the
//! server refuses writes without it, and a second allocation of a share being uploaded is
//! neither "already have" nor "allocated" until that upload completes or is dropped.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;

use bytes::Bytes;
use ciborium::value::Value;
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

use super::{cbor, Secret, StorageClient, StorageError};
use crate::cap::StorageIndex;
use crate::lease::LeaseSecrets;

/// The secret that lets its holder write to the shares it allocated (Tahoe uses 20 random
/// bytes; any length is accepted). Never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct UploadSecret(pub [u8; 32]);

impl UploadSecret {
    /// A fresh random secret.
    pub fn random() -> UploadSecret {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).expect("the operating system's random source");
        UploadSecret(bytes)
    }
}

impl fmt::Debug for UploadSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UploadSecret(…)")
    }
}

/// A server's answer to an allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allocation {
    /// Shares it already holds complete (their leases were added or renewed).
    pub already_have: BTreeSet<u16>,
    /// Shares it made room for: write them with the upload secret.
    pub allocated: BTreeSet<u16>,
}

/// A server's answer to a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteProgress {
    /// The share is complete (every byte written) and now readable.
    pub finished: bool,
    /// Byte ranges of the share not written yet.
    pub required: Vec<Range<u64>>,
}

impl StorageClient {
    /// Asks the server to hold `shares` of `si`, each `allocated_size` bytes, adding (or
    /// renewing) the lease `lease` on them and on the shares it already has.
    pub async fn allocate_immutable(
        &self,
        si: &StorageIndex,
        upload_secret: &UploadSecret,
        lease: &LeaseSecrets,
        shares: &BTreeSet<u16>,
        allocated_size: u64,
    ) -> Result<Allocation, StorageError> {
        let path = format!("/storage/v1/immutable/{si}");
        let what = format!("POST {path}");
        let body = Value::Map(vec![
            (Value::Text("share-numbers".into()), cbor::share_set(shares)),
            (
                Value::Text("allocated-size".into()),
                Value::Integer(allocated_size.into()),
            ),
        ]);
        let secrets = [
            Secret::LeaseRenew(&lease.renew),
            Secret::LeaseCancel(&lease.cancel),
            Secret::Upload(&upload_secret.0),
        ];
        let (_, answer) = self
            .cbor_request(Method::POST, &path, &secrets, Some(&body))
            .await?;
        let field = |name: &str| {
            cbor::lookup(&answer, name)
                .ok_or_else(|| format!("no {name:?} in the answer"))
                .and_then(cbor::to_share_set)
                .map_err(|reason| self.protocol(&what, reason))
        };
        Ok(Allocation {
            already_have: field("already-have")?,
            allocated: field("allocated")?,
        })
    }

    /// Writes `data` at `offset` of share `share` (allocated with `upload_secret`). Writing the
    /// same bytes twice is allowed; different bytes over written ones are refused (409).
    pub async fn write_immutable(
        &self,
        si: &StorageIndex,
        share: u16,
        upload_secret: &UploadSecret,
        offset: u64,
        data: Bytes,
    ) -> Result<WriteProgress, StorageError> {
        let path = format!("/storage/v1/immutable/{si}/{share}");
        let what = format!("PATCH {path}");
        if data.is_empty() {
            return Err(self.protocol(&what, "an empty write cannot be expressed".into()));
        }
        let secrets = [Secret::Upload(&upload_secret.0)];
        let range = format!("bytes {}-{}/*", offset, offset + data.len() as u64 - 1);
        let response = self
            .send(Method::PATCH, &path, &secrets, |r| {
                r.header(CONTENT_RANGE, range.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(data.clone())
            })
            .await?;
        let finished = match response.status() {
            StatusCode::CREATED => true,
            StatusCode::OK => false,
            _ => return Err(self.status_error(response, &what, &secrets).await),
        };
        let body = response.bytes().await.map_err(|e| self.send_error(e))?;
        let answer = cbor::decode(&body).map_err(|reason| self.protocol(&what, reason))?;
        let required = required_ranges(&answer).map_err(|reason| self.protocol(&what, reason))?;
        Ok(WriteProgress { finished, required })
    }

    /// Gives up the upload of share `share`: the server deletes what was written and frees its
    /// space. A share already complete cannot be aborted (405).
    pub async fn abort_immutable(
        &self,
        si: &StorageIndex,
        share: u16,
        upload_secret: &UploadSecret,
    ) -> Result<(), StorageError> {
        let path = format!("/storage/v1/immutable/{si}/{share}/abort");
        let what = format!("PUT {path}");
        let secrets = [Secret::Upload(&upload_secret.0)];
        let response = self.send(Method::PUT, &path, &secrets, |r| r).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.status_error(response, &what, &secrets).await)
        }
    }
}

/// `{"required": [{"begin": b, "end": e}, ...]}` as ranges.
fn required_ranges(answer: &Value) -> Result<Vec<Range<u64>>, String> {
    let Some(Value::Array(items)) = cbor::lookup(answer, "required") else {
        return Err("no \"required\" list in the answer".into());
    };
    items
        .iter()
        .map(|item| {
            let bound = |name| {
                cbor::lookup(item, name)
                    .and_then(cbor::as_u64)
                    .ok_or_else(|| format!("a required range without {name:?}"))
            };
            Ok(bound("begin")?..bound("end")?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_ranges_are_read_from_the_answer() {
        let range = |b: u64, e: u64| {
            Value::Map(vec![
                (Value::Text("begin".into()), Value::Integer(b.into())),
                (Value::Text("end".into()), Value::Integer(e.into())),
            ])
        };
        let answer = Value::Map(vec![(
            Value::Text("required".into()),
            Value::Array(vec![range(0, 10), range(20, 36)]),
        )]);
        assert_eq!(required_ranges(&answer).unwrap(), vec![0..10, 20..36]);
        assert!(required_ranges(&Value::Map(vec![])).is_err());
    }

    #[test]
    fn an_upload_secret_is_never_shown() {
        assert_eq!(format!("{:?}", UploadSecret::random()), "UploadSecret(…)");
    }
}
