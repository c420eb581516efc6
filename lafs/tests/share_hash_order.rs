//! The share hash chain is written in the order Tahoe's Python set iterates
//! (`data/make_share_hash_order.py` made the known answers with Tahoe's own HashTree).

use tahoe_jobs_lafs::chk::hashtree::HashTree;

#[test]
fn share_hash_chain_order_equals_tahoes() {
    let text = include_str!("data/share-hash-order.txt");
    let mut checked = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (n, orders) = line.split_once(' ').unwrap();
        let n: usize = n.parse().unwrap();
        let tree = HashTree::new(&vec![[0u8; 32]; n]);
        for (shnum, expected) in orders.split(';').enumerate() {
            let expected: Vec<usize> = expected.split(',').map(|x| x.parse().unwrap()).collect();
            assert_eq!(
                tree.needed_hashes(shnum, true),
                expected,
                "N={n} share {shnum}"
            );
            checked += 1;
        }
    }
    assert!(checked > 1000);
}
