//! Hostile and odd input for the backup task, on a real grid: each case has the behaviour that
//! `docs/guarantees.md` defines for it, and each test here checks that behaviour (restoring
//! with stock `tahoe cp -r` where a restore is possible).
//!
//! The helpers at the top are shared with `reliability.rs`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tahoe_jobs_config::{BackupParams, Target};
use tahoe_jobs_engine::{
    BudgetGate, BudgetHandle, ByteRequest, ProgressSink, StopSignal, SystemClock, TaskContext,
};
use tahoe_jobs_tasks::backup::{
    open_backupdb, run_backup, BackupError, BackupObserver, BackupOptions, BackupSummary, RunEnd,
};
use tahoe_jobs_tasks::tahoe::Cap;

use crate::support::{http_client, shared_grid, Grid};

// ---- helpers (also used by reliability.rs) -------------------------------------------------

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub(crate) fn write(path: &Path, data: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, data).unwrap();
}

/// Deterministic pseudo-random bytes (xorshift).
pub(crate) fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every regular file below `root` by relative path with its bytes; directories as `None`.
pub(crate) fn tree_of(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let ft = entry.file_type().unwrap();
            if ft.is_dir() {
                out.insert(rel, None);
                walk(root, &path, out);
            } else if ft.is_file() {
                out.insert(rel, Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn unique() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Restores `target/Latest` with stock `tahoe cp -r` into a fresh directory below `into`;
/// returns the restored tree's root.
pub(crate) fn restore(grid: &Grid, target: &str, into: &Path) -> PathBuf {
    let out_dir = into.join(format!("restored-{}", unique()));
    let latest = if target.ends_with(':') {
        format!("{target}Latest")
    } else {
        format!("{target}/Latest")
    };
    let out = grid.tahoe([
        OsStr::new("cp"),
        OsStr::new("-r"),
        OsStr::new(&latest),
        out_dir.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "tahoe cp -r failed: {}",
        text(&out.stderr)
    );
    out_dir.join("Latest")
}

pub(crate) fn assert_same_tree(restored: &Path, expected: &BTreeMap<PathBuf, Option<Vec<u8>>>) {
    let got = tree_of(restored);
    let names = |t: &BTreeMap<PathBuf, Option<Vec<u8>>>| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&got), names(expected), "restored paths differ");
    for (path, content) in expected {
        assert!(
            got[path] == *content,
            "{} differs after restore",
            path.display()
        );
    }
}

/// `tahoe ls --json TARGET`: the node's JSON for a directory. Holds caps: never print it.
pub(crate) fn ls_json(grid: &Grid, target: &str) -> serde_json::Value {
    let out = grid.tahoe(["ls", "--json", target]);
    assert!(out.status.success(), "tahoe ls: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("tahoe ls --json")
}

/// The capability `target/Latest` links to, if any (a secret: compare it, never print it).
pub(crate) fn latest_cap(grid: &Grid, target: &str) -> Option<String> {
    let out = grid.tahoe(["ls", "--json", target]);
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v[1]["children"]["Latest"][1]["ro_uri"]
        .as_str()
        .map(str::to_owned)
}

pub(crate) fn params(source: &Path, alias: &str, path: &str, concurrency: usize) -> BackupParams {
    BackupParams {
        source: source.to_path_buf(),
        target: Target::Alias {
            alias: alias.into(),
            path: path.into(),
        },
        exclude: Vec::new(),
        exclude_from: None,
        exclude_vcs: false,
        concurrency,
        recheck_after: tahoe_jobs_config::DEFAULT_RECHECK_AFTER,
        recheck_all_after: tahoe_jobs_config::DEFAULT_RECHECK_ALL_AFTER,
    }
}

/// A budget gate that calls `hook` on every chunk an upload asks to send.
pub(crate) struct Hook<F: Fn(&ByteRequest) + Send + Sync + 'static>(pub F);

type GateFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

// Written out as `#[async_trait]` expands it (this crate does not depend on async-trait).
impl<F: Fn(&ByteRequest) + Send + Sync + 'static> BudgetGate for Hook<F> {
    fn acquire<'a, 'b, 'c>(&'a self, _job: &'b str, request: ByteRequest) -> GateFuture<'c>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        (self.0)(&request);
        Box::pin(async {})
    }

    fn cpu_checkpoint<'a, 'b, 'c>(&'a self, _job: &'b str) -> GateFuture<'c>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(async {})
    }
}

