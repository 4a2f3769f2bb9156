//! Who is calling: the session from the `Authorization: Bearer <session token>` header
//! (apps) or from the session cookie (browsers), and the Origin check that protects the
//! cookie from cross-site use.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};

use super::error::ApiError;
use crate::app::State;
use crate::http::cookies;
use crate::store::sessions::Session;
use crate::store::users::User;
use crate::ui::session as browser;

/// How the session token reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Cookie,
    Bearer,
}

/// The bearer token of `Authorization: Bearer ...`, if that is the scheme used.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A request made with an active session.
pub struct Authed {
    pub session: Session,
    pub user: User,
    /// The session token the client presented (never stored; the row holds its hash).
    pub token: String,
    pub via: Via,
}

/// The session of this request, if any. A bearer token, when sent, is the only
/// credential looked at: the cookie is then ignored, which is what lets bearer requests
/// skip the Origin check.
pub async fn authed(state: &State, headers: &HeaderMap) -> Result<Option<Authed>, ApiError> {
    let (token, via) = match bearer(headers) {
        Some(t) => (t.to_string(), Via::Bearer),
        None => match cookies::get(&state.config, headers, cookies::SESSION) {
            Some(t) => (t, Via::Cookie),
            None => return Ok(None),
        },
    };
    Ok(browser::by_token(state, &token)
        .await?
        .map(|(session, user)| Authed {
            session,
            user,
            token,
            via,
        }))
}

/// Requires a session: 401 `UNAUTHORIZED` without one.
impl FromRequestParts<State> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, ApiError> {
        authed(state, &parts.headers)
            .await?
            .ok_or_else(ApiError::unauthorized)
    }
}

/// A session if there is one.
pub struct MaybeAuthed(pub Option<Authed>);

impl FromRequestParts<State> for MaybeAuthed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, ApiError> {
        Ok(MaybeAuthed(authed(state, &parts.headers).await?))
    }
}

/// The origin (`scheme://host[:port]`) of an absolute http(s) URL.
fn origin_of(s: &str) -> Option<String> {
    let u = url::Url::parse(s).ok()?;
    matches!(u.scheme(), "http" | "https").then(|| u.origin().ascii_serialization())
}

pub fn is_trusted_origin(state: &State, origin: &str) -> bool {
    origin_of(origin).is_some_and(|o| {
        state
            .config
            .api_auth
            .origins(&state.config.issuer)
            .contains(&o)
    })
}

/// Better Auth's `callbackURL` rule: a relative path, or an absolute URL on a trusted
/// origin (otherwise 403 `INVALID_CALLBACK_URL`), so that we never point a client at a
/// foreign site.
pub fn check_callback_url(state: &State, url: Option<&str>) -> Result<(), ApiError> {
    let Some(u) = url.filter(|u| !u.is_empty()) else {
        return Ok(());
    };
    let relative = u.starts_with('/') && !u.starts_with("//") && !u.contains('\\');
    if relative || is_trusted_origin(state, u) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "INVALID_CALLBACK_URL",
            "Invalid callbackURL",
        ))
    }
}

/// Taken first by every state-changing `/api/auth/*` handler, after Better Auth's
/// `validateOrigin` and `formCsrfMiddleware`
/// (packages/better-auth/src/api/middlewares/origin-check.ts): a request that carries
/// cookies must come from a trusted Origin (or Referer); 403 `MISSING_OR_NULL_ORIGIN` /
/// `INVALID_ORIGIN` otherwise. Without cookies, a browser's Fetch Metadata still
/// triggers the check (login CSRF). Bearer requests are exempt: a cross-site page cannot
/// set `Authorization`, and with a bearer token the cookie is never used.
pub struct OriginChecked;

impl FromRequestParts<State> for OriginChecked {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, ApiError> {
        check_origin(state, &parts.method, &parts.headers).map(|()| OriginChecked)
    }
}

pub fn check_origin(state: &State, method: &Method, h: &HeaderMap) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) || bearer(h).is_some() {
        return Ok(());
    }
    let has_cookies = h.contains_key(header::COOKIE);
    let site = h.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let mode = h.get("sec-fetch-mode").and_then(|v| v.to_str().ok());
    if !has_cookies {
        if site.is_none() && mode.is_none() {
            return Ok(());
        }
        if site == Some("cross-site") && mode == Some("navigate") {
            return Err(ApiError::forbidden(
                "CROSS_SITE_NAVIGATION_LOGIN_BLOCKED",
                "Cross-site navigation login blocked. This request appears to be a CSRF attack.",
            ));
        }
    }
    let origin = h
        .get(header::ORIGIN)
        .or_else(|| h.get(header::REFERER))
        .and_then(|v| v.to_str().ok())
        .filter(|o| !o.is_empty() && *o != "null");
    match origin {
        None => Err(ApiError::forbidden(
            "MISSING_OR_NULL_ORIGIN",
            "Missing or null Origin",
        )),
        Some(o) if !is_trusted_origin(state, o) => {
            Err(ApiError::forbidden("INVALID_ORIGIN", "Invalid origin"))
        }
        Some(_) => Ok(()),
    }
}
