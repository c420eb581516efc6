//! Every CHK vector published with Tahoe-LAFS 1.20 (its CHK cases, extracted to
//! `data/chk-vectors.yaml` by `data/extract_chk_vectors.py`) gives its expected cap.

use base64::Engine;
use serde::Deserialize;
use tahoe_jobs_lafs::chk::{encode_bytes, EncodingParams};

#[derive(Deserialize)]
struct Vectors {
    vector: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    convergence: String,
    expected: String,
    format: Format,
    sample: Sample,
    zfec: Zfec,
}

#[derive(Deserialize)]
struct Format {
    kind: String,
}

#[derive(Deserialize)]
struct Sample {
    length: usize,
    seed: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Zfec {
    required: u16,
    total: u16,
    segment_size: u64,
}

fn b64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[test]
fn every_chk_vector_gives_its_cap() {
    let text = include_str!("data/chk-vectors.yaml");
    let vectors: Vectors = serde_yaml::from_str(text).unwrap();
    let mut checked = 0;
    for case in vectors.vector.iter().filter(|c| c.format.kind == "chk") {
        let seed = b64(&case.sample.seed);
        let data: Vec<u8> = seed
            .iter()
            .copied()
            .cycle()
            .take(case.sample.length)
            .collect();
        let params = EncodingParams {
            needed: case.zfec.required,
            total: case.zfec.total,
            max_segment_size: case.zfec.segment_size,
        };
        let (file, shares) = encode_bytes(&data, &b64(&case.convergence), &params).unwrap();
        assert_eq!(
            file.cap.to_uri(),
            case.expected,
            "{} bytes, {}-of-{}",
            data.len(),
            params.needed,
            params.total
        );
        assert_eq!(shares.len(), usize::from(params.total));
        let allocated = file.layout.allocated_size();
        assert!(shares.iter().all(|s| s.len() as u64 == allocated));
        checked += 1;
    }
    assert_eq!(checked, 120);
}