/// Hears every warning of a run (the progress sink keeps only the last 100).
#[derive(Default)]
pub(crate) struct Warnings(Mutex<Vec<String>>);

impl Warnings {
    pub(crate) fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Panics unless exactly one warning contains every one of `parts`.
    pub(crate) fn assert_one(&self, parts: &[&str]) {
        let all = self.all();
        let found = all
            .iter()
            .filter(|w| parts.iter().all(|p| w.contains(p)))
            .count();
        assert_eq!(found, 1, "one warning with {parts:?} expected in {all:#?}");
    }
}

impl BackupObserver for Warnings {
    fn warning(&self, message: &str) {
        self.0.lock().unwrap().push(message.to_string());
    }
}

/// One backup run with its own backupdb in `db_dir`, the given budget, and every warning heard.
pub(crate) struct Run {
    pub end: Result<RunEnd, BackupError>,
    pub warnings: Arc<Warnings>,
}

impl Run {
    pub(crate) fn completed(&self) -> &BackupSummary {
        match &self.end {
            Ok(RunEnd::Completed(s)) => s,
            other => panic!("the backup did not complete: {other:?}"),
        }
    }
}

pub(crate) fn run_with(
    grid: &Grid,
    p: &BackupParams,
    db_dir: &Path,
    budget: BudgetHandle,
    client: tahoe_jobs_tasks::tahoe::ClientOptions,
) -> Run {
    let store = open_backupdb(db_dir, &p.target).unwrap();
    let warnings = Arc::new(Warnings::default());
    let options = BackupOptions {
        observer: warnings.clone(),
        client,
    };
    let ctx = TaskContext::new(
        "backup.hostile",
        StopSignal::new(),
        budget,
        ProgressSink::new(),
        store,
        Arc::new(SystemClock),
    );
    let end = runtime().block_on(async {
        tokio::time::timeout(
            Duration::from_secs(600),
            run_backup(grid.node_dir(), p, &options, &ctx),
        )
        .await
        .expect("the backup did not end within 10 minutes (did it open a FIFO?)")
    });
    for w in warnings.all() {
        assert!(!w.contains("URI:"), "a warning shows a capability: {w}");
    }
    if let Err(e) = &end {
        assert!(
            !e.to_string().contains("URI:"),
            "an error shows a capability"
        );
        assert!(
            !format!("{e:?}").contains("URI:"),
            "an error shows a capability"
        );
    }
    Run { end, warnings }
}

