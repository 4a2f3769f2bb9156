//! `get-session`, `list-sessions`, `revoke-session`, `revoke-sessions`,
//! `revoke-other-sessions` (better-auth `session.ts`).

use axum::extract::State as AxState;
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{Authed, MaybeAuthed, OriginChecked, Via};
use super::{JsonBody, json_response, session_json, user_json};
use crate::app::State;
use crate::crypto;
use crate::http::cookies;
use crate::store::sessions;
use crate::ui::session as browser;

/// `GET /api/auth/get-session` → 200 `{"session": Session, "user": User}`, or 200 `null`
/// without an active session (Better Auth answers `null`, not 401).
pub async fn get_session(MaybeAuthed(a): MaybeAuthed) -> Response {
    match a {
        None => json_response(Value::Null),
        Some(a) => json_response(json!({
            "session": session_json(&a.session, Some(&a.token)),
            "user": user_json(&a.user),
        })),
    }
}

/// `GET /api/auth/list-sessions` → 200 `[Session]`: the user's active sessions, from
/// the API and the hosted login page alike. `id` and `token` are the sid
/// (`session_json`); 401 `UNAUTHORIZED` without a session.
pub async fn list_sessions(
    AxState(state): AxState<State>,
    a: Authed,
) -> Result<Response, ApiError> {
    let list = browser::active_for_user(&state, &a.user.id).await?;
    Ok(json_response(Value::Array(
        list.iter()
            .map(|s| {
                let mut v = session_json(s, None);
                v["current"] = Value::Bool(s.sid == a.session.sid);
                v
            })
            .collect(),
    )))
}

/// The longest device name `update-session` and the account page accept, in characters.
pub const MAX_DEVICE_NAME: usize = 100;

/// A device name as the user typed it: trimmed, empty clears it; 400
/// `VALIDATION_ERROR` beyond `MAX_DEVICE_NAME` characters or with control characters.
pub fn device_name(raw: &str) -> Result<Option<String>, ApiError> {
    let t = raw.trim();
    if t.chars().count() > MAX_DEVICE_NAME {
        return Err(ApiError::validation(format!(
            "[body.name] must be at most {MAX_DEVICE_NAME} characters"
        )));
    }
    if t.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "[body.name] must not contain control characters",
        ));
    }
    Ok((!t.is_empty()).then(|| t.to_string()))
}

/// `POST /api/auth/update-session` (better-auth `update-session.ts`): the body is a
/// record of session fields; the one a user may set here is `name` (also accepted as
/// `deviceName`, the name `list-sessions` shows), a string of at most 100 characters or
/// null to clear it → 200 `{"session": Session}`. Other fields are ignored, as Better
/// Auth ignores fields it does not declare; a body without a settable field is 400
/// `NO_FIELDS_TO_UPDATE`.
pub async fn update_session(
    _: OriginChecked,
    AxState(state): AxState<State>,
    a: Authed,
    JsonBody(b): JsonBody<serde_json::Map<String, Value>>,
) -> Result<Response, ApiError> {
    let raw = match (b.get("name"), b.get("deviceName")) {
        (Some(n), _) | (None, Some(n)) => n,
        (None, None) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "NO_FIELDS_TO_UPDATE",
                "No fields to update",
            ));
        }
    };
    let name = match raw {
        Value::Null => None,
        Value::String(s) => device_name(s)?,
        _ => {
            return Err(ApiError::validation("[body.name] must be a string or null"));
        }
    };
    sessions::rename(&state.db, &a.user.id, &a.session.sid, name.as_deref()).await?;
    let mut session = a.session.clone();
    session.name = name;
    Ok(json_response(
        json!({ "session": session_json(&session, Some(&a.token)) }),
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct RevokeBody {
    token: String,
}

/// Clears the cookie when the caller's own cookie session was among those revoked.
fn clearing(state: &State, a: &Authed, mut r: Response) -> Response {
    if a.via == Via::Cookie {
        r.headers_mut().append(
            header::SET_COOKIE,
            cookies::clear(&state.config, cookies::SESSION),
        );
    }
    r
}

/// `POST /api/auth/revoke-session` `{"token"}` → 200 `{"status": true}`.
///
/// Better Auth takes the session token here, and its list-sessions shows every
/// session's token. We never show tokens of other sessions, so `token` is accepted as
/// either a session token (e.g. the caller's own, from sign-in) or a session `id`/sid
/// as list-sessions shows it. Only the caller's own sessions are touched; like Better
/// Auth, the answer is `{"status": true}` whether or not something matched, so nothing
/// is learned about other users' sessions.
pub async fn revoke_session(
    _: OriginChecked,
    AxState(state): AxState<State>,
    a: Authed,
    JsonBody(b): JsonBody<RevokeBody>,
) -> Result<Response, ApiError> {
    let found = match sessions::by_hash(&state.db, &crypto::hash_secret(&b.token)).await? {
        Some(s) => Some(s),
        None => sessions::by_sid(&state.db, &b.token).await?,
    };
    let r = json_response(json!({ "status": true }));
    match found {
        Some(s) if s.user_id == a.user.id => {
            crate::ui::session::end(&state, &a.user.id, &s.sid, "revoke_session").await?;
            if s.sid == a.session.sid {
                return Ok(clearing(&state, &a, r));
            }
            Ok(r)
        }
        _ => Ok(r),
    }
}

/// `POST /api/auth/revoke-sessions` → 200 `{"status": true}`: every session of the
/// user, this one included.
pub async fn revoke_sessions(
    _: OriginChecked,
    AxState(state): AxState<State>,
    a: Authed,
) -> Result<Response, ApiError> {
    crate::ui::session::end_all(&state, &a.user.id, None, "revoke_sessions").await?;
    Ok(clearing(
        &state,
        &a,
        json_response(json!({ "status": true })),
    ))
}

/// `POST /api/auth/revoke-other-sessions` → 200 `{"status": true}`: every session of
/// the user but this one.
pub async fn revoke_other_sessions(
    _: OriginChecked,
    AxState(state): AxState<State>,
    a: Authed,
) -> Result<Response, ApiError> {
    crate::ui::session::end_all(
        &state,
        &a.user.id,
        Some(&a.session.sid),
        "revoke_other_sessions",
    )
    .await?;
    Ok(json_response(json!({ "status": true })))
}
