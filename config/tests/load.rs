//! Layering and validation of whole configurations, through `load` as the binary calls it.

// figment::Jail fixes the closure's error type; its size is not ours to choose.
#![allow(clippy::result_large_err)]

use std::path::Path;

use figment::Jail;
use tahoe_jobs_config::*;

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
        let TaskParams::Backup(params) = &job.params else {
            panic!("not a backup job")
        };
        assert_eq!(params.source, Path::new("/Volumes/BackupDrive/Pictures"));
        assert_eq!(params.target.to_string(), "backup:pictures");
        assert_eq!(params.concurrency, 4);
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
fn a_bad_window_names_file_line_key_and_accepted_form() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "tahoe-jobs.cfg",
            &SEED.replace("2200-2400,0000-0800", "2500-2600"),
        )?;
        let p = problems(load(&options(jail.directory())).unwrap_err());
        assert_eq!(p.len(), 1);
        let text = p[0].to_string();
        assert!(text.contains("tahoe-jobs.cfg line 5"), "{text}");
        assert!(text.contains("backup.b1.allowed_times"), "{text}");
        assert!(text.contains("\"2500-2600\""), "{text}");
        assert!(text.contains("hour 25"), "{text}");
        assert!(text.contains("HHMM-HHMM"), "{text}");
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
        let TaskParams::Backup(params) = &job.params else {
            panic!()
        };
        assert_eq!(params.concurrency, 8);
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
fn percent_bandwidth_needs_a_total_upload_budget() {
    Jail::expect_with(|jail| {
        jail.create_file("tahoe-jobs.cfg", &format!("{SEED}b1.bandwidth = 50%\n"))?;
        let p = problems(load(&options(jail.directory())).unwrap_err());
        assert!(p[0].to_string().contains("[budget] upload"), "{}", p[0]);

        jail.create_file(
            "tahoe-jobs.cfg",
            &format!("{SEED}b1.bandwidth = 50%\n[budget]\nupload = 0800-2300 1MiB/s, 2300-0800 off\nserver.v0-abc.upload = 16KiB/s\n"),
        )?;
        let config = load(&options(jail.directory())).unwrap();
        assert!(config.jobs[0].limits.bandwidth.uses_percent());
        assert_eq!(
            config.budget.servers["v0-abc"].upload,
            "16KiB/s".parse().unwrap()
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
        let TaskParams::Check(params) = &config.jobs[0].params else {
            panic!()
        };
        assert!(!params.verify && !params.repair && params.add_lease);
        assert_eq!(params.recheck_after.as_secs(), 7 * 86400);
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
        assert!(shown.contains("<capability>/photos"), "{shown}");
        Ok(())
    });
}

#[test]
fn a_syntax_error_names_the_line_and_a_missing_toml_file_is_an_error() {
    Jail::expect_with(|jail| {
        jail.create_file("tahoe-jobs.cfg", "[backup]\nthis line is wrong\n")?;
        let err = load(&options(jail.directory())).unwrap_err().to_string();
        assert!(err.contains("tahoe-jobs.cfg line 2"), "{err}");
        jail.create_file("tahoe-jobs.cfg", SEED)?;
        let mut opts = options(jail.directory());
        opts.config_file = Some(jail.directory().join("absent.toml"));
        let err = load(&opts).unwrap_err().to_string();
        assert!(err.contains("absent.toml"), "{err}");
        Ok(())
    });
}

#[test]
fn no_job_file_means_no_jobs() {
    Jail::expect_with(|jail| {
        let config = load(&options(jail.directory())).unwrap();
        assert!(config.jobs.is_empty());
        Ok(())
    });
}

#[test]
fn extra_task_types_pass_their_keys_through() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "tahoe-jobs.cfg",
            "[hello]\nh1.greeting = hi\nh1.frequency = 1h\n",
        )?;
        let err = load(&options(jail.directory())).unwrap_err().to_string();
        assert!(err.contains("unknown section"), "{err}");
        let mut opts = options(jail.directory());
        opts.extra_task_types = vec!["hello".into()];
        let config = load(&opts).unwrap();
        let job = &config.jobs[0];
        assert_eq!(job.id(), "hello.h1");
        assert_eq!(job.schedule.frequency.as_secs(), 3600);
        let TaskParams::Other(params) = &job.params else {
            panic!()
        };
        assert_eq!(params["greeting"], "hi");
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
        let TaskParams::Backup(params) = &job.params else {
            panic!("not a backup job")
        };
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
        let TaskParams::Backup(params) = &job.params else {
            panic!("not a backup job")
        };
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
fn cache_size_has_a_default_and_checked_values() {
    Jail::expect_with(|jail| {
        jail.create_file("tahoe-jobs.cfg", SEED)?;
        let config = load(&options(jail.directory())).unwrap();
        assert_eq!(config.daemon.cache_size, 16 * 1024 * 1024);
        assert!(config
            .settings
            .iter()
            .any(|s| s.key == "jobs.cache_size" && s.value == "16MiB"));

        jail.create_file(
            "tahoe-jobs.cfg",
            &format!("{SEED}[jobs]\ncache_size = 64 MiB\n"),
        )?;
        let config = load(&options(jail.directory())).unwrap();
        assert_eq!(config.daemon.cache_size, 64 * 1024 * 1024);

        for (value, words) in [
            ("lots", "not a whole number"),
            ("100KiB", "below 1MiB"),
            ("64 parsecs", "not a unit"),
        ] {
            jail.create_file(
                "tahoe-jobs.cfg",
                &format!("{SEED}[jobs]\ncache_size = {value}\n"),
            )?;
            let p = problems(load(&options(jail.directory())).unwrap_err());
            let text: Vec<String> = p.iter().map(ToString::to_string).collect();
            assert!(
                p.iter().any(|p| p.key == "jobs.cache_size"
                    && p.to_string().contains(words)
                    && p.to_string().contains("16MiB")),
                "no problem for jobs.cache_size = {value} saying {words:?} and what is accepted in {text:?}"
            );
        }
        Ok(())
    });
}
