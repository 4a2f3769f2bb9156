//! `verify-email`, `send-verification-email`, and the verification hooks of sign-up and
//! sign-in (better-auth `routes/email-verification.ts`, `routes/sign-in.ts`). The work
//! is done by `crate::email_verification`.

use axum::extract::{ConnectInfo, RawQuery, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{self, MaybeAuthed, OriginChecked};
use super::sign::{check_email, start_session, with_session};
use super::{JsonBody, json_response, user_json};
use crate::app::State;
use crate::email_verification as ev;
use crate::store::users::{self, User};
use crate::store::verifications::Rejected;

/// `callback` (relative or absolute, already checked with `check_callback_url`) resolved
/// against the issuer, with `key=value` set in its query, as Better Auth's
/// `redirectCallback` does with `new URL(callbackURL, baseURL)`.
pub(super) fn callback_with(state: &State, callback: &str, key: &str, value: &str) -> String {
    let joined = url::Url::parse(&state.config.issuer).and_then(|b| b.join(callback));
    let Ok(mut u) = joined else {
        return callback.to_string();
    };
    let keep: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| k != key)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    u.query_pairs_mut()
        .clear()
        .extend_pairs(keep)
        .append_pair(key, value);
    u.to_string()
}

/// `callback` resolved against the issuer.
pub(super) fn resolve(state: &State, callback: &str) -> String {
    url::Url::parse(&state.config.issuer)
        .and_then(|b| b.join(callback))
        .map(|u| u.to_string())
        .unwrap_or_else(|_| callback.to_string())
}

/// A 302 to `location`, never cached.
pub(super) fn found(location: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A query string's parameters; the first value of each wins.
pub(super) fn query_param(raw: Option<&str>, key: &str) -> Option<String> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// Called by `sign-up/email` once a NEW account exists (`sendOnSignUp`).
pub(super) async fn after_sign_up(
    state: &State,
    headers: &HeaderMap,
    user: &User,
    callback: Option<&str>,
) {
    ev::after_sign_up(state, headers, user, callback).await;
}

/// Called by `sign-in/email` after the password check: with
/// `email_verification.require`, an unverified user gets 403 `EMAIL_NOT_VERIFIED` (and a
/// new link when `send_on_sign_in`).
pub(super) async fn sign_in_gate(
    state: &State,
    headers: &HeaderMap,
    user: &User,
    callback: Option<&str>,
) -> Result<(), ApiError> {
    if ev::sign_in_allowed(state, headers, user, callback).await {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "EMAIL_NOT_VERIFIED",
            "Email not verified",
        ))
    }
}

fn rejected_code(r: Rejected) -> (&'static str, &'static str) {
    match r {
        Rejected::Expired => ("TOKEN_EXPIRED", "Token expired"),
        Rejected::Unknown | Rejected::Used => ("INVALID_TOKEN", "Invalid token"),
    }
}

/// `GET /api/auth/verify-email?token=&callbackURL=`: spends the token and marks the
/// address verified. With `callbackURL`: 302 there, or there with
/// `?error=INVALID_TOKEN` / `TOKEN_EXPIRED`. Without: 200 `{"status": true, "user":
/// null}` or 401 with that code. With `auto_sign_in_after_verification` a session
/// starts (cookie and `set-auth-token`) and `user` is the user. A missing token is 400
/// `VALIDATION_ERROR`; a callbackURL on a foreign origin 403 `INVALID_CALLBACK_URL`.
pub async fn verify_email(
    AxState(state): AxState<State>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let callback = query_param(raw.as_deref(), "callbackURL");
    extract::check_callback_url(&state, callback.as_deref())?;
    let Some(token) = query_param(raw.as_deref(), "token") else {
        return Err(ApiError::validation("[query.token] required"));
    };
    let user = match ev::verify(&state, &token).await? {
        Ok(u) => u,
        Err(r) => {
            let (code, message) = rejected_code(r);
            return Ok(match callback {
                Some(c) => found(&callback_with(&state, &c, "error", code)),
                None => ApiError::new(StatusCode::UNAUTHORIZED, code, message).into_response(),
            });
        }
    };
    // Better Auth redirects to the callbackURL as it is on success.
    let done = |user: Value| match &callback {
        Some(c) => found(&resolve(&state, c)),
        None => json_response(json!({ "status": true, "user": user })),
    };
    if !state
        .config
        .email_verification
        .auto_sign_in_after_verification
    {
        return Ok(done(Value::Null));
    }
    let started = start_session(&state, peer, &headers, &user, true).await?;
    Ok(with_session(done(user_json(&user)), &started))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct SendVerificationBody {
    email: String,
    #[serde(rename = "callbackURL")]
    callback_url: Option<String>,
}

/// `POST /api/auth/send-verification-email {email, callbackURL?}` → 200
/// `{"status": true}`. Without a session the answer is the same whether the address
/// has an account or not (a mail goes out only to an existing, unverified one). With a
/// session, the address must be the session user's (400 `EMAIL_MISMATCH`) and not yet
/// verified (400 `EMAIL_ALREADY_VERIFIED`).
pub async fn send_verification_email(
    _: OriginChecked,
    AxState(state): AxState<State>,
    MaybeAuthed(authed): MaybeAuthed,
    headers: HeaderMap,
    JsonBody(b): JsonBody<SendVerificationBody>,
) -> Result<Response, ApiError> {
    check_email(&b.email)?;
    extract::check_callback_url(&state, b.callback_url.as_deref())?;
    let callback = b.callback_url.as_deref();
    if let Some(a) = authed {
        if a.user.email != users::normalize_email(&b.email) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "EMAIL_MISMATCH",
                "Email mismatch",
            ));
        }
        if a.user.email_verified {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "EMAIL_ALREADY_VERIFIED",
                "Email is already verified",
            ));
        }
        ev::send(&state, &headers, &a.user, callback);
    } else {
        match users::by_email(&state.db, &b.email).await? {
            Some(u) if !u.email_verified => ev::send(&state, &headers, &u, callback),
            _ => ev::same_work_as_send(&state, &headers, &b.email),
        }
    }
    Ok(json_response(json!({ "status": true })))
}
