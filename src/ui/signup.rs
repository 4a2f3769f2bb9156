//! The hosted sign-up page `/sign-up` (issue 3): a plain HTML form (no JavaScript
//! needed), CSRF-protected like the login form, in front of the same core as
//! `POST /api/auth/sign-up/email` (`signup::sign_up`). Errors are shown inline with the
//! values kept (never the password). `return_to` may carry a local path to continue to
//! (the login page passes its own URL).
//!
//! No enumeration: unless `api_auth.auto_sign_in` is on, a new address and one that
//! has an account both end on the same "registration received" page.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::app::State;
use crate::config::{SignUpMode, UserFieldType};
use crate::http::pages::{error_page, render};
use crate::http::params::{Params, form_body};
use crate::signup::{self, Outcome, SignUpError};
use crate::ui::session as browser;

/// The CSRF purpose and object of this form (it acts on no existing object).
const CSRF_PURPOSE: &str = "sign-up";
const CSRF_OBJECT: &str = "sign-up";

/// One custom field as a form control.
pub struct FieldView {
    pub name: String,
    pub label: String,
    /// `text`, `number`, `checkbox` or `select`.
    pub kind: &'static str,
    pub required: bool,
    pub value: String,
    pub checked: bool,
    pub options: Vec<String>,
    pub max_length: Option<usize>,
    pub min: Option<String>,
    pub max: Option<String>,
    pub invalid: bool,
}

#[derive(Template)]
#[template(path = "sign_up.html")]
pub struct SignUpPage<'a> {
    pub lang: &'a str,
    pub base: &'a str,
    pub disabled: bool,
    pub csrf_token: &'a str,
    pub return_to: Option<&'a str>,
    pub error: Option<&'a str>,
    /// The form control the error is about ("" for none).
    pub error_field: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    pub min_length: usize,
    pub max_length: usize,
    pub password_hint: String,
    pub fields: Vec<FieldView>,
    pub invite: bool,
    pub invite_code: &'a str,
    pub terms_version: Option<&'a str>,
    pub terms_url: Option<&'a str>,
    pub terms_checked: bool,
}

#[derive(Template)]
#[template(path = "signed_up.html")]
pub struct SignedUpPage<'a> {
    pub lang: &'a str,
    pub base: &'a str,
    pub signed_in: bool,
    pub return_to: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct SignUpQuery {
    return_to: Option<String>,
}

/// A local path to continue to: starts with one `/`, no backslash, no control
/// characters (so never another site, RFC 9700 §4.11 open redirector).
pub fn local_path(p: Option<&str>) -> Option<&str> {
    p.filter(|p| {
        p.starts_with('/')
            && !p.starts_with("//")
            && !p.contains('\\')
            && !p.chars().any(char::is_control)
            && p.len() <= 2048
    })
}

/// What the form shows: the values sent so far and the error, if any.
#[derive(Default)]
struct Shown<'a> {
    params: Option<&'a Params>,
    error: Option<&'a str>,
    error_field: &'a str,
    return_to: Option<&'a str>,
}

fn password_hint(state: &State) -> String {
    let p = &state.config.password_policy;
    let mut parts = vec![format!("{} to {} characters", p.min_length, p.max_length)];
    for (on, what) in [
        (p.require_lowercase, "a lower-case letter"),
        (p.require_uppercase, "an upper-case letter"),
        (p.require_digit, "a digit"),
        (p.require_symbol, "a symbol"),
    ] {
        if on {
            parts.push(what.to_string());
        }
    }
    let mut s = format!("Use {}", parts.join(", "));
    if p.forbid_email {
        s.push_str("; not your email address");
    }
    s.push('.');
    s
}

fn field_views(state: &State, shown: &Shown) -> Vec<FieldView> {
    let get = |k: &str| shown.params.and_then(|p| p.get(k)).unwrap_or("");
    state
        .config
        .sign_up
        .fields
        .iter()
        .filter(|f| f.input)
        .map(|f| {
            let default = f.default.as_ref();
            let value = match shown.params {
                Some(_) => get(&f.name).to_string(),
                None => match default {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => String::new(),
                },
            };
            let checked = match shown.params {
                Some(_) => get(&f.name) == "true",
                None => default == Some(&Value::Bool(true)),
            };
            FieldView {
                name: f.name.clone(),
                label: f.label.clone().unwrap_or_else(|| f.name.clone()),
                kind: match f.kind {
                    UserFieldType::String => "text",
                    UserFieldType::Number => "number",
                    UserFieldType::Boolean => "checkbox",
                    UserFieldType::Enum => "select",
                },
                required: f.required && f.default.is_none(),
                value,
                checked,
                options: f.values.clone(),
                max_length: (f.kind == UserFieldType::String).then(|| {
                    f.max_length
                        .unwrap_or(crate::user_fields::DEFAULT_STRING_MAX)
                }),
                min: f.min.map(|m| m.to_string()),
                max: f.max.map(|m| m.to_string()),
                invalid: shown.error_field == f.name,
            }
        })
        .collect()
}

