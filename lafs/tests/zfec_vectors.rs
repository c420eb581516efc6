//! The zfec encoder against known answers made by Python zfec (`data/make_zfec_vectors.py`).

use sha2::{Digest, Sha256};
use tahoe_jobs_lafs::zfec::Encoder;

fn piece(k: usize, n: usize, j: usize, size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| ((i * 131 + j * 257 + k * 17 + n * 3 + (i * i % 251)) % 256) as u8)
        .collect()
}

#[test]
fn every_block_equals_python_zfec() {
    let text = include_str!("data/zfec-vectors.txt");
    let mut checked = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split(' ').collect();
        let [k, n, size]: [usize; 3] = [0, 1, 2].map(|i| fields[i].parse().unwrap());
        let pieces: Vec<Vec<u8>> = (0..k).map(|j| piece(k, n, j, size)).collect();
        let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        let blocks = Encoder::new(k, n).unwrap().encode(&refs).unwrap();
        let mut hasher = Sha256::new();
        for block in &blocks {
            hasher.update(block);
        }
        let digest: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(digest, fields[3], "k={k} n={n} piece size {size}");
        checked += 1;
    }
    assert!(checked > 100, "only {checked} vectors read");
}
