//! Direct immutable uploads (`lafs::upload`) against real grids: tahoe-jobs encodes and places
//! the shares itself, and the stock tools agree with the result: `tahoe put` of the same bytes
//! gives the same cap, `tahoe check --verify` finds the file healthy and `tahoe get` returns
//! the bytes. A storage server that is down gets no share: the others take them, or the upload
//! fails with a clear "not enough storage servers" and leaves nothing allocated.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::sync::Mutex;

use bytes::Bytes;
use tahoe_jobs_lafs::base32;
use tahoe_jobs_lafs::cap::StorageIndex;
use tahoe_jobs_lafs::chk::{encode_bytes, EncodingParams, DEFAULT_MAX_SEGMENT_SIZE};
use tahoe_jobs_lafs::discovery::load_servers;
use tahoe_jobs_lafs::grid::StorageGrid;
use tahoe_jobs_lafs::lease::ClientLeaseSecrets;
use tahoe_jobs_lafs::storage::{StorageClient, Timeouts, UploadSecret};
use tahoe_jobs_lafs::upload::{
    upload_secret_for, Convergence, Pace, Pacer, ShareWrite, StopUpload, UploadError, Uploader,
};

use crate::support::files::seeded_bytes;
use crate::support::shares::{files_below, incoming_shares, stored_share_bytes};
use crate::support::{shared_grid, Grid, GridSpec};

const MIB: usize = 1024 * 1024;

/// An uploader with the client node's secrets and the grid's k/N, asking for `happy`.
pub(crate) fn uploader(grid: &Grid, happy: usize) -> Uploader {
    let servers = load_servers(grid.node_dir()).expect("the client's server files");
    let storage = StorageGrid::new(&servers, Timeouts::default()).expect("storage clients");
    let spec = grid.spec();
    Uploader::new(
        &storage,
        ClientLeaseSecrets::from_node_dir(grid.node_dir()).expect("private/secret"),
        Convergence::from_node_dir(grid.node_dir()).expect("private/convergence"),
        EncodingParams {
            needed: spec.needed as u16,
            total: spec.total as u16,
            max_segment_size: DEFAULT_MAX_SEGMENT_SIZE,
        },
        happy,
    )
}

/// Bytes no earlier run of this test uploaded to the same grid.
pub(crate) fn fresh_bytes(tag: u64, len: usize) -> Vec<u8> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    seeded_bytes(nanos ^ (u64::from(std::process::id()) << 32) ^ tag, len)
}

