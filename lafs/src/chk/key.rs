//! The convergent encryption key (`util/hashutil.py: convergence_hasher`): the same plaintext,
//! convergence secret and encoding parameters always give the same key, so the same cap.

use std::io::Read;

use crate::hashutil::Sha256dHasher;
use crate::netstring::{netstring, write_netstring};

use super::{ChkError, EncodingParams, SegmentPlan};

const CONVERGENT_ENCRYPTION_TAG: &[u8] =
    b"allmydata_immutable_content_to_key_with_added_secret_v1+";

/// Hashes a file's plaintext, fed in pieces of any size, into its 16-byte AES key.
#[derive(Clone)]
pub struct ConvergentKeyHasher {
    hasher: Sha256dHasher,
}

impl ConvergentKeyHasher {
    /// A hasher for a file of `file_size` bytes; `convergence` is the node's secret as bytes
    /// (the base32 text of `private/convergence`, decoded).
    pub fn new(
        convergence: &[u8],
        params: &EncodingParams,
        file_size: u64,
    ) -> Result<Self, ChkError> {
        let plan = SegmentPlan::new(params, file_size)?;
        let mut tag = CONVERGENT_ENCRYPTION_TAG.to_vec();
        write_netstring(&mut tag, convergence);
        let param_text = format!("{},{},{}", plan.needed, plan.total, plan.segment_size);
        tag.extend_from_slice(&netstring(param_text.as_bytes()));
        Ok(ConvergentKeyHasher {
            hasher: Sha256dHasher::tagged(&tag),
        })
    }

    /// Feeds more plaintext.
    pub fn update(&mut self, plaintext: &[u8]) {
        self.hasher.update(plaintext);
    }

    /// The key.
    pub fn finish(self) -> [u8; 16] {
        let digest = self.hasher.finish();
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        key
    }
}

/// Reads `reader` to its end (it must hold exactly `file_size` bytes) and returns the key.
pub fn convergent_key<R: Read>(
    mut reader: R,
    convergence: &[u8],
    params: &EncodingParams,
    file_size: u64,
) -> Result<[u8; 16], ChkError> {
    let mut hasher = ConvergentKeyHasher::new(convergence, params, file_size)?;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut read = 0u64;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        hasher.update(&buffer[..n]);
        read += n as u64;
    }
    if read != file_size {
        return Err(ChkError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("expected {file_size} bytes, read {read}: the file changed while it was read"),
        )));
    }
    Ok(hasher.finish())
}
