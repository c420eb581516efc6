//! CHK immutable files as Tahoe-LAFS 1.20 encodes them (`immutable/upload.py`, `encode.py`,
//! `layout.py`): convergent key, AES-128-CTR, zfec, hash trees, the URI extension block, share
//! layouts v1 and v2 and the `URI:CHK:` cap.
//!
//! Sans-IO: [`SegmentPlan`] says how a file is cut, [`ChkEncoder`] takes one segment of
//! plaintext at a time and hands back that segment's blocks (one per share), and
//! [`ChkEncoder::finish`] gives the cap, the URI extension block and each share's trailer. An
//! uploader sends each share's [`ShareLayout::header`] first (it depends only on sizes), then the
//! blocks as they come, then the trailer; memory stays at one segment plus its blocks, and
//! 32 bytes per segment per share of block hashes.
//!
//! The convergent key needs the whole plaintext hashed before encryption starts, so a file is read
//! twice, as Tahoe does: [`ConvergentKeyHasher`] (or [`convergent_key`]) first, then the encoder
//! ([`ChkEncoder::convergent`] hashes the second read too, so a file that changed in between
//! gets an error, not a cap that does not match its shares).

mod cap;
mod encoder;
pub mod hashtree;
mod key;
mod layout;
mod ueb;

pub use cap::{lit_cap, ChkCap};
pub use encoder::{encode_bytes, ChkEncoder, EncodedFile, EncodedSegment};
pub use key::{convergent_key, ConvergentKeyHasher};
pub use layout::ShareLayout;
pub use ueb::UriExtension;

/// Files of this many bytes or fewer are LIT caps: the data is in the cap, nothing is uploaded.
pub const LIT_SIZE_THRESHOLD: u64 = 55;

/// Tahoe's default maximum segment size (`[client]` has no setting for it; 128 KiB before 1.17).
pub const DEFAULT_MAX_SEGMENT_SIZE: u64 = 1024 * 1024;

/// What a CHK encoding cannot do.
#[derive(Debug, thiserror::Error)]
pub enum ChkError {
    /// k and N outside what zfec and Tahoe accept.
    #[error("shares needed/total must satisfy 1 <= needed <= total <= 256, got {needed}/{total}")]
    BadShareCounts {
        /// k.
        needed: u16,
        /// N.
        total: u16,
    },
    /// A maximum segment size of zero.
    #[error("the maximum segment size must be at least 1 byte")]
    BadSegmentSize,
    /// An empty file (Tahoe makes LIT caps for files of 55 bytes or less).
    #[error("an empty file has no CHK encoding; use a LIT cap")]
    EmptyFile,
    /// A segment of the wrong length or past the end of the file.
    #[error("segment {segnum} must be {expected} bytes of plaintext, got {got}")]
    BadSegment {
        /// Segment number.
        segnum: u64,
        /// Its length in the plan.
        expected: u64,
        /// Length given.
        got: u64,
    },
    /// `finish` before every segment was encoded.
    #[error("only {encoded} of {total} segments were encoded")]
    Incomplete {
        /// Segments encoded.
        encoded: u64,
        /// Segments in the plan.
        total: u64,
    },
    /// The plaintext encoded is not the plaintext the convergent key was made from.
    #[error("the file changed while it was read: its key and its contents no longer match")]
    ContentChanged,
    /// Reading the plaintext failed.
    #[error("reading the file failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The node's encoding settings: `[client] shares.needed`, `shares.total` and the maximum segment
/// size. (`shares.happy` concerns placement, not encoding.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodingParams {
    /// k: shares needed to read the file.
    pub needed: u16,
    /// N: shares made.
    pub total: u16,
    /// Segments are at most this long (before rounding up to a multiple of k).
    pub max_segment_size: u64,
}

impl EncodingParams {
    /// Tahoe's defaults: 3-of-10, 1 MiB segments.
    pub const DEFAULT: EncodingParams = EncodingParams {
        needed: 3,
        total: 10,
        max_segment_size: DEFAULT_MAX_SEGMENT_SIZE,
    };

    fn validate(&self) -> Result<(), ChkError> {
        if self.needed == 0 || self.needed > self.total || self.total > 256 {
            return Err(ChkError::BadShareCounts {
                needed: self.needed,
                total: self.total,
            });
        }
        if self.max_segment_size == 0 {
            return Err(ChkError::BadSegmentSize);
        }
        Ok(())
    }
}

/// How a file of a given size is cut into segments and blocks (`encode.py`,
/// `_got_all_encoding_parameters`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentPlan {
    /// Plaintext size.
    pub file_size: u64,
    /// k.
    pub needed: u16,
    /// N.
    pub total: u16,
    /// Effective segment size: `next_multiple(min(max_segment_size, file_size), k)`. This, not
    /// the maximum, goes into the convergent key's tag.
    pub segment_size: u64,
    /// Number of segments, `ceil(file_size / segment_size)`.
    pub num_segments: u64,
    /// Plaintext bytes in the last segment (a whole segment when the size divides evenly).
    pub tail_size: u64,
}

impl SegmentPlan {
    /// The plan for a file of `file_size` bytes (at least 1).
    pub fn new(params: &EncodingParams, file_size: u64) -> Result<Self, ChkError> {
        params.validate()?;
        if file_size == 0 {
            return Err(ChkError::EmptyFile);
        }
        let k = u64::from(params.needed);
        let segment_size = params.max_segment_size.min(file_size).next_multiple_of(k);
        let num_segments = file_size.div_ceil(segment_size);
        let tail_size = match file_size % segment_size {
            0 => segment_size,
            rest => rest,
        };
        Ok(SegmentPlan {
            file_size,
            needed: params.needed,
            total: params.total,
            segment_size,
            num_segments,
            tail_size,
        })
    }

    /// Plaintext bytes of segment `segnum`.
    pub fn segment_len(&self, segnum: u64) -> u64 {
        if segnum + 1 == self.num_segments {
            self.tail_size
        } else {
            self.segment_size
        }
    }

    /// Bytes of each block of a full segment (`segment_size / k`).
    pub fn block_size(&self) -> u64 {
        self.segment_size / u64::from(self.needed)
    }

    /// Bytes of each block of the last segment (its size padded to a multiple of k, over k).
    pub fn tail_block_size(&self) -> u64 {
        self.tail_size.div_ceil(u64::from(self.needed))
    }

    /// Block bytes in each share (`ceil(file_size / k)`).
    pub fn share_data_size(&self) -> u64 {
        self.file_size.div_ceil(u64::from(self.needed))
    }
}