/// `tahoe put FILE`'s cap (a secret: not printed).
fn tahoe_put(grid: &Grid, data: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("put.bin");
    std::fs::write(&path, data).unwrap();
    let out = grid.tahoe([OsStr::new("put"), path.as_os_str()]);
    assert!(out.status.success(), "tahoe put failed ({})", out.status);
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `tahoe check --verify CAP` says healthy, and `tahoe get CAP` returns `data`.
pub(crate) fn assert_verified_and_readable(grid: &Grid, cap: &str, data: &[u8]) {
    let check = grid.tahoe(["check", "--verify", cap]);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && report.contains("Summary: Healthy"),
        "tahoe check --verify of a direct upload of {} bytes: {}",
        data.len(),
        report
            .lines()
            .filter(|l| !l.contains("URI:"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("got.bin");
    let got = grid.tahoe([OsStr::new("get"), OsStr::new(cap), out.as_os_str()]);
    assert!(got.status.success(), "tahoe get failed ({})", got.status);
    assert!(
        std::fs::read(&out).unwrap() == data,
        "tahoe get returned other bytes than were uploaded ({} bytes)",
        data.len()
    );
}

/// Uploads each size directly (from a file), then checks it with the stock tools.
async fn upload_and_compare(grid: &Grid, uploader: &Uploader, sizes: &[usize]) {
    let dir = tempfile::tempdir().unwrap();
    for (i, &size) in sizes.iter().enumerate() {
        let data = fresh_bytes(i as u64, size);
        let path = dir.path().join(format!("f{i}"));
        std::fs::write(&path, &data).unwrap();
        let uploaded = uploader
            .upload_file(&path)
            .await
            .unwrap_or_else(|e| panic!("direct upload of {size} bytes: {e}"));
        let total = grid.spec().total;
        if size > 55 {
            assert_eq!(
                uploaded.shares_written, total,
                "{size} bytes: every share is new"
            );
            assert!(uploaded.happiness >= grid.spec().happy);
        }
        assert!(
            uploaded.cap == tahoe_put(grid, &data),
            "{size} bytes: the direct upload's cap differs from tahoe put's"
        );
        assert_verified_and_readable(grid, &uploaded.cap, &data);
        // Again: the servers hold every share, nothing is sent, the cap is the same.
        let again = uploader.upload_file(&path).await.unwrap();
        assert!(again.cap == uploaded.cap);
        if size > 55 {
            assert_eq!((again.shares_written, again.bytes_sent), (0, 0));
            assert_eq!(again.shares_existing, total);
        }
    }
}

#[tokio::test]
async fn direct_uploads_equal_tahoe_put_on_one_of_one() {
    let grid = shared_grid();
    let sizes = [56, 1000, MIB - 1, MIB, MIB + 1, 3 * MIB + 5];
    upload_and_compare(grid, &uploader(grid, 1), &sizes).await;
}

#[tokio::test]
async fn direct_uploads_on_three_of_five_and_a_server_down() {
    let grid = Grid::start(GridSpec {
        storage_nodes: 5,
        needed: 3,
        happy: 4,
        total: 5,
    });
    let sizes = [56, 4000, MIB + 1, 2 * MIB + 7];
    upload_and_compare(&grid, &uploader(&grid, 4), &sizes).await;
    each_write_is_paced_with_its_server_and_exact_bytes(&grid).await;
    a_stopped_upload_leaves_its_shares_for_the_next_to_finish(&grid).await;

    // One server down: the four others take the five shares (happiness 4)...
    grid.stop_node(3);
    let data = fresh_bytes(77, 300_000);
    let uploaded = uploader(&grid, 4).upload_bytes(&data).await.unwrap();
    assert_eq!(uploaded.shares_written, 5);
    assert_eq!(uploaded.happiness, 4);
    assert!(uploaded.cap == tahoe_put(&grid, &data));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("got.bin");
    let got = grid.tahoe([
        OsStr::new("get"),
        OsStr::new(&uploaded.cap),
        out.as_os_str(),
    ]);
    assert!(got.status.success() && std::fs::read(&out).unwrap() == data);

    // ... but asking for all five servers fails clearly, and nothing is left allocated.
    let data = fresh_bytes(78, 300_000);
    let err = uploader(&grid, 5).upload_bytes(&data).await.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, UploadError::NotEnoughServers { .. }),
        "{message}"
    );
    assert!(
        message.contains("not enough storage servers")
            && message.contains("at least 5")
            && message.contains("unreachable"),
        "{message}"
    );
    assert!(!message.contains("URI:"), "{message}");
    for i in [0, 1, 2, 4] {
        let incoming = grid.shares_dir(i).join("incoming");
        let partial = files_below(&incoming);
        assert!(
            partial.is_empty(),
            "node {i} keeps partial shares: {partial:?}"
        );
    }
}

/// An upload interrupted after part of a share (as a `kill -9` leaves it: allocated with the
/// derived upload secret, some bytes written, nothing aborted) is continued by the next upload
/// of the same file at once: only the missing bytes are sent. A share someone else is still
/// uploading is not touched: on a one-server grid that is a clear "not enough servers".
#[tokio::test]
async fn an_interrupted_upload_is_continued_not_restarted() {
    let grid = shared_grid();
    let servers = load_servers(grid.node_dir()).unwrap();
    let server = &servers[0];
    let client = StorageClient::new(&server.nurls[0], "test", Timeouts::default()).unwrap();
    let lease = ClientLeaseSecrets::from_node_dir(grid.node_dir()).unwrap();
    let params = EncodingParams {
        needed: 1,
        total: 1,
        max_segment_size: DEFAULT_MAX_SEGMENT_SIZE,
    };
    let secret_bytes = {
        let text = std::fs::read_to_string(grid.node_dir().join("private/convergence")).unwrap();
        base32::decode(text.trim()).unwrap()
    };
    let uploader = uploader(grid, 1);
    let share_of = |data: &[u8]| {
        let (file, shares) = encode_bytes(data, &secret_bytes, &params).unwrap();
        (
            StorageIndex(file.cap.storage_index()),
            shares.into_iter().next().unwrap(),
        )
    };

    // The first run got the header, block 0 and half of block 1 of four to the server.
    let data = fresh_bytes(90, 3 * MIB + 5);
    let (si, share) = share_of(&data);
    let secrets = lease.for_share(&si, &server.lease_seed);
    let secret = upload_secret_for(&secrets);
    let shares: BTreeSet<u16> = [0].into();
    let allocation = client
        .allocate_immutable(&si, &secret, &secrets, &shares, share.len() as u64)
        .await
        .unwrap();
    assert_eq!(allocation.allocated, shares);
    let header = 0x24;
    let written = header + MIB + MIB / 2;
    let progress = client
        .write_immutable(
            &si,
            0,
            &secret,
            0,
            Bytes::copy_from_slice(&share[..written]),
        )
        .await
        .unwrap();
    assert!(!progress.finished);

    let uploaded = uploader.upload_bytes(&data).await.unwrap();
    assert_eq!(uploaded.shares_written, 1);
    // Block 0 is not sent again; block 1 (half there) and the rest are, after the header
    // rewrite that claims the share.
    assert_eq!(
        uploaded.bytes_sent,
        (header + share.len() - header - MIB) as u64
    );
    assert!(uploaded.cap == tahoe_put(grid, &data));
    assert_verified_and_readable(grid, &uploaded.cap, &data);

    // Someone else's unfinished upload of a share: not ours to continue.
    let data = fresh_bytes(91, 200_000);
    let (si, share) = share_of(&data);
    let secrets = lease.for_share(&si, &server.lease_seed);
    let theirs = UploadSecret::random();
    client
        .allocate_immutable(&si, &theirs, &secrets, &shares, share.len() as u64)
        .await
        .unwrap();
    client
        .write_immutable(&si, 0, &theirs, 0, Bytes::copy_from_slice(&share[..1000]))
        .await
        .unwrap();
    let err = uploader.upload_bytes(&data).await.unwrap_err();
    assert!(matches!(err, UploadError::NotEnoughServers { .. }), "{err}");
    client.abort_immutable(&si, 0, &theirs).await.unwrap();
    // Once it is gone, the file uploads.
    let uploaded = uploader.upload_bytes(&data).await.unwrap();
    assert!(uploaded.cap == tahoe_put(grid, &data));
}

/// What a pacer was asked, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Asked {
    Segment(u64),
    Write {
        server: String,
        shnum: u16,
        offset: u64,
        bytes: u64,
    },
}

