//! The hosted page `/account/password`: a CSRF-protected form that changes the password
//! through `password_change::set_password`, the one route every password change takes
//! (the same as `POST /api/auth/change-password`: the policy applies, open reset links
//! die, the user is mailed). "Sign out my other devices" revokes every other session
//! and the refresh tokens; this browser stays signed in.

use askama::Template;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::State;
use crate::error::Error;
use crate::http::pages::render;
use crate::store::credentials::Revoke;
use crate::store::sessions::Session;
use crate::store::users::User;
use crate::ui::account_email::{checked_form, csrf_failed, signed_in, with_browser_cookie};
use crate::ui::account_result;
use crate::ui::session as browser;

const CSRF_PURPOSE: &str = "account_password";
const PATH: &str = "/account/password";

#[derive(Template)]
#[template(path = "account_password.html")]
struct PasswordPage<'a> {
    lang: &'a str,
    base: &'a str,
    csrf_token: &'a str,
    min: usize,
    max: usize,
    error: Option<&'a str>,
}

fn form(state: &State, headers: &HeaderMap, s: &Session, error: Option<&str>) -> Response {
    let (bid, cookie) = browser::browser_id(state, headers);
    let csrf = browser::csrf_token(state, CSRF_PURPOSE, &s.sid, &bid);
    let base = state.config.issuer_path();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let policy = &state.config.password_policy;
    with_browser_cookie(
        render(
            status,
            &PasswordPage {
                lang: "en",
                base: &base,
                csrf_token: &csrf,
                min: policy.min_length,
                max: policy.max_length,
                error,
            },
        ),
        cookie,
    )
}

pub async fn show(AxState(state): AxState<State>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers, PATH).await {
        Ok(Ok((s, _))) => form(&state, &headers, &s, None),
        Ok(Err(r)) => r,
        Err(e) => e.into_response(),
    }
}

pub async fn submit(AxState(state): AxState<State>, headers: HeaderMap, body: Bytes) -> Response {
    match submit_inner(&state, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn submit_inner(state: &State, headers: &HeaderMap, body: &[u8]) -> Result<Response, Error> {
    let (s, u) = match signed_in(state, headers, PATH).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let Some(p) = checked_form(state, headers, body, CSRF_PURPOSE, &s) else {
        return Ok(csrf_failed(state));
    };
    let current = p.get("current_password").unwrap_or("");
    let new = p.get("new_password").unwrap_or("");
    if p.get("confirm_password").unwrap_or("") != new {
        return Ok(form(
            state,
            headers,
            &s,
            Some("The two new passwords do not match."),
        ));
    }
    if let Err(e) = crate::api::sign::check_new_password(state, new, Some(&u.email)).await {
        let msg = match e {
            crate::api::error::ApiError::Api { message, .. } => message,
            crate::api::error::ApiError::Internal(e) => return Err(e),
        };
        return Ok(form(state, headers, &s, Some(&msg)));
    }
    if !current_password_matches(state, &u, current).await {
        return Ok(form(
            state,
            headers,
            &s,
            Some("The current password is incorrect."),
        ));
    }
    let hash = state.hasher.hash(new).await.map_err(Error::internal)?;
    let others = p.get("sign_out_others") == Some("on");
    let revoke = Revoke {
        sessions: others,
        keep_sid: Some(&s.sid),
        refresh_tokens: others,
    };
    crate::password_change::set_password(state, headers, &u, &hash, None, revoke).await?;
    Ok(account_result::page(
        state,
        StatusCode::OK,
        "ok",
        "Password changed",
        if others {
            "Your password was changed and your other devices were signed out."
        } else {
            "Your password was changed."
        },
        None,
    ))
}

/// The current password, checked with the same argon2 work whether or not the account
/// has one; over-long input is refused before hashing.
async fn current_password_matches(state: &State, u: &User, current: &str) -> bool {
    current.chars().count() <= crate::config::PASSWORD_POLICY_MAX_LENGTH
        && state
            .hasher
            .verify(current, u.password_hash.as_deref())
            .await
}
