//! How a task type declares its own keys: a serde struct (`#[serde(deny_unknown_fields)]`, with
//! defaults) that implements [`TaskKeys`], listing each key with its accepted form, default and
//! help. The loader knows only the keys every job has (`frequency`, `allowed_times`, ...); the
//! rest of a section is checked against the [`TaskSchema`] registered under its name.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::text_de::{from_text, TextError};

/// What the loader shows and checks for one key of a task type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDoc {
    /// The key below the job: `source` for `backup.b1.source`.
    pub name: &'static str,
    /// What a value may look like, shown after a bad value: `ALIAS:PATH such as backup:pictures`.
    pub accepted: &'static str,
    /// `None`: the key is required. `Some(text)`: the default as `tahoe-jobs config` shows it;
    /// `{frequency}` in it stands for the job's frequency.
    pub default: Option<&'static str>,
    /// One sentence for users: what the key does (and, for a required key, what to set).
    pub help: &'static str,
}

impl KeyDoc {
    /// A key every job of the type must set.
    pub const fn required(name: &'static str, accepted: &'static str, help: &'static str) -> Self {
        KeyDoc {
            name,
            accepted,
            default: None,
            help,
        }
    }

    /// A key with a default (`default` as shown to users; the value itself is the serde
    /// default of the field).
    pub const fn optional(
        name: &'static str,
        default: &'static str,
        accepted: &'static str,
        help: &'static str,
    ) -> Self {
        KeyDoc {
            name,
            accepted,
            default: Some(default),
            help,
        }
    }
}

/// One problem a task type finds in its keys once they parsed (two keys that contradict each
/// other, a file that does not exist); the loader adds where the value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyProblem {
    /// The key below the job, as in [`KeyDoc::name`].
    pub key: String,
    /// What is wrong and what would be accepted.
    pub message: String,
}

impl KeyProblem {
    /// A problem with `key` (below the job) saying `message`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        KeyProblem {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// What a task type may know about the job whose keys it finishes.
#[derive(Debug, Clone, Copy)]
pub struct JobContext<'a> {
    /// `backup.b1`.
    pub id: &'a str,
    /// The node directory (relative paths in keys are below it).
    pub node_dir: &'a Path,
    /// The job's `frequency`.
    pub frequency: Duration,
    set: &'a BTreeMap<String, String>,
}

impl JobContext<'_> {
    /// Whether the job sets `key` itself (rather than taking the default).
    pub fn is_set(&self, key: &str) -> bool {
        self.set.contains_key(key)
    }

    /// The value of `key` as written, if the job sets it.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.set.get(key).map(String::as_str)
    }
}

/// A task type's keys: a serde struct with `#[serde(deny_unknown_fields)]` and a default on
/// every optional field, plus the list of keys users see.
///
/// ```
/// use tahoe_jobs_config::{JobContext, KeyDoc, KeyProblem, TaskKeys};
///
/// #[derive(Debug, PartialEq, serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct HelloKeys {
///     greeting: String,
///     #[serde(default = "five")]
///     count: u32,
/// }
/// fn five() -> u32 { 5 }
///
/// impl TaskKeys for HelloKeys {
///     fn keys() -> Vec<KeyDoc> {
///         vec![
///             KeyDoc::required("greeting", "any text", "what to say"),
///             KeyDoc::optional("count", "5", "a whole number from 1", "how often to say it"),
///         ]
///     }
///     fn finish(&mut self, _job: &JobContext) -> Result<(), Vec<KeyProblem>> {
///         if self.count == 0 {
///             return Err(vec![KeyProblem::new("count", "must be at least 1")]);
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait TaskKeys: DeserializeOwned + fmt::Debug + PartialEq + Send + Sync + 'static {
    /// Every key the struct reads, in the order `tahoe-jobs config` lists them.
    fn keys() -> Vec<KeyDoc>;

    /// Checks that need more than one key, or the job around them (paths below the node
    /// directory, defaults taken from the frequency). Report every problem, not the first.
    fn finish(&mut self, _job: &JobContext) -> Result<(), Vec<KeyProblem>> {
        Ok(())
    }
}

type ParseFn = dyn Fn(&BTreeMap<String, String>, &JobContext) -> Result<TaskParams, Vec<KeyProblem>>
    + Send
    + Sync;

/// A task type's name and keys, type-erased, as the loader uses them. Built with
/// [`TaskSchema::of`] (the engine's registry does it when a type registers).
#[derive(Clone)]
pub struct TaskSchema {
    name: String,
    keys: Option<Vec<KeyDoc>>,
    parse: Arc<ParseFn>,
}

impl fmt::Debug for TaskSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskSchema({})", self.name)
    }
}

impl TaskSchema {
    /// The schema of task type `name` whose keys are `K`.
    pub fn of<K: TaskKeys>(name: &str) -> Self {
        TaskSchema {
            name: name.to_string(),
            keys: Some(K::keys()),
            parse: Arc::new(parse_keys::<K>),
        }
    }

