//! The hosted page `/account/delete`: confirm the deletion with the password
//! (`crate::account_deletion`, the same core as `POST /api/auth/delete-user`). It
//! shows the grace period, and needs a browser session (else: the login page).

use askama::Template;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::account_email::{checked_form, csrf_failed, signed_in, with_browser_cookie};
use crate::account_deletion::{self, Outcome};
use crate::app::State;
use crate::error::Error;
use crate::http::cookies;
use crate::http::pages::render;
use crate::store::sessions::Session;
use crate::store::users::User;
use crate::ui::account_result;
use crate::ui::session as browser;

const CSRF_PURPOSE: &str = "account_delete";

#[derive(Template)]
#[template(path = "account_delete.html")]
struct DeletePage<'a> {
    lang: &'a str,
    base: &'a str,
    email: &'a str,
    csrf_token: &'a str,
    /// The grace period in whole days, rounded up (0: immediate).
    grace_days: i64,
    send_verification: bool,
    error: Option<&'a str>,
}

fn disabled(state: &State) -> Response {
    account_result::page(
        state,
        StatusCode::NOT_FOUND,
        "DELETE_USER_DISABLED",
        "Not available",
        "Deleting accounts is disabled on this server.",
        None,
    )
}

fn form(
    state: &State,
    headers: &HeaderMap,
    s: &Session,
    u: &User,
    error: Option<&str>,
) -> Response {
    let (bid, cookie) = browser::browser_id(state, headers);
    let csrf = browser::csrf_token(state, CSRF_PURPOSE, &s.sid, &bid);
    let base = state.config.issuer_path();
    let cfg = &state.config.account_deletion;
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    with_browser_cookie(
        render(
            status,
            &DeletePage {
                lang: "en",
                base: &base,
                email: &u.email,
                csrf_token: &csrf,
                grace_days: (cfg.grace_period + 86_399) / 86_400,
                send_verification: cfg.send_verification,
                error,
            },
        ),
        cookie,
    )
}

pub async fn show(AxState(state): AxState<State>, headers: HeaderMap) -> Response {
    if !state.config.account_deletion.enabled {
        return disabled(&state);
    }
    match signed_in(&state, &headers, "/account/delete").await {
        Ok(Ok((s, u))) => form(&state, &headers, &s, &u, None),
        Ok(Err(r)) => r,
        Err(e) => e.into_response(),
    }
}

pub async fn submit(AxState(state): AxState<State>, headers: HeaderMap, body: Bytes) -> Response {
    if !state.config.account_deletion.enabled {
        return disabled(&state);
    }
    match submit_inner(&state, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn submit_inner(state: &State, headers: &HeaderMap, body: &[u8]) -> Result<Response, Error> {
    let (s, u) = match signed_in(state, headers, "/account/delete").await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let Some(p) = checked_form(state, headers, body, CSRF_PURPOSE, &s) else {
        return Ok(csrf_failed(state));
    };
    let password = p.get("password").unwrap_or("");
    if password.chars().count() > crate::config::PASSWORD_POLICY_MAX_LENGTH
        || !state
            .hasher
            .verify(password, u.password_hash.as_deref())
            .await
    {
        return Ok(form(
            state,
            headers,
            &s,
            &u,
            Some("The password is incorrect."),
        ));
    }
    let locale = crate::email_change::mail_locale(&u, headers);
    if state.config.account_deletion.send_verification {
        account_deletion::send_confirmation(state, &u, None, &locale).await?;
        return Ok(account_result::page(
            state,
            StatusCode::OK,
            "verification_sent",
            "Check your inbox",
            "We sent you a link. Your account is deleted only when you open it.",
            None,
        ));
    }
    let outcome = account_deletion::delete_or_schedule(state, &u, &locale, None).await?;
    let date = match outcome {
        Some(Outcome::Scheduled(due)) => Some(format!(
            "Deletion date: {}.",
            crate::mail::account_templates::when(due)
        )),
        _ => None,
    };
    let (code, title, message) = match outcome {
        Some(Outcome::Deleted) => (
            "deleted",
            "Account deleted",
            "Your account and its personal data were deleted.",
        ),
        Some(Outcome::Scheduled(_)) => (
            "scheduled",
            "Account deletion scheduled",
            "Your account will be deleted at the end of the grace period and you were signed out everywhere. Signing in before then cancels the deletion.",
        ),
        None => return Ok(csrf_failed(state)),
    };
    let mut r = account_result::page(state, StatusCode::OK, code, title, message, date.as_deref());
    r.headers_mut().append(
        header::SET_COOKIE,
        cookies::clear(&state.config, cookies::SESSION),
    );
    Ok(r)
}
