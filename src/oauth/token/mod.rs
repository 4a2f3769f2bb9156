//! The token endpoint (RFC 6749 §3.2): authenticate the client, then one handler per
//! grant type. Errors are RFC 6749 §5.2 JSON with `Cache-Control: no-store`.

mod authorization_code;
mod client_credentials;
mod refresh_token;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::app::State;
use crate::error::{Error, OAuthError};
use crate::http::params::form_body;
use crate::oauth::client_auth;

pub async fn handle(AxState(state): AxState<State>, headers: HeaderMap, body: Bytes) -> Response {
    match run(&state, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn run(state: &State, headers: &HeaderMap, body: &[u8]) -> Result<Response, Error> {
    let p = form_body(headers, body)?;
    p.reject_duplicates()?;
    let grant_type = p.require("grant_type")?.to_string();
    let auth = client_auth::authenticate(state, headers, &p).await?;
    let client = auth.client;
    if !crate::oauth::clients::GRANT_TYPES.contains(&grant_type.as_str()) {
        return Err(OAuthError::unsupported_grant_type(format!(
            "grant_type `{grant_type}` is not supported"
        ))
        .into());
    }
    // RFC 6749 §5.2 unauthorized_client: the client may not use this grant type.
    if !client.metadata.allows_grant(&grant_type) {
        return Err(OAuthError::unauthorized_client(format!(
            "this client may not use the {grant_type} grant"
        ))
        .into());
    }
    match grant_type.as_str() {
        "authorization_code" => authorization_code::exchange(state, &client, &p).await,
        "refresh_token" => refresh_token::exchange(state, &client, &p).await,
        "client_credentials" => client_credentials::exchange(state, &client, &p).await,
        _ => Err(OAuthError::unsupported_grant_type("unsupported grant_type").into()),
    }
}

/// The refresh-token grant for first-party clients outside `/token` (the `/auth/refresh`
/// alias): the same client authentication and grant, restricted to clients declared
/// `first_party`.
pub async fn first_party_refresh(
    state: &State,
    headers: &HeaderMap,
    p: &crate::http::params::Params,
) -> Result<Response, Error> {
    if !p.has("client_id") && !headers.contains_key(axum::http::header::AUTHORIZATION) {
        return Err(OAuthError::invalid_request(
            "client_id is required (or set api_auth.client_id)",
        )
        .into());
    }
    let client = client_auth::authenticate(state, headers, p).await?.client;
    if !client.metadata.first_party {
        return Err(OAuthError::unauthorized_client(
            "only first-party clients may use /auth/refresh; use the token endpoint",
        )
        .into());
    }
    if !client.metadata.allows_grant("refresh_token") {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the refresh_token grant",
        )
        .into());
    }
    refresh_token::exchange(state, &client, p).await
}
