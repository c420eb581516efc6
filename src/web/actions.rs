//! The controls: what a form post or an API call asks the engine to do, parsed into an
//! [`Action`], carried out, and answered with a sentence for the user.

use std::time::Duration;

use actix_web::http::StatusCode;
use serde::Deserialize;
use tahoe_jobs_config::HumanDuration;
use tahoe_jobs_engine::{EngineError, EngineHandle, OverrideTarget};

use super::api::{OverrideRequest, PauseRequest, RunRequest};
use super::routes::{Subject, Verb};

/// One control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Pause {
        job: String,
        for_: Option<Duration>,
    },
    Resume {
        job: String,
    },
    Run {
        job: String,
        ignore_window: bool,
    },
    /// `value: None` goes back to the file's value.
    Override {
        target: OverrideTarget,
        key: String,
        value: Option<String>,
    },
}

/// Why an action was not carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: StatusCode,
    pub message: String,
}

fn bad(message: impl Into<String>) -> Failure {
    Failure {
        status: StatusCode::BAD_REQUEST,
        message: message.into(),
    }
}

/// The fields of the control page's forms (each form sends some of them).
#[derive(Debug, Default, Deserialize)]
pub struct FormBody {
    #[serde(default)]
    pub csrf: String,
    #[serde(rename = "for", default)]
    pub for_: Option<String>,
    #[serde(default)]
    pub ignore_window: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

fn parse_for(text: Option<&str>) -> Result<Option<Duration>, Failure> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => t
            .parse::<HumanDuration>()
            .map(|d| Some(d.as_duration()))
            .map_err(|e| bad(format!("pause for {t:?}: {e} (write it like 2h or 30min)"))),
    }
}

fn target(subject: &Subject) -> OverrideTarget {
    match subject {
        Subject::Job(job) => OverrideTarget::Job(job.clone()),
        Subject::Budget => OverrideTarget::Budget,
    }
}

fn job_of(subject: &Subject) -> Result<String, Failure> {
    match subject {
        Subject::Job(job) => Ok(job.clone()),
        Subject::Budget => Err(bad("this applies to jobs only")),
    }
}

fn required_key(key: Option<&str>) -> Result<String, Failure> {
    key.map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .ok_or_else(|| bad("which setting? the key is missing"))
}

/// The action a form post asks for.
pub fn from_form(subject: &Subject, verb: Verb, form: &FormBody) -> Result<Action, Failure> {
    Ok(match verb {
        Verb::Pause => Action::Pause {
            job: job_of(subject)?,
            for_: parse_for(form.for_.as_deref())?,
        },
        Verb::Resume => Action::Resume {
            job: job_of(subject)?,
        },
        Verb::Run => Action::Run {
            job: job_of(subject)?,
            ignore_window: form.ignore_window.is_some(),
        },
        Verb::Set => Action::Override {
            target: target(subject),
            key: required_key(form.key.as_deref())?,
            value: Some(form.value.clone().unwrap_or_default()),
        },
        Verb::Reset | Verb::Override => Action::Override {
            target: target(subject),
            key: required_key(form.key.as_deref())?,
            value: None,
        },
    })
}

/// The action an API call asks for; `body` is its JSON (may be empty where nothing is needed).
pub fn from_api(subject: &Subject, verb: Verb, body: &[u8]) -> Result<Action, Failure> {
    fn json<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, Failure> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        serde_json::from_slice(body).map_err(|e| bad(format!("the request body: {e}")))
    }
    Ok(match verb {
        Verb::Pause => {
            let r: PauseRequest = json(body)?;
            Action::Pause {
                job: job_of(subject)?,
                for_: parse_for(r.for_.as_deref())?,
            }
        }
        Verb::Resume => Action::Resume {
            job: job_of(subject)?,
        },
        Verb::Run => {
            let r: RunRequest = json(body)?;
            Action::Run {
                job: job_of(subject)?,
                ignore_window: r.ignore_window,
            }
        }
        Verb::Override | Verb::Set | Verb::Reset => {
            let r: OverrideRequest =
                serde_json::from_slice(body).map_err(|e| bad(format!("the request body: {e}")))?;
            Action::Override {
                target: target(subject),
                key: required_key(Some(&r.key))?,
                value: r.value,
            }
        }
    })
}

