//! Checks of what is on this machine: the node directory, the configuration, the backup
//! sources, the state directory (kind, owner, permissions, free space) and the daemon's port.

use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use tahoe_jobs_config::{Config, JOB_FILE_NAME};
use tahoe_jobs_tasks::backup::BackupParams;

use super::finding::Finding;
use crate::cli::GlobalArgs;

/// Below this much free space in the state directory's file system, doctor fails.
pub const SPACE_FAIL: u64 = 100 << 20;
/// Below this much, doctor warns.
pub const SPACE_WARN: u64 = 1 << 30;

/// The node directory exists and holds `tahoe.cfg`; answers whether the node checks can go on.
pub fn node_directory(node_dir: &Path, out: &mut Vec<Finding>) -> bool {
    const CHECK: &str = "node directory";
    let fix = format!(
        "pass the node's directory with -d NODEDIR (the default is ~/.tahoe), or create a \
         client node: tahoe create-client --introducer=FURL {}",
        node_dir.display()
    );
    if !node_dir.is_dir() {
        out.push(Finding::fail(
            CHECK,
            format!(
                "{} does not exist or is not a directory",
                node_dir.display()
            ),
            fix,
        ));
        return false;
    }
    if !node_dir.join("tahoe.cfg").is_file() {
        out.push(Finding::fail(
            CHECK,
            format!(
                "{} has no tahoe.cfg: it is not a Tahoe-LAFS node directory",
                node_dir.display()
            ),
            fix,
        ));
        return false;
    }
    out.push(Finding::ok(
        CHECK,
        format!("{} is a Tahoe-LAFS node directory", node_dir.display()),
    ));
    true
}

/// The layered configuration is valid; answers it.
pub fn configuration(global: &GlobalArgs, out: &mut Vec<Finding>) -> Option<Config> {
    const CHECK: &str = "configuration";
    match crate::commands::load_config(global) {
        Err(e) => {
            out.push(Finding::fail(
                CHECK,
                format!("the configuration is not valid:\n{e}"),
                "correct each value named above (tahoe-jobs config shows every value and where \
                 it comes from)",
            ));
            None
        }
        Ok(config) => {
            if config.jobs.is_empty() {
                out.push(Finding::warn(
                    CHECK,
                    "valid, but no job is configured",
                    format!(
                        "add a job to {}, such as:\n[backup]\nb1.source = /home/me/Documents\n\
                         b1.target = backup:documents\nb1.frequency = 1day",
                        config.node_dir.join(JOB_FILE_NAME).display()
                    ),
                ));
            } else {
                let ids: Vec<String> = config.jobs.iter().map(|j| j.id()).collect();
                out.push(Finding::ok(
                    CHECK,
                    format!("valid; {} job(s): {}", ids.len(), ids.join(", ")),
                ));
            }
            for warning in &config.warnings {
                out.push(Finding::warn(
                    CHECK,
                    warning.clone(),
                    "see the warning; tahoe-jobs config shows every value",
                ));
            }
            Some(config)
        }
    }
}

