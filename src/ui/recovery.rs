//! The hosted account-recovery pages (issue 3), server-rendered and working without
//! JavaScript: `/forgot-password` (asks for a reset link), `/reset-password?token=`
//! (sets a new password), `/verify-email?token=` (confirms an address). Forms carry a
//! CSRF token bound to the browser (`ui::session::csrf_token`), as the login form does.
//! The work is done by `crate::password_change` and `crate::email_verification`, the
//! same code as behind `/api/auth`.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::State;
use crate::crypto;
use crate::email_verification as ev;
use crate::http::pages::render;
use crate::http::params::form_body;
use crate::password_change;
use crate::store::verifications::Rejected;
use crate::ui::session as browser;

const FORGOT: &str = "forgot-password";
const RESET: &str = "reset-password";
const CSRF_FAILED: &str = "The form expired or was not sent by this page. Please try again.";

#[derive(Template)]
#[template(path = "forgot_password.html")]
struct ForgotPage<'a> {
    lang: &'a str,
    base: &'a str,
    csrf_token: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    sent: bool,
    minutes: i64,
}

#[derive(Template)]
#[template(path = "reset_password.html")]
struct ResetPage<'a> {
    lang: &'a str,
    base: &'a str,
    token: &'a str,
    csrf_token: &'a str,
    error: Option<&'a str>,
    invalid: bool,
    done: bool,
    min: usize,
    max: usize,
}

#[derive(Template)]
#[template(path = "verify_email.html")]
struct VerifyPage<'a> {
    lang: &'a str,
    base: &'a str,
    verified: bool,
    expired: bool,
}

