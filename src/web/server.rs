//! The HTTP handlers and the actix-web app: `/` and `/metrics` for everyone, everything below
//! `/control/<token>` for whoever has the token, and the same 404 for anything else.

use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpRequest, HttpResponse};
use tahoe_jobs_config::jiff::tz::TimeZone;

use super::actions::{self, Action, Failure, FormBody};
use super::api::ApiReply;
use super::html::{esc, page, Refresh};
use super::redact::hide_caps;
use super::routes::{self, ControlRoute, NoRoute};
use super::security::{self, CSRF_HEADER};
use super::state::WebState;
use super::view::ControlView;
use super::{metrics, pages};

type State = web::Data<WebState>;

/// The largest body a control request may have; forms and API calls are a few hundred bytes.
const MAX_BODY: usize = 64 * 1024;

/// The headers every response carries, 404s included.
pub fn headers() -> DefaultHeaders {
    let mut headers = DefaultHeaders::new();
    for (name, value) in security::common_headers(csp()) {
        headers = headers.add((name, value));
    }
    headers
}

/// The routes; the app adds [`not_found`] as its default service.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(public_page))
        .route("/metrics", web::get().to(metrics_page))
        .route("/control/{token}{rest:.*}", web::route().to(control));
}

/// The Content-Security-Policy, naming the hashes of the pages' only inline style and script.
fn csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let style = super::html::style();
        security::content_security_policy(style, pages::CONTROL_REFRESH_SCRIPT)
    })
}

/// The one "not found" answer: for unknown paths and for wrong or missing tokens alike.
pub async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body("Not Found\n")
}

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(serde_json::to_string_pretty(value).expect("views serialize"))
}

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body)
}

fn unavailable(e: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .content_type("text/plain; charset=utf-8")
        .body(format!("The engine cannot answer: {e}\n"))
}

fn timezone(state: &WebState) -> TimeZone {
    state.config().daemon.timezone.clone()
}

async fn public_page(req: HttpRequest, state: State) -> HttpResponse {
    let view = match state.public_view().await {
        Ok(v) => v,
        Err(e) => return unavailable(e),
    };
    if routes::wants_json(req.query_string()) {
        return json(StatusCode::OK, &view);
    }
    html(StatusCode::OK, pages::public_page(&view, &timezone(&state)))
}

async fn metrics_page(state: State) -> HttpResponse {
    match state.public_view().await {
        Ok(view) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(metrics::render(&view)),
        Err(e) => unavailable(e),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn control(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let token = req.match_info().get("token").unwrap_or("");
    if !state.token.matches(token) {
        return not_found().await;
    }
    // Read only now: a body extractor would answer an oversized or broken body before the token
    // check, and so tell a prober that this path is special.
    let body = match payload.to_bytes_limited(MAX_BODY).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => return HttpResponse::BadRequest().body(format!("the request body: {e}\n")),
        Err(_) => return HttpResponse::PayloadTooLarge().finish(),
    };
    let route = match routes::route(req.method(), req.match_info().get("rest").unwrap_or("")) {
        Ok(route) => route,
        Err(NoRoute::NotFound) => return not_found().await,
        Err(NoRoute::MethodNotAllowed) => {
            return HttpResponse::MethodNotAllowed()
                .content_type("text/plain; charset=utf-8")
                .body("Method Not Allowed: this address changes things only by POST\n")
        }
    };
    let home = format!("/control/{}/", state.token.as_str());
    match route {
        ControlRoute::AddSlash => HttpResponse::PermanentRedirect()
            .insert_header((header::LOCATION, home))
            .finish(),
        ControlRoute::Page => {
            let view = match state.control_view().await {
                Ok(v) => v,
                Err(e) => return unavailable(e),
            };
            if routes::wants_json(req.query_string()) {
                return json(StatusCode::OK, &view);
            }
            let page = pages::control_page(&view, &timezone(&state), &state.token.csrf());
            html(StatusCode::OK, page)
        }
        ControlRoute::ApiStatus => match state.control_view().await {
            Ok(view) => json::<ControlView>(StatusCode::OK, &view),
            Err(e) => unavailable(e),
        },
        ControlRoute::Form(subject, verb) => {
            let refused =
                |status: StatusCode, message: &str| html(status, error_page(&home, message));
            if let Err(why) = check_origin(&req) {
                return refused(StatusCode::FORBIDDEN, &why);
            }
            let form: FormBody = match serde_urlencoded::from_bytes(&body) {
                Ok(f) => f,
                Err(e) => return refused(StatusCode::BAD_REQUEST, &format!("the form: {e}")),
            };
            if !state.token.csrf_matches(&form.csrf) {
                return refused(
                    StatusCode::FORBIDDEN,
                    "the form's CSRF token is missing or wrong; reload the control page",
                );
            }
            let done = match actions::from_form(&subject, verb, &form) {
                Ok(action) => run(&state, action).await,
                Err(f) => Err(f),
            };
            match done {
                Ok(_) => HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, home))
                    .finish(),
                Err(f) => refused(f.status, &f.message),
            }
        }
        ControlRoute::Api(subject, verb) => {
            let reply = |status: StatusCode, ok: bool, message: String| {
                json(status, &ApiReply { ok, message })
            };
            if let Err(why) = check_origin(&req) {
                return reply(StatusCode::FORBIDDEN, false, why);
            }
            let csrf = header(req.headers(), CSRF_HEADER).unwrap_or("");
            if !state.token.csrf_matches(csrf) {
                return reply(
                    StatusCode::FORBIDDEN,
                    false,
                    format!("the {CSRF_HEADER} header is missing or wrong"),
                );
            }
            let done = match actions::from_api(&subject, verb, &body) {
                Ok(action) => run(&state, action).await,
                Err(f) => Err(f),
            };
            match done {
                Ok(message) => reply(StatusCode::OK, true, message),
                Err(f) => reply(f.status, false, f.message),
            }
        }
    }
}

fn check_origin(req: &HttpRequest) -> Result<(), String> {
    let h = req.headers();
    security::same_origin(header(h, "origin"), header(h, "referer"), header(h, "host"))
        .map_err(|r| format!("refused: {}", r.0))
}

async fn run(state: &WebState, action: Action) -> Result<String, Failure> {
    let result = actions::perform(&state.engine, action).await;
    match &result {
        // Values the user typed could hold anything, a capability included.
        Ok(message) => tracing::info!("control: {}", hide_caps(message)),
        Err(f) => tracing::info!(
            status = f.status.as_u16(),
            "control refused: {}",
            hide_caps(&f.message)
        ),
    }
    result
}

fn error_page(home: &str, message: &str) -> String {
    page(
        "tahoe-jobs control: not done",
        Refresh::None,
        &format!(
            "<h1>Not done</h1><p>{}</p><p><a href=\"{}\">Back to the control page</a></p>",
            esc(message),
            esc(home)
        ),
    )
}
