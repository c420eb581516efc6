//! `tahoe-jobs doctor` against a real grid: a sound set-up passes (exit 0), and each fault a
//! new user makes, planted on purpose, is found with its fix (exit 1): a missing node
//! directory, a node never started, a node that is down, too few storage servers, an invalid
//! configuration, a missing source, a missing or read-only alias, a state directory that is a
//! file or readable by others, shaping configured but not set up in tahoe.cfg, a server limit
//! naming no server, and the daemon's port taken by another program.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use crate::support::daemon::free_port;
use crate::support::files::write_file;
use crate::support::node::ls_json;
use crate::support::process::{describe_output, tahoe_jobs_command};
use crate::support::{shared_grid, Grid, GridSpec};

/// A set-up for doctor: a node directory, a state directory, a web port, and a TOML file.
struct Setup {
    node_dir: PathBuf,
    state_dir: PathBuf,
    web_port: u16,
    toml: PathBuf,
}

impl Setup {
    fn new(node_dir: &Path, tmp: &Path, toml: &str) -> Setup {
        let path = tmp.join(format!(
            "jobs-{}.toml",
            crate::support::process::unique_name()
        ));
        std::fs::write(&path, toml).unwrap();
        Setup {
            node_dir: node_dir.to_path_buf(),
            state_dir: tmp.join("state"),
            web_port: free_port(),
            toml: path,
        }
    }

    /// Runs doctor; answers the exit code and stdout.
    fn doctor(&self) -> (i32, String) {
        let out = tahoe_jobs_command()
            .arg("-d")
            .arg(&self.node_dir)
            .arg("--config")
            .arg(&self.toml)
            .arg("--set")
            .arg(format!("jobs.state_dir={}", self.state_dir.display()))
            .arg("--set")
            .arg(format!("jobs.web.port=127.0.0.1:{}", self.web_port))
            .arg("doctor")
            .output()
            .expect("cannot run tahoe-jobs doctor");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("URI:")
                && !String::from_utf8_lossy(&out.stderr).contains("URI:"),
            "doctor printed a capability"
        );
        (out.status.code().unwrap_or(-1), describe_output(&out))
    }
}

/// Asserts doctor failed with a FAIL line of `check` containing `words`, and `fix` below.
fn fails(setup: &Setup, check: &str, words: &str, fix: &str) {
    let (code, out) = setup.doctor();
    assert_eq!(code, 1, "{out}");
    let line = out
        .lines()
        .position(|l| l.contains(&format!("FAIL  {check}")) && l.contains(words))
        .unwrap_or_else(|| panic!("no FAIL {check} saying {words:?}:\n{out}"));
    let rest: String = out
        .lines()
        .skip(line + 1)
        .take(4)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        rest.contains("fix:") && rest.contains(fix),
        "no fix {fix:?} for {check}:\n{out}"
    );
}

fn backup_toml(source: &Path, target: &str) -> String {
    format!(
        "[backup.b1]\nsource = \"{}\"\ntarget = \"{target}\"\nfrequency = \"1day\"\n",
        source.display()
    )
}

