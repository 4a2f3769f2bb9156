//! `POST /api/auth/change-email` (Better Auth `routes/update-user.ts` `changeEmail`) and
//! the two links it leads to, `GET /api/auth/change-email/confirm` and `GET
//! /api/auth/change-email/revert` (ours: Better Auth reuses `verify-email`, but these
//! links only ever arrive by mail, so no client calls them). The work is done by
//! `crate::email_change`; this is the door.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{self, Authed, OriginChecked};
use super::{JsonBody, json_response, user_json};
use crate::app::State;
use crate::email_change::{self, LinkError, RequestError};
use crate::ui::account_result;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangeEmailBody {
    new_email: String,
    #[serde(rename = "callbackURL")]
    callback_url: Option<String>,
}

pub(crate) fn request_error(e: RequestError) -> ApiError {
    match e {
        RequestError::Disabled => ApiError::new(
            StatusCode::BAD_REQUEST,
            "CHANGE_EMAIL_DISABLED",
            "Change email is disabled",
        ),
        RequestError::SameEmail => ApiError::new(
            StatusCode::BAD_REQUEST,
            "EMAIL_IS_THE_SAME",
            "Email is the same",
        ),
        RequestError::Internal(e) => ApiError::Internal(e),
    }
}

/// `POST /api/auth/change-email` `{newEmail, callbackURL?}` → 200 `{"status": true}`.
/// 401 without a session, 400 `INVALID_EMAIL` for something that is not an address,
/// 400 `EMAIL_IS_THE_SAME` for the current one, 403 `INVALID_CALLBACK_URL` for a
/// foreign callback. An address that already has an account gets the same 200 (its
/// owner is mailed a notice instead of a link), so the answer reveals nothing.
pub async fn change_email(
    _: OriginChecked,
    AxState(state): AxState<State>,
    a: Authed,
    headers: HeaderMap,
    JsonBody(b): JsonBody<ChangeEmailBody>,
) -> Result<Response, ApiError> {
    super::sign::check_email(b.new_email.trim())?;
    extract::check_callback_url(&state, b.callback_url.as_deref())?;
    let locale = email_change::mail_locale(&a.user, &headers);
    email_change::request(
        &state,
        &a.user,
        b.new_email.trim(),
        b.callback_url.as_deref().filter(|u| !u.is_empty()),
        &locale,
    )
    .await
    .map_err(request_error)?;
    Ok(json_response(json!({ "status": true })))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct LinkQuery {
    pub(crate) token: Option<String>,
    #[serde(rename = "callbackURL")]
    pub(crate) callback_url: Option<String>,
}

pub(crate) fn link_error(e: LinkError) -> ApiError {
    match e {
        LinkError::InvalidToken => {
            ApiError::new(StatusCode::BAD_REQUEST, "INVALID_TOKEN", "Invalid token")
        }
        LinkError::Expired => {
            ApiError::new(StatusCode::BAD_REQUEST, "TOKEN_EXPIRED", "Token expired")
        }
        LinkError::AddressTaken => ApiError::new(
            StatusCode::CONFLICT,
            "EMAIL_ALREADY_IN_USE",
            "The email address is already used by another account",
        ),
        LinkError::Internal(e) => ApiError::Internal(e),
    }
}

/// What a mailed link did, for [`link_answer`].
pub(crate) struct Done {
    pub json: Value,
    pub title: &'static str,
    pub message: &'static str,
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// The answer to a mailed link, as Better Auth's `verify-email` gives it: a redirect
/// to `callbackURL` (with `?error=CODE` on failure), else JSON, or a page when a
/// browser asks for HTML (the links are opened from mail).
pub(crate) fn link_answer(
    state: &State,
    headers: &HeaderMap,
    callback_url: Option<&str>,
    r: Result<Done, ApiError>,
) -> Response {
    if let Some(cb) = callback_url.filter(|u| !u.is_empty()) {
        let target = match &r {
            Ok(_) => cb.to_string(),
            Err(ApiError::Api { code, .. }) => {
                let sep = if cb.contains('?') { '&' } else { '?' };
                format!("{cb}{sep}error={code}")
            }
            Err(ApiError::Internal(_)) => {
                return r.err().map(IntoResponse::into_response).unwrap_or_default();
            }
        };
        let mut resp = StatusCode::FOUND.into_response();
        if let Ok(v) = HeaderValue::from_str(&target) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        // The link's URL carries its token: never hand it on as a Referer.
        resp.headers_mut().insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        return resp;
    }
    match r {
        Ok(d) if wants_html(headers) => {
            account_result::page(state, StatusCode::OK, "ok", d.title, d.message, None)
        }
        Ok(d) => json_response(d.json),
        Err(ApiError::Api {
            status,
            code,
            message,
        }) if wants_html(headers) => account_result::page(
            state,
            status,
            code,
            "This link did not work",
            &message,
            Some(
                "Links from our emails work once and for a limited time. Start again from your account page if you still want to make the change.",
            ),
        ),
        Err(e) => e.into_response(),
    }
}

/// The link's query; one that does not parse (a repeated parameter, say) is an invalid
/// link, answered as JSON like every other error of the API.
pub(crate) fn link_query(
    q: Result<Query<LinkQuery>, QueryRejection>,
) -> Result<LinkQuery, Response> {
    q.map(|Query(q)| q).map_err(|_| {
        ApiError::new(StatusCode::BAD_REQUEST, "INVALID_TOKEN", "Invalid token").into_response()
    })
}

fn token_of(q: &LinkQuery) -> Result<&str, ApiError> {
    q.token
        .as_deref()
        .filter(|t| !t.is_empty() && t.len() <= 256)
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_TOKEN", "Invalid token"))
}

/// `GET /api/auth/change-email/confirm?token=&callbackURL=`: spends the link mailed
/// to the new address and switches the account to it (`crate::email_change::confirm`).
/// 200 `{"status": true, "user": User}`, or 400 `INVALID_TOKEN` / `TOKEN_EXPIRED`, or
/// 409 `EMAIL_ALREADY_IN_USE` when another account took the address meanwhile.
pub async fn confirm(
    AxState(state): AxState<State>,
    headers: HeaderMap,
    q: Result<Query<LinkQuery>, QueryRejection>,
) -> Response {
    let q = match link_query(q) {
        Ok(q) => q,
        Err(r) => return r,
    };
    if let Err(e) = extract::check_callback_url(&state, q.callback_url.as_deref()) {
        return e.into_response();
    }
    let r = async {
        let token = token_of(&q)?;
        // The browser that opened the link keeps its session when others are revoked.
        let keep = extract::authed(&state, &headers)
            .await?
            .map(|a| a.session.sid);
        let user = email_change::confirm(&state, token, keep.as_deref())
            .await
            .map_err(link_error)?;
        Ok(Done {
            json: json!({ "status": true, "user": user_json(&user) }),
            title: "Email address changed",
            message: "Your account now uses the new email address.",
        })
    }
    .await;
    link_answer(&state, &headers, q.callback_url.as_deref(), r)
}

/// `GET /api/auth/change-email/revert?token=`: spends the link mailed to the old
/// address, restores it and revokes every session and token of the account
/// (`crate::email_change::revert`). 200 `{"status": true}`, or the errors of
/// `confirm`.
pub async fn revert(
    AxState(state): AxState<State>,
    headers: HeaderMap,
    q: Result<Query<LinkQuery>, QueryRejection>,
) -> Response {
    let q = match link_query(q) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let r = async {
        let token = token_of(&q)?;
        email_change::revert(&state, token)
            .await
            .map_err(link_error)?;
        Ok(Done {
            json: json!({ "status": true }),
            title: "Email change undone",
            message: "Your account has its previous email address again, and every device was signed out. If you did not make the change, choose a new password now.",
        })
    }
    .await;
    link_answer(&state, &headers, None, r)
}
