//! Layering and validation of whole configurations, through `load` as the binary calls it,
//! with a task type declared here (`copy`): the loader knows no task type of its own.

// figment::Jail fixes the closure's error type; its size is not ours to choose.
#![allow(clippy::result_large_err)]

use std::path::{Path, PathBuf};

use figment::Jail;
use tahoe_jobs_config::*;

/// A task type's keys, declared the way a task crate declares them.
#[derive(Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CopyKeys {
    source: PathBuf,
    target: Target,
    #[serde(default = "four", deserialize_with = "one_to_64")]
    concurrency: u32,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default, deserialize_with = "values::de::duration")]
    every: std::time::Duration,
}

fn four() -> u32 {
    4
}

fn one_to_64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = <u32 as serde::Deserialize>::deserialize(d)?;
    if !(1..=64).contains(&n) {
        return Err(serde::de::Error::custom(format!("{n} is not from 1 to 64")));
    }
    Ok(n)
}

impl TaskKeys for CopyKeys {
    fn keys() -> Vec<KeyDoc> {
        vec![
            KeyDoc::required("source", "an absolute path", "what to copy"),
            KeyDoc::required("target", TARGET_ACCEPTED, "where to copy it"),
            KeyDoc::optional("concurrency", "4", "1 to 64", "copies at once"),
            KeyDoc::optional("exclude", "", "a comma list of names", "what to leave out"),
            KeyDoc::optional(
                "every",
                "{frequency} (the frequency)",
                "a duration",
                "a pause",
            ),
        ]
    }