fn param(raw: Option<&str>, key: &str) -> Option<String> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// The page with the browser-binding cookie added when it was just created.
fn with_browser_cookie(mut r: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// The generic failure page: storage errors are logged, never shown.
fn failure(state: &State, e: crate::error::Error) -> Response {
    tracing::error!(error = %e, "recovery page failed");
    crate::http::pages::error_page(
        &state.config.issuer_path(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "The server could not complete the request. Please try again later.",
    )
}

fn forgot_page(
    state: &State,
    bid: &str,
    status: StatusCode,
    email: &str,
    error: Option<&str>,
    sent: bool,
) -> Response {
    let base = state.config.issuer_path();
    let csrf = browser::csrf_token(state, FORGOT, "", bid);
    render(
        status,
        &ForgotPage {
            lang: "en",
            base: &base,
            csrf_token: &csrf,
            email,
            error,
            sent,
            minutes: (state.config.password_reset.token_ttl + 59) / 60,
        },
    )
}

/// `GET /forgot-password`: the email form.
pub async fn forgot_show(AxState(state): AxState<State>, headers: HeaderMap) -> Response {
    let (bid, cookie) = browser::browser_id(&state, &headers);
    with_browser_cookie(
        forgot_page(&state, &bid, StatusCode::OK, "", None, false),
        cookie,
    )
}

/// `POST /forgot-password` (`email`, `csrf_token`): what `request-password-reset` does,
/// answered with the same page for known and unknown addresses.
pub async fn forgot_submit(
    AxState(state): AxState<State>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (bid, cookie) = browser::browser_id(&state, &headers);
    let page = |status: StatusCode, email: &str, error: Option<&str>, sent: bool| {
        with_browser_cookie(
            forgot_page(&state, &bid, status, email, error, sent),
            cookie.clone(),
        )
    };
    let p = match form_body(&headers, &body) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let email = p.get("email").unwrap_or("").trim();
    if !browser::check_csrf(&state, FORGOT, "", &bid, p.get("csrf_token").unwrap_or("")) {
        return page(StatusCode::BAD_REQUEST, email, Some(CSRF_FAILED), false);
    }
    if crate::api::sign::check_email(email).is_err() {
        return page(
            StatusCode::BAD_REQUEST,
            email,
            Some("Please enter a valid email address."),
            false,
        );
    }
    match password_change::request_reset(&state, &headers, email, None).await {
        Ok(()) => page(StatusCode::OK, "", None, true),
        Err(e) => failure(&state, e),
    }
}

#[allow(clippy::too_many_arguments)]
fn reset_page(
    state: &State,
    bid: &str,
    status: StatusCode,
    token: &str,
    error: Option<&str>,
    invalid: bool,
    done: bool,
) -> Response {
    let base = state.config.issuer_path();
    // Bound to the token (by its hash) and the browser.
    let csrf = browser::csrf_token(state, RESET, &crypto::hash_secret(token), bid);
    render(
        status,
        &ResetPage {
            lang: "en",
            base: &base,
            token,
            csrf_token: &csrf,
            error,
            invalid,
            done,
            min: state.config.password_policy.min_length,
            max: state.config.password_policy.max_length,
        },
    )
}

/// `GET /reset-password?token=`: the new-password form, or a clear error for a link
/// that is invalid, used or expired (also `?error=INVALID_TOKEN`, where the API's
/// callback sends a dead link).
pub async fn reset_show(
    AxState(state): AxState<State>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (bid, cookie) = browser::browser_id(&state, &headers);
    let token = param(raw.as_deref(), "token").unwrap_or_default();
    let open = if token.is_empty() {
        false
    } else {
        match password_change::check_token(&state, &token).await {
            Ok(r) => r.is_ok(),
            Err(e) => return failure(&state, e),
        }
    };
    let r = if open {
        reset_page(&state, &bid, StatusCode::OK, &token, None, false, false)
    } else {
        reset_page(&state, &bid, StatusCode::BAD_REQUEST, "", None, true, false)
    };
    with_browser_cookie(r, cookie)
}

/// `POST /reset-password` (`token`, `new_password`, `confirm_password`, `csrf_token`):
/// what `POST /api/auth/reset-password` does.
pub async fn reset_submit(
    AxState(state): AxState<State>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (bid, cookie) = browser::browser_id(&state, &headers);
    let p = match form_body(&headers, &body) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let token = p.get("token").unwrap_or("");
    let page = |status: StatusCode, error: Option<&str>, invalid: bool, done: bool| {
        with_browser_cookie(
            reset_page(&state, &bid, status, token, error, invalid, done),
            cookie.clone(),
        )
    };
    let csrf_id = crypto::hash_secret(token);
    if !browser::check_csrf(
        &state,
        RESET,
        &csrf_id,
        &bid,
        p.get("csrf_token").unwrap_or(""),
    ) {
        return page(StatusCode::BAD_REQUEST, Some(CSRF_FAILED), false, false);
    }
    let new = p.get("new_password").unwrap_or("");
    if p.get("confirm_password").unwrap_or("") != new {
        return page(
            StatusCode::BAD_REQUEST,
            Some("The two passwords do not match."),
            false,
            false,
        );
    }
    let email = match crate::password_change::reset_account_email(&state, token).await {
        Ok(e) => e,
        Err(e) => return failure(&state, e),
    };
    if let Err(e) = crate::api::sign::check_password(&state.config, new, email.as_deref()) {
        let msg = match e {
            crate::api::error::ApiError::Api { message, .. } => message,
            crate::api::error::ApiError::Internal(e) => return failure(&state, e),
        };
        let policy = &state.config.password_policy;
        let msg = format!(
            "{msg}: use {} to {} characters.",
            policy.min_length, policy.max_length
        );
        return page(StatusCode::BAD_REQUEST, Some(&msg), false, false);
    }
    if let Err(b) = crate::breach::check(&state, new).await {
        let status = match b {
            crate::breach::BreachError::Compromised => StatusCode::BAD_REQUEST,
            crate::breach::BreachError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        return page(status, Some(&format!("{b}.")), false, false);
    }
    match password_change::reset(&state, &headers, token, new).await {
        Ok(Ok(())) => page(StatusCode::OK, None, false, true),
        Ok(Err(_)) => page(StatusCode::BAD_REQUEST, None, true, false),
        Err(e) => failure(&state, e),
    }
}

/// `GET /verify-email?token=`: spends the token and shows the result.
pub async fn verify_show(AxState(state): AxState<State>, RawQuery(raw): RawQuery) -> Response {
    let token = param(raw.as_deref(), "token").unwrap_or_default();
    let result = if token.is_empty() {
        Err(Rejected::Unknown)
    } else {
        match ev::verify(&state, &token).await {
            Ok(r) => r,
            Err(e) => return failure(&state, e),
        }
    };
    let base = state.config.issuer_path();
    let (status, verified, expired) = match result {
        Ok(_) => (StatusCode::OK, true, false),
        Err(Rejected::Expired) => (StatusCode::BAD_REQUEST, false, true),
        Err(_) => (StatusCode::BAD_REQUEST, false, false),
    };
    render(
        status,
        &VerifyPage {
            lang: "en",
            base: &base,
            verified,
            expired,
        },
    )
}
