//! The `lafs` crate's encoders against a real node: a file encoded by tahoe-jobs gets the cap the
//! node gives the same bytes, and its shares are byte for byte the share data the node's upload
//! left on the storage servers; an immutable directory packed by tahoe-jobs gets the cap of the
//! node's `t=mkdir-immutable` for the same children. Nothing is uploaded by tahoe-jobs here: the
//! network path is not part of these tests.

use std::io::{Cursor, Read};

use tahoe_jobs_lafs::base32;
use tahoe_jobs_lafs::chk::{
    convergent_key, ChkEncoder, EncodingParams, DEFAULT_MAX_SEGMENT_SIZE, LIT_SIZE_THRESHOLD,
};
use tahoe_jobs_lafs::dirnode::{
    immutable_directory_cap, pack_immutable_children, python_json_dumps, ImmutableChild, JsonValue,
};

use crate::support::files::seeded_bytes;
use crate::support::{http_client, shared_grid, Grid, GridSpec};

const MIB: usize = 1024 * 1024;

/// The client node's convergence secret (`private/convergence`, base32 text).
fn convergence(grid: &Grid) -> Vec<u8> {
    let text = std::fs::read_to_string(grid.node_dir().join("private/convergence"))
        .expect("the client node has private/convergence");
    base32::decode(text.trim()).expect("private/convergence is base32")
}

/// The client's encoding settings (the grid sets k and N; the maximum segment is Tahoe's default).
fn params(grid: &Grid) -> EncodingParams {
    let spec = grid.spec();
    EncodingParams {
        needed: spec.needed as u16,
        total: spec.total as u16,
        max_segment_size: DEFAULT_MAX_SEGMENT_SIZE,
    }
}

/// `PUT /uri` (what `tahoe put FILE` does); returns the cap. A secret: not printed.
async fn put(web_url: &str, data: &[u8]) -> String {
    let response = http_client()
        .put(format!("{web_url}/uri"))
        .body(data.to_vec())
        .send()
        .await
        .expect("PUT /uri did not reach the node");
    let status = response.status();
    let body = response.text().await.expect("PUT /uri body");
    assert!(status.is_success(), "PUT /uri answered {status}");
    body.trim().to_owned()
}

/// `POST /uri?t=mkdir-immutable` with a JSON body; returns the directory cap.
async fn mkdir_immutable(web_url: &str, body: String) -> String {
    let response = http_client()
        .post(format!("{web_url}/uri?t=mkdir-immutable"))
        .body(body)
        .send()
        .await
        .expect("mkdir-immutable did not reach the node");
    let status = response.status();
    let text = response.text().await.expect("mkdir-immutable body");
    assert!(status.is_success(), "mkdir-immutable answered {status}");
    text.trim().to_owned()
}

/// Encodes `data` the way an uploader would: the key from one pass over a reader, then segment
/// by segment from a second pass, each share assembled as header, blocks, trailer.
fn encode_streaming(
    data: &[u8],
    convergence: &[u8],
    params: &EncodingParams,
) -> (String, [u8; 16], Vec<Vec<u8>>) {
    let size = data.len() as u64;
    let key = convergent_key(Cursor::new(data), convergence, params, size).unwrap();
    let mut encoder = ChkEncoder::convergent(key, convergence, params, size).unwrap();
    let layout = encoder.layout();
    let storage_index = encoder.storage_index();
    let mut shares = vec![layout.header(); params.total.into()];
    let mut reader = Cursor::new(data);
    for segnum in 0..encoder.plan().num_segments {
        let mut segment = vec![0u8; encoder.plan().segment_len(segnum) as usize];
        reader.read_exact(&mut segment).unwrap();
        let encoded = encoder.encode_segment(segment).unwrap();
        for (share, block) in shares.iter_mut().zip(encoded.blocks()) {
            assert_eq!(share.len() as u64, layout.block_offset(segnum));
            share.extend_from_slice(block);
        }
    }
    let file = encoder.finish().unwrap();
    for (share, trailer) in shares.iter_mut().zip(&file.trailers) {
        assert_eq!(share.len() as u64, layout.trailer_offset());
        share.extend_from_slice(trailer);
        assert_eq!(share.len() as u64, layout.allocated_size());
    }
    assert_eq!(file.cap.storage_index(), storage_index);
    (file.cap.to_uri(), storage_index, shares)
}

