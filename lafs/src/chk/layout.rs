//! Where things are in a share (`immutable/layout.py`, `WriteBucketProxy` and `_v2`): a header of
//! offsets, the blocks, then the hash trees and the URI extension block.
//!
//! Every offset depends only on the file's size and parameters, so the header can be sent before
//! the first block; the trailer (from the unused plaintext-hash-tree slot to the end) is known only
//! after the last segment. v1 uses 32-bit fields; v2 (64-bit) is chosen, as Tahoe does, when a
//! size or offset does not fit 32 bits.

use super::hashtree::{Hash, HashTree};
use super::ueb::UriExtension;
use super::SegmentPlan;

const HASH_SIZE: u64 = 32;

/// The layout of every share of one file (all shares of a file have the same sizes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareLayout {
    version: u32,
    plan: SegmentPlan,
    data: u64,
    plaintext_hash_tree: u64,
    crypttext_hash_tree: u64,
    block_hashes: u64,
    share_hashes: u64,
    uri_extension: u64,
    uri_extension_len: u64,
}

impl ShareLayout {
    /// The layout for a file cut by `plan`: v1 when its sizes fit 32 bits, else v2.
    pub fn new(plan: &SegmentPlan) -> Self {
        Self::build(plan, false)
    }

    /// The v2 layout even where v1 would do (as Tahoe's tests force it with `FORCE_V2`); every
    /// Tahoe reader accepts both.
    pub fn v2(plan: &SegmentPlan) -> Self {
        Self::build(plan, true)
    }

    fn build(plan: &SegmentPlan, force_v2: bool) -> Self {
        let segment_hash_size = (2 * plan.num_segments.next_power_of_two() - 1) * HASH_SIZE;
        let num_share_hashes = u64::from(usize::from(plan.total).next_power_of_two().ilog2()) + 1;
        let share_hashes_size = num_share_hashes * (2 + HASH_SIZE);
        let uri_extension_len = UriExtension::packed_len(plan);
        let at = |start: u64| {
            let plaintext_hash_tree = start + plan.share_data_size();
            let crypttext_hash_tree = plaintext_hash_tree + segment_hash_size;
            let block_hashes = crypttext_hash_tree + segment_hash_size;
            let share_hashes = block_hashes + segment_hash_size;
            let uri_extension = share_hashes + share_hashes_size;
            [
                start,
                plaintext_hash_tree,
                crypttext_hash_tree,
                block_hashes,
                share_hashes,
                uri_extension,
            ]
        };
        let v1 = at(0x24);
        let fits_v1 = !force_v2
            && plan.block_size() < 1 << 32
            && plan.share_data_size() < 1 << 32
            && v1[5] < 1 << 32;
        let (version, offsets) = if fits_v1 { (1, v1) } else { (2, at(0x44)) };
        ShareLayout {
            version,
            plan: *plan,
            data: offsets[0],
            plaintext_hash_tree: offsets[1],
            crypttext_hash_tree: offsets[2],
            block_hashes: offsets[3],
            share_hashes: offsets[4],
            uri_extension: offsets[5],
            uri_extension_len,
        }
    }

    /// 1 or 2.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Bytes of the whole share: what to allocate on a server.
    pub fn allocated_size(&self) -> u64 {
        self.uri_extension + self.length_field_size() + self.uri_extension_len
    }

    /// Where block `segnum` starts in the share.
    pub fn block_offset(&self, segnum: u64) -> u64 {
        self.data + segnum * self.plan.block_size()
    }

    /// Where the trailer starts (right after the blocks).
    pub fn trailer_offset(&self) -> u64 {
        self.plaintext_hash_tree
    }

    /// The header: version, block size, share data size and the offsets.
    pub fn header(&self) -> Vec<u8> {
        let fields = [
            self.plan.block_size(),
            self.plan.share_data_size(),
            self.data,
            self.plaintext_hash_tree,
            self.crypttext_hash_tree,
            self.block_hashes,
            self.share_hashes,
            self.uri_extension,
        ];
        let mut out = Vec::with_capacity(self.data as usize);
        out.extend_from_slice(&self.version.to_be_bytes());
        for field in fields {
            self.put_field(&mut out, field);
        }
        out
    }

    /// The trailer of one share: the unused plaintext hash tree (zeros), the crypttext hash tree,
    /// this share's block hash tree, the share hashes it needs (`(node number, hash)`), and the
    /// URI extension block with its length.
    pub fn trailer(
        &self,
        crypttext_tree: &HashTree,
        block_tree: &HashTree,
        share_hashes: &[(usize, Hash)],
        uri_extension: &[u8],
    ) -> Vec<u8> {
        let size = (self.allocated_size() - self.plaintext_hash_tree) as usize;
        let mut out = Vec::with_capacity(size);
        out.resize(
            (self.crypttext_hash_tree - self.plaintext_hash_tree) as usize,
            0,
        );
        for hash in crypttext_tree.nodes().iter().chain(block_tree.nodes()) {
            out.extend_from_slice(hash);
        }
        for (node, hash) in share_hashes {
            out.extend_from_slice(&(*node as u16).to_be_bytes());
            out.extend_from_slice(hash);
        }
        debug_assert_eq!(
            out.len() as u64,
            self.uri_extension - self.plaintext_hash_tree
        );
        self.put_field(&mut out, uri_extension.len() as u64);
        out.extend_from_slice(uri_extension);
        debug_assert_eq!(out.len(), size);
        out
    }

    fn length_field_size(&self) -> u64 {
        if self.version == 1 {
            4
        } else {
            8
        }
    }

    fn put_field(&self, out: &mut Vec<u8>, value: u64) {
        if self.version == 1 {
            out.extend_from_slice(&(value as u32).to_be_bytes());
        } else {
            out.extend_from_slice(&value.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chk::EncodingParams;

    #[test]
    fn small_file_has_a_v1_header_with_tahoes_offsets() {
        let params = EncodingParams {
            needed: 1,
            total: 1,
            max_segment_size: 1 << 20,
        };
        let plan = SegmentPlan::new(&params, 56).unwrap();
        let layout = ShareLayout::new(&plan);
        assert_eq!(layout.version(), 1);
        let header = layout.header();
        assert_eq!(header.len(), 0x24);
        assert_eq!(&header[..4], &[0, 0, 0, 1]);
        // One segment: each tree is one hash; one share: one (number, hash) pair.
        assert_eq!(layout.trailer_offset(), 0x24 + 56);
        assert_eq!(layout.uri_extension, 0x24 + 56 + 3 * 32 + 34);
    }

    #[test]
    fn huge_file_needs_v2() {
        let plan = SegmentPlan::new(&EncodingParams::DEFAULT, 13 << 30).unwrap();
        let layout = ShareLayout::new(&plan);
        assert_eq!(layout.version(), 2);
        assert_eq!(layout.header().len(), 0x44);
        assert_eq!(layout.block_offset(0), 0x44);
    }
}
