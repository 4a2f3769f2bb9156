//! `request-password-reset` (and the older `forget-password`), the
//! `reset-password/{token}` callback and `reset-password` (better-auth
//! `routes/password.ts`). The work is done by `crate::password_change`.

use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::extract::{self, OriginChecked};
use super::sign::{check_email, check_new_password};
use super::verify::{callback_with, found, query_param};
use super::{JsonBody, json_response};
use crate::app::State;
use crate::password_change;

/// Better Auth's answer to every reset request, known address or not.
pub const RESET_REQUESTED: &str =
    "If this email exists in our system, check your email for the reset link";

/// `path` as it may appear in a log: the reset callback carries its token in the path
/// (Better Auth's `/reset-password/:token`), which must never be logged.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    const CALLBACK: &str = "/api/auth/reset-password/";
    match path.find(CALLBACK) {
        Some(i) if path.len() > i + CALLBACK.len() => {
            format!("{}<token>", &path[..i + CALLBACK.len()]).into()
        }
        _ => path.into(),
    }
}

fn invalid_token() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALID_TOKEN", "Invalid token")
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestResetBody {
    email: String,
    redirect_to: Option<String>,
}

/// `POST /api/auth/request-password-reset` and `POST /api/auth/forget-password`
/// `{email, redirectTo?}` → 200 `{"status": true, "message": RESET_REQUESTED}` for known
/// and unknown addresses alike (both render the mail; only a real account gets a token
/// and a queued mail). `redirectTo` must pass the callbackURL rule (403
/// `INVALID_CALLBACK_URL`): it ends up in a link we mail.
pub async fn request_password_reset(
    _: OriginChecked,
    AxState(state): AxState<State>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<RequestResetBody>,
) -> Result<Response, ApiError> {
    check_email(&b.email)?;
    extract::check_callback_url(&state, b.redirect_to.as_deref())?;
    password_change::request_reset(&state, &headers, &b.email, b.redirect_to.as_deref()).await?;
    Ok(json_response(
        json!({ "status": true, "message": RESET_REQUESTED }),
    ))
}

/// `GET /api/auth/reset-password/{token}?callbackURL=` (the link in the mail): 302 to
/// `callbackURL?token=<token>` while the token is open (it is not spent here), else to
/// `callbackURL?error=INVALID_TOKEN`. Without a callbackURL the hosted reset page
/// (`/reset-password`) takes its place.
pub async fn reset_password_callback(
    AxState(state): AxState<State>,
    Path(token): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let callback = query_param(raw.as_deref(), "callbackURL");
    extract::check_callback_url(&state, callback.as_deref())?;
    let target = callback.unwrap_or_else(|| state.config.url("/reset-password"));
    let ok = password_change::check_token(&state, &token).await?.is_ok();
    Ok(if ok {
        found(&callback_with(&state, &target, "token", &token))
    } else {
        found(&callback_with(&state, &target, "error", "INVALID_TOKEN"))
    })
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetBody {
    new_password: String,
    token: Option<String>,
}

/// `POST /api/auth/reset-password {newPassword, token}` (the token may also come as
/// `?token=`, as in Better Auth) → 200 `{"status": true}`. The password policy is
/// sign-up's (400 `PASSWORD_TOO_SHORT` / `PASSWORD_TOO_LONG`, the token stays usable),
/// and so is the breached-password check (400 `PASSWORD_COMPROMISED`);
/// an unknown, expired or used token is 400 `INVALID_TOKEN`. The token is spent and the
/// password set in one transaction.
pub async fn reset_password(
    _: OriginChecked,
    AxState(state): AxState<State>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    JsonBody(b): JsonBody<ResetBody>,
) -> Result<Response, ApiError> {
    let Some(token) = b
        .token
        .filter(|t| !t.is_empty())
        .or_else(|| query_param(raw.as_deref(), "token"))
    else {
        return Err(invalid_token());
    };
    let email = password_change::reset_account_email(&state, &token).await?;
    check_new_password(&state, &b.new_password, email.as_deref()).await?;
    match password_change::reset(&state, &headers, &token, &b.new_password).await? {
        Ok(()) => Ok(json_response(json!({ "status": true }))),
        Err(r) => {
            tracing::info!(reason = %r, "password reset refused");
            Err(invalid_token())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn reset_tokens_stay_out_of_logs() {
        assert_eq!(
            loggable_path("/api/auth/reset-password/s3cr3t"),
            "/api/auth/reset-password/<token>"
        );
        assert_eq!(
            loggable_path("/tenant/api/auth/reset-password/s3cr3t"),
            "/tenant/api/auth/reset-password/<token>"
        );
        assert_eq!(
            loggable_path("/api/auth/reset-password"),
            "/api/auth/reset-password"
        );
        assert_eq!(loggable_path("/token"), "/token");
    }
}
