//! The seed's REST aliases under `/auth/*` (issue 3), mapped onto the `/api/auth/*`
//! handlers so both doors behave identically: same bodies, status codes, error codes,
//! cookies and `set-auth-token`. Only the resource-style routes (`/auth/me`,
//! `/auth/sessions/{id}`) need small adapters; `/auth/refresh` is the refresh-token
//! grant of the token endpoint for first-party clients, taking JSON.

use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::extract::{Authed, OriginChecked, Via};
use super::openapi::{Auth, Doc, Routes, Verb::*};
use super::views::TokenBody;
use super::{JsonBody, account, json_response, session_json, sessions, sign, user_json};
use crate::app::State;
use crate::http::{cookies, params::Params};
use crate::store::sessions as store;

/// The `/auth/*` routes.
pub fn routes() -> Routes {
    use super::views::*;
    const T: &str = "rest";
    Routes::new()
        .add(
            Post,
            "/auth/register",
            sign::sign_up_email,
            Doc::new(T, "= POST /api/auth/sign-up/email")
                .body::<sign::SignUpBody>()
                .ok::<SignUpResponse>(),
        )
        .add(
            Post,
            "/auth/login",
            sign::sign_in_email,
            Doc::new(T, "= POST /api/auth/sign-in/email")
                .body::<sign::SignInBody>()
                .ok::<SignInResponse>()
                .errors(&["INVALID_EMAIL_OR_PASSWORD"]),
        )
        .add(
            Post,
            "/auth/logout",
            sign::sign_out,
            Doc::new(T, "= POST /api/auth/sign-out")
                .ok::<SuccessResponse>()
                .session(Auth::Required),
        )
        .add(
            Post,
            "/auth/refresh",
            refresh,
            Doc::new(
                T,
                "The refresh-token grant (RFC 6749 §6) for first-party clients, as JSON",
            )
            .body::<RefreshBody>()
            .ok::<OAuthTokenResponse>()
            .oauth_errors()
            .errors(&[
                "invalid_grant",
                "invalid_client",
                "unauthorized_client",
                "invalid_request",
            ]),
        )
        .add(
            Post,
            "/auth/forgot-password",
            super::reset::request_password_reset,
            Doc::new(T, "= POST /api/auth/request-password-reset")
                .body::<super::reset::RequestResetBody>()
                .ok::<MessageResponse>(),
        )
        .add(
            Post,
            "/auth/reset-password",
            super::reset::reset_password,
            Doc::new(T, "= POST /api/auth/reset-password")
                .body::<super::reset::ResetBody>()
                .ok::<StatusResponse>()
                .errors(&["INVALID_TOKEN", "PASSWORD_TOO_SHORT", "PASSWORD_TOO_LONG"]),
        )
        .add(
            Post,
            "/auth/verify-email",
            verify_email,
            Doc::new(T, "= GET /api/auth/verify-email, the token in a JSON body")
                .body::<TokenBody>()
                .ok::<VerifyEmailResponse>()
                .errors(&["INVALID_TOKEN", "TOKEN_EXPIRED"]),
        )
        .add(
            Post,
            "/auth/resend-verification",
            super::verify::send_verification_email,
            Doc::new(T, "= POST /api/auth/send-verification-email")
                .body::<super::verify::SendVerificationBody>()
                .ok::<StatusResponse>()
                .session(Auth::Optional),
        )
        .add(
            Get,
            "/auth/me",
            me,
            Doc::new(T, "The session's user")
                .ok::<UserView>()
                .session(Auth::Required)
                .errors(&["UNAUTHORIZED"]),
        )
        .add(
            Patch,
            "/auth/me",
            account::update_user,
            Doc::new(T, "= POST /api/auth/update-user")
                .body::<UpdateUserBody>()
                .ok::<StatusResponse>()
                .session(Auth::Required),
        )
        .add(
            Delete,
            "/auth/me",
            super::delete_user::delete_user,
            Doc::new(T, "= POST /api/auth/delete-user")
                .body::<super::delete_user::DeleteUserBody>()
                .ok::<DeleteUserResponse>()
                .session(Auth::Required),
        )
        .add(
            Post,
            "/auth/change-email",
            super::change_email::change_email,
            Doc::new(T, "= POST /api/auth/change-email")
                .body::<super::change_email::ChangeEmailBody>()
                .ok::<StatusResponse>()
                .session(Auth::Required),
        )
        .add(
            Post,
            "/auth/change-password",
            account::change_password,
            Doc::new(T, "= POST /api/auth/change-password")
                .body::<account::ChangePasswordBody>()
                .ok::<SignUpResponse>()
                .session(Auth::Required),
        )
        .add(
            Get,
            "/auth/sessions",
            sessions::list_sessions,
            Doc::new(T, "= GET /api/auth/list-sessions")
                .ok::<Vec<SessionView>>()
                .session(Auth::Required),
        )
        .add(
            Delete,
            "/auth/sessions",
            sessions::revoke_sessions,
            Doc::new(T, "= POST /api/auth/revoke-sessions")
                .ok::<StatusResponse>()
                .session(Auth::Required),
        )
        .add(
            Get,
            "/auth/sessions/{id}",
            session_by_id,
            Doc::new(T, "One of the user's sessions")
                .ok::<SessionView>()
                .session(Auth::Required)
                .errors(&["SESSION_NOT_FOUND"]),
        )
        .add(
            Delete,
            "/auth/sessions/{id}",
            revoke_by_id,
            Doc::new(T, "Revoke one of the user's sessions")
                .ok::<StatusResponse>()
                .session(Auth::Required)
                .errors(&["SESSION_NOT_FOUND"]),
        )
}

