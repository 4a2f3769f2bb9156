//! Token revocation (RFC 7009). Refresh tokens revoke their whole family (§2.1 allows
//! it, RFC 9700 §4.14.2 recommends it); JWT access tokens are revoked by `jti`.

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::app::State;
use crate::crypto;
use crate::error::{Error, OAuthError};
use crate::http::params::form_body;
use crate::jose::jwt;
use crate::oauth::client_auth;
use crate::store::tokens;

pub async fn handle(AxState(state): AxState<State>, headers: HeaderMap, body: Bytes) -> Response {
    match run(&state, &headers, &body).await {
        Ok(()) => {
            let mut r = StatusCode::OK.into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => e.into_response(),
    }
}

fn not_yours() -> Error {
    // RFC 7009 §2.1: a token issued to another client is refused.
    OAuthError::invalid_request("the token was not issued to this client").into()
}

async fn run(state: &State, headers: &HeaderMap, body: &[u8]) -> Result<(), Error> {
    let p = form_body(headers, body)?;
    let client = client_auth::authenticate(state, headers, &p).await?.client;
    let token = p.require("token")?;
    let now = state.clock.now();
    // token_type_hint is honoured for lookup order but not trusted (§2.1): both kinds
    // are tried. Unknown hint values are ignored.
    let refresh_first = p.get("token_type_hint") == Some("refresh_token");
    for kind in if refresh_first {
        ["refresh", "access"]
    } else {
        ["access", "refresh"]
    } {
        if kind == "refresh" {
            if let Some(r) = tokens::refresh_by_hash(&state.db, &crypto::hash_secret(token)).await?
            {
                if r.family.client_id != client.client_id {
                    return Err(not_yours());
                }
                tokens::revoke_family(&state.db, &r.family.id, "revoked by client", now).await?;
                return Ok(());
            }
        } else if let Ok((claims, _)) = jwt::verify_own(&state.keys, token).await
            && let Some(jti) = claims.get("jti").and_then(Value::as_str)
            && let Some(s) = tokens::access_state(&state.db, jti).await?
        {
            if s.client_id != client.client_id {
                return Err(not_yours());
            }
            tokens::revoke_access(&state.db, jti, now).await?;
            return Ok(());
        }
    }
    // §2.2: invalid or unknown tokens get 200 too.
    Ok(())
}