fn failure(e: EngineError) -> Failure {
    let status = match &e {
        EngineError::UnknownJob { .. } => StatusCode::NOT_FOUND,
        EngineError::AmbiguousJob { .. } | EngineError::Override(_) => StatusCode::BAD_REQUEST,
        EngineError::Paused(_) => StatusCode::CONFLICT,
        EngineError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    Failure {
        status,
        message: e.to_string(),
    }
}

/// Carries out `action`; answers what was done.
pub async fn perform(engine: &EngineHandle, action: Action) -> Result<String, Failure> {
    match action {
        Action::Pause { job, for_ } => {
            engine.pause(&job, for_).await.map_err(failure)?;
            Ok(match for_ {
                Some(d) => format!("paused {job} for {}", HumanDuration(d)),
                None => format!("paused {job} until resumed"),
            })
        }
        Action::Resume { job } => {
            engine.resume(&job).await.map_err(failure)?;
            Ok(format!("resumed {job}"))
        }
        Action::Run { job, ignore_window } => {
            engine.run_now(&job, ignore_window).await.map_err(failure)?;
            Ok(if ignore_window {
                format!("{job} runs now, whatever its window")
            } else {
                format!("{job} runs as soon as its window is open")
            })
        }
        Action::Override { target, key, value } => {
            let what = match &target {
                OverrideTarget::Job(job) => format!("{job} {key}"),
                OverrideTarget::Budget => format!("[budget] {key}"),
            };
            engine
                .set_override(target, &key, value.as_deref())
                .await
                .map_err(failure)?;
            Ok(match value {
                Some(v) => format!("{what} = {} (changed live)", v.trim()),
                None => format!("{what} is back to the file's value"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Subject {
        Subject::Job("backup.b1".into())
    }

    #[test]
    fn forms_parse_into_actions() {
        let form = FormBody {
            for_: Some(" 2h ".into()),
            ..FormBody::default()
        };
        assert_eq!(
            from_form(&job(), Verb::Pause, &form),
            Ok(Action::Pause {
                job: "backup.b1".into(),
                for_: Some(Duration::from_secs(7200))
            })
        );
        let form = FormBody {
            for_: Some("".into()),
            ..FormBody::default()
        };
        assert!(matches!(
            from_form(&job(), Verb::Pause, &form),
            Ok(Action::Pause { for_: None, .. })
        ));
        let form = FormBody {
            ignore_window: Some("1".into()),
            ..FormBody::default()
        };
        assert!(matches!(
            from_form(&job(), Verb::Run, &form),
            Ok(Action::Run {
                ignore_window: true,
                ..
            })
        ));
        let form = FormBody {
            key: Some("upload".into()),
            value: Some("1MiB/s".into()),
            ..FormBody::default()
        };
        assert_eq!(
            from_form(&Subject::Budget, Verb::Set, &form),
            Ok(Action::Override {
                target: OverrideTarget::Budget,
                key: "upload".into(),
                value: Some("1MiB/s".into())
            })
        );
        assert!(matches!(
            from_form(&Subject::Budget, Verb::Reset, &form),
            Ok(Action::Override { value: None, .. })
        ));
    }

    #[test]
    fn bad_input_says_what_is_wrong() {
        let form = FormBody {
            for_: Some("soon".into()),
            ..FormBody::default()
        };
        let e = from_form(&job(), Verb::Pause, &form).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("2h"), "{}", e.message);
        assert!(from_form(&Subject::Budget, Verb::Pause, &FormBody::default()).is_err());
        assert!(from_form(&job(), Verb::Set, &FormBody::default()).is_err());
        assert!(from_api(&job(), Verb::Pause, b"{not json").is_err());
    }

    #[test]
    fn api_bodies_parse_and_may_be_empty() {
        assert!(matches!(
            from_api(&job(), Verb::Pause, b""),
            Ok(Action::Pause { for_: None, .. })
        ));
        assert!(matches!(
            from_api(&job(), Verb::Run, br#"{"ignore_window":true}"#),
            Ok(Action::Run {
                ignore_window: true,
                ..
            })
        ));
        assert_eq!(
            from_api(&job(), Verb::Override, br#"{"key":"cpu","value":null}"#),
            Ok(Action::Override {
                target: OverrideTarget::Job("backup.b1".into()),
                key: "cpu".into(),
                value: None
            })
        );
    }
}
