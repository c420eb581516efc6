//! The layout `tahoe backup` leaves on the grid: `<target>/Archives/<YYYY-MM-DD_HH:MM:SSZ>` for
//! every completed backup and `<target>/Latest` for the newest, both links to the same
//! immutable directory. Keeping exactly this layout is what lets `tahoe backup` and tahoe-jobs
//! take turns on one target.

use jiff::Timestamp;

use crate::tahoe::types::NodeKind;
use crate::tahoe::{Cap, TahoeClient, TahoeError};

/// The name of the directory below the target that holds one link per completed backup.
pub const ARCHIVES: &str = "Archives";
/// The name of the link below the target to the newest completed backup.
pub const LATEST: &str = "Latest";

/// The archive name for a backup completed at `at`: UTC, whole seconds, `2024-03-01_14:05:09Z`.
pub fn archive_name(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d_%H:%M:%SZ").to_string()
}

/// Where a backup goes: a directory capability and the path below it.
#[derive(Clone)]
pub struct TargetDir {
    /// The directory capability the target starts from (an alias's, or the target's own).
    pub root: Cap,
    /// The path below `root`, `/`-separated; empty for `root` itself.
    pub path: String,
}

impl std::fmt::Debug for TargetDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TargetDir({}/{})", self.root, self.path)
    }
}

impl TargetDir {
    fn archives_path(&self) -> String {
        if self.path.is_empty() {
            ARCHIVES.to_string()
        } else {
            format!("{}/{ARCHIVES}", self.path)
        }
    }

    /// Makes sure `<target>/Archives` exists, creating it (and the target path) as mutable
    /// directories when missing, as `tahoe backup` does before it starts, and learns the write
    /// capabilities of both directories. Linking through them later spares the node walking
    /// the path again: each link then costs one read-modify-write instead of a traversal of
    /// every mutable directory on the way (about half of an unchanged run's node time).
    pub async fn prepare(&self, client: &TahoeClient) -> Result<PreparedTarget, TahoeError> {
        let mut listing = match client.list(&self.root, &self.path).await {
            Ok(listing) => Some(listing),
            Err(TahoeError::NoSuchChild(_)) => None,
            Err(e) => return Err(e),
        };
        let has_archives = listing.as_ref().is_some_and(|l| {
            l.children
                .get(ARCHIVES)
                .is_some_and(|c| c.kind == NodeKind::Directory)
        });
        if !has_archives {
            client.mkdir_p(&self.root, &self.archives_path()).await?;
            listing = Some(client.list(&self.root, &self.path).await?);
        }
        let listing = listing.expect("listed above");
        let target = listing
            .rw_cap
            .clone()
            .ok_or_else(|| TahoeError::NotWritable(self.shown_path()))?;
        let archives = listing
            .children
            .get(ARCHIVES)
            .filter(|c| c.kind == NodeKind::Directory)
            .ok_or_else(|| {
                TahoeError::Protocol(format!(
                    "{}/{ARCHIVES} is not a directory after it was made",
                    self.shown_path()
                ))
            })?
            .rw_cap
            .clone()
            .ok_or_else(|| TahoeError::NotWritable(format!("{}/{ARCHIVES}", self.shown_path())))?;
        // What `Latest` links to now (read-only form, as an immutable directory's cap is).
        let latest = listing
            .children
            .get(LATEST)
            .and_then(|c| c.ro_cap.clone().or_else(|| c.rw_cap.clone()));
        Ok(PreparedTarget {
            target,
            archives,
            latest,
        })
    }

    /// The target as the user wrote it, without the capability: for messages.
    fn shown_path(&self) -> String {
        if self.path.is_empty() {
            "the target directory".to_string()
        } else {
            self.path.clone()
        }
    }
}

/// The write capabilities of a target directory and of its `Archives`.
#[derive(Clone)]
pub struct PreparedTarget {
    target: Cap,
    archives: Cap,
    /// `Latest` as it was when the run began.
    latest: Option<Cap>,
}

impl std::fmt::Debug for PreparedTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PreparedTarget({}, {})", self.target, self.archives)
    }
}

impl PreparedTarget {
    /// Links a finished backup as `Archives/<name>` and `Latest`. The two links change two
    /// different mutable directories, so they are made at once (each costs the node a
    /// read-modify-write of its directory, the larger part of an unchanged run's time).
    /// When nothing changed, the backup is the very directory `Latest` already links to
    /// (directories are reused by content), and `Latest` is left as it is: relinking it would
    /// only refresh the link's modification time, at the cost of a second read-modify-write.
    pub async fn link(
        &self,
        client: &TahoeClient,
        name: &str,
        backup: &Cap,
    ) -> Result<(), TahoeError> {
        if self.latest_is(backup) {
            return client.link(&self.archives, "", name, backup).await;
        }
        tokio::try_join!(
            client.link(&self.archives, "", name, backup),
            client.link(&self.target, "", LATEST, backup),
        )?;
        Ok(())
    }

    /// Whether `Latest` already links to `backup`.
    pub fn latest_is(&self, backup: &Cap) -> bool {
        self.latest
            .as_ref()
            .is_some_and(|latest| latest.expose() == backup.expose())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_are_utc_whole_seconds() {
        let t: Timestamp = "2024-03-01T14:05:09.987+02:00".parse().unwrap();
        assert_eq!(archive_name(t), "2024-03-01_12:05:09Z");
        assert_eq!(archive_name(Timestamp::UNIX_EPOCH), "1970-01-01_00:00:00Z");
    }

    #[test]
    fn archives_path_is_below_the_target() {
        let t = TargetDir {
            root: Cap::new("URI:DIR2:a:b"),
            path: String::new(),
        };
        assert_eq!(t.archives_path(), "Archives");
        let t = TargetDir {
            path: "pics/2024".into(),
            ..t
        };
        assert_eq!(t.archives_path(), "pics/2024/Archives");
        assert!(!format!("{t:?}").contains("a:b"));
    }

    #[test]
    fn latest_is_left_alone_only_when_it_is_the_same_backup() {
        let prepared = |latest: Option<&str>| PreparedTarget {
            target: Cap::new("URI:DIR2:t:t"),
            archives: Cap::new("URI:DIR2:a:a"),
            latest: latest.map(Cap::new),
        };
        let backup = Cap::new("URI:DIR2-CHK:x:y:1:1:10");
        assert!(prepared(Some("URI:DIR2-CHK:x:y:1:1:10")).latest_is(&backup));
        assert!(!prepared(Some("URI:DIR2-CHK:z:y:1:1:10")).latest_is(&backup));
        assert!(!prepared(None).latest_is(&backup));
        let shown = format!("{:?}", prepared(Some("URI:DIR2-CHK:x:y:1:1:10")));
        assert!(!shown.contains("t:t") && !shown.contains("a:a"), "{shown}");
    }
}
