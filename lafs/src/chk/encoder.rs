//! The streaming CHK encoder (`immutable/encode.py`): one segment of plaintext in, that
//! segment's blocks out; at the end, the trees, the URI extension block and the cap.

use aes::cipher::{KeyIvInit, StreamCipher};

use crate::hashutil::{tagged_hash, Sha256dHasher};
use crate::zfec;

use super::cap::ChkCap;
use super::hashtree::{Hash, HashTree};
use super::layout::ShareLayout;
use super::ueb::{uri_extension_hash, UriExtension};
use super::{ChkError, ConvergentKeyHasher, EncodingParams, SegmentPlan};

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

const CRYPTTEXT_TAG: &[u8] = b"allmydata_crypttext_v1";
const CRYPTTEXT_SEGMENT_TAG: &[u8] = b"allmydata_crypttext_segment_v1";
const BLOCK_TAG: &[u8] = b"allmydata_encoded_subshare_v1";

/// One encoded segment: [`EncodedSegment::block`]`(shnum)` goes to share `shnum` at
/// [`ShareLayout::block_offset`]`(segnum)`.
#[derive(Debug)]
pub struct EncodedSegment {
    /// The segment's number.
    pub segnum: u64,
    /// The crypttext padded to k pieces: blocks `0..k` are its pieces (zfec is systematic), kept
    /// here rather than copied.
    crypttext: Vec<u8>,
    /// Bytes of each block (at least 1: segments are never empty).
    block_size: usize,
    /// Blocks `k..N`.
    parity: Vec<Vec<u8>>,
}

impl EncodedSegment {
    /// The block for share `shnum`.
    pub fn block(&self, shnum: usize) -> &[u8] {
        let k = self.crypttext.len() / self.block_size;
        if shnum < k {
            &self.crypttext[shnum * self.block_size..][..self.block_size]
        } else {
            &self.parity[shnum - k]
        }
    }

    /// Every block, share 0 first.
    pub fn blocks(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.crypttext
            .chunks(self.block_size)
            .chain(self.parity.iter().map(Vec::as_slice))
    }

    /// Bytes of each block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }
}

/// What is known once every segment is encoded.
#[derive(Debug)]
pub struct EncodedFile {
    /// The file's cap (a secret).
    pub cap: ChkCap,
    /// The packed URI extension block.
    pub uri_extension: Vec<u8>,
    /// The layout shared by every share.
    pub layout: ShareLayout,
    /// Per share, the bytes from [`ShareLayout::trailer_offset`] to the end.
    pub trailers: Vec<Vec<u8>>,
}

/// Encodes one file, segment by segment.
pub struct ChkEncoder {
    plan: SegmentPlan,
    key: [u8; 16],
    cipher: Aes128Ctr,
    zfec: zfec::Encoder,
    next_segment: u64,
    crypttext: Sha256dHasher,
    segment_hashes: Vec<Hash>,
    /// `block_hashes[shnum][segnum]`.
    block_hashes: Vec<Vec<Hash>>,
    /// Hashes the plaintext again to catch a file that changed between the key pass and this one.
    recheck: Option<ConvergentKeyHasher>,
}

impl ChkEncoder {
    /// An encoder for a file of `file_size` bytes under `key` (from [`super::convergent_key`] for
    /// the node's caps, or random).
    pub fn new(key: [u8; 16], params: &EncodingParams, file_size: u64) -> Result<Self, ChkError> {
        let plan = SegmentPlan::new(params, file_size)?;
        let zfec = zfec::Encoder::new(plan.needed.into(), plan.total.into()).map_err(|_| {
            ChkError::BadShareCounts {
                needed: plan.needed,
                total: plan.total,
            }
        })?;
        Ok(ChkEncoder {
            plan,
            key,
            cipher: Aes128Ctr::new(&key.into(), &[0u8; 16].into()),
            zfec,
            next_segment: 0,
            crypttext: Sha256dHasher::tagged(CRYPTTEXT_TAG),
            segment_hashes: Vec::with_capacity(plan.num_segments as usize),
            block_hashes: vec![Vec::with_capacity(plan.num_segments as usize); plan.total.into()],
            recheck: None,
        })
    }