/// The share data of share `shnum` of storage index `si` on any storage node of `grid`: the
/// share file without its 12-byte container header and the leases after the data
/// (`storage/immutable.py`).
fn stored_share(grid: &Grid, si: &[u8; 16], shnum: usize) -> Option<Vec<u8>> {
    let si = base32::encode(si);
    (0..grid.storage_nodes()).find_map(|i| {
        let path = grid
            .shares_dir(i)
            .join(&si[..2])
            .join(&si)
            .join(shnum.to_string());
        let file = std::fs::read(&path).ok()?;
        let leases = u32::from_be_bytes(file[8..12].try_into().unwrap()) as usize;
        Some(file[12..file.len() - leases * 72].to_vec())
    })
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or((a.len() != b.len()).then(|| a.len().min(b.len())))
}

/// Uploads each size through the node and checks tahoe-jobs' cap and every share against it.
async fn assert_node_and_encoder_agree(grid: &Grid, sizes: &[usize]) {
    let convergence = convergence(grid);
    let params = params(grid);
    for &size in sizes {
        let data = seeded_bytes(size as u64 + 1, size);
        let node_cap = put(grid.web_url(), &data).await;
        let (cap, si, shares) = encode_streaming(&data, &convergence, &params);
        // Caps are secrets: compare them without printing either.
        assert!(
            cap == node_cap,
            "{size} bytes: tahoe-jobs' cap differs from the node's"
        );
        for (shnum, share) in shares.iter().enumerate() {
            let stored = stored_share(grid, &si, shnum)
                .unwrap_or_else(|| panic!("{size} bytes: no server holds share {shnum}"));
            assert!(
                stored == *share,
                "{size} bytes, share {shnum}: {} bytes stored, {} encoded, first difference at {:?}",
                stored.len(),
                share.len(),
                first_difference(&stored, share)
            );
        }
    }
}

#[tokio::test]
async fn chk_caps_and_shares_equal_the_nodes_on_one_of_one() {
    let grid = shared_grid();
    let sizes = [
        LIT_SIZE_THRESHOLD as usize + 1,
        4096,
        128 * 1024 - 1,
        128 * 1024,
        128 * 1024 + 1,
        MIB - 1,
        MIB,
        MIB + 1,
        3 * MIB + 5,
    ];
    assert_node_and_encoder_agree(grid, &sizes).await;

    // The stock CLI's `tahoe put` of a file gives the same cap (it is a `PUT /uri` too).
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("several-segments.bin");
    let data = seeded_bytes(99, 2 * MIB + 3);
    std::fs::write(&path, &data).unwrap();
    let out = grid.tahoe([std::ffi::OsStr::new("put"), path.as_os_str()]);
    assert!(out.status.success(), "tahoe put failed ({})", out.status);
    let cli_cap = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let (cap, _, _) = encode_streaming(&data, &convergence(grid), &params(grid));
    assert!(cap == cli_cap, "tahoe put's cap differs from tahoe-jobs'");
}

#[tokio::test]
async fn chk_caps_and_shares_equal_the_nodes_on_three_of_five() {
    // Two servers hold the five shares between them: every share number, its block data and
    // its share hash chain (written in the order of a Python set) are checked.
    let grid = Grid::start(GridSpec {
        storage_nodes: 2,
        needed: 3,
        happy: 2,
        total: 5,
    });
    let sizes = [56, 1000, MIB - 1, MIB + 1, 2 * MIB + 7];
    assert_node_and_encoder_agree(&grid, &sizes).await;
}

fn s(text: &str) -> JsonValue {
    JsonValue::String(text.into())
}