/// A pacer that records every question, and says stop from the `stop_at`-th write on.
#[derive(Default)]
struct Recorder {
    asked: Mutex<Vec<Asked>>,
    writes_let_through: Mutex<usize>,
    stop_at: Option<usize>,
    plaintext_sent: Mutex<u64>,
}

impl Recorder {
    fn stopping_at(write: usize) -> Recorder {
        Recorder {
            stop_at: Some(write),
            ..Recorder::default()
        }
    }

    fn asked(&self) -> Vec<Asked> {
        self.asked.lock().unwrap().clone()
    }

    /// Bytes of the writes let through, by server id.
    fn bytes_by_server(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        let mut let_through = *self.writes_let_through.lock().unwrap();
        for asked in self.asked() {
            if let Asked::Write { server, bytes, .. } = asked {
                if let_through == 0 {
                    break;
                }
                let_through -= 1;
                *out.entry(server).or_default() += bytes;
            }
        }
        out
    }

    fn bytes_let_through(&self) -> u64 {
        self.bytes_by_server().values().sum()
    }
}

impl Pacer for Recorder {
    fn before_write<'a>(&'a self, write: ShareWrite<'a>) -> Pace<'a> {
        self.asked.lock().unwrap().push(Asked::Write {
            server: write.server_id.to_string(),
            shnum: write.shnum,
            offset: write.offset,
            bytes: write.bytes,
        });
        let mut n = self.writes_let_through.lock().unwrap();
        let go = self.stop_at.is_none_or(|at| *n < at);
        if go {
            *n += 1;
        }
        Box::pin(async move {
            if go {
                Ok(())
            } else {
                Err(StopUpload)
            }
        })
    }

    fn before_segment(&self, segnum: u64, _segments: u64) -> Pace<'_> {
        self.asked.lock().unwrap().push(Asked::Segment(segnum));
        Box::pin(async { Ok(()) })
    }

    fn segment_sent(&self, plaintext: u64) {
        *self.plaintext_sent.lock().unwrap() += plaintext;
    }
}