    /// An encoder under the convergent `key` made from `convergence` by a first pass over the
    /// file, which hashes the plaintext again as it encodes: [`ChkEncoder::finish`] fails with
    /// [`ChkError::ContentChanged`] when the bytes encoded are not the bytes the key was made
    /// from (the file changed between the two reads), so no wrong cap is ever handed out.
    pub fn convergent(
        key: [u8; 16],
        convergence: &[u8],
        params: &EncodingParams,
        file_size: u64,
    ) -> Result<Self, ChkError> {
        let mut encoder = Self::new(key, params, file_size)?;
        encoder.recheck = Some(ConvergentKeyHasher::new(convergence, params, file_size)?);
        Ok(encoder)
    }

    /// How the file is cut: read segment `i` as `plan().segment_len(i)` bytes.
    pub fn plan(&self) -> &SegmentPlan {
        &self.plan
    }

    /// The storage index of the file being encoded: known from the key alone, so servers can be
    /// asked for space (and what they already hold) before the first segment.
    pub fn storage_index(&self) -> [u8; 16] {
        crate::cap::chk_storage_index(&self.key).0
    }

    /// The layout of each share (its header can be sent before any block).
    pub fn layout(&self) -> ShareLayout {
        ShareLayout::new(&self.plan)
    }

    /// Segments encoded so far.
    pub fn segments_done(&self) -> u64 {
        self.next_segment
    }

    /// Encrypts and encodes the next segment; `plaintext` must be exactly its length. The
    /// buffer is encrypted in place and kept as the segment's first k blocks.
    pub fn encode_segment(&mut self, plaintext: Vec<u8>) -> Result<EncodedSegment, ChkError> {
        let segnum = self.next_segment;
        let expected = if segnum < self.plan.num_segments {
            self.plan.segment_len(segnum)
        } else {
            0
        };
        if plaintext.len() as u64 != expected || expected == 0 {
            return Err(ChkError::BadSegment {
                segnum,
                expected,
                got: plaintext.len() as u64,
            });
        }
        let k = usize::from(self.plan.needed);
        let block_size = (expected as usize).div_ceil(k);
        if let Some(recheck) = &mut self.recheck {
            recheck.update(&plaintext);
        }
        let mut crypttext = plaintext;
        self.cipher.apply_keystream(&mut crypttext);
        self.crypttext.update(&crypttext);
        self.segment_hashes
            .push(to_hash(tagged_hash(CRYPTTEXT_SEGMENT_TAG, &crypttext, 32)));
        // The tail is padded with zeros to k equal pieces after hashing (`_gather_data`).
        crypttext.resize(block_size * k, 0);
        let pieces: Vec<&[u8]> = crypttext.chunks(block_size).collect();
        let parity: Vec<Vec<u8>> = (k..usize::from(self.plan.total))
            .map(|shnum| {
                let mut block = vec![0u8; block_size];
                self.zfec.encode_parity_into(&pieces, shnum, &mut block);
                block
            })
            .collect();
        let segment = EncodedSegment {
            segnum,
            crypttext,
            block_size,
            parity,
        };
        for (shnum, block) in segment.blocks().enumerate() {
            self.block_hashes[shnum].push(to_hash(tagged_hash(BLOCK_TAG, block, 32)));
        }
        self.next_segment += 1;
        Ok(segment)
    }