pub(crate) fn run(grid: &Grid, p: &BackupParams, db_dir: &Path) -> Run {
    run_with(
        grid,
        p,
        db_dir,
        BudgetHandle::unlimited("hostile"),
        Default::default(),
    )
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// A GET of the client's web API below `/uri/<cap>/<path>`; the body, or the status as error.
fn get_below(grid: &Grid, cap: &str, path: &str) -> Result<Vec<u8>, u16> {
    let escaped: String = cap
        .bytes()
        .map(|b| match b {
            b':' => "%3A".to_string(),
            b => (b as char).to_string(),
        })
        .collect();
    let url = format!("{}/uri/{escaped}/{path}", grid.web_url());
    runtime().block_on(async {
        let resp = http_client().get(url).send().await.expect("GET");
        let status = resp.status();
        if !status.is_success() {
            return Err(status.as_u16());
        }
        Ok(resp.bytes().await.expect("body").to_vec())
    })
}

// ---- names ---------------------------------------------------------------------------------

/// Names with newlines, tabs, escape sequences and other control characters, glob and quote
/// characters, leading dashes and spaces, emoji, and names of exactly 255 bytes (the Linux
/// limit) in ASCII and in 3-byte characters are backed up under their exact names and restore
/// byte-identically. Warnings show control characters escaped, so a name cannot forge a log
/// line or send a terminal escape.
#[test]
fn names_with_control_characters_and_255_bytes_round_trip() {
    let grid = shared_grid();
    grid.create_alias("hz_names");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let long_ascii = format!("{}.txt", "n".repeat(251));
    let long_euro = "€".repeat(85);
    assert_eq!((long_ascii.len(), long_euro.len()), (255, 255));
    let names = [
        "line\nbreak.txt",
        "tab\there",
        "bell\u{7}",
        "esc\u{1b}[31mred",
        "del\u{7f}",
        "cr\rreturn",
        " leading space",
        "trailing space ",
        "-starts-with-dash",
        "back\\slash",
        "*?[glob]{x}.txt",
        "quote'\"",
        "emoji 😀",
        long_ascii.as_str(),
        long_euro.as_str(),
    ];
    for (i, name) in names.iter().enumerate() {
        write(&src.join(name), &bytes(i as u64, 100 + i * 37));
    }
    let long_dir = format!("{}x", "\u{c4}".repeat(127));
    assert_eq!(long_dir.len(), 255);
    write(
        &src.join(&long_dir).join(&long_ascii),
        b"in a 255-byte directory",
    );
    // A FIFO with a newline in its name is skipped; its warning must stay on one line.
    let fifo = src.join("evil\nWARNING: forged");
    mkfifo(&fifo);

    let p = params(&src, "hz_names", "", 2);
    let r = run(grid, &p, &tmp.path().join("db"));
    let s = r.completed();
    assert_eq!(s.files_uploaded, names.len() as u64 + 1);
    assert_eq!(s.files_skipped, 1);
    r.warnings
        .assert_one(&["cannot backup special", "evil\\x0aWARNING: forged"]);
    assert!(r.warnings.all().iter().all(|w| !w.contains('\n')));
    assert_same_tree(&restore(grid, "hz_names:", tmp.path()), &tree_of(&src));
}

/// Tahoe stores names NFC-normalised. A name in NFD is stored (and restored) in NFC with its
/// content intact. Two names in one directory that are equal after NFC cannot both be stored:
/// the grid keeps one (the last in byte order) and the other is skipped with a warning naming
/// it, counted as skipped, on every run; nothing is overwritten silently.
#[test]
fn names_equal_after_nfc_are_never_silently_overwritten() {
    let grid = shared_grid();
    grid.create_alias("hz_nfc");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let nfc = "caf\u{e9}.txt";
    let nfd = "cafe\u{301}.txt";
    write(&src.join("pair").join(nfc), b"precomposed");
    write(&src.join("pair").join(nfd), b"decomposed");
    // The Kelvin sign is K after NFC: an ASCII name can collide too.
    write(&src.join("kelvin/K"), b"letter");
    write(&src.join("kelvin/\u{212a}"), b"kelvin sign");
    write(&src.join("alone").join("re\u{301}sume\u{301}"), b"only NFD");
    write(&src.join("plain.txt"), b"plain");

    let p = params(&src, "hz_nfc", "", 2);
    let db = tmp.path().join("db");
    let r = run(grid, &p, &db);
    let s = r.completed();
    assert_eq!(s.files_skipped, 2, "{:?}", r.warnings.all());
    let lost_pair = src.join("pair").join(nfd);
    let lost_kelvin = src.join("kelvin/K");
    r.warnings.assert_one(&[
        "cannot backup file",
        &lost_pair.display().to_string(),
        "Unicode normalisation",
    ]);
    r.warnings.assert_one(&[
        "cannot backup file",
        &lost_kelvin.display().to_string(),
        "Unicode normalisation",
    ]);

    let mut expected = BTreeMap::new();
    expected.insert(PathBuf::from("pair"), None);
    expected.insert(
        PathBuf::from("pair").join(nfc),
        Some(b"precomposed".to_vec()),
    );
    expected.insert(PathBuf::from("kelvin"), None);
    expected.insert(PathBuf::from("kelvin/K"), Some(b"kelvin sign".to_vec()));
    expected.insert(PathBuf::from("alone"), None);
    expected.insert(
        PathBuf::from("alone").join("r\u{e9}sum\u{e9}"),
        Some(b"only NFD".to_vec()),
    );
    expected.insert(PathBuf::from("plain.txt"), Some(b"plain".to_vec()));
    assert_same_tree(&restore(grid, "hz_nfc:", tmp.path()), &expected);

    // An unchanged re-run reuses everything and says the same.
    let r = run(grid, &p, &db);
    let s = r.completed();
    assert_eq!((s.files_uploaded, s.dirs_created), (0, 0));
    assert_eq!(s.files_skipped, 2);
    r.warnings
        .assert_one(&[&lost_pair.display().to_string(), "Unicode normalisation"]);
}

/// Names that are not UTF-8 cannot be stored on the grid: such files and directories (with
/// everything in them) are skipped with a warning showing the bytes escaped.
#[test]
fn names_that_are_not_utf8_are_skipped_with_a_warning() {
    let grid = shared_grid();
    grid.create_alias("hz_latin1");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("ok.txt"), b"ok");
    write(
        &src.join(OsStr::from_bytes(b"caf\xe9.txt")),
        b"latin-1 file",
    );
    write(
        &src.join(OsStr::from_bytes(b"r\xe9pertoire"))
            .join("inside.txt"),
        b"in a latin-1 directory",
    );
    let r = run(grid, &p_of(&src, "hz_latin1"), &tmp.path().join("db"));
    let s = r.completed();
    assert_eq!(
        (s.files_uploaded, s.files_skipped, s.dirs_skipped),
        (1, 1, 1)
    );
    r.warnings
        .assert_one(&["cannot backup file", "caf\\xe9.txt", "not valid UTF-8"]);
    r.warnings.assert_one(&[
        "cannot backup directory",
        "r\\xe9pertoire",
        "not valid UTF-8",
    ]);
    let mut expected = BTreeMap::new();
    expected.insert(PathBuf::from("ok.txt"), Some(b"ok".to_vec()));
    assert_same_tree(&restore(grid, "hz_latin1:", tmp.path()), &expected);
}