/// A paced upload asks the pacer before each segment and before each of its share writes,
/// naming the server and the exact bytes: what each server was said to receive is what it
/// stored, and the sum is the upload's `bytes_sent`.
async fn each_write_is_paced_with_its_server_and_exact_bytes(grid: &Grid) {
    let total = grid.spec().total;
    let uploader = uploader(grid, grid.spec().happy);
    let data = fresh_bytes(80, 2 * MIB + 300_001);
    let pacer = Recorder::default();
    let uploaded = uploader.upload_bytes_paced(&data, &pacer).await.unwrap();
    assert_eq!(uploaded.shares_written, total);
    assert_eq!(pacer.bytes_let_through(), uploaded.bytes_sent);
    assert_eq!(
        pacer.bytes_by_server(),
        stored_share_bytes(grid, &uploaded.cap),
        "what the pacer was told each server receives is what each server stored"
    );
    assert_eq!(*pacer.plaintext_sent.lock().unwrap(), data.len() as u64);
    // Segment by segment: each segment asked once, in order, before its writes (the writes of
    // up to SEGMENTS_IN_FLIGHT segments may be under way at once, the last segment's only
    // after all others); one write per share and segment; each share written from 0 onwards
    // without gaps or overlaps.
    let asked = pacer.asked();
    let segments = 3;
    assert_eq!(asked.len(), segments * (1 + total));
    let segment_at: Vec<usize> = (0..segments)
        .map(|segnum| {
            asked
                .iter()
                .position(|a| *a == Asked::Segment(segnum as u64))
                .unwrap_or_else(|| panic!("segment {segnum} never asked: {asked:?}"))
        })
        .collect();
    assert!(
        segment_at.windows(2).all(|w| w[0] < w[1]),
        "segments asked out of order: {asked:?}"
    );
    // (position asked, offset, bytes) of each write, by (server, share).
    type Writes = Vec<(usize, u64, u64)>;
    let mut by_share: BTreeMap<(String, u16), Writes> = BTreeMap::new();
    for (at, write) in asked.iter().enumerate() {
        if let Asked::Write {
            server,
            shnum,
            offset,
            bytes,
        } = write
        {
            by_share
                .entry((server.clone(), *shnum))
                .or_default()
                .push((at, *offset, *bytes));
        }
    }
    assert_eq!(by_share.len(), total, "{asked:?}");
    for ((server, shnum), mut writes) in by_share {
        writes.sort_by_key(|&(_, offset, _)| offset);
        assert_eq!(
            writes.len(),
            segments,
            "share {shnum} on {server}: {writes:?}"
        );
        let mut next_offset = 0;
        for (segnum, &(at, offset, bytes)) in writes.iter().enumerate() {
            assert_eq!(offset, next_offset, "share {shnum}: a gap or an overlap");
            next_offset += bytes;
            assert!(
                at > segment_at[segnum],
                "share {shnum}'s write of segment {segnum} asked before the segment"
            );
        }
        // The last write (with the trailer) goes once every earlier one was asked.
        let (last_at, _, _) = writes[segments - 1];
        assert!(
            last_at > segment_at[segments - 1],
            "share {shnum}: the last write before the last segment"
        );
    }
    assert!(uploaded.cap == tahoe_put(grid, &data));
}

/// A pacer's stop in the middle of a segment's writes ends the upload with `Stopped`, aborting
/// nothing: the partial shares stay on the servers, and the next upload of the file claims
/// them and sends exactly what is missing (plus one header rewrite per share to claim it).
async fn a_stopped_upload_leaves_its_shares_for_the_next_to_finish(grid: &Grid) {
    let total = grid.spec().total;
    let uploader = uploader(grid, grid.spec().happy);
    // Four segments (of 1 MiB rounded up to a multiple of k): 0 and 1 go to every share, 2 to
    // two of them only, the last (with the trailers that finish the shares) to none.
    let data = fresh_bytes(81, 4 * MIB + 5);
    let first = Recorder::stopping_at(2 * total + 2);
    let err = uploader
        .upload_bytes_paced(&data, &first)
        .await
        .unwrap_err();
    assert!(matches!(err, UploadError::Stopped), "{err}");
    let sent_first = first.bytes_let_through();
    let (file, _) = encode_bytes(
        &data,
        &{
            let text =
                std::fs::read_to_string(grid.node_dir().join("private/convergence")).unwrap();
            base32::decode(text.trim()).unwrap()
        },
        &EncodingParams {
            needed: grid.spec().needed as u16,
            total: total as u16,
            max_segment_size: DEFAULT_MAX_SEGMENT_SIZE,
        },
    )
    .unwrap();
    let si = StorageIndex(file.cap.storage_index());
    assert_eq!(
        incoming_shares(grid, &si),
        total,
        "the stopped upload's shares were aborted"
    );

    let second = Recorder::default();
    let uploaded = uploader.upload_bytes_paced(&data, &second).await.unwrap();
    assert_eq!(uploaded.shares_written, total);
    assert_eq!(second.bytes_let_through(), uploaded.bytes_sent);
    // The claims: one header rewrite at offset 0 per share, all the same size.
    let claims: Vec<u64> = second
        .asked()
        .iter()
        .filter_map(|a| match a {
            Asked::Write {
                offset: 0, bytes, ..
            } => Some(*bytes),
            _ => None,
        })
        .collect();
    assert_eq!(claims.len(), total, "{:?}", second.asked());
    let header = claims[0];
    assert!(
        claims.iter().all(|&c| c == header) && header < 100,
        "{claims:?}"
    );
    let stored: u64 = stored_share_bytes(grid, &uploaded.cap).values().sum();
    assert_eq!(
        uploaded.bytes_sent,
        stored - sent_first + total as u64 * header,
        "the second upload sent more than what the first left missing"
    );
    assert_eq!(incoming_shares(grid, &si), 0);
    assert_verified_and_readable(grid, &uploaded.cap, &data);
}
