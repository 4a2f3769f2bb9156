//! Ending a lock before it expires: by the owner through the mailed link
//! (`/unlock-account?token=`), by an operator with `klard-auth user unlock <email>`, or by
//! the admin API (`POST /admin/users/{id}/unlock`). Each path is [`unlock`], which writes
//! `account.unlocked` with its actor.
//!
//! The link's GET only shows a confirmation page whose CSRF-protected POST does the
//! unlock, so mail scanners that fetch links do not unlock anything. The token is
//! single use, hashed and expiring (`store::verifications`, `lockout.unlock_token_ttl`).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::State;
use crate::audit::{self, Actor, Event, kind};
use crate::http::pages::render;
use crate::http::params::form_body;
use crate::http::request_meta::RequestMeta;
use crate::store::lockout as store;
use crate::store::users::{self, User};
use crate::store::verifications::{self, Purpose};
use crate::ui::account_result;
use crate::ui::session as browser;

const CSRF_PURPOSE: &str = "unlock-account";

/// Lifts the lock of `user`'s account counter (the failures are forgotten too) and
/// records who did it. Returns whether the account was locked.
pub async fn unlock(
    state: &State,
    meta: &RequestMeta,
    user: &User,
    actor: Actor,
) -> Result<bool, sqlx::Error> {
    let now = state.clock.now();
    let mut tx = state.db.pool.begin().await?;
    let was = store::reset(&mut tx, &super::account_key(&user.email), now).await?;
    let ev = Event::new(kind::ACCOUNT_UNLOCKED, meta)
        .actor(actor)
        .subject(Some(&user.id))
        .with("was_locked", was);
    audit::append(&mut tx, state, ev)
        .await
        .map_err(|audit::AuditError::Db(e)| e)?;
    tx.commit().await?;
    Ok(was)
}

/// Whether `user`'s account is locked now, and until when (-1: until unlocked).
pub async fn status(state: &State, user: &User) -> Result<(bool, i64, i64), sqlx::Error> {
    let now = state.clock.now();
    let c = store::get(&state.db, &super::account_key(&user.email))
        .await?
        .unwrap_or_default();
    let failures = c.live_failures(now, state.config.lockout.failure_window);
    Ok((c.locked_at(now), c.locked_until, failures))
}

/// Mails the owner of a just-locked account the unlock link. Failures are logged: the
/// lock stands either way and ends by itself (or by an operator).
pub async fn send_link(state: &State, user: &User) {
    let now = state.clock.now();
    let ttl = state.config.lockout.unlock_token_ttl;
    let token = match verifications::issue(
        &state.db,
        Purpose::UnlockAccount,
        &user.id,
        &json!({}),
        ttl,
        now,
    )
    .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "account locked: cannot issue the unlock link");
            return;
        }
    };
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", &token)
        .finish();
    let link = state.config.url(&format!("/unlock-account?{q}"));
    let locale = user
        .claims
        .get("locale")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("en");
    let msg = crate::mail::account_templates::account_locked(
        &state.config.mail.branding,
        &user.email,
        locale,
        &link,
        &state.config.url("/forgot-password"),
    );
    match msg {
        Ok(m) => {
            if let Err(e) = crate::mail::enqueue(&state.db, &m, now).await {
                tracing::error!(error = %e, "account locked: cannot queue the mail");
            }
        }
        Err(e) => tracing::error!(error = %e, "account locked: cannot render the mail"),
    }
}

#[derive(Template)]
#[template(path = "unlock_account.html")]
struct ConfirmPage<'a> {
    lang: &'a str,
    base: &'a str,
    token: &'a str,
    csrf_token: &'a str,
}

fn invalid_link(state: &State) -> Response {
    account_result::page(
        state,
        StatusCode::BAD_REQUEST,
        "INVALID_TOKEN",
        "Link not valid",
        "This unlock link is invalid, expired or was already used.",
        Some("Wait until the lock ends, or ask an administrator to unlock the account."),
    )
}

fn with_cookie(mut r: Response, c: Option<axum::http::HeaderValue>) -> Response {
    if let Some(c) = c {
        r.headers_mut().append(axum::http::header::SET_COOKIE, c);
    }
    r
}

fn token_param(raw: Option<&str>) -> String {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// `GET /unlock-account?token=`: the confirmation page (nothing changes yet).
pub async fn show(
    AxState(state): AxState<State>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let token = token_param(raw.as_deref());
    let now = state.clock.now();
    match verifications::peek(&state.db, Purpose::UnlockAccount, &token, now).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return invalid_link(&state),
        Err(e) => return crate::error::Error::from(e).into_response(),
    }
    let (bid, cookie) = browser::browser_id(&state, &headers);
    let csrf = browser::csrf_token(&state, CSRF_PURPOSE, "", &bid);
    let base = state.config.issuer_path();
    let page = render(
        StatusCode::OK,
        &ConfirmPage {
            lang: "en",
            base: &base,
            token: &token,
            csrf_token: &csrf,
        },
    );
    with_cookie(page, cookie)
}

/// `POST /unlock-account` (`token`, `csrf_token`): spends the token and unlocks.
pub async fn submit(
    AxState(state): AxState<State>,
    meta: RequestMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match form_body(&headers, &body) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let (bid, cookie) = browser::browser_id(&state, &headers);
    if cookie.is_some()
        || !browser::check_csrf(
            &state,
            CSRF_PURPOSE,
            "",
            &bid,
            p.get("csrf_token").unwrap_or(""),
        )
    {
        let r = account_result::page(
            &state,
            StatusCode::BAD_REQUEST,
            "INVALID_CSRF",
            "Form expired",
            "The form expired or was not sent by this page. Open the link from the email again.",
            None,
        );
        return with_cookie(r, cookie);
    }
    let token = p.get("token").unwrap_or("");
    let now = state.clock.now();
    let result = async {
        let v = match verifications::consume(&state.db, Purpose::UnlockAccount, token, now).await? {
            Ok(v) => v,
            Err(_) => return Ok(None),
        };
        let Some(user) = users::by_id(&state.db, &v.user_id).await? else {
            return Ok(None);
        };
        unlock(&state, &meta, &user, Actor::User(user.id.clone())).await?;
        Ok::<_, sqlx::Error>(Some(()))
    }
    .await;
    match result {
        Ok(Some(())) => account_result::page(
            &state,
            StatusCode::OK,
            "UNLOCKED",
            "Account unlocked",
            "Your account is unlocked. You can sign in again.",
            None,
        ),
        Ok(None) => invalid_link(&state),
        Err(e) => crate::error::Error::from(e).into_response(),
    }
}
