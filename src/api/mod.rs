//! The Better-Auth-compatible JSON API under `/api/auth/*` (issue 3): a door into the
//! same core as the hosted pages. Sessions are `ui::session` sessions, users come from
//! `accounts::create_user`, passwords are checked by `state.hasher`.
//!
//! Shapes follow better-auth/better-auth `packages/better-auth/src/api/routes/`
//! (`sign-up.ts`, `sign-in.ts`, `sign-out.ts`, `session.ts`, `update-user.ts`,
//! `password.ts`, `ok.ts`) and the jwt plugin (`plugins/jwt/`); errors are
//! `{"code", "message"}` (`error.rs`). Dates are ISO 8601 strings, as `Date` serialises
//! in JSON.

pub mod account;
pub mod change_email;
pub mod cors;
pub mod delete_user;
pub mod error;
pub mod error_page;
pub mod extract;
pub mod list_accounts;
pub mod openapi;
pub mod reset;
pub mod rest;
pub mod security_events;
pub mod sessions;
pub mod sign;
pub mod verify;
pub mod views;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::app::State;
use crate::store::sessions::Session;
use crate::store::users::User;
use error::ApiError;
use openapi::{Auth, Doc, Routes, Verb::*};

/// The `/api/auth/*` routes. Every POST handler takes `extract::OriginChecked` first.
pub fn router() -> Router<State> {
    routes().merge(rest::routes()).router
}

/// Every documented route of `/api/auth/*` and `/auth/*` (the OpenAPI document).
pub fn operations() -> Vec<openapi::Operation> {
    routes().merge(rest::routes()).operations
}

