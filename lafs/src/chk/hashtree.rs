//! Tahoe's Merkle trees (`allmydata/hashtree.py`): a complete binary tree stored root-first
//! (node 0 is the root, node i has children 2i+1 and 2i+2), leaves padded to a power of two
//! with "empty leaf" hashes, inner nodes hashed with a tagged pair hash.

use crate::hashutil::{tagged_hash, tagged_pair_hash};

/// A 32-byte hash.
pub type Hash = [u8; 32];

fn to_hash(v: Vec<u8>) -> Hash {
    v.try_into().expect("tagged hashes are 32 bytes")
}

/// The hash standing in for missing leaf `i` (its position among the leaves).
pub fn empty_leaf_hash(i: usize) -> Hash {
    to_hash(tagged_hash(
        b"Merkle tree empty leaf",
        i.to_string().as_bytes(),
        32,
    ))
}

/// The hash of an inner node from its children.
pub fn pair_hash(left: &Hash, right: &Hash) -> Hash {
    to_hash(tagged_pair_hash(
        b"Merkle tree internal node",
        left,
        right,
        32,
    ))
}

/// A complete hash tree over some leaves.
#[derive(Debug, Clone)]
pub struct HashTree {
    nodes: Vec<Hash>,
    first_leaf: usize,
}

impl HashTree {
    /// The tree over `leaves` (padded to a power of two, at least one leaf).
    pub fn new(leaves: &[Hash]) -> Self {
        let width = leaves.len().max(1).next_power_of_two();
        let first_leaf = width - 1;
        let mut nodes = vec![[0u8; 32]; 2 * width - 1];
        for i in 0..width {
            nodes[first_leaf + i] = leaves.get(i).copied().unwrap_or_else(|| empty_leaf_hash(i));
        }
        for p in (0..first_leaf).rev() {
            nodes[p] = pair_hash(&nodes[2 * p + 1], &nodes[2 * p + 2]);
        }
        HashTree { nodes, first_leaf }
    }

    /// The root hash.
    pub fn root(&self) -> Hash {
        self.nodes[0]
    }

    /// Every node, root first (what a share stores for its block and crypttext trees).
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> Hash {
        self.nodes[i]
    }

    /// The node numbers needed to check leaf `leafnum` against the root (its siblings up the
    /// tree, plus the leaf itself when asked), in the order Tahoe writes them into a share.
    ///
    /// Tahoe collects these in a Python `set` and writes them in that set's iteration order, so
    /// the order is CPython's, reproduced by [`python_int_set_order`].
    pub fn needed_hashes(&self, leafnum: usize, include_leaf: bool) -> Vec<usize> {
        let leaf = self.first_leaf + leafnum;
        let mut needed = Vec::new();
        let mut here = leaf;
        while here != 0 {
            let parent = (here - 1) / 2;
            needed.push(if 2 * parent + 1 == here {
                2 * parent + 2
            } else {
                2 * parent + 1
            });
            here = parent;
        }
        if include_leaf {
            needed.push(leaf);
        }
        python_int_set_order(&needed)
    }
}

/// The iteration order of a CPython 3 `set` of small non-negative ints made by adding `items`
/// one by one (`Objects/setobject.c`: an int hashes to itself; open addressing with runs of
/// linear probes and perturbation; the table starts at 8 slots and grows to the smallest power
/// of two above 4 x used whenever it becomes 3/5 full).
pub fn python_int_set_order(items: &[usize]) -> Vec<usize> {
    const LINEAR_PROBES: usize = 9;
    const PERTURB_SHIFT: u32 = 5;
    fn insert(table: &mut [Option<usize>], key: usize) {
        let mask = table.len() - 1;
        let mut perturb = key;
        let mut i = key & mask;
        loop {
            let run = if i + LINEAR_PROBES <= mask {
                LINEAR_PROBES
            } else {
                0
            };
            if let Some(slot) = table[i..=i + run].iter_mut().find(|s| s.is_none()) {
                *slot = Some(key);
                return;
            }
            perturb >>= PERTURB_SHIFT;
            i = (i * 5 + 1 + perturb) & mask;
        }
    }
    let mut table: Vec<Option<usize>> = vec![None; 8];
    let mut used = 0usize;
    for &key in items {
        if table.contains(&Some(key)) {
            continue;
        }
        insert(&mut table, key);
        used += 1;
        if used * 5 >= (table.len() - 1) * 3 {
            let mut size = 8;
            while size <= used * 4 {
                size <<= 1;
            }
            let old = std::mem::replace(&mut table, vec![None; size]);
            for key in old.into_iter().flatten() {
                insert(&mut table, key);
            }
        }
    }
    table.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_sets_iterate_in_slot_order() {
        // Values below the table size sit in their own slot.
        assert_eq!(python_int_set_order(&[4, 1, 2]), vec![1, 2, 4]);
        // 8 and 0 collide in an 8-slot table: 8 keeps slot 0 and 0 moves on to slot 1.
        assert_eq!(python_int_set_order(&[8, 0]), vec![8, 0]);
    }

    #[test]
    fn one_leaf_tree_is_its_leaf() {
        let leaf = [7u8; 32];
        let tree = HashTree::new(&[leaf]);
        assert_eq!(tree.root(), leaf);
        assert_eq!(tree.needed_hashes(0, true), vec![0]);
    }

    #[test]
    fn three_leaves_pad_with_an_empty_leaf() {
        let leaves = [[1u8; 32], [2u8; 32], [3u8; 32]];
        let tree = HashTree::new(&leaves);
        assert_eq!(tree.nodes().len(), 7);
        assert_eq!(tree.node(6), empty_leaf_hash(3));
        assert_eq!(tree.node(2), pair_hash(&leaves[2], &empty_leaf_hash(3)));
    }
}
