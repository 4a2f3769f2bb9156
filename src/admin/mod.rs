//! The admin API (`/admin/*`): a door for operators' tooling, authenticated by our own
//! OAuth access tokens. A service gets one with the client_credentials grant for a
//! client allowed the scope [`ADMIN_SCOPE`] (`klard-auth client create --grant-type
//! client_credentials --scope klard:admin`). Errors are RFC 6750 bearer errors.
//!
//! Only tokens the client holds for itself (client_credentials, where `sub` is the
//! client) count: a user-delegated token of such a client must not make its user an
//! admin. Every admin action is in the audit trail with actor `admin:<client_id>`.

pub mod audit;
pub mod users;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use crate::app::State;
use crate::audit::Actor;
use crate::error::OAuthError;

/// The scope an admin token must carry.
pub const ADMIN_SCOPE: &str = "klard:admin";

/// The routes of the admin API (issuer-relative).
pub fn router() -> Router<State> {
    Router::new()
        .route("/admin/audit-events", get(audit::list))
        .route("/admin/audit-events/verify", get(audit::verify))
        .route(
            "/admin/users/{id}/lockout",
            axum::routing::get(users::lockout_status),
        )
        .route(
            "/admin/users/{id}/unlock",
            axum::routing::post(users::unlock),
        )
}

/// A request authenticated as an admin client.
#[derive(Debug, Clone)]
pub struct Admin {
    pub client_id: String,
}

impl Admin {
    pub fn actor(&self) -> Actor {
        Actor::Admin(self.client_id.clone())
    }
}

/// RFC 6750 §3: the error, with its `WWW-Authenticate` challenge.
fn bearer_error(err: OAuthError) -> Response {
    let v = format!(
        "Bearer realm=\"klard-auth\", error=\"{}\", error_description=\"{}\", scope=\"{ADMIN_SCOPE}\"",
        err.error,
        err.description.replace('"', "'")
    );
    err.with_www_authenticate(v).into_response()
}

impl FromRequestParts<State> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        let Some(token) = crate::api::extract::bearer(&parts.headers) else {
            return Err(bearer_error(OAuthError::invalid_token(
                "the admin API needs an access token (Authorization: Bearer)",
            )));
        };
        let claims = crate::oauth::introspect::active_access_token(state, token)
            .await
            .map_err(IntoResponse::into_response)?
            .ok_or_else(|| {
                bearer_error(OAuthError::invalid_token(
                    "the access token is invalid, expired or revoked",
                ))
            })?;
        let client_id = claims
            .get("client_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let scoped = claims
            .get("scope")
            .and_then(Value::as_str)
            .is_some_and(|s| s.split(' ').any(|x| x == ADMIN_SCOPE));
        let own = claims.get("sub").and_then(Value::as_str) == Some(client_id.as_str());
        if !scoped || !own || client_id.is_empty() {
            return Err(bearer_error(OAuthError::insufficient_scope(format!(
                "the admin API needs a client_credentials token with the `{ADMIN_SCOPE}` scope"
            ))));
        }
        Ok(Admin { client_id })
    }
}
