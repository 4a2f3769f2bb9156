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
pub mod error;
pub mod extract;
pub mod reset;
pub mod sessions;
pub mod sign;
pub mod verify;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::app::State;
use crate::store::sessions::Session;
use crate::store::users::User;
use error::ApiError;

/// The `/api/auth/*` routes. Every POST handler takes `extract::OriginChecked` first.
pub fn router() -> Router<State> {
    Router::new()
        .route("/api/auth/sign-up/email", post(sign::sign_up_email))
        .route("/api/auth/sign-in/email", post(sign::sign_in_email))
        .route("/api/auth/sign-out", post(sign::sign_out))
        .route("/api/auth/get-session", get(sessions::get_session))
        .route("/api/auth/list-sessions", get(sessions::list_sessions))
        .route("/api/auth/revoke-session", post(sessions::revoke_session))
        .route("/api/auth/revoke-sessions", post(sessions::revoke_sessions))
        .route(
            "/api/auth/revoke-other-sessions",
            post(sessions::revoke_other_sessions),
        )
        .route("/api/auth/token", get(account::token))
        .route("/api/auth/change-password", post(account::change_password))
        .route("/api/auth/verify-password", post(account::verify_password))
        .route("/api/auth/update-user", post(account::update_user))
        .route("/api/auth/ok", get(ok))
        .route("/api/auth/verify-email", get(verify::verify_email))
        .route(
            "/api/auth/send-verification-email",
            post(verify::send_verification_email),
        )
        .route(
            "/api/auth/request-password-reset",
            post(reset::request_password_reset),
        )
        .route(
            "/api/auth/forget-password",
            post(reset::request_password_reset),
        )
        .route(
            "/api/auth/reset-password/{token}",
            get(reset::reset_password_callback),
        )
        .route("/api/auth/reset-password", post(reset::reset_password))
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

/// Better Auth's `User`: id, name, email, emailVerified, image, createdAt, updatedAt.
/// `name` and `image` are the OIDC `name` and `picture` claims.
pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "name": u.claims.get("name").and_then(Value::as_str).unwrap_or(""),
        "email": u.email,
        "emailVerified": u.email_verified,
        "image": u.claims.get("picture").and_then(Value::as_str),
        "createdAt": iso8601(u.created_at),
        "updatedAt": iso8601(u.updated_at),
    })
}

/// Better Auth's `Session`. `id` is our public `sid` (the one in ID tokens). `token` is
/// the session token only when the caller presented it (`get-session`); in
/// `list-sessions` it is the sid too, a handle `revoke-session` accepts, so the session
/// credentials of other devices are never shown (we could not: only hashes are stored).
pub fn session_json(s: &Session, token: Option<&str>) -> Value {
    json!({
        "id": s.sid,
        "token": token.unwrap_or(&s.sid),
        "userId": s.user_id,
        "expiresAt": iso8601(s.expires_at),
        "createdAt": iso8601(s.created_at),
        "updatedAt": iso8601(s.last_seen),
        "ipAddress": s.ip,
        "userAgent": s.user_agent,
    })
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
