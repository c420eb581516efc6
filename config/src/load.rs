//! Layering (defaults < `NODEDIR/tahoe-jobs.cfg` < `--config` TOML < `TAHOE_JOBS_*` < `--set`)
//! into one tree, handed to the validator (`validate.rs`) with the task types' schemas.
//!
//! The merged tree is walked by hand rather than deserialised whole so that every problem can
//! name its origin, key, value and accepted form, and all problems are reported together; a
//! task type's own keys are deserialised with serde, one key at a time first (see
//! [`crate::schema`]).

use std::path::PathBuf;
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use crate::error::ConfigError;
use crate::ini::{insert_dotted, parse_ini, IniProvider};
use crate::model::Config;
use crate::origins::Origins;
use crate::schema::TaskSchema;
use crate::validate::Validator;

/// The name of the job file inside the node directory.
pub const JOB_FILE_NAME: &str = "tahoe-jobs.cfg";
/// The prefix of environment variables.
pub const ENV_PREFIX: &str = "TAHOE_JOBS_";
/// The default address of the status and control web server.
pub const DEFAULT_WEB_ADDR: &str = "127.0.0.1:3457";
/// A job's frequency when none is given.
pub const DEFAULT_FREQUENCY: Duration = Duration::from_secs(86_400);
/// `[jobs] node.timeout` when none is given.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(600);

pub(crate) const OVERRIDE_SOURCE: &str = "command line";

/// Where to read the configuration from.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The Tahoe node directory: `tahoe-jobs.cfg` is read from it, and relative paths (such as `state_dir`) are below it.
    pub node_dir: PathBuf,
    /// An optional TOML file (`--config FILE`).
    pub config_file: Option<PathBuf>,
    /// `--set key=value` flags and other command-line values, highest precedence.
    pub overrides: Vec<(String, String)>,
    /// Read `TAHOE_JOBS_*` from the process environment.
    pub read_env: bool,
    /// The registered task types: a section is accepted for each, and its jobs' own keys are
    /// checked against its schema (the engine's `Registry::schemas` gives them).
    pub task_types: Vec<TaskSchema>,
}

/// Command-line values as a figment provider, so they take part in layering like any source.
#[derive(Debug, Clone)]
struct OverrideProvider(Vec<(String, String)>);

impl Provider for OverrideProvider {
    fn metadata(&self) -> Metadata {
        Metadata::named(OVERRIDE_SOURCE)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, value) in &self.0 {
            insert_dotted(&mut dict, &key.to_lowercase(), Value::from(value.clone()));
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Reads, layers and validates the configuration.
pub fn load(options: &LoadOptions) -> Result<Config, ConfigError> {
    let job_file = options.node_dir.join(JOB_FILE_NAME);
    let ini = match std::fs::read_to_string(&job_file) {
        Ok(text) => {
            let entries = parse_ini(&text).map_err(|e| ConfigError::Syntax {
                path: job_file.clone(),
                line: e.line,
                message: e.message,
            })?;
            Some(IniProvider::new(&job_file, entries))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(ConfigError::Read {
                path: job_file,
                source,
            })
        }
    };
    let mut figment = Figment::new();
    if let Some(ini) = &ini {
        figment = figment.merge(ini.clone());
    }
    if let Some(file) = &options.config_file {
        // figment treats a missing file as empty; a file named on the command line must exist.
        if let Err(source) = std::fs::metadata(file) {
            return Err(ConfigError::Read {
                path: file.clone(),
                source,
            });
        }
        figment = figment.merge(Toml::file(file));
    }
    if options.read_env {
        figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));
    }
    figment = figment.merge(OverrideProvider(options.overrides.clone()));
    let data = Provider::data(&figment).map_err(|e| ConfigError::Merge(Box::new(e)))?;
    let tree = data.get(&Profile::Default).cloned().unwrap_or_default();
    let origins = Origins {
        figment: &figment,
        ini: ini.as_ref(),
    };
    Validator::new(options, origins).validate(&tree)
}