fn p_of(src: &Path, alias: &str) -> BackupParams {
    params(src, alias, "", 2)
}

// ---- shapes --------------------------------------------------------------------------------

/// A tree 1,000 directories deep is backed up on a thread with the default 2 MiB stack (the
/// walk does not recurse on the native stack), and its deepest file reads back through the
/// whole path. (Restoring it with `tahoe cp -r` hits Python's recursion limit of 1,000: that
/// is the restore tool's limit, not the backup's.)
#[test]
fn a_tree_1000_directories_deep_does_not_overflow_the_stack() {
    let grid = shared_grid();
    grid.create_alias("hz_deep");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let mut deep = src.clone();
    let mut rel = String::new();
    for i in 0..1000 {
        deep.push("d");
        rel.push_str("d/");
        if i == 499 {
            write(&deep.join("middle.txt"), b"half way down");
        }
    }
    write(&deep.join("leaf.txt"), &bytes(7, 5000));
    let p = params(&src, "hz_deep", "deep", 8);
    let db = tmp.path().join("db");
    // Run on a thread of the default size, as a test thread or a tokio worker has.
    let outcome = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn({
            let (p, db) = (p.clone(), db.clone());
            move || {
                let r = run(shared_grid(), &p, &db);
                let s = r.completed();
                (s.files_uploaded, s.dirs_created)
            }
        })
        .unwrap()
        .join()
        .expect("the backup of a 1,000-deep tree panicked (stack overflow?)");
    assert_eq!(outcome, (2, 1001));
    let cap = grid.alias_cap("hz_deep").unwrap();
    let leaf = get_below(grid, &cap, &format!("deep/Latest/{rel}leaf.txt")).unwrap();
    assert!(leaf == bytes(7, 5000), "the deepest file differs");
    let middle = get_below(
        grid,
        &cap,
        &format!("deep/Latest/{}middle.txt", &rel[..1000]),
    );
    assert_eq!(middle.unwrap(), b"half way down");
}

