//! `token` (the jwt plugin's `GET /token`), `change-password`, `verify-password`,
//! `update-user` (better-auth `plugins/jwt/index.ts`, `routes/update-user.ts`,
//! `routes/password.ts`).

use axum::extract::{ConnectInfo, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::extract::{Authed, OriginChecked};
use super::sign::{check_new_password, start_session, with_session};
use super::{JsonBody, json_response, user_json};
use crate::app::State;
use crate::oauth::mint;
use crate::store::tokens::{self, TokenContext};
use crate::store::{clients, users};

/// The scope of `/api/auth/token` tokens when `api_auth.token_scope` is unset.
pub const DEFAULT_TOKEN_SCOPE: &str = "openid profile email";

/// The scope of `/api/auth/token` tokens: `api_auth.token_scope` or the default.
pub fn token_scope(config: &crate::config::Config) -> String {
    config
        .api_auth
        .token_scope
        .clone()
        .unwrap_or_else(|| DEFAULT_TOKEN_SCOPE.into())
}

fn invalid_password() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "INVALID_PASSWORD",
        "Invalid password",
    )
}

fn jwt_not_configured() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "JWT_NOT_CONFIGURED",
        "JWT access tokens are not enabled: set `api_auth.client_id`",
    )
}

/// `GET /api/auth/token` → 200 `{"token": JWT}`: an access token for the session's
/// user, minted by `oauth::mint::access_token` on behalf of `api_auth.client_id`, so it
/// has the claims and keys of a `/token` access token (`aud` the client or its
/// configured audience, `client_id`, `scope`, `sid` of this session) and is recorded
/// like one: `/userinfo` and `/introspect` accept it, `/revoke` reaches it. Without
/// `api_auth.client_id`, or if that client was deleted after the start, 404
/// `JWT_NOT_CONFIGURED` (the route of a Better Auth plugin that is not enabled does
/// not exist either); 401 `UNAUTHORIZED` without a session.
pub async fn token(AxState(state): AxState<State>, a: Authed) -> Result<Response, ApiError> {
    let cfg = &state.config.api_auth;
    let Some(client_id) = cfg.client_id.as_deref() else {
        return Err(jwt_not_configured());
    };
    let Some(client) = clients::get(&state.db, client_id).await? else {
        tracing::warn!(client_id, "api_auth.client_id names no client");
        return Err(jwt_not_configured());
    };
    let ctx = TokenContext {
        scope: token_scope(&state.config),
        auth_time: a.session.auth_time,
        acr: a.session.acr.clone(),
        amr: a.session.amr.clone(),
        sid: Some(a.session.sid.clone()),
        ..TokenContext::default()
    };
    let access = mint::access_token(&state, &client, Some(&a.user.id), &ctx, None).await?;
    tokens::record_access(&state.db, &access.record).await?;
    Ok(json_response(json!({ "token": access.jwt })))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePasswordBody {
    current_password: String,
    new_password: String,
    revoke_other_sessions: Option<bool>,
}

/// `POST /api/auth/change-password` `{currentPassword, newPassword,
/// revokeOtherSessions?}` → 200 `{"token": string | null, "user": User}`.
///
/// As Better Auth: the new password must follow the password policy (400
/// `PASSWORD_TOO_SHORT` / `PASSWORD_TOO_LONG` / `PASSWORD_TOO_WEAK`), a wrong current password is 400
/// `INVALID_PASSWORD`, an account without a password 400
/// `CREDENTIAL_ACCOUNT_NOT_FOUND`. With `[breach]` on, a breached new password is 400
/// `PASSWORD_COMPROMISED` (503 `PASSWORD_CHECK_UNAVAILABLE` when the check fails
/// closed). With `revokeOtherSessions`, every session of the
/// user is revoked, this one included, and a new session replaces it: its token is
/// `token` (also in `set-auth-token` and the cookie). Otherwise `token` is null and
/// all sessions stay.
pub async fn change_password(
    _: OriginChecked,
    AxState(state): AxState<State>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    a: Authed,
    headers: HeaderMap,
    JsonBody(b): JsonBody<ChangePasswordBody>,
) -> Result<Response, ApiError> {
    check_new_password(&state, &b.new_password, Some(&a.user.email)).await?;
    if b.current_password.chars().count() > crate::config::PASSWORD_POLICY_MAX_LENGTH {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "PASSWORD_TOO_LONG",
            "Password too long",
        ));
    }
    let Some(current) = a.user.password_hash.as_deref() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "CREDENTIAL_ACCOUNT_NOT_FOUND",
            "Credential account not found",
        ));
    };
    if !state
        .hasher
        .verify(&b.current_password, Some(current))
        .await
    {
        return Err(invalid_password());
    }
    let hash = state
        .hasher
        .hash(&b.new_password)
        .await
        .map_err(crate::error::Error::internal)?;
    // One route for every password change: reset links die, the user is mailed.
    let revoke_all = b.revoke_other_sessions == Some(true);
    let revoke = crate::store::credentials::Revoke {
        sessions: revoke_all,
        ..Default::default()
    };
    crate::password_change::set_password(&state, &headers, &a.user, &hash, None, revoke).await?;
    let user = users::by_id(&state.db, &a.user.id)
        .await?
        .unwrap_or_else(|| a.user.clone());
    if !revoke_all {
        return Ok(json_response(
            json!({ "token": Value::Null, "user": user_json(&user) }),
        ));
    }
    // The replacement keeps the lifetime class of the session it replaces.
    let remember =
        a.session.absolute_expires_at - a.session.created_at >= state.config.session.absolute();
    let started = start_session(&state, peer, &headers, &user, remember).await?;
    Ok(with_session(
        json_response(json!({ "token": started.token, "user": user_json(&user) })),
        &started,
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct VerifyPasswordBody {
    password: String,
}

/// `POST /api/auth/verify-password` `{password}` → 200 `{"status": true}`, or 400
/// `INVALID_PASSWORD` (also for an account without a password).
pub async fn verify_password(
    _: OriginChecked,
    AxState(state): AxState<State>,
    a: Authed,
    JsonBody(b): JsonBody<VerifyPasswordBody>,
) -> Result<Response, ApiError> {
    if b.password.chars().count() > crate::config::PASSWORD_POLICY_MAX_LENGTH
        || !state
            .hasher
            .verify(&b.password, a.user.password_hash.as_deref())
            .await
    {
        return Err(invalid_password());
    }
    Ok(json_response(json!({ "status": true })))
}

/// JavaScript truthiness, for Better Auth's `if (body.email)`.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// `POST /api/auth/update-user` `{name?, image?}` → 200 `{"status": true}`. `name` and
/// `image` are the OIDC `name` and `picture` claims (`image: null` removes the
/// picture); `updated_at` follows. As Better Auth: `email` is refused with 400
/// `EMAIL_CAN_NOT_BE_UPDATED` (change-email is the way), a body with nothing to update
/// is 400 `NO_FIELDS_TO_UPDATE`. The custom fields of `sign_up.fields` are validated
/// as at sign-up (`user_fields::for_update`; a bad value, or one with `input = false`,
/// is 400 `VALIDATION_ERROR` naming the field); other keys are ignored.
pub async fn update_user(
    _: OriginChecked,
    AxState(state): AxState<State>,
    a: Authed,
    JsonBody(b): JsonBody<Map<String, Value>>,
) -> Result<Response, ApiError> {
    if b.get("email").is_some_and(truthy) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "EMAIL_CAN_NOT_BE_UPDATED",
            "Email can not be updated",
        ));
    }
    let name = match b.get("name") {
        None => None,
        Some(Value::String(s)) if s.chars().count() <= 256 => Some(s.clone()),
        Some(Value::String(_)) => {
            return Err(ApiError::validation("[body.name] at most 256 characters"));
        }
        Some(_) => return Err(ApiError::validation("[body.name] expected a string")),
    };
    let image = match b.get("image") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) if s.len() <= 2048 => Some(Some(s.clone())),
        Some(Value::String(_)) => {
            return Err(ApiError::validation("[body.image] at most 2048 characters"));
        }
        Some(_) => {
            return Err(ApiError::validation(
                "[body.image] expected a string or null",
            ));
        }
    };
    // The stored user, not the session's copy, so nothing set meanwhile is lost.
    let stored = users::by_id(&state.db, &a.user.id).await?;
    let mut fields = stored
        .as_ref()
        .map(|u| u.fields.clone())
        .unwrap_or_else(|| a.user.fields.clone());
    let fields_given =
        crate::user_fields::for_update(&state.config.sign_up.fields, &b, &mut fields)
            .map_err(|e| ApiError::validation(e.to_string()))?;
    if name.is_none() && image.is_none() && !fields_given {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "NO_FIELDS_TO_UPDATE",
            "No fields to update",
        ));
    }
    let mut claims = stored.map_or_else(|| a.user.claims.clone(), |u| u.claims);
    if let Some(n) = name {
        claims.insert("name".into(), json!(n));
    }
    match image {
        Some(Some(i)) => {
            claims.insert("picture".into(), json!(i));
        }
        Some(None) => {
            claims.remove("picture");
        }
        None => {}
    }
    // Names of what changed only: values may be personal data the trail need not keep.
    let changed: Vec<String> = body_keys(&claims, &a.user.claims, &fields, &a.user.fields);
    let event = crate::audit::Event::here(crate::audit::kind::UPDATED)
        .user(&a.user.id)
        .with("changed", changed);
    let event = crate::audit::pending(&state, event);
    let now = state.clock.now();
    users::update_profile_and_fields(&state.db, &a.user.id, &claims, &fields, now, event).await?;
    Ok(json_response(json!({ "status": true })))
}

/// The names of the claims and fields that differ between old and new.
fn body_keys(
    claims: &serde_json::Map<String, serde_json::Value>,
    old_claims: &serde_json::Map<String, serde_json::Value>,
    fields: &serde_json::Map<String, serde_json::Value>,
    old_fields: &serde_json::Map<String, serde_json::Value>,
) -> Vec<String> {
    let diff = |new: &serde_json::Map<String, serde_json::Value>,
                old: &serde_json::Map<String, serde_json::Value>| {
        let mut keys: Vec<String> = new
            .keys()
            .chain(old.keys())
            .filter(|k| new.get(*k) != old.get(*k))
            .cloned()
            .collect();
        keys.sort();
        keys.dedup();
        keys
    };
    let mut out = diff(claims, old_claims);
    out.extend(diff(fields, old_fields));
    out
}
