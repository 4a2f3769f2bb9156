//! Discovery (OIDC Discovery 1.0 §3, RFC 8414 §2) and the JWKS (RFC 7517).
//! Advertise exactly what is implemented, nothing more.

use axum::Json;
use axum::extract::State as AxState;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::State;
use crate::jose::keys::SIGNING_ALGS;
use crate::oauth::clients::{ASSERTION_ALGS, AUTH_METHODS, GRANT_TYPES};
use crate::oauth::scopes::SUPPORTED;
use crate::oidc::claims;
use crate::ui::session::ACR_PASSWORD;

pub fn metadata(state: &State) -> Value {
    let c = &state.config;
    json!({
        "issuer": c.issuer,
        "authorization_endpoint": c.url("/authorize"),
        "token_endpoint": c.url("/token"),
        "userinfo_endpoint": c.url("/userinfo"),
        "jwks_uri": c.url("/jwks"),
        "registration_endpoint": c.url("/register"),
        "revocation_endpoint": c.url("/revoke"),
        "introspection_endpoint": c.url("/introspect"),
        "end_session_endpoint": c.url("/end_session"),
        "scopes_supported": SUPPORTED,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": GRANT_TYPES,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": SIGNING_ALGS,
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "code_challenge_methods_supported": if c.pkce.allow_plain { json!(["S256", "plain"]) } else { json!(["S256"]) },
        "claims_supported": claims::supported(),
        "claims_parameter_supported": true,
        "claim_types_supported": ["normal"],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "authorization_response_iss_parameter_supported": true,
        "acr_values_supported": [ACR_PASSWORD],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "display_values_supported": ["page", "popup", "touch", "wap"],
        "ui_locales_supported": ["en"],
        "claims_locales_supported": ["en"],
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": false,
    })
}

fn json_response(v: Value, cache: &'static str) -> Response {
    let mut r = Json(v).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

pub async fn openid_configuration(AxState(state): AxState<State>) -> Response {
    json_response(metadata(&state), "public, max-age=300")
}

/// RFC 8414 §3.2: the same document; its `issuer` must equal ours.
pub async fn oauth_metadata(AxState(state): AxState<State>) -> Response {
    json_response(metadata(&state), "public, max-age=300")
}

/// Short cache so that relying parties see a rotation quickly.
pub async fn jwks(AxState(state): AxState<State>) -> Response {
    let mut r = json_response(state.keys.jwks().await, "public, max-age=60");
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