/// Empty files and files of 1 to 55 bytes are literal capabilities (`URI:LIT:`), computed
/// locally exactly as the node computes them (nothing is sent); 56 bytes is the first size
/// stored on the servers. All restore byte-identically.
#[test]
fn empty_and_literal_sized_files_round_trip_with_the_nodes_own_caps() {
    let grid = shared_grid();
    grid.create_alias("hz_lit");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for size in 0..=56usize {
        write(
            &src.join(format!("s{size:02}")),
            &bytes(size as u64 + 1, size),
        );
    }
    let r = run(grid, &p_of(&src, "hz_lit"), &tmp.path().join("db"));
    assert_eq!(r.completed().files_uploaded, 57);
    assert_same_tree(&restore(grid, "hz_lit:", tmp.path()), &tree_of(&src));

    let listing = ls_json(grid, "hz_lit:Latest");
    let rt = runtime();
    for size in 0..=56usize {
        let name = format!("s{size:02}");
        let ours = listing[1]["children"][&name][1]["ro_uri"]
            .as_str()
            .unwrap()
            .to_string();
        let data = bytes(size as u64 + 1, size);
        let node = rt.block_on(async {
            let resp = http_client()
                .put(format!("{}/uri", grid.web_url()))
                .body(data.clone())
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success());
            resp.text().await.unwrap()
        });
        assert!(
            ours == node.trim(),
            "size {size}: our cap differs from the node's"
        );
        let literal = Cap::literal(&data);
        assert_eq!(
            ours.starts_with("URI:LIT:"),
            size <= 55,
            "size {size} is a literal exactly when it is at most 55 bytes"
        );
        if size <= 55 {
            assert!(literal.expose() == ours, "size {size}");
        }
    }
}

/// A sparse file is read as the zeros its holes hold and uploaded whole; it restores with the
/// same bytes (as a plain, not sparse, file). Tested with 64 MiB; the 5 GB case is measured in
/// docs/guarantees.md.
#[test]
fn a_sparse_file_is_backed_up_whole() {
    let grid = shared_grid();
    grid.create_alias("hz_sparse");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let path = src.join("sparse.img");
    let size: u64 = 64 << 20;
    {
        let mut f = std::fs::File::create(&path).unwrap();
        f.set_len(size).unwrap();
        for at in [0, size / 2 + 12_345, size - 4096] {
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(&bytes(at, 4096)).unwrap();
        }
    }
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(&path).unwrap();
    assert!(m.blocks() * 512 < size / 4, "the test file is not sparse");
    let r = run(grid, &p_of(&src, "hz_sparse"), &tmp.path().join("db"));
    assert_eq!(r.completed().bytes_uploaded, size);
    let restored = restore(grid, "hz_sparse:", tmp.path()).join("sparse.img");
    assert_eq!(std::fs::metadata(&restored).unwrap().len(), size);
    let (mut a, mut b) = (
        std::fs::File::open(&path).unwrap(),
        std::fs::File::open(&restored).unwrap(),
    );
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = a.read(&mut ba).unwrap();
        b.read_exact(&mut bb[..n]).unwrap();
        assert!(ba[..n] == bb[..n], "the restored sparse file differs");
        if n == 0 {
            break;
        }
    }
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// Symlinks are never followed (so loops cannot trap the walk), and FIFOs and sockets are
/// never opened (opening a FIFO without a writer would block forever): each is skipped with a
/// warning.
#[test]
fn symlink_loops_fifos_and_sockets_are_skipped_without_being_opened() {
    let grid = shared_grid();
    grid.create_alias("hz_special");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("real/file.txt"), b"real");
    std::os::unix::fs::symlink("self", src.join("self")).unwrap();
    std::os::unix::fs::symlink("pong", src.join("ping")).unwrap();
    std::os::unix::fs::symlink("ping", src.join("pong")).unwrap();
    std::os::unix::fs::symlink("..", src.join("real/up")).unwrap();
    std::os::unix::fs::symlink(&src, src.join("real/root")).unwrap();
    mkfifo(&src.join("fifo"));
    let _socket = std::os::unix::net::UnixListener::bind(src.join("socket")).unwrap();

    let r = run(grid, &p_of(&src, "hz_special"), &tmp.path().join("db"));
    let s = r.completed();
    assert_eq!((s.files_uploaded, s.files_skipped), (1, 7));
    for (kind, name) in [
        ("symlink", "self"),
        ("symlink", "ping"),
        ("symlink", "pong"),
        ("symlink", "real/up"),
        ("symlink", "real/root"),
        ("special", "fifo"),
        ("special", "socket"),
    ] {
        r.warnings.assert_one(&[&format!(
            "cannot backup {kind} '{}'",
            src.join(name).display()
        )]);
    }
    let mut expected = BTreeMap::new();
    expected.insert(PathBuf::from("real"), None);
    expected.insert(PathBuf::from("real/file.txt"), Some(b"real".to_vec()));
    assert_same_tree(&restore(grid, "hz_special:", tmp.path()), &expected);
}