/// `{"name": ["filenode", {"ro_uri": ..., "metadata": {...}}], ...}` in the children's order.
fn mkdir_body(children: &[(&str, ImmutableChild)]) -> String {
    let entries = children
        .iter()
        .map(|(kind, child)| {
            let props = JsonValue::Object(vec![
                ("ro_uri".into(), s(&child.ro_uri)),
                ("metadata".into(), JsonValue::Object(child.metadata.clone())),
            ]);
            (child.name.clone(), JsonValue::Array(vec![s(kind), props]))
        })
        .collect();
    python_json_dumps(&JsonValue::Object(entries))
}

#[tokio::test]
async fn immutable_directory_caps_equal_the_nodes() {
    let grid = shared_grid();
    let url = grid.web_url();
    let convergence = convergence(grid);
    let params = params(grid);
    let big = put(url, &seeded_bytes(7, 5000)).await;
    let small = put(url, b"tiny").await;
    let metadata = vec![
        ("mtime".to_string(), JsonValue::Float(1_700_000_000.123_456)),
        ("ctime".to_string(), JsonValue::Float(1.5e-7)),
        (
            "tahoe".to_string(),
            JsonValue::Object(vec![
                ("linkmotime".into(), JsonValue::Float(1e16)),
                ("linkcrtime".into(), JsonValue::Float(0.1)),
            ]),
        ),
        ("size".to_string(), JsonValue::Int(5000)),
        ("whole".to_string(), JsonValue::Float(3.0)),
        (
            "tags".to_string(),
            JsonValue::Array(vec![s("a"), JsonValue::Null, JsonValue::Bool(true)]),
        ),
        ("naïve ☃".to_string(), s("quote \" backslash \\ tab \t 😀")),
    ];
    let child = |name: &str, cap: &str, metadata: Vec<(String, JsonValue)>| ImmutableChild {
        name: name.into(),
        ro_uri: cap.into(),
        metadata,
    };
    let files = [
        ("filenode", child("plain.txt", &big, metadata.clone())),
        // Decomposed "é": the node stores it as NFC, and so does the packer.
        ("filenode", child("cafe\u{301}.txt", &small, vec![])),
        (
            "filenode",
            child("Ünïcode ☃ 😀", &big, metadata[..3].to_vec()),
        ),
        (
            "filenode",
            child(
                "Zed",
                &small,
                vec![("mtime".into(), JsonValue::Float(-2.5))],
            ),
        ),
    ];

    let mut made = Vec::new();
    for children in [&files[..], &files[1..2], &[]] {
        let node_cap = mkdir_immutable(url, mkdir_body(children)).await;
        let owned: Vec<ImmutableChild> = children.iter().map(|(_, c)| c.clone()).collect();
        let body = pack_immutable_children(&owned).unwrap();
        let cap = immutable_directory_cap(&body, &convergence, &params).unwrap();
        let kind = cap.split(':').take(2).collect::<Vec<_>>().join(":");
        assert!(
            cap == node_cap,
            "{} children ({kind}, {} byte body): tahoe-jobs' cap differs from the node's",
            children.len(),
            body.len()
        );
        made.push((kind, cap));
    }
    let kinds: Vec<&str> = made.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(kinds, ["URI:DIR2-CHK", "URI:DIR2-LIT", "URI:DIR2-LIT"]);

    // A directory of directories.
    let nested = [
        (
            "dirnode",
            child("sub", &made[0].1, vec![("x".into(), JsonValue::Int(1))]),
        ),
        ("dirnode", child("lit", &made[1].1, vec![])),
        ("filenode", child("f", &big, vec![])),
    ];
    let node_cap = mkdir_immutable(url, mkdir_body(&nested)).await;
    let owned: Vec<ImmutableChild> = nested.iter().map(|(_, c)| c.clone()).collect();
    let cap = immutable_directory_cap(
        &pack_immutable_children(&owned).unwrap(),
        &convergence,
        &params,
    )
    .unwrap();
    assert!(
        cap == node_cap,
        "nested directory: tahoe-jobs' cap differs from the node's"
    );
}