/// `POST /auth/verify-email {token}`: the verify-email handler with the token from the
/// body instead of the query (a POST keeps it out of access logs and history).
async fn verify_email(
    _: OriginChecked,
    state: AxState<State>,
    peer: axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<TokenBody>,
) -> Result<Response, ApiError> {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", &b.token)
        .finish();
    super::verify::verify_email(state, peer, headers, axum::extract::RawQuery(Some(q))).await
}

/// `GET /auth/me` → 200 `User` (the user of the session), 401 `UNAUTHORIZED` without one.
async fn me(a: Authed) -> Response {
    json_response(user_json(&a.user))
}

/// The caller's own session `id` (its sid), or 404 `SESSION_NOT_FOUND`: another user's
/// session is indistinguishable from one that does not exist.
async fn own_session(state: &State, a: &Authed, id: &str) -> Result<store::Session, ApiError> {
    match store::by_sid(&state.db, id).await? {
        Some(s) if s.user_id == a.user.id && s.is_active(state.clock.now()) => Ok(s),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "SESSION_NOT_FOUND",
            "Session not found",
        )),
    }
}

/// `GET /auth/sessions/{id}` → 200 `Session`.
async fn session_by_id(
    AxState(state): AxState<State>,
    a: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = own_session(&state, &a, &id).await?;
    Ok(json_response(session_json(&s, None)))
}

/// `DELETE /auth/sessions/{id}` → 200 `{"status": true}`; the cookie is cleared when it
/// was the caller's own cookie session.
async fn revoke_by_id(
    _: OriginChecked,
    AxState(state): AxState<State>,
    a: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = own_session(&state, &a, &id).await?;
    store::revoke(&state.db, &s.sid, state.clock.now()).await?;
    let mut r = json_response(json!({ "status": true }));
    if s.sid == a.session.sid && a.via == Via::Cookie {
        r.headers_mut().append(
            axum::http::header::SET_COOKIE,
            cookies::clear(&state.config, cookies::SESSION),
        );
    }
    Ok(r)
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct RefreshBody {
    #[serde(alias = "refreshToken")]
    refresh_token: String,
    /// The first-party client the token was issued to; `api_auth.client_id` if absent.
    #[serde(default, alias = "clientId")]
    client_id: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// `POST /auth/refresh {refresh_token, client_id?, scope?}`: the refresh-token grant
/// (RFC 6749 §6) for first-party clients, as JSON. The answer is the token endpoint's
/// (RFC 6749 §5.1 / §5.2), rotation and reuse detection included; a confidential client
/// still authenticates (HTTP Basic), a public one only names itself. Third-party clients
/// get `unauthorized_client`: they use `/token`.
async fn refresh(
    AxState(state): AxState<State>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<RefreshBody>,
) -> Response {
    let mut p = Params::default();
    p.insert("grant_type", "refresh_token");
    p.insert("refresh_token", &b.refresh_token);
    // With HTTP Basic the header names the client; otherwise `api_auth.client_id` is
    // the default first-party client.
    let default_client = (!headers.contains_key(axum::http::header::AUTHORIZATION))
        .then(|| state.config.api_auth.client_id.clone())
        .flatten();
    if let Some(c) = b.client_id.clone().or(default_client) {
        p.insert("client_id", &c);
    }
    if let Some(s) = &b.scope {
        p.insert("scope", s);
    }
    crate::oauth::token::first_party_refresh(&state, &headers, &p)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}
