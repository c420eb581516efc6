//! Lease secrets, derived from the node's `private/secret` exactly as the node derives them
//! (`allmydata/client.py: SecretHolder`, `util/hashutil.py`, `immutable/checker.py`), so that a
//! lease tahoe-jobs adds or renews is the node's own lease on that share, not a second one.
//!
//! client secret = tagged_hash(tag = lease secret, value = "allmydata_client_renewal_secret_v1")
//! (Tahoe passes the secret as the tag), then per file with the storage index and per server
//! with its lease seed (the tub id of its fURL).

use std::fmt;
use std::path::Path;

use crate::base32;
use crate::cap::StorageIndex;
use crate::hashutil::{tagged_hash, tagged_pair_hash};

const CLIENT_RENEWAL_TAG: &[u8] = b"allmydata_client_renewal_secret_v1";
const CLIENT_CANCEL_TAG: &[u8] = b"allmydata_client_cancel_secret_v1";
const FILE_RENEWAL_TAG: &[u8] = b"allmydata_file_renewal_secret_v1";
const FILE_CANCEL_TAG: &[u8] = b"allmydata_file_cancel_secret_v1";
const BUCKET_RENEWAL_TAG: &[u8] = b"allmydata_bucket_renewal_secret_v1";
const BUCKET_CANCEL_TAG: &[u8] = b"allmydata_bucket_cancel_secret_v1";

/// The node's lease secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LeaseSecretError {
    /// The file could not be read.
    #[error("cannot read the node's lease secret {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not hold base32.
    #[error(
        "the node's lease secret {path} is not base32 (the node writes it at its first start)"
    )]
    Malformed {
        /// The file.
        path: String,
    },
}

/// The renew and cancel secrets of one lease: one object on one server.
#[derive(Clone, PartialEq, Eq)]
pub struct LeaseSecrets {
    /// `lease-renew-secret`.
    pub renew: [u8; 32],
    /// `lease-cancel-secret`.
    pub cancel: [u8; 32],
}

impl fmt::Debug for LeaseSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LeaseSecrets(…)")
    }
}

/// The node's client-wide renewal and cancel secrets.
#[derive(Clone)]
pub struct ClientLeaseSecrets {
    renew: Vec<u8>,
    cancel: Vec<u8>,
}

impl fmt::Debug for ClientLeaseSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientLeaseSecrets(…)")
    }
}

impl ClientLeaseSecrets {
    /// From the bytes of the node's lease secret (`private/secret` decoded from base32).
    pub fn from_secret(secret: &[u8]) -> ClientLeaseSecrets {
        ClientLeaseSecrets {
            renew: tagged_hash(secret, CLIENT_RENEWAL_TAG, 32),
            cancel: tagged_hash(secret, CLIENT_CANCEL_TAG, 32),
        }
    }

    /// Reads `NODEDIR/private/secret`.
    pub fn from_node_dir(node_dir: &Path) -> Result<ClientLeaseSecrets, LeaseSecretError> {
        let path = node_dir.join("private").join("secret");
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|source| LeaseSecretError::Read {
            path: shown.clone(),
            source,
        })?;
        let secret =
            base32::decode(text.trim()).map_err(|_| LeaseSecretError::Malformed { path: shown })?;
        Ok(ClientLeaseSecrets::from_secret(&secret))
    }

    /// The secrets of the lease on `storage_index` at the server whose lease seed is
    /// `lease_seed` (its tub id, 20 bytes).
    pub fn for_share(&self, storage_index: &StorageIndex, lease_seed: &[u8]) -> LeaseSecrets {
        let file_renew = tagged_pair_hash(FILE_RENEWAL_TAG, &self.renew, &storage_index.0, 32);
        let file_cancel = tagged_pair_hash(FILE_CANCEL_TAG, &self.cancel, &storage_index.0, 32);
        LeaseSecrets {
            renew: array(&tagged_pair_hash(
                BUCKET_RENEWAL_TAG,
                &file_renew,
                lease_seed,
                32,
            )),
            cancel: array(&tagged_pair_hash(
                BUCKET_CANCEL_TAG,
                &file_cancel,
                lease_seed,
                32,
            )),
        }
    }
}

fn array(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_equal_the_nodes() {
        // Made with Tahoe 1.20's allmydata.util.hashutil:
        //   sec = base32.a2b(b"kuxe3zkdt5ytyyc6dfm25fhjzdw3yu2zqxowpwfzrvd2pqy3ndzq")
        //   r, c = my_renewal_secret_hash(sec), my_cancel_secret_hash(sec)
        //   si, seed = bytes(range(16)), bytes(range(100, 120))
        //   bucket_renewal_secret_hash(file_renewal_secret_hash(r, si), seed).hex()
        //   bucket_cancel_secret_hash(file_cancel_secret_hash(c, si), seed).hex()
        let secret = base32::decode("kuxe3zkdt5ytyyc6dfm25fhjzdw3yu2zqxowpwfzrvd2pqy3ndzq");
        let client = ClientLeaseSecrets::from_secret(&secret.unwrap());
        let si = StorageIndex(std::array::from_fn(|i| i as u8));
        let seed: Vec<u8> = (100..120).collect();
        let lease = client.for_share(&si, &seed);
        assert_eq!(
            hex(&lease.renew),
            "02eb192eb86ff3973e2b5dd4353e62d07bdd2aca00e23f6d2870dcda9e246bb3"
        );
        assert_eq!(
            hex(&lease.cancel),
            "631e54a997b3d8c00df9dacec67ef7ec745c9962a2ecf8990fb8f5b98a7eff68"
        );
        assert_eq!(
            format!("{lease:?} {client:?}"),
            "LeaseSecrets(…) ClientLeaseSecrets(…)"
        );
    }

    #[test]
    fn a_bad_secret_file_names_the_file_not_the_secret() {
        let dir = std::env::temp_dir().join(format!("lafs-lease-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("private")).unwrap();
        std::fs::write(dir.join("private/secret"), "NOT-BASE32-s3cr3t\n").unwrap();
        let err = ClientLeaseSecrets::from_node_dir(&dir)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("private/secret") && !err.contains("s3cr3t"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