    /// A task type that takes any key, as text: its factory reads `job.params.texts()`.
    pub fn free_form(name: &str) -> Self {
        TaskSchema {
            name: name.to_string(),
            keys: None,
            parse: Arc::new(|text, _| Ok(TaskParams::text(text.clone()))),
        }
    }

    /// The task type's name, which is also its section name (`backup`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The declared keys; `None` for a free-form type.
    pub fn keys(&self) -> Option<&[KeyDoc]> {
        self.keys.as_deref()
    }

    pub(crate) fn parse(
        &self,
        text: &BTreeMap<String, String>,
        id: &str,
        node_dir: &Path,
        frequency: Duration,
    ) -> Result<TaskParams, Vec<KeyProblem>> {
        let job = JobContext {
            id,
            node_dir,
            frequency,
            set: text,
        };
        (self.parse)(text, &job)
    }
}

/// Checks each key alone first, so every bad value is reported (serde stops at the first), then
/// the missing required keys, then the whole struct and its cross-key checks.
fn parse_keys<K: TaskKeys>(
    text: &BTreeMap<String, String>,
    job: &JobContext,
) -> Result<TaskParams, Vec<KeyProblem>> {
    let docs = K::keys();
    let mut problems = Vec::new();
    for (key, value) in text {
        let one = BTreeMap::from([(key.clone(), value.clone())]);
        match from_text::<K>(&one) {
            Ok(_) | Err(TextError::MissingField(_)) => {}
            Err(TextError::Value(message)) => {
                let accepted = docs.iter().find(|d| d.name == key).map(|d| d.accepted);
                let message = match accepted {
                    Some(a) if !a.is_empty() => format!("{message}; expected {a}"),
                    _ => message,
                };
                problems.push(KeyProblem::new(key, message));
            }
            Err(TextError::UnknownField(_)) => {
                problems.push(KeyProblem::new(key, "unknown key"));
            }
        }
    }
    for doc in docs.iter().filter(|d| d.default.is_none()) {
        if !text.contains_key(doc.name) {
            problems.push(KeyProblem::new(
                doc.name,
                format!("missing; {}: {}", doc.help, doc.accepted),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut keys: K = from_text(text).map_err(|e| {
        let key = match &e {
            TextError::MissingField(k) => k.to_string(),
            TextError::UnknownField(k) => k.clone(),
            TextError::Value(_) => String::new(),
        };
        vec![KeyProblem::new(key, e.to_string())]
    })?;
    keys.finish(job)?;
    Ok(TaskParams {
        text: text.clone(),
        typed: Some(Typed::new(keys)),
    })
}

/// The task-specific part of a job: its keys as written and, for a task type that declared
/// them, the parsed [`TaskKeys`] value.
#[derive(Clone, Default)]
pub struct TaskParams {
    text: BTreeMap<String, String>,
    typed: Option<Typed>,
}

#[derive(Clone)]
struct Typed {
    value: Arc<dyn Any + Send + Sync>,
    eq: fn(&dyn Any, &dyn Any) -> bool,
    debug: fn(&dyn Any, &mut fmt::Formatter<'_>) -> fmt::Result,
}

impl Typed {
    fn new<K: Any + Send + Sync + PartialEq + fmt::Debug>(value: K) -> Self {
        Typed {
            value: Arc::new(value),
            eq: |a, b| match (a.downcast_ref::<K>(), b.downcast_ref::<K>()) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            },
            debug: |v, f| match v.downcast_ref::<K>() {
                Some(v) => v.fmt(f),
                None => f.write_str("?"),
            },
        }
    }
}

impl TaskParams {
    /// No keys.
    pub fn none() -> Self {
        Self::default()
    }

    /// Keys as text only, for a free-form task type.
    pub fn text(text: BTreeMap<String, String>) -> Self {
        TaskParams { text, typed: None }
    }

    /// Parsed keys, built in code (tests, one-shot commands, embedders).
    pub fn typed<K: Any + Send + Sync + PartialEq + fmt::Debug>(keys: K) -> Self {
        TaskParams {
            text: BTreeMap::new(),
            typed: Some(Typed::new(keys)),
        }
    }

    /// The parsed keys, if they are a `K`.
    pub fn get<K: Any>(&self) -> Option<&K> {
        self.typed.as_ref()?.value.downcast_ref::<K>()
    }

    /// The keys as written (`source` -> `/home/u/Pictures`).
    pub fn texts(&self) -> &BTreeMap<String, String> {
        &self.text
    }

    /// The keys as written, to change (tests of free-form task types).
    pub fn texts_mut(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.text
    }
}

impl PartialEq for TaskParams {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
            && match (&self.typed, &other.typed) {
                (None, None) => true,
                (Some(a), Some(b)) => (a.eq)(a.value.as_ref(), b.value.as_ref()),
                _ => false,
            }
    }
}

impl fmt::Debug for TaskParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.typed {
            Some(t) => (t.debug)(t.value.as_ref(), f),
            None => f.debug_map().entries(self.text.iter()).finish(),
        }
    }
}
