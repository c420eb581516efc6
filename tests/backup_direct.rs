//! `tahoe-jobs backup --data-path direct` on a real grid: files and immutable directories go
//! straight to the storage server (the node's own uploader counts none of them), stock
//! `tahoe cp -r` restores the tree byte for byte, and a `tahoe backup` of the same tree
//! afterwards lands on the same file caps (convergence: the servers already hold every share).

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::files::{assert_same_tree, seeded_bytes, tree_of, write_file};
use crate::support::node::{ls_json, node_counter, restore};
use crate::support::process::{lossy_text, os, tahoe_jobs_command, wait_for_the_next_second};
use crate::support::{Grid, GridSpec};

fn sample_tree(root: &Path) {
    write_file(&root.join("top.txt"), b"top level\n");
    write_file(&root.join("empty-file"), b"");
    write_file(&root.join("docs/ünïcode ✓.txt"), &seeded_bytes(101, 3000));
    write_file(&root.join("docs/a b/c.bin"), &seeded_bytes(102, 70_000));
    write_file(&root.join("docs/a b/deeper/d.txt"), b"deep\n");
    write_file(
        &root.join("big.bin"),
        &seeded_bytes(103, 2 * 1024 * 1024 + 17),
    );
    std::fs::create_dir_all(root.join("empty-dir")).unwrap();
}

/// Path -> read cap of every file below `dir` (`alias:path`). Holds caps: never print it.
fn file_caps(grid: &Grid, dir: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let listing = ls_json(grid, dir);
    let children = listing[1]["children"].as_object().expect("a directory");
    for (name, child) in children {
        let path = format!("{dir}/{name}");
        if child[0] == "dirnode" {
            for (p, cap) in file_caps(grid, &path) {
                out.insert(p.replacen(dir, "", 1), cap);
            }
        } else {
            let cap = child[1]["ro_uri"].as_str().expect("ro_uri").to_string();
            out.insert(format!("/{name}"), cap);
        }
    }
    out
}

#[test]
fn direct_backup_restores_and_converges_with_tahoe_backup() {
    let grid = Grid::start(GridSpec::ONE_OF_ONE);
    grid.create_alias("bd");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    sample_tree(&src);
    let target = "bd:home";

    let through_node = node_counter(&grid, "uploader.files_uploaded");
    let out = tahoe_jobs_command()
        .arg("-d")
        .arg(grid.node_dir())
        .args([os("backup"), os("--data-path"), os("direct")])
        .args([src.as_os_str(), os(target)])
        .output()
        .expect("cannot run tahoe-jobs");
    let (stdout, stderr) = (lossy_text(&out.stdout), lossy_text(&out.stderr));
    assert!(out.status.success(), "tahoe-jobs backup failed: {stderr}");
    assert!(
        stdout.contains(" 6 files uploaded (0 reused), 0 files skipped, 5 directories created"),
        "{stdout}"
    );
    assert!(!stdout.contains("URI:") && !stderr.contains("URI:"));
    assert!(
        !stderr.contains("through the node"),
        "the direct path fell back: {stderr}"
    );
    // Neither the files nor the immutable directories went through the node's uploader (it
    // counts both); only the mutable directories were linked through it.
    assert_eq!(
        node_counter(&grid, "uploader.files_uploaded"),
        through_node,
        "the node uploaded something"
    );
    assert_same_tree(&restore(&grid, target, tmp.path()), &tree_of(&src));
    let ours = file_caps(&grid, &format!("{target}/Latest"));
    assert_eq!(ours.len(), 6);

    // Stock `tahoe backup` of the same tree (Archives names are per second) makes the same
    // caps: every file it uploads converges on the shares already there.
    wait_for_the_next_second();
    let out = grid.tahoe([os("backup"), src.as_os_str(), os(target)]);
    assert!(
        out.status.success(),
        "tahoe backup: {}",
        lossy_text(&out.stderr)
    );
    let theirs = file_caps(&grid, &format!("{target}/Latest"));
    assert!(
        ours == theirs,
        "tahoe backup's file caps differ from the direct upload's for {:?}",
        ours.keys()
            .filter(|k| ours.get(*k) != theirs.get(*k))
            .collect::<Vec<_>>()
    );
    assert_same_tree(&restore(&grid, target, tmp.path()), &tree_of(&src));
}