    /// The hash trees, URI extension block, cap and each share's trailer.
    pub fn finish(self) -> Result<EncodedFile, ChkError> {
        if self.next_segment != self.plan.num_segments {
            return Err(ChkError::Incomplete {
                encoded: self.next_segment,
                total: self.plan.num_segments,
            });
        }
        if let Some(recheck) = self.recheck {
            if recheck.finish() != self.key {
                return Err(ChkError::ContentChanged);
            }
        }
        let crypttext_tree = HashTree::new(&self.segment_hashes);
        let block_trees: Vec<HashTree> =
            self.block_hashes.iter().map(|h| HashTree::new(h)).collect();
        let share_roots: Vec<Hash> = block_trees.iter().map(HashTree::root).collect();
        let share_tree = HashTree::new(&share_roots);
        let ueb = UriExtension {
            plan: self.plan,
            crypttext_hash: self.crypttext.finish(),
            crypttext_root_hash: crypttext_tree.root(),
            share_root_hash: share_tree.root(),
        };
        let uri_extension = ueb.pack();
        let layout = ShareLayout::new(&self.plan);
        let trailers = block_trees
            .iter()
            .enumerate()
            .map(|(shnum, block_tree)| {
                let share_hashes: Vec<(usize, Hash)> = share_tree
                    .needed_hashes(shnum, true)
                    .into_iter()
                    .map(|node| (node, share_tree.node(node)))
                    .collect();
                layout.trailer(&crypttext_tree, block_tree, &share_hashes, &uri_extension)
            })
            .collect();
        let cap = ChkCap {
            key: self.key,
            uri_extension_hash: uri_extension_hash(&uri_extension),
            needed: self.plan.needed,
            total: self.plan.total,
            size: self.plan.file_size,
        };
        Ok(EncodedFile {
            cap,
            uri_extension,
            layout,
            trailers,
        })
    }
}

fn to_hash(v: Vec<u8>) -> Hash {
    v.try_into().expect("32 bytes")
}

/// Encodes a whole file held in memory with its convergent key; returns the result and every
/// share's bytes (header, blocks, trailer) as a server stores them. For tests and small files.
pub fn encode_bytes(
    data: &[u8],
    convergence: &[u8],
    params: &EncodingParams,
) -> Result<(EncodedFile, Vec<Vec<u8>>), ChkError> {
    let key = super::convergent_key(data, convergence, params, data.len() as u64)?;
    let mut encoder = ChkEncoder::convergent(key, convergence, params, data.len() as u64)?;
    let layout = encoder.layout();
    let mut shares = vec![layout.header(); params.total.into()];
    let mut offset = 0usize;
    for segnum in 0..encoder.plan().num_segments {
        let len = encoder.plan().segment_len(segnum) as usize;
        let segment = encoder.encode_segment(data[offset..offset + len].to_vec())?;
        offset += len;
        for (share, block) in shares.iter_mut().zip(segment.blocks()) {
            share.extend_from_slice(block);
        }
    }
    let file = encoder.finish()?;
    for (share, trailer) in shares.iter_mut().zip(&file.trailers) {
        share.extend_from_slice(trailer);
    }
    Ok((file, shares))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: EncodingParams = EncodingParams {
        needed: 2,
        total: 3,
        max_segment_size: 64,
    };

    #[test]
    fn a_file_changed_between_the_two_reads_gets_no_cap() {
        let before = vec![1u8; 200];
        let mut after = before.clone();
        after[150] = 2;
        let key = crate::chk::convergent_key(&before[..], b"secret", &PARAMS, 200).unwrap();
        let mut encoder = ChkEncoder::convergent(key, b"secret", &PARAMS, 200).unwrap();
        for segnum in 0..encoder.plan().num_segments {
            let start = (segnum * encoder.plan().segment_size) as usize;
            let len = encoder.plan().segment_len(segnum) as usize;
            encoder
                .encode_segment(after[start..start + len].to_vec())
                .unwrap();
        }
        assert!(matches!(encoder.finish(), Err(ChkError::ContentChanged)));
    }

    #[test]
    fn segments_of_the_wrong_length_or_too_many_are_refused() {
        let mut encoder = ChkEncoder::new([0; 16], &PARAMS, 100).unwrap();
        assert!(matches!(
            encoder.encode_segment(vec![0; 63]),
            Err(ChkError::BadSegment { expected: 64, .. })
        ));
        encoder.encode_segment(vec![0; 64]).unwrap();
        encoder.encode_segment(vec![0; 36]).unwrap();
        assert!(encoder.encode_segment(vec![0; 1]).is_err());
    }

    #[test]
    fn finishing_early_is_refused() {
        let mut encoder = ChkEncoder::new([0; 16], &PARAMS, 100).unwrap();
        encoder.encode_segment(vec![0; 64]).unwrap();
        assert!(matches!(
            encoder.finish(),
            Err(ChkError::Incomplete {
                encoded: 1,
                total: 2
            })
        ));
    }
}