#[test]
fn doctor_passes_a_sound_set_up_and_finds_each_planted_fault() {
    let grid = shared_grid();
    grid.create_alias("dr_ok");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_file(&src.join("a.txt"), b"hello");
    let sound = backup_toml(&src, "dr_ok:pictures");

    // Sound: every check passes.
    let setup = Setup::new(grid.node_dir(), tmp.path(), &sound);
    let (code, out) = setup.doctor();
    assert_eq!(code, 0, "{out}");
    for line in [
        "ok    node directory",
        "ok    node.url",
        "ok    node running",
        "ok    node reachable",
        "ok    storage servers: all 1 connected",
        "ok    configuration: valid; 1 job(s): backup.b1",
        "ok    backup.b1 source",
        "ok    backup.b1 target: dr_ok:pictures: the directory is on the grid and writable",
        "ok    state directory",
        "ok    shaping",
        "ok    daemon",
        "All is well.",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }
    assert!(!out.contains("FAIL"), "{out}");
    // The job uses the direct path (the default): the server answers the storage protocol.
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("ok    direct storage: ")
                && l.contains("answers the storage protocol")),
        "{out}"
    );

    // A missing alias, and a read-only one.
    fails(
        &Setup::new(
            grid.node_dir(),
            tmp.path(),
            &backup_toml(&src, "dr_nosuch:x"),
        ),
        "backup.b1 target",
        "no alias \"dr_nosuch\"",
        "create-alias dr_nosuch",
    );
    let listing = ls_json(grid, "dr_ok:");
    let ro = listing[1]["ro_uri"]
        .as_str()
        .expect("a read-only cap")
        .to_string();
    fails(
        &Setup::new(grid.node_dir(), tmp.path(), &backup_toml(&src, &ro)),
        "backup.b1 target",
        "read-only",
        "write capability",
    );

    // An invalid configuration; a source that is not there.
    fails(
        &Setup::new(
            grid.node_dir(),
            tmp.path(),
            &sound.replace("\"1day\"", "\"sometimes\""),
        ),
        "configuration",
        "not valid",
        "correct each value",
    );
    fails(
        &Setup::new(
            grid.node_dir(),
            tmp.path(),
            &backup_toml(&tmp.path().join("gone"), "dr_ok:"),
        ),
        "backup.b1 source",
        "does not exist",
        "mount the drive",
    );

    // The state directory: a file; then a directory others can read (a warning only).
    let mut setup = Setup::new(grid.node_dir(), tmp.path(), &sound);
    setup.state_dir = tmp.path().join("state-file");
    std::fs::write(&setup.state_dir, b"not a directory").unwrap();
    fails(
        &setup,
        "state directory",
        "not a directory",
        "[jobs] state_dir",
    );
    setup.state_dir = tmp.path().join("state-open");
    std::fs::create_dir(&setup.state_dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&setup.state_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, out) = setup.doctor();
    assert_eq!(code, 0, "a warning alone does not fail: {out}");
    assert!(
        out.contains("WARN  state directory: its permissions are 755"),
        "{out}"
    );
    assert!(out.contains("chmod 700"), "{out}");

    // Shaping configured but the node's tahoe.cfg does not route through it.
    let shaping = format!(
        "[jobs]\nshaping.port = \"127.0.0.1:{}\"\n\n{sound}",
        free_port()
    );
    fails(
        &Setup::new(grid.node_dir(), tmp.path(), &shaping),
        "shaping",
        "force_foolscap",
        "tahoe-jobs shaping --print",
    );
    // A server limit that names no server.
    fails(
        &Setup::new(
            grid.node_dir(),
            tmp.path(),
            &format!("[budget.server.dr-nowhere]\nupload = \"1MiB/s\"\n\n{sound}"),
        ),
        "server limits",
        "dr-nowhere",
        "welcome page",
    );

    // Another program holds the daemon's port (it accepts, and never answers).
    let squatter = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut setup = Setup::new(grid.node_dir(), tmp.path(), &sound);
    setup.web_port = squatter.local_addr().unwrap().port();
    fails(
        &setup,
        "daemon",
        "in use by another program",
        "[jobs] web.port",
    );

    // No node directory; a node directory whose node was never started.
    fails(
        &Setup::new(&tmp.path().join("no-node"), tmp.path(), &sound),
        "node directory",
        "does not exist",
        "tahoe create-client",
    );
    let never = tmp.path().join("never-started");
    std::fs::create_dir_all(&never).unwrap();
    std::fs::copy(grid.node_dir().join("tahoe.cfg"), never.join("tahoe.cfg")).unwrap();
    fails(
        &Setup::new(&never, tmp.path(), &sound),
        "node.url",
        "never been started",
        "tahoe run",
    );
}

#[test]
fn doctor_finds_a_missing_storage_server_and_a_node_that_is_down() {
    let grid = Grid::start(GridSpec {
        storage_nodes: 2,
        needed: 1,
        happy: 2,
        total: 2,
    });
    let out = grid.tahoe(["create-alias", "dr_two"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_file(&src.join("a.txt"), b"hello");
    let setup = Setup::new(grid.node_dir(), tmp.path(), &backup_toml(&src, "dr_two:"));
    let (code, out) = setup.doctor();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ok    storage servers: all 2 connected (shares.happy = 2)"),
        "{out}"
    );

    grid.stop_node(1);
    fails(
        &setup,
        "storage servers",
        "1 of 2 connected, but shares.happy = 2",
        "start the storage servers",
    );
    // The stopped server is named on the direct path too, with what that means and the fix.
    let (_, out) = setup.doctor();
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("WARN  direct storage: ")
                && l.contains("unreachable")),
        "{out}"
    );
    assert!(out.contains("tub.location"), "{out}");
    assert_eq!(
        out.lines()
            .filter(|l| l.trim_start().starts_with("ok    direct storage: "))
            .count(),
        1,
        "the running server still answers:\n{out}"
    );

    grid.stop_client();
    fails(&setup, "node running", "no node process", "tahoe run");
    fails(&setup, "node reachable", "does not answer", "tahoe run");
    let (_, out) = setup.doctor();
    assert!(
        out.contains("skip  backup.b1 target"),
        "the target is not looked up on a node that is down:\n{out}"
    );
}
