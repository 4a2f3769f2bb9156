//! Typed errors, mapped to HTTP at the edge (DESIGN.md principle 3).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error the protocol defines: its `error` code, a human-readable description,
/// and the HTTP status the spec wants for it.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
    pub status: StatusCode,
    /// Set for errors that carry a `WWW-Authenticate` header (RFC 6749 §5.2 for Basic,
    /// RFC 6750 §3 for Bearer).
    pub www_authenticate: Option<String>,
}

macro_rules! oauth_errors {
    ($($fn_name:ident => $code:literal, $status:ident;)*) => {
        impl OAuthError {
            $(
                pub fn $fn_name(description: impl Into<String>) -> Self {
                    OAuthError {
                        error: $code,
                        description: description.into(),
                        status: StatusCode::$status,
                        www_authenticate: None,
                    }
                }
            )*
        }
    };
}

oauth_errors! {
    // RFC 6749 §4.1.2.1 and §5.2
    invalid_request => "invalid_request", BAD_REQUEST;
    invalid_client => "invalid_client", UNAUTHORIZED;
    invalid_grant => "invalid_grant", BAD_REQUEST;
    unauthorized_client => "unauthorized_client", BAD_REQUEST;
    unsupported_grant_type => "unsupported_grant_type", BAD_REQUEST;
    invalid_scope => "invalid_scope", BAD_REQUEST;
    access_denied => "access_denied", BAD_REQUEST;
    unsupported_response_type => "unsupported_response_type", BAD_REQUEST;
    server_error => "server_error", INTERNAL_SERVER_ERROR;
    // OIDC Core §3.1.2.6
    interaction_required => "interaction_required", BAD_REQUEST;
    login_required => "login_required", BAD_REQUEST;
    consent_required => "consent_required", BAD_REQUEST;
    request_not_supported => "request_not_supported", BAD_REQUEST;
    request_uri_not_supported => "request_uri_not_supported", BAD_REQUEST;
    // RFC 7591 §3.2.2
    invalid_redirect_uri => "invalid_redirect_uri", BAD_REQUEST;
    invalid_client_metadata => "invalid_client_metadata", BAD_REQUEST;
    // RFC 6750 §3.1
    invalid_token => "invalid_token", UNAUTHORIZED;
    insufficient_scope => "insufficient_scope", FORBIDDEN;
    // RFC 7009 §2.2.1
    unsupported_token_type => "unsupported_token_type", BAD_REQUEST;
}

impl OAuthError {
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn with_www_authenticate(mut self, value: impl Into<String>) -> Self {
        self.www_authenticate = Some(value.into());
        self
    }
}

/// Every error a request path can produce.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {}", .0.error, .0.description)]
    OAuth(OAuthError),
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<OAuthError> for Error {
    fn from(e: OAuthError) -> Self {
        Error::OAuth(e)
    }
}

impl Error {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// JSON error body of RFC 6749 §5.2, with `Cache-Control: no-store`.
impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut resp = (self.status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(w) = self.www_authenticate
            && let Ok(v) = HeaderValue::from_str(&w)
        {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Error::OAuth(e) => e.into_response(),
            other => {
                // The detail goes to the log, never to the client.
                tracing::error!(error = %other, "request failed");
                OAuthError::server_error("the server could not complete the request")
                    .into_response()
            }
        }
    }
}
