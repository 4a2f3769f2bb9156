//! Token introspection (RFC 7662), for authenticated clients only. Answers for our JWT
//! access tokens as well as refresh tokens; anything expired, revoked, unknown or not
//! meant for the caller is just `{"active": false}` (§2.2), with no reason given.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::app::State;
use crate::crypto;
use crate::error::{Error, OAuthError};
use crate::http::params::form_body;
use crate::jose::jwt;
use crate::oauth::client_auth;
use crate::store::tokens;

/// A valid access token of ours: signature, issuer, expiry, and not revoked.
pub async fn active_access_token(
    state: &State,
    token: &str,
) -> Result<Option<Map<String, Value>>, Error> {
    let Ok((claims, _)) = jwt::verify_own(&state.keys, token).await else {
        return Ok(None);
    };
    if claims.get("iss").and_then(Value::as_str) != Some(state.config.issuer.as_str()) {
        return Ok(None);
    }
    let now = state.clock.now();
    if claims
        .get("exp")
        .and_then(Value::as_i64)
        .is_none_or(|e| e <= now)
    {
        return Ok(None);
    }
    // Only access tokens carry client_id and jti (RFC 9068 §2.2); ID tokens are not bearer tokens.
    let (Some(_), Some(jti)) = (
        claims.get("client_id").and_then(Value::as_str),
        claims.get("jti").and_then(Value::as_str),
    ) else {
        return Ok(None);
    };
    match tokens::access_state(&state.db, jti).await? {
        Some(s) if !s.revoked => Ok(Some(claims)),
        _ => Ok(None),
    }
}

fn audience_contains(claims: &Map<String, Value>, who: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(a)) => a == who,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(who)),
        _ => false,
    }
}

pub async fn handle(AxState(state): AxState<State>, headers: HeaderMap, body: Bytes) -> Response {
    match run(&state, &headers, &body).await {
        Ok(v) => {
            let mut r = Json(v).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => e.into_response(),
    }
}

async fn run(state: &State, headers: &HeaderMap, body: &[u8]) -> Result<Value, Error> {
    let p = form_body(headers, body)?;
    let auth = client_auth::authenticate(state, headers, &p).await?;
    // RFC 7662 §2.1: the caller must be authorised; public clients are not.
    if auth.method == "none" {
        return Err(
            OAuthError::invalid_client("introspection requires client authentication").into(),
        );
    }
    let caller = auth.client.client_id;
    let token = p.require("token")?;
    let inactive = json!({ "active": false });
    let hint = p.get("token_type_hint");
    // The hint only chooses the order of lookups (RFC 7662 §2.1).
    let access_first = hint != Some("refresh_token");
    for kind in if access_first {
        ["access", "refresh"]
    } else {
        ["refresh", "access"]
    } {
        if kind == "access" {
            if let Some(c) = active_access_token(state, token).await? {
                let client_id = c.get("client_id").and_then(Value::as_str).unwrap_or("");
                // Token's own client, or a resource server it is addressed to.
                if client_id != caller && !audience_contains(&c, &caller) {
                    return Ok(inactive);
                }
                let mut out = json!({ "active": true, "token_type": "Bearer" });
                for k in [
                    "scope",
                    "client_id",
                    "sub",
                    "aud",
                    "iss",
                    "exp",
                    "iat",
                    "nbf",
                    "jti",
                    "auth_time",
                    "acr",
                ] {
                    if let Some(v) = c.get(k) {
                        out[k] = v.clone();
                    }
                }
                return Ok(out);
            }
        } else if let Some(r) =
            tokens::refresh_by_hash(&state.db, &crypto::hash_secret(token)).await?
        {
            let now = state.clock.now();
            let grace = state.config.tokens.refresh_reuse_grace;
            let usable = r.family.revoked_at.is_none()
                && r.expires_at > now
                && r.rotated_at.is_none_or(|at| grace > 0 && now - at <= grace);
            if !usable || r.family.client_id != caller {
                return Ok(inactive);
            }
            return Ok(json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": r.ctx.scope,
                "client_id": r.family.client_id,
                "sub": r.family.user_id,
                "iss": state.config.issuer,
                "exp": r.expires_at,
            }));
        }
    }
    Ok(inactive)
}
