//! `POST /api/auth/delete-user` and `GET /api/auth/delete-user/callback` (Better Auth
//! `routes/update-user.ts` `deleteUser`, `deleteUserCallback`). The work is done by
//! `crate::account_deletion`; this is the door.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::change_email::{Done, LinkQuery, link_answer, link_query};
use super::error::ApiError;
use super::extract::{self, Authed, OriginChecked, Via};
use super::{JsonBody, json_response};
use crate::account_deletion::{self, LinkError, Outcome};
use crate::app::State;
use crate::http::cookies;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteUserBody {
    password: Option<String>,
    token: Option<String>,
    #[serde(rename = "callbackURL")]
    callback_url: Option<String>,
}

fn disabled() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "DELETE_USER_DISABLED",
        "Delete user is disabled",
    )
}

fn link_error(e: LinkError) -> ApiError {
    match e {
        LinkError::InvalidToken => {
            ApiError::new(StatusCode::BAD_REQUEST, "INVALID_TOKEN", "Invalid token")
        }
        LinkError::Expired => {
            ApiError::new(StatusCode::BAD_REQUEST, "TOKEN_EXPIRED", "Token expired")
        }
        LinkError::Internal(e) => ApiError::Internal(e),
    }
}

/// Better Auth's message for what was done.
fn deleted_message(o: Outcome) -> &'static str {
    match o {
        Outcome::Deleted => "User deleted",
        Outcome::Scheduled(_) => "User deletion scheduled",
    }
}

/// The session cookie goes with the account (or with its sessions, when scheduled).
fn clearing_cookie(state: &State, mut r: Response, via: Option<Via>) -> Response {
    if via == Some(Via::Cookie) {
        r.headers_mut().append(
            header::SET_COOKIE,
            cookies::clear(&state.config, cookies::SESSION),
        );
    }
    r
}

/// `POST /api/auth/delete-user` `{password?, token?, callbackURL?}` → 200
/// `{"success": true, "message": ...}`.
///
/// As Better Auth: a given password must be right (400 `INVALID_PASSWORD`, also for an
/// account without one); without a password the session must be younger than
/// `account_deletion.fresh_age` (400 `SESSION_EXPIRED` "Session is not fresh"); `token`
/// is the mailed token (the callback's work, for this session's user only); with
/// `account_deletion.send_verification` the deletion link is mailed and the answer is
/// `"Verification email sent"`; otherwise the account is deleted (`"User deleted"`) or,
/// with a grace period, scheduled (`"User deletion scheduled"`, with `deletionDate`).
/// 404 `DELETE_USER_DISABLED` when deletion is off.
pub async fn delete_user(
    _: OriginChecked,
    AxState(state): AxState<State>,
    a: Authed,
    headers: HeaderMap,
    JsonBody(b): JsonBody<DeleteUserBody>,
) -> Result<Response, ApiError> {
    let cfg = &state.config.account_deletion;
    if !cfg.enabled {
        return Err(disabled());
    }
    extract::check_callback_url(&state, b.callback_url.as_deref())?;
    let callback = b.callback_url.as_deref().filter(|u| !u.is_empty());
    if let Some(token) = b.token.as_deref().filter(|t| !t.is_empty()) {
        let o = account_deletion::confirm_by_token(&state, token, Some(&a.user.id))
            .await
            .map_err(link_error)?;
        return Ok(clearing_cookie(&state, outcome_json(o), Some(a.via)));
    }
    if let Some(p) = &b.password {
        if p.chars().count() > crate::config::PASSWORD_POLICY_MAX_LENGTH
            || !state
                .hasher
                .verify(p, a.user.password_hash.as_deref())
                .await
        {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_PASSWORD",
                "Invalid password",
            ));
        }
    } else if state.clock.now() - a.session.created_at >= cfg.fresh_age {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "SESSION_EXPIRED",
            "Session is not fresh",
        ));
    }
    let locale = crate::email_change::mail_locale(&a.user, &headers);
    if cfg.send_verification {
        account_deletion::send_confirmation(&state, &a.user, callback, &locale).await?;
        return Ok(json_response(
            json!({ "success": true, "message": "Verification email sent" }),
        ));
    }
    let o = account_deletion::delete_or_schedule(&state, &a.user, &locale, None)
        .await?
        .ok_or_else(|| link_error(LinkError::InvalidToken))?;
    Ok(clearing_cookie(&state, outcome_json(o), Some(a.via)))
}

fn outcome_json(o: Outcome) -> Response {
    let mut v = json!({ "success": true, "message": deleted_message(o) });
    if let Outcome::Scheduled(due) = o {
        v["deletionDate"] = json!(super::iso8601(due));
    }
    json_response(v)
}

/// `GET /api/auth/delete-user/callback?token=&callbackURL=`: spends the mailed link
/// and deletes (or schedules) the account; redirects to `callbackURL`, or answers
/// like `delete-user` (a page for a browser). 400 `INVALID_TOKEN` / `TOKEN_EXPIRED`.
/// A session, if the request has one, must be the account's (Better Auth requires
/// one; the mailed link is enough here, see `account_deletion::confirm_by_token`).
pub async fn callback(
    AxState(state): AxState<State>,
    headers: HeaderMap,
    q: Result<Query<LinkQuery>, QueryRejection>,
) -> Response {
    if !state.config.account_deletion.enabled {
        return disabled().into_response();
    }
    let q = match link_query(q) {
        Ok(q) => q,
        Err(r) => return r,
    };
    if let Err(e) = extract::check_callback_url(&state, q.callback_url.as_deref()) {
        return e.into_response();
    }
    let mut via = None;
    let r = async {
        let token = q
            .token
            .as_deref()
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or_else(|| link_error(LinkError::InvalidToken))?;
        let me = extract::authed(&state, &headers).await?;
        via = me.as_ref().map(|a| a.via);
        let o = account_deletion::confirm_by_token(
            &state,
            token,
            me.as_ref().map(|a| a.user.id.as_str()),
        )
        .await
        .map_err(link_error)?;
        let mut json = json!({ "success": true, "message": deleted_message(o) });
        if let Outcome::Scheduled(due) = o {
            json["deletionDate"] = json!(super::iso8601(due));
        }
        Ok(Done {
            json,
            title: match o {
                Outcome::Deleted => "Account deleted",
                Outcome::Scheduled(_) => "Account deletion scheduled",
            },
            message: match o {
                Outcome::Deleted => "Your account and its personal data were deleted.",
                Outcome::Scheduled(_) => {
                    "Your account will be deleted at the end of the grace period; signing in before then cancels it."
                }
            },
        })
    }
    .await;
    let ok = r.is_ok();
    let resp = link_answer(&state, &headers, q.callback_url.as_deref(), r);
    if ok {
        clearing_cookie(&state, resp, via)
    } else {
        resp
    }
}