/// Each backup's source is a readable directory.
pub fn sources(config: &Config, out: &mut Vec<Finding>) {
    for job in &config.jobs {
        let Some(params) = job.params.get::<BackupParams>() else {
            continue;
        };
        let check = format!("{} source", job.id());
        let source = &params.source;
        let finding = match std::fs::read_dir(source) {
            Ok(_) => Finding::ok(
                &check,
                format!("{} is a readable directory", source.display()),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Finding::fail(
                &check,
                format!("{} does not exist", source.display()),
                "correct the job's source, or mount the drive it is on",
            ),
            Err(e) => Finding::fail(
                &check,
                format!("cannot list {}: {e}", source.display()),
                "give the user tahoe-jobs runs as read access (or point source at a directory)",
            ),
        };
        out.push(finding);
    }
}

/// What free space means for the state directory.
pub fn space_verdict(available: u64) -> Option<(bool, String)> {
    let mib = available >> 20;
    if available < SPACE_FAIL {
        Some((
            true,
            format!("only {mib} MiB free: the state store needs room to record progress"),
        ))
    } else if available < SPACE_WARN {
        Some((
            false,
            format!("{mib} MiB free: a large backup's progress may not fit"),
        ))
    } else {
        None
    }
}

/// What the permission bits of the state directory mean: it holds the control page's token.
pub fn mode_verdict(mode: u32) -> Option<String> {
    (mode & 0o077 != 0).then(|| {
        format!(
            "its permissions are {:o}: other users can read it, and it holds the control page's \
             secret token",
            mode & 0o777
        )
    })
}

/// The state directory: a directory this user owns and can write, private, with room; or, not
/// made yet, a place where it can be made.
pub fn state_directory(dir: &Path, out: &mut Vec<Finding>) {
    const CHECK: &str = "state directory";
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = dir.ancestors().skip(1).find(|p| p.exists());
            match parent {
                Some(p) if writable(p) => out.push(Finding::ok(
                    CHECK,
                    format!(
                        "{} does not exist yet; tahoe-jobs run creates it (mode 700)",
                        dir.display()
                    ),
                )),
                _ => out.push(Finding::fail(
                    CHECK,
                    format!(
                        "{} does not exist and cannot be created here",
                        dir.display()
                    ),
                    "create it (mkdir -m 700 DIR) for the user tahoe-jobs runs as, or set \
                     [jobs] state_dir",
                )),
            }
            return;
        }
        Err(e) => {
            out.push(Finding::fail(
                CHECK,
                format!("cannot look at {}: {e}", dir.display()),
                "make it reachable for the user tahoe-jobs runs as, or set [jobs] state_dir",
            ));
            return;
        }
    };
    if !meta.is_dir() {
        out.push(Finding::fail(
            CHECK,
            format!("{} is not a directory", dir.display()),
            "move the file aside, or set [jobs] state_dir to a directory",
        ));
        return;
    }
    let mut problems = 0;
    if !writable(dir) {
        problems += 1;
        out.push(Finding::fail(
            CHECK,
            format!("{} is not writable by this user", dir.display()),
            "run tahoe-jobs as the directory's owner, or chown it to the user that runs it",
        ));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        problems += 1;
        out.push(Finding::warn(
            CHECK,
            format!(
                "{} belongs to uid {}, not to this user (uid {me})",
                dir.display(),
                meta.uid()
            ),
            "run doctor as the user the daemon runs as (sudo -u USER tahoe-jobs doctor)",
        ));
    }
    if let Some(m) = mode_verdict(meta.permissions().mode()) {
        problems += 1;
        out.push(Finding::warn(
            CHECK,
            m,
            format!("chmod 700 {}", dir.display()),
        ));
    }
    match available_space(dir) {
        Some(free) => {
            if let Some((fatal, message)) = space_verdict(free) {
                problems += 1;
                let fix = "free some space on that file system, or set [jobs] state_dir to one \
                           with room";
                out.push(if fatal {
                    Finding::fail(CHECK, message, fix)
                } else {
                    Finding::warn(CHECK, message, fix)
                });
            }
        }
        None => out.push(Finding::warn(
            CHECK,
            "cannot tell how much space is free",
            "make sure its file system has room",
        )),
    }
    if problems == 0 {
        out.push(Finding::ok(
            CHECK,
            format!("{} is private, writable, and has room", dir.display()),
        ));
    }
}

fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) reads the NUL-terminated path it is given and nothing else.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

fn available_space(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs(2) writes into the struct we own and reads the NUL-terminated path.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut stat) };
    (rc == 0).then(|| (stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

/// Whether the daemon's web port is free, taken by a running tahoe-jobs, or by something else.
pub fn daemon_port(config: &Config, out: &mut Vec<Finding>) {
    const CHECK: &str = "daemon";
    let addr = config.daemon.web_addr;
    match TcpListener::bind(addr) {
        Ok(_) => out.push(Finding::ok(
            CHECK,
            format!("not running; its web port {addr} is free for tahoe-jobs run"),
        )),
        Err(_) => {
            let url = format!(
                "http://{}/?t=json",
                super::super::client::connect_addr(addr)
            );
            let answer = get_text(&url);
            match answer {
                Some(body) if body.contains("\"jobs\"") => out.push(Finding::ok(
                    CHECK,
                    format!("a tahoe-jobs daemon is running, with its status page on {addr}"),
                )),
                _ => out.push(Finding::fail(
                    CHECK,
                    format!("{addr} is in use by another program: tahoe-jobs run could not listen there"),
                    "choose a free port with [jobs] web.port = 127.0.0.1:PORT",
                )),
            }
        }
    }
}

/// The body of a GET of `url`, on a small runtime of its own; `None` when there is no answer.
fn get_text(url: &str) -> Option<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .ok()?;
        client.get(url).send().await.ok()?.text().await.ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_fails_below_100_mib_and_warns_below_1_gib() {
        assert!(space_verdict(10 << 30).is_none());
        assert_eq!(space_verdict(SPACE_WARN).map(|v| v.0), None);
        let (fatal, message) = space_verdict(500 << 20).unwrap();
        assert!(!fatal);
        assert!(message.starts_with("500 MiB free"), "{message}");
        let (fatal, message) = space_verdict(5 << 20).unwrap();
        assert!(fatal);
        assert!(message.contains("only 5 MiB"), "{message}");
    }

    #[test]
    fn a_state_directory_others_can_read_is_named() {
        assert_eq!(mode_verdict(0o40700), None);
        assert!(mode_verdict(0o40750).unwrap().contains("750"));
        assert!(mode_verdict(0o40755).unwrap().contains("control page"));
    }
}
