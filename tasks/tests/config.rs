//! The `[backup]` and `[check]` keys as users write them, through `load` with this crate's
//! schemas, as the binary loads them. What the loader does whatever the task type (windows,
//! budgets, syntax errors, a missing file) is tested in `config/tests/load.rs`.

// figment::Jail fixes the closure's error type; its size is not ours to choose.
#![allow(clippy::result_large_err)]

use std::path::Path;

use figment::Jail;
use tahoe_jobs_config::*;
use tahoe_jobs_tasks::backup::BackupParams;
use tahoe_jobs_tasks::check::CheckParams;

const SEED: &str = "[backup]
b1.source = /Volumes/BackupDrive/Pictures
b1.target = backup:pictures
b1.frequency = 1week
b1.allowed_times = 2200-2400,0000-0800
";

fn options(node_dir: &Path) -> LoadOptions {
    LoadOptions {
        node_dir: node_dir.to_path_buf(),
        read_env: true,
        task_types: tahoe_jobs_tasks::schemas(),
        ..LoadOptions::default()
    }
}

fn problems(err: ConfigError) -> Vec<Problem> {
    match err {
        ConfigError::Invalid(p) => p,
        other => panic!("expected validation problems, got {other}"),
    }
}

#[test]
fn the_seed_example_is_job_b1_of_type_backup() {
    Jail::expect_with(|jail| {
        jail.create_file("tahoe-jobs.cfg", SEED)?;
        let config = load(&options(jail.directory())).expect("seed parses");
        assert_eq!(config.jobs.len(), 1);
        let job = &config.jobs[0];
        assert_eq!(job.id(), "backup.b1");
        assert_eq!(job.schedule.frequency.as_secs(), 7 * 86400);
        assert_eq!(
            job.schedule.allowed_times.to_string(),
            "2200-2400,0000-0800"
        );
        assert!(job.schedule.enabled);
        let params = job.params.get::<BackupParams>().expect("a backup job");
        assert_eq!(params.source, Path::new("/Volumes/BackupDrive/Pictures"));
        assert_eq!(params.target.to_string(), "backup:pictures");
        assert_eq!(params.concurrency, None, "unset: the data path decides");
        let origin = &config
            .settings
            .iter()
            .find(|s| s.key == "backup.b1.frequency")
            .unwrap()
            .origin;
        assert!(origin.ends_with("tahoe-jobs.cfg line 4"), "{origin}");
        assert_eq!(
            config.daemon.state_dir,
            jail.directory().join("private/tahoe-jobs")
        );
        assert_eq!(config.daemon.web_addr.to_string(), "127.0.0.1:3457");
        Ok(())
    });
}

#[test]
fn precedence_is_file_then_toml_then_env_then_command_line() {
    Jail::expect_with(|jail| {
        jail.create_file("tahoe-jobs.cfg", SEED)?;
        jail.create_file(
            "extra.toml",
            "[backup.b1]\nfrequency = \"2d\"\nconcurrency = 8\nexclude = [\"*.tmp\", \".DS_Store\"]\n",
        )?;
        let mut opts = options(jail.directory());
        opts.config_file = Some(jail.directory().join("extra.toml"));
        let config = load(&opts).unwrap();
        let job = &config.jobs[0];
        assert_eq!(job.schedule.frequency.as_secs(), 2 * 86400);
        let params = job.params.get::<BackupParams>().expect("a backup job");
        assert_eq!(params.concurrency, Some(8));
        assert_eq!(params.exclude, vec!["*.tmp", ".DS_Store"]);

        jail.set_env("TAHOE_JOBS_BACKUP__B1__FREQUENCY", "36h");
        let config = load(&opts).unwrap();
        assert_eq!(config.jobs[0].schedule.frequency.as_secs(), 36 * 3600);
        let setting = config
            .settings
            .iter()
            .find(|s| s.key == "backup.b1.frequency")
            .unwrap();
        assert_eq!(
            setting.origin,
            "environment variable TAHOE_JOBS_BACKUP__B1__FREQUENCY"
        );

        opts.overrides = vec![("backup.b1.frequency".into(), "90min".into())];
        let config = load(&opts).unwrap();
        assert_eq!(config.jobs[0].schedule.frequency.as_secs(), 90 * 60);
        Ok(())
    });
}

#[test]
fn unknown_keys_and_sections_suggest_the_right_name() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "tahoe-jobs.cfg",
            "[backups]\nb1.source = /x\n[backup]\nb1.source = /x\nb1.target = a:b\nb1.frequncy = 1d\n",
        )?;
        let p = problems(load(&options(jail.directory())).unwrap_err());
        let all: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        assert!(
            all.iter()
                .any(|t| t.contains("[backups]") && t.contains("did you mean [backup]")),
            "{all:#?}"
        );
        assert!(
            all.iter().any(|t| t.contains("line 6")
                && t.contains("backup.b1.frequncy")
                && t.contains("did you mean frequency")),
            "{all:#?}"
        );
        Ok(())
    });
}

