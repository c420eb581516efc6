//! What a path below `/control/<token>` asks for, once the token has been checked. A pure
//! function of the method and the rest of the path, so the routing is tested without a server.
//!
//! Routing by hand rather than with actix routes keeps one rule simple: every request under
//! `/control/` is first checked for the token and answered 404 when it is wrong, whatever its
//! method, body or path, before anything else can answer differently.

use actix_web::http::Method;

/// What a POST acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Job(String),
    Budget,
}

/// What a POST does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Pause,
    Resume,
    Run,
    /// Form: set a live value.
    Set,
    /// Form: back to the file's value.
    Reset,
    /// API: set or reset a live value.
    Override,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlRoute {
    /// `/control/<token>` without the slash: redirect to the page.
    AddSlash,
    /// `GET /control/<token>/`, HTML or `?t=json`.
    Page,
    /// `GET /control/<token>/api/status`.
    ApiStatus,
    /// A form post from the control page.
    Form(Subject, Verb),
    /// A JSON post to the private API.
    Api(Subject, Verb),
}

/// Why no route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRoute {
    NotFound,
    MethodNotAllowed,
}

/// Routes `rest`, the path after `/control/<token>`.
pub fn route(method: &Method, rest: &str) -> Result<ControlRoute, NoRoute> {
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    let want = |ok: bool, r: ControlRoute| {
        if ok {
            Ok(r)
        } else {
            Err(NoRoute::MethodNotAllowed)
        }
    };
    if rest.is_empty() {
        return want(get, ControlRoute::AddSlash);
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Err(NoRoute::NotFound);
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [""] => want(get, ControlRoute::Page),
        ["api", "status"] => want(get, ControlRoute::ApiStatus),
        ["api", "jobs", job, verb] if !job.is_empty() => {
            let verb = match *verb {
                "pause" => Verb::Pause,
                "resume" => Verb::Resume,
                "run" => Verb::Run,
                "override" => Verb::Override,
                _ => return Err(NoRoute::NotFound),
            };
            want(post, ControlRoute::Api(Subject::Job(job.to_string()), verb))
        }
        ["api", "budget", "override"] => {
            want(post, ControlRoute::Api(Subject::Budget, Verb::Override))
        }
        ["jobs", job, verb] if !job.is_empty() => {
            let verb = match *verb {
                "pause" => Verb::Pause,
                "resume" => Verb::Resume,
                "run" => Verb::Run,
                "set" => Verb::Set,
                "reset" => Verb::Reset,
                _ => return Err(NoRoute::NotFound),
            };
            want(
                post,
                ControlRoute::Form(Subject::Job(job.to_string()), verb),
            )
        }
        ["budget", verb] => {
            let verb = match *verb {
                "set" => Verb::Set,
                "reset" => Verb::Reset,
                _ => return Err(NoRoute::NotFound),
            };
            want(post, ControlRoute::Form(Subject::Budget, verb))
        }
        _ => Err(NoRoute::NotFound),
    }
}

/// Whether a query string asks for the JSON form (`t=json`, as Tahoe's pages do).
pub fn wants_json(query: &str) -> bool {
    query.split('&').any(|pair| pair == "t=json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_posts_route() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(route(&get, ""), Ok(ControlRoute::AddSlash));
        assert_eq!(route(&get, "/"), Ok(ControlRoute::Page));
        assert_eq!(route(&get, "/api/status"), Ok(ControlRoute::ApiStatus));
        assert_eq!(
            route(&post, "/jobs/backup.b1/pause"),
            Ok(ControlRoute::Form(
                Subject::Job("backup.b1".into()),
                Verb::Pause
            ))
        );
        assert_eq!(
            route(&post, "/budget/reset"),
            Ok(ControlRoute::Form(Subject::Budget, Verb::Reset))
        );
        assert_eq!(
            route(&post, "/api/jobs/b1/run"),
            Ok(ControlRoute::Api(Subject::Job("b1".into()), Verb::Run))
        );
        assert_eq!(
            route(&post, "/api/budget/override"),
            Ok(ControlRoute::Api(Subject::Budget, Verb::Override))
        );
    }

    #[test]
    fn get_never_reaches_an_action() {
        for path in ["/jobs/b1/pause", "/api/jobs/b1/run", "/budget/set"] {
            assert_eq!(route(&Method::GET, path), Err(NoRoute::MethodNotAllowed));
        }
        assert_eq!(route(&Method::POST, "/"), Err(NoRoute::MethodNotAllowed));
    }

    #[test]
    fn anything_else_is_not_found() {
        for path in [
            "x",
            "/nope",
            "/jobs//pause",
            "/jobs/b1/explode",
            "/api",
            "/api/status/x",
        ] {
            assert_eq!(route(&Method::POST, path), Err(NoRoute::NotFound), "{path}");
        }
    }

    #[test]
    fn json_is_asked_for_with_t_json() {
        assert!(wants_json("t=json"));
        assert!(wants_json("a=1&t=json"));
        assert!(!wants_json("t=jsonx"));
        assert!(!wants_json(""));
    }
}
