//! Minting tokens: the one place that builds access tokens (RFC 9068 JWTs), ID tokens
//! and refresh tokens, whichever door asked for them.

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::app::State;
use crate::crypto;
use crate::error::{Error, Result};
use crate::jose::jwt;
use crate::store::clients::Client;
use crate::store::tokens::{AccessRecord, TokenContext};

pub struct AccessToken {
    pub jwt: String,
    pub record: AccessRecord,
    pub expires_in: i64,
}

/// Audience, typ and lifetime: a configured resource decides; otherwise the client's
/// configured audience, else the client itself.
fn access_profile(
    state: &State,
    client: &Client,
    ctx: &TokenContext,
) -> (Vec<String>, String, i64) {
    let aud = if !ctx.audience.is_empty() {
        ctx.audience.clone()
    } else if !client.metadata.access_token_audience.is_empty() {
        client.metadata.access_token_audience.clone()
    } else {
        vec![client.client_id.clone()]
    };
    let resource = state
        .config
        .resources
        .iter()
        .find(|r| aud.len() == 1 && r.identifier == aud[0]);
    let typ = resource
        .map(|r| r.access_token_typ.clone())
        .unwrap_or_else(|| state.config.tokens.access_token_typ.clone());
    let ttl = resource
        .and_then(|r| r.access_token_ttl)
        .unwrap_or(state.config.tokens.access_token_ttl);
    (aud, typ, ttl)
}

fn aud_value(aud: &[String]) -> Value {
    if aud.len() == 1 {
        json!(aud[0])
    } else {
        json!(aud)
    }
}

/// An RFC 9068 access token. `sub` is the user, or the client for client_credentials.
pub async fn access_token(
    state: &State,
    client: &Client,
    user_id: Option<&str>,
    ctx: &TokenContext,
    family_id: Option<&str>,
) -> Result<AccessToken> {
    let now = state.clock.now();
    let (aud, typ, ttl) = access_profile(state, client, ctx);
    let jti = uuid::Uuid::new_v4().to_string();
    let mut c = Map::new();
    c.insert("iss".into(), json!(state.config.issuer));
    c.insert("sub".into(), json!(user_id.unwrap_or(&client.client_id)));
    c.insert("aud".into(), aud_value(&aud));
    c.insert("exp".into(), json!(now + ttl));
    c.insert("iat".into(), json!(now));
    c.insert("nbf".into(), json!(now));
    c.insert("jti".into(), json!(jti));
    c.insert("client_id".into(), json!(client.client_id));
    if !ctx.scope.is_empty() {
        c.insert("scope".into(), json!(ctx.scope));
    }
    if user_id.is_some() {
        c.insert("auth_time".into(), json!(ctx.auth_time));
        if !ctx.acr.is_empty() {
            c.insert("acr".into(), json!(ctx.acr));
        }
        if let Some(sid) = &ctx.sid {
            c.insert("sid".into(), json!(sid));
        }
    }
    let alg = client.metadata.access_token_signed_response_alg.as_str();
    let token = jwt::sign(&state.keys, alg, &typ, c)
        .await
        .map_err(Error::internal)?;
    Ok(AccessToken {
        jwt: token,
        record: AccessRecord {
            jti,
            client_id: client.client_id.clone(),
            user_id: user_id.map(String::from),
            family_id: family_id.map(String::from),
            claims: ctx.claims.clone(),
            expires_at: now + ttl,
        },
        expires_in: ttl,
    })
}

/// A new refresh token and its hash (only the hash is stored).
pub fn refresh_token() -> (String, String) {
    let t = crypto::random_token(32);
    let h = crypto::hash_secret(&t);
    (t, h)
}

/// The RFC 6749 §5.1 success response, never cached.
pub fn token_response(
    access: &AccessToken,
    scope: &str,
    id_token: Option<String>,
    refresh: Option<String>,
) -> Response {
    let mut body = json!({
        "access_token": access.jwt,
        "token_type": "Bearer",
        "expires_in": access.expires_in,
    });
    if !scope.is_empty() {
        body["scope"] = json!(scope);
    }
    if let Some(t) = id_token {
        body["id_token"] = json!(t);
    }
    if let Some(r) = refresh {
        body["refresh_token"] = json!(r);
    }
    let mut resp = Json(body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}
