//! Share headers and allocated sizes equal those of Tahoe's own `WriteBucketProxy` (v1, v2 when
//! needed) and `WriteBucketProxy_v2`, for files up to 100 GiB (`data/make_layout_vectors.py`).

use tahoe_jobs_lafs::chk::{EncodingParams, SegmentPlan, ShareLayout};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn headers_and_allocated_sizes_equal_tahoes() {
    let text = include_str!("data/layout-vectors.txt");
    let mut checked = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split(' ').collect();
        let params = EncodingParams {
            needed: f[0].parse().unwrap(),
            total: f[1].parse().unwrap(),
            max_segment_size: f[2].parse().unwrap(),
        };
        let plan = SegmentPlan::new(&params, f[3].parse().unwrap()).unwrap();
        let chosen = ShareLayout::new(&plan);
        assert_eq!(chosen.version().to_string(), f[4], "{line}");
        assert_eq!(hex(&chosen.header()), f[5], "{line}");
        assert_eq!(chosen.allocated_size().to_string(), f[6], "{line}");
        let v2 = ShareLayout::v2(&plan);
        assert_eq!(hex(&v2.header()), f[7], "{line}");
        assert_eq!(v2.allocated_size().to_string(), f[8], "{line}");
        checked += 1;
    }
    assert_eq!(checked, 12);
}