fn routes() -> Routes {
    use views::*;
    const SIGN: &str = "sign-in";
    const SESS: &str = "sessions";
    const ACC: &str = "account";
    Routes::new()
        .add(
            Post,
            "/api/auth/sign-up/email",
            sign::sign_up_email,
            Doc::new(SIGN, "Create an account with email and password")
                .body::<sign::SignUpBody>()
                .ok::<SignUpResponse>()
                .errors(&[
                    "INVALID_EMAIL",
                    "PASSWORD_TOO_SHORT",
                    "PASSWORD_TOO_LONG",
                    "PASSWORD_COMPROMISED",
                    "PASSWORD_CHECK_UNAVAILABLE",
                    "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL",
                    "INVALID_CALLBACK_URL",
                ]),
        )
        .add(
            Post,
            "/api/auth/sign-in/email",
            sign::sign_in_email,
            Doc::new(SIGN, "Sign in with email and password")
                .body::<sign::SignInBody>()
                .ok::<SignInResponse>()
                .errors(&[
                    "INVALID_EMAIL_OR_PASSWORD",
                    "INVALID_EMAIL",
                    "INVALID_CALLBACK_URL",
                ]),
        )
        .add(
            Post,
            "/api/auth/sign-out",
            sign::sign_out,
            Doc::new(SIGN, "Sign out: revoke this session and clear its cookie")
                .ok::<SuccessResponse>()
                .session(Auth::Required)
                .errors(&["FAILED_TO_GET_SESSION"]),
        )
        .add(
            Get,
            "/api/auth/get-session",
            sessions::get_session,
            Doc::new(SESS, "The current session and its user, or null")
                .ok::<Option<SessionResponse>>()
                .session(Auth::Optional),
        )
        .add(
            Get,
            "/api/auth/list-sessions",
            sessions::list_sessions,
            Doc::new(SESS, "The user's active sessions")
                .ok::<Vec<SessionView>>()
                .session(Auth::Required)
                .errors(&["UNAUTHORIZED"]),
        )
        .add(
            Post,
            "/api/auth/revoke-session",
            sessions::revoke_session,
            Doc::new(SESS, "Revoke one of the user's sessions (by token or id)")
                .body::<sessions::RevokeBody>()
                .ok::<StatusResponse>()
                .session(Auth::Required)
                .errors(&["UNAUTHORIZED"]),
        )
        .add(
            Post,
            "/api/auth/revoke-sessions",
            sessions::revoke_sessions,
            Doc::new(SESS, "Revoke every session of the user, this one included")
                .ok::<StatusResponse>()
                .session(Auth::Required)
                .errors(&["UNAUTHORIZED"]),
        )
        .add(
            Post,
            "/api/auth/revoke-other-sessions",
            sessions::revoke_other_sessions,
            Doc::new(SESS, "Revoke every session of the user but this one")
                .ok::<StatusResponse>()
                .session(Auth::Required)
                .errors(&["UNAUTHORIZED"]),
        )
        .add(
            Post,
            "/api/auth/update-session",
            sessions::update_session,
            Doc::new(SESS, "Name the current session's device")
                .body::<UpdateSessionBody>()
                .ok::<UpdateSessionResponse>()
                .session(Auth::Required)
                .errors(&["NO_FIELDS_TO_UPDATE", "UNAUTHORIZED"]),
        )
        .add(
            Get,
            "/api/auth/token",
            account::token,
            Doc::new(
                ACC,
                "A JWT access token for the session's user (same claims and keys as /token)",
            )
            .ok::<JwtResponse>()
            .session(Auth::Required)
            .errors(&["UNAUTHORIZED", "JWT_NOT_CONFIGURED"]),
        )
        .add(
            Get,
            "/api/auth/jwks",
            crate::oidc::discovery::jwks,
            // Under the credentialed CORS of this router: Better Auth's jwtClient
            // fetches it with credentials, which `*` would fail (`cors.rs`).
            Doc::new(ACC, "The public signing keys (the issuer's JWKS)").ok::<JwkSet>(),
        )
        .add(
            Post,
            "/api/auth/change-password",
            account::change_password,
            Doc::new(ACC, "Change the password")
                .body::<account::ChangePasswordBody>()
                .ok::<SignUpResponse>()
                .session(Auth::Required)
                .errors(&[
                    "INVALID_PASSWORD",
                    "PASSWORD_TOO_SHORT",
                    "PASSWORD_TOO_LONG",
                    "PASSWORD_COMPROMISED",
                    "PASSWORD_CHECK_UNAVAILABLE",
                    "CREDENTIAL_ACCOUNT_NOT_FOUND",
                ]),
        )
        .add(
            Post,
            "/api/auth/verify-password",
            account::verify_password,
            Doc::new(ACC, "Check the user's password")
                .body::<account::VerifyPasswordBody>()
                .ok::<StatusResponse>()
                .session(Auth::Required)
                .errors(&["INVALID_PASSWORD"]),
        )
        .add(
            Post,
            "/api/auth/update-user",
            account::update_user,
            Doc::new(ACC, "Update the profile (name, image)")
                .body::<UpdateUserBody>()
                .ok::<StatusResponse>()
                .session(Auth::Required)
                .errors(&["EMAIL_CAN_NOT_BE_UPDATED", "NO_FIELDS_TO_UPDATE"]),
        )
        .add(
            Get,
            "/api/auth/verify-email",
            verify::verify_email,
            Doc::new(ACC, "The mailed verification link: marks the address verified")
                .query::<change_email::LinkQuery>()
                .ok::<VerifyEmailResponse>()
                .answers(200, "JSON, or 302 to callbackURL (with `?error=CODE` on failure)")
                .errors(&["INVALID_TOKEN", "TOKEN_EXPIRED", "INVALID_CALLBACK_URL"]),
        )
        .add(
            Post,
            "/api/auth/send-verification-email",
            verify::send_verification_email,
            Doc::new(ACC, "Mail a (new) verification link; the same answer for every address")
                .body::<verify::SendVerificationBody>()
                .ok::<StatusResponse>()
                .session(Auth::Optional)
                .errors(&["EMAIL_MISMATCH", "EMAIL_ALREADY_VERIFIED", "INVALID_CALLBACK_URL"]),
        )
        .add(
            Post,
            "/api/auth/request-password-reset",
            reset::request_password_reset,
            Doc::new(ACC, "Mail a password-reset link; the same answer for every address")
                .body::<reset::RequestResetBody>()
                .ok::<MessageResponse>()
                .errors(&["INVALID_EMAIL", "INVALID_CALLBACK_URL"]),
        )
        .add(
            Post,
            "/api/auth/forget-password",
            reset::request_password_reset,
            Doc::new(ACC, "= request-password-reset (Better Auth's older path)")
                .body::<reset::RequestResetBody>()
                .ok::<MessageResponse>(),
        )
        .add(
            Get,
            "/api/auth/reset-password/{token}",
            reset::reset_password_callback,
            Doc::new(ACC, "The mailed reset link: 302 to callbackURL with `?token=` or `?error=INVALID_TOKEN`")
                .query::<CallbackQuery>()
                .answers(302, "Redirect to callbackURL (or the hosted /reset-password page)"),
        )
        .add(
            Post,
            "/api/auth/reset-password",
            reset::reset_password,
            Doc::new(ACC, "Set a new password with a reset token")
                .body::<reset::ResetBody>()
                .ok::<StatusResponse>()
                .errors(&["INVALID_TOKEN", "PASSWORD_TOO_SHORT", "PASSWORD_TOO_LONG", "PASSWORD_TOO_WEAK",
                    "PASSWORD_COMPROMISED", "PASSWORD_CHECK_UNAVAILABLE"]),
        )
        .add(
            Post,
            "/api/auth/change-email",
            change_email::change_email,
            Doc::new(
                ACC,
                "Change the email address: the new one is verified by a mailed link first",
            )
            .body::<change_email::ChangeEmailBody>()
            .ok::<StatusResponse>()
            .session(Auth::Required)
            .errors(&[
                "EMAIL_IS_THE_SAME",
                "INVALID_EMAIL",
                "INVALID_CALLBACK_URL",
                "CHANGE_EMAIL_DISABLED",
            ]),
        )
        .add(
            Get,
            "/api/auth/change-email/confirm",
            change_email::confirm,
            Doc::new(ACC, "The mailed link that switches to the new address")
                .query::<change_email::LinkQuery>()
                .ok::<StatusResponse>()
                .answers(
                    200,
                    "JSON `{status: true}`, a page for browsers, or 302 to callbackURL",
                )
                .errors(&["INVALID_TOKEN", "TOKEN_EXPIRED", "EMAIL_ALREADY_IN_USE"]),
        )
        .add(
            Get,
            "/api/auth/change-email/revert",
            change_email::revert,
            Doc::new(
                ACC,
                "The link mailed to the old address: undo the change, sign out everywhere",
            )
            .query::<change_email::LinkQuery>()
            .ok::<StatusResponse>()
            .errors(&["INVALID_TOKEN", "TOKEN_EXPIRED", "EMAIL_ALREADY_IN_USE"]),
        )
        .add(
            Post,
            "/api/auth/delete-user",
            delete_user::delete_user,
            Doc::new(
                ACC,
                "Delete the account (password, fresh session or mailed link)",
            )
            .body::<delete_user::DeleteUserBody>()
            .ok::<DeleteUserResponse>()
            .session(Auth::Required)
            .errors(&[
                "INVALID_PASSWORD",
                "SESSION_EXPIRED",
                "INVALID_TOKEN",
                "DELETE_USER_DISABLED",
            ]),
        )
        .add(
            Get,
            "/api/auth/delete-user/callback",
            delete_user::callback,
            Doc::new(ACC, "The mailed deletion link")
                .query::<change_email::LinkQuery>()
                .ok::<DeleteUserResponse>()
                .errors(&["INVALID_TOKEN", "TOKEN_EXPIRED", "DELETE_USER_DISABLED"]),
        )
        .add(
            Get,
            "/api/auth/security-events",
            security_events::list,
            Doc::new(ACC, "The user's own security history (audit events), newest first")
                .query::<SecurityEventsQuery>()
                .ok::<SecurityEventsResponse>()
                .session(Auth::Required)
                .errors(&["UNAUTHORIZED", "VALIDATION_ERROR"]),
        )
        .add(
            Get,
            "/api/auth/list-accounts",
            list_accounts::list_accounts,
            Doc::new(ACC, "The user's linked accounts (the credential account)")
                .ok::<Vec<AccountView>>()
                .session(Auth::Required)
                .errors(&["UNAUTHORIZED"]),
        )
        .add(
            Get,
            "/api/auth/error",
            error_page::show,
            Doc::new(ACC, "Better Auth's error page (HTML) for `?error=CODE`")
                .query::<ErrorPageQuery>()
                .answers(200, "An HTML page"),
        )
        .add(
            Get,
            "/api/auth/ok",
            ok,
            Doc::new(ACC, "Liveness of the API").ok::<OkResponse>(),
        )
        .add(
            Get,
            "/api/auth/openapi.json",
            openapi_json,
            Doc::new(ACC, "This document").answers(200, "The OpenAPI 3.1 document"),
        )
}