    fn finish(&mut self, job: &JobContext) -> Result<(), Vec<KeyProblem>> {
        let mut problems = Vec::new();
        if !self.source.is_absolute() {
            problems.push(KeyProblem::new("source", "the path must be absolute"));
        }
        if !job.is_set("every") {
            self.every = job.frequency;
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

const SEED: &str = "[copy]
b1.source = /Volumes/BackupDrive/Pictures
b1.target = backup:pictures
b1.frequency = 1week
b1.allowed_times = 2200-2400,0000-0800
";

fn options(node_dir: &Path) -> LoadOptions {
    LoadOptions {
        node_dir: node_dir.to_path_buf(),
        read_env: true,
        task_types: vec![TaskSchema::of::<CopyKeys>("copy")],
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
        assert_eq!(job.id(), "copy.b1");
        assert_eq!(job.schedule.frequency.as_secs(), 7 * 86400);
        assert_eq!(
            job.schedule.allowed_times.to_string(),
            "2200-2400,0000-0800"
        );
        assert!(job.schedule.enabled);
        let params = job.params.get::<CopyKeys>().expect("a copy job");
        assert_eq!(params.source, Path::new("/Volumes/BackupDrive/Pictures"));
        assert_eq!(params.target.to_string(), "backup:pictures");
        assert_eq!(params.concurrency, 4);
        let origin = &config
            .settings
            .iter()
            .find(|s| s.key == "copy.b1.frequency")
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
        assert!(text.contains("copy.b1.allowed_times"), "{text}");
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
            "[copy.b1]\nfrequency = \"2d\"\nconcurrency = 8\nexclude = [\"*.tmp\", \".DS_Store\"]\n",
        )?;
        let mut opts = options(jail.directory());
        opts.config_file = Some(jail.directory().join("extra.toml"));
        let config = load(&opts).unwrap();
        let job = &config.jobs[0];
        assert_eq!(job.schedule.frequency.as_secs(), 2 * 86400);
        let params = job.params.get::<CopyKeys>().expect("a copy job");
        assert_eq!(params.concurrency, 8);
        assert_eq!(params.exclude, vec!["*.tmp", ".DS_Store"]);

        jail.set_env("TAHOE_JOBS_COPY__B1__FREQUENCY", "36h");
        let config = load(&opts).unwrap();
        assert_eq!(config.jobs[0].schedule.frequency.as_secs(), 36 * 3600);
        let setting = config
            .settings
            .iter()
            .find(|s| s.key == "copy.b1.frequency")
            .unwrap();
        assert_eq!(
            setting.origin,
            "environment variable TAHOE_JOBS_COPY__B1__FREQUENCY"
        );

        opts.overrides = vec![("copy.b1.frequency".into(), "90min".into())];
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
            "[copys]\nb1.source = /x\n[copy]\nb1.source = /x\nb1.target = a:b\nb1.frequncy = 1d\n",
        )?;
        let p = problems(load(&options(jail.directory())).unwrap_err());
        let all: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        assert!(
            all.iter()
                .any(|t| t.contains("[copys]") && t.contains("did you mean [copy]")),
            "{all:#?}"
        );
        assert!(
            all.iter().any(|t| t.contains("line 6")
                && t.contains("copy.b1.frequncy")
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
fn missing_required_keys_and_bad_types_are_all_reported() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "tahoe-jobs.cfg",
            "[copy]\nb1.frequency = soon\nb1.concurrency = 0\nb1.enabled = maybe\n[jobs]\nweb.port = nowhere\ntimezone = Mars/Olympus\n",
        )?;
        let p = problems(load(&options(jail.directory())).unwrap_err());
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "copy.b1.frequency",
            "copy.b1.concurrency",
            "copy.b1.enabled",
            "copy.b1.source",
            "copy.b1.target",
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
            "[copy]\nc1.source = /x\nc1.target = URI:DIR2:aaaa:bbbb/photos\nc1.frequency = URI:DIR2:cccc:dddd\nc1.concurrency = URI:DIR2:eeee:ffff\n",
        )?;
        let p = problems(load(&options(jail.directory())).unwrap_err());
        let text = p.iter().map(|p| p.to_string()).collect::<String>();
        assert!(!text.contains("URI:"), "{text}");
        jail.create_file(
            "tahoe-jobs.cfg",
            "[copy]\nc1.source = /x\nc1.target = URI:DIR2:aaaa:bbbb/photos\n",
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
fn a_syntax_error_names_the_line_and_a_missing_toml_file_is_an_error() {
    Jail::expect_with(|jail| {
        jail.create_file("tahoe-jobs.cfg", "[copy]\nthis line is wrong\n")?;
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
fn free_form_task_types_pass_their_keys_through() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "tahoe-jobs.cfg",
            "[hello]\nh1.greeting = hi\nh1.frequency = 1h\n",
        )?;
        let err = load(&options(jail.directory())).unwrap_err().to_string();
        assert!(err.contains("unknown section"), "{err}");
        let mut opts = options(jail.directory());
        opts.task_types.push(TaskSchema::free_form("hello"));
        let config = load(&opts).unwrap();
        let job = &config.jobs[0];
        assert_eq!(job.id(), "hello.h1");
        assert_eq!(job.schedule.frequency.as_secs(), 3600);
        assert_eq!(job.params.texts()["greeting"], "hi");
        Ok(())
    });
}

#[test]
fn a_task_types_keys_have_defaults_sources_and_all_their_problems() {
    Jail::expect_with(|jail| {
        jail.create_file("tahoe-jobs.cfg", SEED)?;
        let config = load(&options(jail.directory())).unwrap();
        let params = config.jobs[0].params.get::<CopyKeys>().unwrap();
        // Declared defaults, one taken from the frequency by `finish`.
        assert_eq!(params.concurrency, 4);
        assert_eq!(params.every.as_secs(), 7 * 86400);
        let shown = |key: &str| {
            config
                .settings
                .iter()
                .find(|s| s.key == key)
                .map(|s| (s.value.clone(), s.origin.clone()))
                .unwrap_or_else(|| panic!("{key} not shown"))
        };
        assert_eq!(
            shown("copy.b1.every"),
            ("1week (the frequency)".into(), "built-in default".into())
        );
        let (value, origin) = shown("copy.b1.target");
        assert_eq!(value, "backup:pictures");
        assert!(origin.ends_with("tahoe-jobs.cfg line 3"), "{origin}");

        // Every bad value of the job at once, each with its line, value and accepted form;
        // a missing required key says what to set; a cross-key check from `finish` too.
        jail.create_file(
            "tahoe-jobs.cfg",
            "[copy]\nb1.concurrency = many\nb1.every = soon\nb1.frequency = 1d\nb2.source = relative\nb2.target = a:b\nb3.source = /x\nb3.target = a:b\nb3.concurrency = 99\n",
        )?;
        let p = problems(load(&options(jail.directory())).unwrap_err());
        let text: Vec<String> = p.iter().map(ToString::to_string).collect();
        let about = |key: &str, words: &[&str]| {
            assert!(
                p.iter()
                    .any(|p| p.key == key && words.iter().all(|w| p.to_string().contains(w))),
                "no problem for {key} saying {words:?} in {text:#?}"
            )
        };
        about(
            "copy.b1.concurrency",
            &["line 2", "\"many\"", "not a number", "expected 1 to 64"],
        );
        about(
            "copy.b1.every",
            &["line 3", "\"soon\"", "expected a duration"],
        );
        about("copy.b1.source", &["missing", "what to copy"]);
        about("copy.b1.target", &["missing", "where to copy it"]);
        about("copy.b2.source", &["line 5", "must be absolute"]);
        about("copy.b3.concurrency", &["line 9", "\"99\"", "from 1 to 64"]);
        assert_eq!(p.len(), 6, "{text:#?}");
        Ok(())
    });
}

#[test]
fn hooks_are_per_job_and_notify_url_and_hook_timeout_are_daemon_keys() {
    Jail::expect_with(|jail| {
        jail.create_file("tahoe-jobs.cfg", SEED)?;
        let config = load(&options(jail.directory())).unwrap();
        assert_eq!(config.hooks, HookSettings::default());
        assert_eq!(config.hooks.timeout.as_secs(), 60);

        jail.create_file(
            "tahoe-jobs.cfg",
            &format!(
                "{SEED}b1.on_failure = /usr/local/bin/alert \"$TAHOE_JOB_ID\"\nb1.on_success = off\n\
                 c1.source = /tmp\nc1.target = backup:c\nc1.on_overdue = echo late\n\
                 [jobs]\nnotify.url = https://hooks.example/T0/secret\nhooks.timeout = 30s\n"
            ),
        )?;
        let config = load(&options(jail.directory())).unwrap();
        assert_eq!(config.hooks.timeout.as_secs(), 30);
        assert_eq!(
            config.hooks.notify_url.as_deref(),
            Some("https://hooks.example/T0/secret")
        );
        let b1 = &config.hooks.commands["copy.b1"];
        assert_eq!(
            b1.on_failure.as_deref(),
            Some("/usr/local/bin/alert \"$TAHOE_JOB_ID\"")
        );
        assert_eq!(b1.on_success, None, "off switches a hook off");
        assert_eq!(
            config.hooks.commands["copy.c1"].on_overdue.as_deref(),
            Some("echo late")
        );
        // The webhook's path is often its secret: shown by host only.
        let shown = config
            .settings
            .iter()
            .find(|s| s.key == "jobs.notify.url")
            .unwrap();
        assert_eq!(shown.value, "https://hooks.example/…");
        assert!(!config.settings.iter().any(|s| s.value.contains("secret")));

        jail.create_file(
            "tahoe-jobs.cfg",
            &format!(
                "{SEED}b1.on_falure = x\n[jobs]\nnotify.url = hooks.example\nhooks.timeout = 0s\n"
            ),
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
        about("copy.b1.on_falure", "did you mean on_failure");
        about("jobs.notify.url", "http:// or https://");
        about("jobs.hooks.timeout", "some time");
        Ok(())
    });
}

#[test]
fn cache_size_has_a_default_and_checked_values() {
    Jail::expect_with(|jail| {
        jail.create_file("tahoe-jobs.cfg", SEED)?;
        let config = load(&options(jail.directory())).unwrap();
        assert_eq!(config.daemon.cache_size, 4 * 1024 * 1024);
        assert!(config
            .settings
            .iter()
            .any(|s| s.key == "jobs.cache_size" && s.value == "4MiB"));

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

#[test]
fn after_names_other_jobs_that_exist_and_never_a_loop() {
    Jail::expect_with(|jail| {
        let jobs = "[copy]\nc1.source = /a\nc1.target = a:b\nc2.source = /a\nc2.target = a:c\n";
        jail.create_file(
            "tahoe-jobs.cfg",
            &format!("{jobs}c2.after = copy.c1, copy.c1\n"),
        )?;
        let config = load(&options(jail.directory())).unwrap();
        let after = |id: &str| config.job(id).unwrap().schedule.after.clone();
        assert_eq!(after("copy.c2"), vec!["copy.c1"]);
        assert!(after("copy.c1").is_empty());

        let cases = [
            (
                "c2.after = copy.c9\n",
                "line 6",
                "there is no job copy.c9; jobs: copy.c1, copy.c2",
            ),
            (
                "c2.after = copy.c2\n",
                "line 6",
                "a job cannot run after itself",
            ),
            ("c2.after = c1\n", "line 6", "\"c1\" is not a job id"),
            (
                "c2.after = copy.c1\nc1.after = copy.c2\n",
                "line 7",
                "in a loop (copy.c1 after copy.c2 after copy.c1)",
            ),
        ];
        for (extra, line, expected) in cases {
            jail.create_file("tahoe-jobs.cfg", &format!("{jobs}{extra}"))?;
            let p = problems(load(&options(jail.directory())).unwrap_err());
            let all: Vec<String> = p.iter().map(|p| p.to_string()).collect();
            assert!(
                all.iter()
                    .any(|t| t.contains(line) && t.contains(".after") && t.contains(expected)),
                "{extra}: {all:#?}"
            );
        }
        Ok(())
    });
}