// ---- things that change under the backup ---------------------------------------------------

/// A file deleted after its directory was listed and before it was read, and a directory
/// deleted before it was listed, are left out of that backup with a warning saying they
/// vanished; the run completes with everything else.
#[test]
fn files_and_directories_deleted_after_listing_are_left_out() {
    let grid = shared_grid();
    grid.create_alias("hz_vanish");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("a-big.bin"), &bytes(1, 300_000));
    write(&src.join("b-doomed.txt"), &bytes(2, 5000));
    write(&src.join("c-doomed-dir/inside.txt"), b"inside");
    write(&src.join("d-kept.txt"), b"kept");
    // Concurrency 1: the walk has listed the root and waits for a-big.bin's upload to end
    // before it reads b-doomed.txt or lists c-doomed-dir; both go during that upload.
    let fired = AtomicUsize::new(0);
    let hook = {
        let src = src.clone();
        Hook(move |_: &ByteRequest| {
            if fired.fetch_add(1, Ordering::SeqCst) == 0 {
                std::fs::remove_file(src.join("b-doomed.txt")).unwrap();
                std::fs::remove_dir_all(src.join("c-doomed-dir")).unwrap();
            }
        })
    };
    let r = run_with(
        grid,
        &params(&src, "hz_vanish", "", 1),
        &tmp.path().join("db"),
        BudgetHandle::new("hostile", Arc::new(hook)),
        Default::default(),
    );
    let s = r.completed();
    assert_eq!(
        (s.files_uploaded, s.files_skipped, s.dirs_skipped),
        (2, 1, 1)
    );
    r.warnings.assert_one(&[
        "file vanished before it was read",
        &src.join("b-doomed.txt").display().to_string(),
    ]);
    r.warnings.assert_one(&[
        "directory vanished before it was read",
        &src.join("c-doomed-dir").display().to_string(),
    ]);
    assert_same_tree(&restore(grid, "hz_vanish:", tmp.path()), &tree_of(&src));
}

/// A source that is a file, not a directory, is refused at once with a clear error; nothing is
/// created on the grid.
#[test]
fn a_source_that_is_a_file_is_refused() {
    let grid = shared_grid();
    grid.create_alias("hz_file_src");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir.txt");
    write(&file, b"I am a file");
    let r = run(grid, &p_of(&file, "hz_file_src"), &tmp.path().join("db"));
    match &r.end {
        Err(e @ BackupError::SourceNotDirectory { .. }) => {
            assert!(e.to_string().contains("is not a directory"), "{e}")
        }
        other => panic!("expected SourceNotDirectory, got {other:?}"),
    }
    let listing = ls_json(grid, "hz_file_src:");
    assert_eq!(listing[1]["children"], serde_json::json!({}));
}

/// A source directory that goes away during the run (moved, or its drive unplugged and an
/// empty mount point left in its place) fails the run with a clear error: what vanished is not
/// linked as `Latest`, and files finished before stay in the backupdb for the next run.
#[test]
fn a_source_that_vanishes_mid_run_links_nothing() {
    let grid = shared_grid();
    grid.create_alias("hz_unplug");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("drive");
    write(&src.join("a.bin"), &bytes(1, 200_000));
    for i in 0..5 {
        write(&src.join(format!("b{i}.txt")), &bytes(10 + i, 3000));
    }
    let fired = AtomicUsize::new(0);
    let hook = {
        let (src, away) = (src.clone(), tmp.path().join("away"));
        Hook(move |_: &ByteRequest| {
            if fired.fetch_add(1, Ordering::SeqCst) == 0 {
                std::fs::rename(&src, &away).unwrap();
                std::fs::create_dir(&src).unwrap();
            }
        })
    };
    let r = run_with(
        grid,
        &params(&src, "hz_unplug", "", 1),
        &tmp.path().join("db"),
        BudgetHandle::new("hostile", Arc::new(hook)),
        Default::default(),
    );
    match &r.end {
        Err(e @ BackupError::SourceVanished { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("disappeared or was replaced") && m.contains("Latest is unchanged"),
                "{m}"
            );
        }
        other => panic!("expected SourceVanished, got {other:?}"),
    }
    assert!(
        latest_cap(grid, "hz_unplug:").is_none(),
        "nothing may be linked"
    );
}