#[test]
fn check_jobs_have_their_defaults() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "tahoe-jobs.cfg",
            "[check]\nc1.target = backup:\nc1.frequency = 1week\n",
        )?;
        let config = load(&options(jail.directory())).unwrap();
        let params = config.jobs[0]
            .params
            .get::<CheckParams>()
            .expect("a check job");
        assert!(!params.verify && !params.repair && params.add_lease);
        assert_eq!(params.recheck_after.as_secs(), 7 * 86400);
        assert_eq!(params.data_path, tahoe_jobs_tasks::DataPath::Direct);
        Ok(())
    });
}

#[test]
fn missing_required_keys_and_bad_types_are_all_reported() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "tahoe-jobs.cfg",
            "[backup]\nb1.frequency = soon\nb1.concurrency = 0\nb1.enabled = maybe\n[jobs]\nweb.port = nowhere\ntimezone = Mars/Olympus\n",
        )?;
        let p = problems(load(&options(jail.directory())).unwrap_err());
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "backup.b1.frequency",
            "backup.b1.concurrency",
            "backup.b1.enabled",
            "backup.b1.source",
            "backup.b1.target",
            "jobs.web.port",
            "jobs.timezone",
        ] {
            assert!(keys.contains(&key), "{key} not reported in {keys:?}");
        }
        Ok(())
    });
}

#[test]
fn capabilities_are_redacted_in_settings_and_errors() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "tahoe-jobs.cfg",
            "[check]\nc1.target = URI:DIR2:aaaa:bbbb/photos\nc1.frequency = URI:DIR2:cccc:dddd\n",
        )?;
        let p = problems(load(&options(jail.directory())).unwrap_err());
        let text = p.iter().map(|p| p.to_string()).collect::<String>();
        assert!(!text.contains("URI:"), "{text}");
        jail.create_file(
            "tahoe-jobs.cfg",
            "[check]\nc1.target = URI:DIR2:aaaa:bbbb/photos\n",
        )?;
        let config = load(&options(jail.directory())).unwrap();
        let shown: String = config.settings.iter().map(|s| s.value.clone()).collect();
        assert!(!shown.contains("URI:"), "{shown}");
        assert!(shown.contains("<capability>"), "{shown}");
        assert!(!shown.contains("aaaa"), "{shown}");
        Ok(())
    });
}

#[test]
fn recheck_overdue_and_node_timeout_have_defaults_and_checked_values() {
    Jail::expect_with(|jail| {
        jail.create_file("tahoe-jobs.cfg", SEED)?;
        let config = load(&options(jail.directory())).unwrap();
        let job = &config.jobs[0];
        // A weekly job is overdue after two weeks and a day.
        assert_eq!(
            job.schedule.overdue_after.map(|d| d.as_secs()),
            Some(15 * 86400)
        );
        let params = job.params.get::<BackupParams>().expect("a backup job");
        assert_eq!(params.recheck_after.as_secs(), 30 * 86400);
        assert_eq!(params.recheck_all_after.as_secs(), 60 * 86400);
        assert_eq!(config.daemon.node_timeout.as_secs(), 600);

        jail.create_file(
            "tahoe-jobs.cfg",
            &format!("{SEED}b1.overdue_after = off\nb1.recheck_after = 0s\nb1.recheck_all_after = 0s\n[jobs]\nnode.timeout = 1h\n"),
        )?;
        let config = load(&options(jail.directory())).unwrap();
        let job = &config.jobs[0];
        assert_eq!(job.schedule.overdue_after, None);
        let params = job.params.get::<BackupParams>().expect("a backup job");
        assert!(params.recheck_after.is_zero() && params.recheck_all_after.is_zero());
        assert_eq!(config.daemon.node_timeout.as_secs(), 3600);

        jail.create_file(
            "tahoe-jobs.cfg",
            &format!("{SEED}b1.overdue_after = 2d\nb1.recheck_after = 10d\nb1.recheck_all_after = 5d\n[jobs]\nnode.timeout = 0s\n"),
        )?;
        let p = problems(load(&options(jail.directory())).unwrap_err());
        let text: Vec<String> = p.iter().map(ToString::to_string).collect();
        let about = |key: &str, words: &str| {
            assert!(
                p.iter()
                    .any(|p| p.key == key && p.to_string().contains(words)),
                "no problem for {key} saying {words:?} in {text:?}"
            )
        };
        about("backup.b1.overdue_after", "shorter than the frequency");
        about("backup.b1.recheck_all_after", "at least recheck_after");
        about("jobs.node.timeout", "zero");
        Ok(())
    });
}