/// `GET /api/auth/openapi.json`: the OpenAPI 3.1 document of this API.
async fn openapi_json(AxState(state): AxState<State>) -> Response {
    let cookie = crate::http::cookies::name(&state.config, crate::http::cookies::SESSION);
    let mut r = Json(openapi::document(
        &operations(),
        &state.config.issuer,
        &cookie,
    ))
    .into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

/// `GET /api/auth/ok` (ok.ts): `{"ok": true}`.
async fn ok() -> Response {
    json_response(json!({ "ok": true }))
}

/// A 200 JSON answer that is never cached.
pub fn json_response(v: Value) -> Response {
    let mut r = (StatusCode::OK, Json(v)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A JSON request body into `T`. Better Auth also takes form bodies on some routes;
/// JSON is what its client sends. Unparseable bodies and missing or mistyped fields are
/// 400 `VALIDATION_ERROR`, another media type 415.
fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime != "application/json" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "the request body must be application/json",
        ));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::validation(format!("the request body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "BODY_MUST_BE_AN_OBJECT",
            "Body must be an object",
        ));
    }
    serde_json::from_value(v).map_err(|e| ApiError::validation(format!("[body] {e}")))
}

/// The raw body, or the reason there is none as an API error (a body over the
/// server's limit is 413 `PAYLOAD_TOO_LARGE`, not axum's plain-text answer).
/// A JSON request body as an extractor (it must be the handler's last argument): a wrong
/// content type, an oversized body or bad JSON get Better Auth's errors, never a 500.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let headers = req.headers().clone();
        let bytes = body_bytes(Bytes::from_request(req, state).await)?;
        json_body(&headers, &bytes).map(JsonBody)
    }
}

fn body_bytes(b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(status, "PAYLOAD_TOO_LARGE", "the request body is too large")
        } else {
            ApiError::new(status, "INVALID_BODY", e.body_text())
        }
    })
}

/// Unix seconds as ISO 8601 UTC with milliseconds, like JavaScript's `Date.toJSON`.
pub fn iso8601(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Better Auth's `User` ([`views::UserView`]).
pub fn user_json(u: &User) -> Value {
    views::to_json(&views::UserView::of(u))
}

/// Better Auth's `Session` ([`views::SessionView`]).
pub fn session_json(s: &Session, token: Option<&str>) -> Value {
    views::to_json(&views::SessionView::of(s, token))
}

#[cfg(test)]
mod tests {
    use super::iso8601;

    #[test]
    fn iso8601_matches_javascript() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(1_700_000_000), "2023-11-14T22:13:20.000Z");
    }
}
