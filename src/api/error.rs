//! The error shape of Better Auth's API: a status and a JSON body
//! `{"code": "SCREAMING_SNAKE", "message": "..."}` (better-auth `APIError`, codes from
//! `BASE_ERROR_CODES` in packages/core/src/error/codes.ts).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// An answer the API defines: status, code and message go to the client.
    #[error("{code}: {message}")]
    Api {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// Anything else: logged, answered with a bare 500.
    #[error(transparent)]
    Internal(#[from] crate::error::Error),
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Api {
            status,
            code,
            message: message.into(),
        }
    }

    /// A body that does not parse or lacks a field: 400 `VALIDATION_ERROR`.
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "Unauthorized")
    }

    pub fn invalid_email() -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "INVALID_EMAIL", "Invalid email")
    }

    /// The one answer to an unknown email and a wrong password.
    pub fn invalid_email_or_password() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_EMAIL_OR_PASSWORD",
            "Invalid email or password",
        )
    }

    pub fn forbidden(code: &'static str, message: &str) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ApiError::Api {
                status,
                code,
                message,
            } => (status, code, message),
            ApiError::Internal(e) => {
                // The detail goes to the log, never to the client.
                tracing::error!(error = %e, "api request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_SERVER_ERROR",
                    "the server could not complete the request".to_string(),
                )
            }
        };
        let mut resp = (status, Json(json!({ "code": code, "message": message }))).into_response();
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}