#[test]
fn prune_jobs_are_checked_against_the_prune_keys() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "tahoe-jobs.cfg",
            "[prune]\np1.target = backup:pictures\np1.frequency = 1d\np1.keep_last = 3\np1.keep_daily = 7\np1.keep_weekly = 5\np1.keep_monthly = 12\np1.keep_yearly = 3\np1.keep_within = 10d\n",
        )?;
        let config = load(&options(jail.directory())).unwrap();
        let params = config.jobs[0]
            .params
            .get::<tahoe_jobs_tasks::prune::PruneParams>()
            .expect("a prune job");
        let policy = params.policy();
        assert_eq!(
            (
                policy.last,
                policy.daily,
                policy.weekly,
                policy.monthly,
                policy.yearly
            ),
            (3, 7, 5, 12, 3)
        );
        assert_eq!(policy.within.map(|d| d.as_secs()), Some(10 * 86400));
        assert_eq!(policy.hourly, 0);
        let hourly = config
            .settings
            .iter()
            .find(|s| s.key == "prune.p1.keep_hourly")
            .unwrap();
        assert_eq!(
            (hourly.value.as_str(), hourly.origin.as_str()),
            ("0", "built-in default")
        );

        // A typo: file, line and a suggestion among prune's keys.
        jail.create_file(
            "tahoe-jobs.cfg",
            "[prune]\np1.target = backup:pictures\np1.keep_dayly = 7\np1.keep_last = 2\n[prunes]\nx.target = a:\n",
        )?;
        let p = problems(load(&options(jail.directory())).unwrap_err());
        let text: Vec<String> = p.iter().map(ToString::to_string).collect();
        assert!(
            text.iter().any(|t| t.contains("tahoe-jobs.cfg line 3")
                && t.contains("prune.p1.keep_dayly")
                && t.contains("did you mean keep_daily")),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("[prunes]") && t.contains("did you mean [prune]")),
            "{text:#?}"
        );

        // Bad values, and a policy that keeps nothing.
        jail.create_file(
            "tahoe-jobs.cfg",
            "[prune]\np1.target = backup:pictures\np1.keep_last = -1\np1.keep_within = soon\np2.target = backup:x\np2.frequency = 1d\n",
        )?;
        let p = problems(load(&options(jail.directory())).unwrap_err());
        let text: Vec<String> = p.iter().map(ToString::to_string).collect();
        let about = |key: &str, words: &str| {
            assert!(
                p.iter()
                    .any(|p| p.key == key && p.to_string().contains(words)),
                "no problem for {key} saying {words:?} in {text:#?}"
            )
        };
        about("prune.p1.keep_last", "expected a whole number");
        about("prune.p1.keep_within", "expected off, or a duration");
        about("prune.p2.keep_last", "no keep_* rule is set");
        Ok(())
    });
}

/// `tahoe backup` takes any string as an exclude pattern (fnmatch has no invalid ones), so
/// `**.tmp` (= `*.tmp`) and an unclosed `[` load as they are.
#[test]
fn exclude_takes_every_pattern_fnmatch_takes() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "tahoe-jobs.cfg",
            &format!("{SEED}b1.exclude = **.tmp, [oops, a[!]b\n"),
        )?;
        let config = load(&options(jail.directory())).expect("every pattern loads");
        let params = config.jobs[0]
            .params
            .get::<BackupParams>()
            .expect("a backup job");
        assert_eq!(params.exclude, vec!["**.tmp", "[oops", "a[!]b"]);
        Ok(())
    });
}

#[test]
fn a_check_job_chooses_its_data_path() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "tahoe-jobs.cfg",
            "[check]\nc1.target = backup:\nc1.data_path = Node\nc2.target = b:\nc2.data_path = fast\n",
        )?;
        let p = problems(load(&options(jail.directory())).unwrap_err());
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].key, "check.c2.data_path");
        assert!(p[0].to_string().contains("direct") && p[0].to_string().contains("node"));
        jail.create_file(
            "tahoe-jobs.cfg",
            "[check]\nc1.target = backup:\nc1.data_path = Node\n",
        )?;
        let config = load(&options(jail.directory())).unwrap();
        let params = config.jobs[0]
            .params
            .get::<CheckParams>()
            .expect("a check job");
        assert_eq!(params.data_path, tahoe_jobs_tasks::DataPath::Node);
        Ok(())
    });
}

#[test]
fn a_backup_job_chooses_its_data_path() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "tahoe-jobs.cfg",
            "[backup]\nb1.source = /tmp\nb1.target = a:b\nb2.source = /tmp\nb2.target = a:c\n\
             b2.data_path = NODE\nb3.source = /tmp\nb3.target = a:d\nb3.data_path = fast\n",
        )?;
        let p = problems(load(&options(jail.directory())).unwrap_err());
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].key, "backup.b3.data_path");
        assert!(p[0].to_string().contains("direct") && p[0].to_string().contains("node"));
        jail.create_file(
            "tahoe-jobs.cfg",
            "[backup]\nb1.source = /tmp\nb1.target = a:b\nb2.source = /tmp\nb2.target = a:c\n\
             b2.data_path = NODE\n",
        )?;
        let config = load(&options(jail.directory())).unwrap();
        let paths: Vec<_> = config
            .jobs
            .iter()
            .map(|j| {
                j.params
                    .get::<BackupParams>()
                    .expect("a backup job")
                    .data_path
            })
            .collect();
        use tahoe_jobs_tasks::DataPath::{Direct, Node};
        assert_eq!(paths, [Direct, Node]);
        Ok(())
    });
}
