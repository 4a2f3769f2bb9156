//! The UserInfo endpoint (OIDC Core §5.3), GET and POST, with the bearer token in the
//! Authorization header or the form body (RFC 6750 §2.1, §2.2).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::app::State;
use crate::error::{Error, OAuthError};
use crate::http::params::Params;
use crate::oauth::introspect::active_access_token;
use crate::oidc::claims;
use crate::store::users;

/// RFC 6750 §3: errors carry WWW-Authenticate; a request without a token gets no error code.
fn bearer_error(err: OAuthError) -> Response {
    let v = format!(
        "Bearer realm=\"klard-auth\", error=\"{}\", error_description=\"{}\"",
        err.error,
        err.description.replace('"', "'")
    );
    err.with_www_authenticate(v).into_response()
}

fn no_token() -> Response {
    let mut r = (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({
            "error": "invalid_request", "error_description": "no access token was sent"
        })),
    )
        .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"klard-auth\""),
    );
    r
}

enum Found {
    None,
    One(String),
    Many,
}

fn header_token(headers: &HeaderMap) -> Found {
    match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(v) => match v.split_once(' ') {
            Some((s, t)) if s.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
                Found::One(t.trim().to_string())
            }
            _ => Found::Many,
        },
        None => Found::None,
    }
}

pub async fn get(AxState(state): AxState<State>, headers: HeaderMap) -> Response {
    match header_token(&headers) {
        Found::One(t) => answer(&state, &t).await,
        Found::Many => bearer_error(OAuthError::invalid_request(
            "the Authorization header is not a Bearer token",
        )),
        Found::None => no_token(),
    }
}

pub async fn post(AxState(state): AxState<State>, headers: HeaderMap, body: Bytes) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let body_token = if is_form {
        Params::parse(&body).get("access_token").map(String::from)
    } else {
        None
    };
    match (header_token(&headers), body_token) {
        // RFC 6750 §2: exactly one method per request.
        (Found::One(_), Some(_)) => bearer_error(OAuthError::invalid_request(
            "send the token in the header or the body, not both",
        )),
        (Found::One(t), None) | (Found::None, Some(t)) => answer(&state, &t).await,
        (Found::Many, _) => bearer_error(OAuthError::invalid_request(
            "the Authorization header is not a Bearer token",
        )),
        (Found::None, None) => no_token(),
    }
}

async fn answer(state: &State, token: &str) -> Response {
    match claims_for(state, token).await {
        Ok(v) => {
            let mut r = Json(v).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(Error::OAuth(e)) => bearer_error(e),
        Err(e) => e.into_response(),
    }
}

async fn claims_for(state: &State, token: &str) -> Result<Value, Error> {
    let c = active_access_token(state, token).await?.ok_or_else(|| {
        OAuthError::invalid_token("the access token is invalid, expired or revoked")
    })?;
    let scope = c.get("scope").and_then(Value::as_str).unwrap_or("");
    if !scope.split(' ').any(|s| s == "openid") {
        return Err(
            OAuthError::insufficient_scope("the access token lacks the openid scope").into(),
        );
    }
    let sub = c.get("sub").and_then(Value::as_str).unwrap_or("");
    let user = users::by_id(&state.db, sub)
        .await?
        .ok_or_else(|| OAuthError::invalid_token("the user of this token no longer exists"))?;
    let mut names: Vec<String> = vec!["sub".into()];
    for s in scope.split(' ') {
        names.extend(claims::for_scope(s).iter().map(|n| n.to_string()));
    }
    // The claims request is carried by the grant's refresh/code context; the access
    // token itself does not hold it, so look it up from the code or family when needed.
    if let Some(req) = requested_userinfo_claims(state, &c).await? {
        names.extend(req);
    }
    let mut out = claims::select(&user, names.iter().map(String::as_str));
    out.insert("sub".into(), Value::String(user.id.clone()));
    Ok(Value::Object(out))
}

async fn requested_userinfo_claims(
    state: &State,
    c: &serde_json::Map<String, Value>,
) -> Result<Option<Vec<String>>, Error> {
    let Some(jti) = c.get("jti").and_then(Value::as_str) else {
        return Ok(None);
    };
    let claims = crate::store::tokens::access_claims_request(&state.db, jti).await?;
    Ok(claims.map(|v| claims::requested(Some(&v), "userinfo")))
}