// ---- a very wide directory -----------------------------------------------------------------

/// Peak resident memory (KiB) and the output of a `tahoe-jobs` command run to its end.
fn run_measured(mut cmd: Command) -> (u64, Output) {
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; `usage` is a valid rusage to fill.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4");
    // Already reaped by wait4; this only tells std (and clippy) that it was waited for.
    let _ = child.wait();
    let output = Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(status),
        stdout: std::fs::read(out_path).unwrap(),
        stderr: std::fs::read(err_path).unwrap(),
    };
    (usage.ru_maxrss as u64, output)
}

/// A node directory of our own for the shared grid's client (its `node.url` and aliases), so
/// that the one-shot command's backupdb does not contend with other tests' runs.
pub(crate) fn own_node_dir(grid: &Grid, dir: &Path) -> PathBuf {
    let node = dir.join("node");
    std::fs::create_dir_all(node.join("private")).unwrap();
    std::fs::write(node.join("node.url"), format!("{}/\n", grid.web_url())).unwrap();
    std::fs::copy(
        grid.node_dir().join("private/aliases"),
        node.join("private/aliases"),
    )
    .unwrap();
    node
}

/// 100,000 files in one directory: the directory of 100,000 children is accepted by the node
/// (one `mkdir-immutable` of about 20 MB of JSON), every file is in the listing, and the
/// memory the backup needs follows the width of that directory (measured: 254 MiB peak for
/// the first run, 185 MiB for an unchanged re-run; asserted under 400 MiB).
#[test]
fn a_directory_of_100000_files_is_backed_up_in_bounded_memory() {
    const FILES: usize = 100_000;
    let grid = shared_grid();
    grid.create_alias("hz_wide");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..FILES {
        // Small files: literal caps, so the test measures the walk and the directory, not
        // 100,000 round trips.
        std::fs::write(src.join(format!("f{i:06}")), format!("{i}")).unwrap();
    }
    let node = own_node_dir(grid, tmp.path());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tahoe-jobs"));
    cmd.arg("-d")
        .arg(&node)
        .args([os("backup"), src.as_os_str(), os("hz_wide:")]);
    let (max_rss_kib, out) = run_measured(cmd);
    assert!(
        out.status.success(),
        "tahoe-jobs backup failed: {}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains(&format!(" {FILES} files uploaded (0 reused)")),
        "{}",
        text(&out.stdout)
    );
    eprintln!(
        "100,000-file directory: peak RSS {} MiB",
        max_rss_kib / 1024
    );
    assert!(
        max_rss_kib < 400 * 1024,
        "peak RSS {} MiB for a 100,000-entry directory",
        max_rss_kib / 1024
    );
    // An unchanged re-run reuses the directory and every file.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tahoe-jobs"));
    cmd.arg("-d")
        .arg(&node)
        .args([os("backup"), src.as_os_str(), os("hz_wide:")]);
    let (rerun_rss_kib, out) = run_measured(cmd);
    assert!(out.status.success(), "re-run: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!(
            " 0 files uploaded ({FILES} reused), 0 files skipped, 0 directories created (1 reused)"
        )),
        "{}",
        text(&out.stdout)
    );
    assert!(
        rerun_rss_kib < 400 * 1024,
        "re-run peak RSS {} MiB",
        rerun_rss_kib / 1024
    );
    let listing = ls_json(grid, "hz_wide:Latest");
    let children = listing[1]["children"].as_object().unwrap();
    assert_eq!(children.len(), FILES);
    for i in [0, 1, 4242, 99_999] {
        let cap = children[&format!("f{i:06}")][1]["ro_uri"].as_str().unwrap();
        assert!(
            Cap::literal(format!("{i}").as_bytes()).expose() == cap,
            "f{i:06} has the wrong content"
        );
    }
}
