//! The client_credentials grant (RFC 6749 §4.4): confidential clients only; no refresh
//! token (§4.4.3) and no ID token.

use axum::response::Response;

use crate::app::State;
use crate::error::{Error, OAuthError};
use crate::http::params::Params;
use crate::oauth::authorize::request::check_resource;
use crate::oauth::{mint, scopes};
use crate::store::clients::Client;
use crate::store::tokens::{self, TokenContext};

pub async fn exchange(state: &State, client: &Client, p: &Params) -> Result<Response, Error> {
    if client.metadata.is_public() {
        return Err(OAuthError::unauthorized_client(
            "public clients cannot use client_credentials",
        )
        .into());
    }
    let requested = scopes::parse(p.get("scope").unwrap_or(""))?;
    // OIDC scopes describe a user; there is none here.
    if requested
        .iter()
        .any(|s| s == "openid" || s == "offline_access")
    {
        return Err(OAuthError::invalid_scope(
            "openid and offline_access need a user; not available with client_credentials",
        )
        .into());
    }
    scopes::check_allowed(&requested, &client.metadata)?;
    let audience = check_resource(state, &p.all("resource"))?;
    let ctx = TokenContext {
        scope: requested.join(" "),
        audience,
        ..Default::default()
    };
    let access = mint::access_token(state, client, None, &ctx, None).await?;
    tokens::record_access(&state.db, &access.record).await?;
    Ok(mint::token_response(&access, &ctx.scope, None, None))
}
