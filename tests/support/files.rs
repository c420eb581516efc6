//! Local files for the tests: deterministic contents, files written with their parent
//! directories, and whole trees read back and compared (a restore against its source).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every regular file below a root by relative path, with its bytes; directories as `None`.
pub type FileTree = BTreeMap<PathBuf, Option<Vec<u8>>>;

/// Writes `data` to `path`, creating the parent directories first.
pub fn write_file(path: &Path, data: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, data).unwrap();
}

/// Deterministic pseudo-random bytes (xorshift), so sizes and contents vary without a crate.
pub fn seeded_bytes(seed: u64, len: usize) -> Vec<u8> {
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

/// Every regular file below `root` by relative path, with its bytes; directories as `None`.
pub fn tree_of(root: &Path) -> FileTree {
    fn walk(root: &Path, dir: &Path, out: &mut FileTree) {
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

/// Panics unless the tree below `restored` has exactly the paths of `expected`, each with the
/// same contents (which are not printed: they may be large).
pub fn assert_same_tree(restored: &Path, expected: &FileTree) {
    let got = tree_of(restored);
    let names = |t: &FileTree| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&got), names(expected), "restored paths differ");
    for (path, content) in expected {
        assert!(
            got[path] == *content,
            "{} differs after restore",
            path.display()
        );
    }
}