/// The form, fresh or after a refused attempt (`status`), with the browser cookie set
/// when this browser had none.
fn form_page(state: &State, headers: &HeaderMap, status: StatusCode, shown: Shown) -> Response {
    let (bid, set_cookie) = browser::browser_id(state, headers);
    let csrf = browser::csrf_token(state, CSRF_PURPOSE, CSRF_OBJECT, &bid);
    let base = state.config.issuer_path();
    let cfg = &state.config.sign_up;
    let get = |k: &str| shown.params.and_then(|p| p.get(k)).unwrap_or("");
    let page = SignUpPage {
        lang: "en",
        base: &base,
        disabled: cfg.mode == SignUpMode::Disabled,
        csrf_token: &csrf,
        return_to: shown.return_to,
        error: shown.error,
        error_field: shown.error_field,
        name: get("name"),
        email: get("email"),
        min_length: state.config.password_policy.min_length,
        max_length: state.config.password_policy.max_length,
        password_hint: password_hint(state),
        fields: field_views(state, &shown),
        invite: cfg.mode == SignUpMode::InviteOnly,
        invite_code: get("invite_code"),
        terms_version: cfg.terms_version.as_deref(),
        terms_url: cfg.terms_url.as_deref(),
        terms_checked: get("accept_terms") == "true",
    };
    let status = if page.disabled {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    let mut resp = render(status, &page);
    if let Some(c) = set_cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// `GET /sign-up[?return_to=/local/path]`.
pub async fn show(
    AxState(state): AxState<State>,
    headers: HeaderMap,
    Query(q): Query<SignUpQuery>,
) -> Response {
    let shown = Shown {
        return_to: local_path(q.return_to.as_deref()),
        ..Shown::default()
    };
    form_page(&state, &headers, StatusCode::OK, shown)
}

/// The custom fields of the form as the JSON the core validates: text as strings,
/// numbers parsed (a value that is not one stays a string, refused by type), a
/// checkbox `true` when ticked and `false` otherwise.
fn form_fields(state: &State, p: &Params) -> Map<String, Value> {
    let mut m = Map::new();
    for f in state.config.sign_up.fields.iter().filter(|f| f.input) {
        let raw = p.get(&f.name);
        let v = match f.kind {
            UserFieldType::Boolean => Some(Value::Bool(raw == Some("true"))),
            UserFieldType::Number => raw.map(|r| {
                r.trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(|n| {
                        if n.fract() == 0.0 && n.abs() < 9.0e15 {
                            Some(Value::from(n as i64))
                        } else {
                            serde_json::Number::from_f64(n).map(Value::Number)
                        }
                    })
                    .unwrap_or_else(|| Value::String(r.to_string()))
            }),
            UserFieldType::String | UserFieldType::Enum => {
                raw.map(|r| Value::String(r.to_string()))
            }
        };
        if let Some(v) = v {
            m.insert(f.name.clone(), v);
        }
    }
    m
}

/// 400 for a breached password, 503 when the check could not be made (fail-closed).
fn breach_status(b: &crate::breach::BreachError) -> StatusCode {
    match b {
        crate::breach::BreachError::Compromised => StatusCode::BAD_REQUEST,
        crate::breach::BreachError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The message and the form control of a refusal, and its status.
fn refusal(e: &SignUpError) -> (StatusCode, String, String) {
    let bad = StatusCode::BAD_REQUEST;
    let (status, msg, field): (StatusCode, String, &str) = match e {
        SignUpError::Disabled => (bad, "New accounts cannot be created here.".into(), ""),
        SignUpError::InviteRequired => (
            StatusCode::FORBIDDEN,
            "An invite code is required to create an account.".into(),
            "invite_code",
        ),
        SignUpError::InvalidInvite => (
            StatusCode::FORBIDDEN,
            "This invite code is not valid, has expired or was already used.".into(),
            "invite_code",
        ),
        SignUpError::InvalidEmail => (bad, "Enter a valid email address.".into(), "email"),
        SignUpError::Password(v) => (bad, format!("{v}."), "password"),
        SignUpError::Breach(b) => (breach_status(b), format!("{b}."), "password"),
        SignUpError::Field(f) => {
            let label = f.field.as_str();
            return (bad, format!("{label}: {}.", f.message), f.field.clone());
        }
        SignUpError::Invalid(m) if m.contains("body.name") => {
            (bad, "The name is too long.".into(), "name")
        }
        SignUpError::Invalid(m) => (bad, m.clone(), ""),
        SignUpError::TermsNotAccepted => (
            bad,
            "Accept the terms of service to create an account.".into(),
            "accept_terms",
        ),
        SignUpError::AlreadyExists => (
            bad,
            "An account with this email address already exists.".into(),
            "email",
        ),
        SignUpError::Failed(_) | SignUpError::Db(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The account could not be created. Try again later.".into(),
            "",
        ),
    };
    (status, msg, field.to_string())
}

/// `POST /sign-up` (form): CSRF, then `signup::sign_up`.
pub async fn submit(
    AxState(state): AxState<State>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let base = state.config.issuer_path();
    let p = match form_body(&headers, &body) {
        Ok(p) => p,
        Err(e) => return error_page(&base, StatusCode::BAD_REQUEST, e.error, &e.description),
    };
    let bid = crate::http::cookies::get(&state.config, &headers, crate::http::cookies::BROWSER);
    let csrf_ok = bid.is_some_and(|b| {
        browser::check_csrf(
            &state,
            CSRF_PURPOSE,
            CSRF_OBJECT,
            &b,
            p.get("csrf_token").unwrap_or(""),
        )
    });
    if !csrf_ok {
        return error_page(
            &base,
            StatusCode::FORBIDDEN,
            "invalid_request",
            "the form expired or was not sent by this page; go back and try again",
        );
    }
    let return_to = local_path(p.get("return_to"));
    if let Err(e) = crate::captcha::check_form(&state, "/sign-up", peer, &headers, &p).await {
        let msg = format!("{e}.");
        let shown = Shown {
            params: Some(&p),
            error: Some(&msg),
            error_field: "",
            return_to,
        };
        return form_page(&state, &headers, e.status(), shown);
    }
    let terms = state.config.sign_up.terms_version.as_deref();
    // The box counts for the version the page showed; if the terms changed meanwhile,
    // the new ones have to be accepted.
    let accept_terms = p.get("accept_terms") == Some("true") && p.get("terms_version") == terms;
    let req = signup::Request {
        name: p.get("name").unwrap_or("").to_string(),
        email: p.get("email").unwrap_or("").trim().to_string(),
        password: p.get("password").unwrap_or("").to_string(),
        image: None,
        body: form_fields(&state, &p),
        accept_terms,
        invite_code: p.get("invite_code").map(String::from),
    };
    // With required verification a new account must not be signed in.
    let auto = state.config.api_auth.auto_sign_in && !state.config.email_verification.require;
    let outcome = match signup::sign_up(&state, &req, auto).await {
        Ok(o) => o,
        Err(e) => {
            if let SignUpError::Failed(m) = &e {
                tracing::warn!(error = %m, "sign-up failed");
            } else if let SignUpError::Db(d) = &e {
                tracing::error!(error = %d, "sign-up failed");
            }
            let (status, msg, field) = refusal(&e);
            let shown = Shown {
                params: Some(&p),
                error: Some(&msg),
                error_field: &field,
                return_to,
            };
            return form_page(&state, &headers, status, shown);
        }
    };
    if let Outcome::Created(user) = &outcome {
        // The verification mail, as for `sign-up/email` (no callbackURL: the link
        // leads to the hosted /verify-email page).
        crate::email_verification::after_sign_up(&state, &headers, user, None).await;
    }
    match outcome {
        Outcome::Created(user) if auto => {
            signed_in(&state, peer, &headers, &user, return_to, &base).await
        }
        _ => render(
            StatusCode::OK,
            &SignedUpPage {
                lang: "en",
                base: &base,
                signed_in: false,
                return_to,
            },
        ),
    }
}

/// `auto_sign_in`: a session as the login page starts it, then on to `return_to`.
async fn signed_in(
    state: &State,
    peer: std::net::SocketAddr,
    headers: &HeaderMap,
    user: &crate::store::users::User,
    return_to: Option<&str>,
    base: &str,
) -> Response {
    // As on the login page, a new session replaces the browser's previous one.
    if let Ok(Some((old, _))) = browser::current(state, headers).await {
        let _ = browser::end(state, &old.user_id, &old.sid, "replaced").await;
    }
    let ip = crate::http::client_ip(headers, Some(peer), &state.config.proxy);
    let started = match browser::begin(
        state,
        user,
        vec!["pwd".into()],
        ip,
        crate::http::user_agent(headers),
        true,
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "session after sign-up failed");
            return error_page(
                base,
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "your account was created, but you could not be signed in; sign in to continue",
            );
        }
    };
    let mut resp = match return_to {
        Some(r) => crate::oauth::authorize::response::redirect(r),
        None => render(
            StatusCode::OK,
            &SignedUpPage {
                lang: "en",
                base,
                signed_in: true,
                return_to: None,
            },
        ),
    };
    resp.headers_mut()
        .append(header::SET_COOKIE, started.cookie);
    resp
}
