//! The hosted account page `/account`: profile (name), the signed-in devices (browser,
//! system, IP, times, device name with rename, the current one marked, sign out one or
//! all others) and sign out. Plain forms, no script; every POST carries a CSRF MAC over
//! the session and the browser id, and answers 303 back to the page (post/redirect/get).
//! Without a session the page and its forms send the browser to the standalone login.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::State;
use crate::error::Error;
use crate::http::cookies;
use crate::http::pages::render;
use crate::http::params::{Params, form_body};
use crate::http::user_agent;
use crate::oauth::authorize::response;
use crate::store::sessions::{self, Session};
use crate::store::users::{self, User};
use crate::ui::session as browser;

pub fn router() -> Router<State> {
    Router::new()
        .route("/account", get(show))
        .route("/account/profile", post(profile))
        .route("/account/sessions/rename", post(rename))
        .route("/account/sessions/revoke", post(revoke))
        .route("/account/sessions/revoke-others", post(revoke_others))
        .route("/account/sign-out", post(sign_out))
}

/// The longest name the profile form takes (as `update-user`).
const MAX_NAME: usize = 256;

/// One device as the page shows it.
struct DeviceRow {
    sid: String,
    name: Option<String>,
    browser: String,
    os: String,
    ip: String,
    created: String,
    created_iso: String,
    last_active: String,
    last_active_iso: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    lang: &'a str,
    base: &'a str,
    email: &'a str,
    name: &'a str,
    csrf_token: &'a str,
    sessions: Vec<DeviceRow>,
    /// The "Security activity" section: the user's last audit events.
    activity: Vec<ActivityRow>,
    notice: Option<&'static str>,
    error: Option<&'a str>,
}

/// One line of "Security activity".
struct ActivityRow {
    line: String,
    at_iso: String,
    failed: bool,
}

/// How many events the account page shows.
const ACTIVITY_SHOWN: i64 = 20;

/// `2026-12-01 12:43 UTC` from the ISO form.
fn human_time(iso: &str) -> String {
    format!("{} {} UTC", &iso[..10], &iso[11..16])
}

fn row(s: &Session, current_sid: &str) -> DeviceRow {
    let d = user_agent::parse(s.user_agent.as_deref().unwrap_or(""));
    let created_iso = crate::api::iso8601(s.created_at);
    let last_active_iso = crate::api::iso8601(s.last_seen);
    DeviceRow {
        sid: s.sid.clone(),
        name: s.name.clone(),
        browser: d
            .browser
            .map(|b| b.label())
            .unwrap_or_else(|| "Unknown browser".into()),
        os: d
            .os
            .map(|o| o.label())
            .unwrap_or_else(|| "unknown system".into()),
        ip: s.ip.clone().unwrap_or_else(|| "unknown".into()),
        created: human_time(&created_iso),
        created_iso,
        last_active: human_time(&last_active_iso),
        last_active_iso,
        current: s.sid == current_sid,
    }
}

/// The messages `?done=` may select (a fixed set: the query never reaches the page).
fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "profile" => "Your name was saved.",
        "renamed" => "The device name was saved.",
        "revoked" => "The device was signed out.",
        "revoked-others" => "All other devices were signed out.",
        _ => return None,
    })
}

fn login_redirect(state: &State) -> Response {
    let base = state.config.issuer_path();
    response::redirect(&format!("{base}/login?return_to={base}/account"))
}

fn back(state: &State, done: &str) -> Response {
    response::redirect(&format!(
        "{}/account?done={done}",
        state.config.issuer_path()
    ))
}

fn csrf(state: &State, s: &Session, bid: &str) -> String {
    browser::csrf_token(state, "account", &s.sid, bid)
}

/// The page itself, with `status` (200, or 400/403 after a refused form).
async fn page(
    state: &State,
    session: &Session,
    user: &User,
    bid: &str,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<&str>,
) -> Result<Response, Error> {
    let list = browser::active_for_user(state, &user.id).await?;
    let activity = crate::audit::history::own(state, &user.id, ACTIVITY_SHOWN, None)
        .await?
        .iter()
        .map(|r| ActivityRow {
            line: crate::audit::history::line(r),
            at_iso: crate::api::iso8601(r.at),
            failed: r.outcome != "success",
        })
        .collect();
    let base = state.config.issuer_path();
    let token = csrf(state, session, bid);
    Ok(render(
        status,
        &AccountPage {
            lang: "en",
            base: &base,
            email: &user.email,
            name: user
                .claims
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or(""),
            csrf_token: &token,
            sessions: list.iter().map(|s| row(s, &session.sid)).collect(),
            activity,
            notice,
            error,
        },
    ))
}

#[derive(Deserialize)]
struct ShowQuery {
    done: Option<String>,
}

async fn show(
    AxState(state): AxState<State>,
    headers: HeaderMap,
    Query(q): Query<ShowQuery>,
) -> Response {
    let r = async {
        let Some((s, u)) = browser::current(&state, &headers).await? else {
            return Ok(login_redirect(&state));
        };
        let (bid, set_cookie) = browser::browser_id(&state, &headers);
        let mut resp = page(
            &state,
            &s,
            &u,
            &bid,
            StatusCode::OK,
            notice(q.done.as_deref()),
            None,
        )
        .await?;
        if let Some(c) = set_cookie {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
        Ok::<_, Error>(resp)
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}

/// What every form handler starts with: the session, the parsed form, and a checked
/// CSRF token. `Err` is the answer to send instead (login redirect or refusal page).
struct FormCtx {
    session: Session,
    user: User,
    bid: String,
    form: Params,
}

async fn form_ctx(state: &State, headers: &HeaderMap, body: &Bytes) -> Result<FormCtx, Response> {
    let current = browser::current(state, headers)
        .await
        .map_err(IntoResponse::into_response)?;
    let Some((session, user)) = current else {
        return Err(login_redirect(state));
    };
    let (bid, _) = browser::browser_id(state, headers);
    let form = match form_body(headers, body) {
        Ok(p) => p,
        Err(e) => {
            return Err(refused(
                state,
                &session,
                &user,
                &bid,
                StatusCode::BAD_REQUEST,
                &e.description,
            )
            .await);
        }
    };
    if !browser::check_csrf(
        state,
        "account",
        &session.sid,
        &bid,
        form.get("csrf_token").unwrap_or(""),
    ) {
        return Err(refused(
            state,
            &session,
            &user,
            &bid,
            StatusCode::FORBIDDEN,
            "The form expired or was not sent by this page; nothing was changed. Please try again.",
        )
        .await);
    }
    Ok(FormCtx {
        session,
        user,
        bid,
        form,
    })
}

async fn refused(
    state: &State,
    session: &Session,
    user: &User,
    bid: &str,
    status: StatusCode,
    message: &str,
) -> Response {
    page(state, session, user, bid, status, None, Some(message))
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /account/profile` `name`: the OIDC `name` claim (`updated_at` follows).
async fn profile(AxState(state): AxState<State>, headers: HeaderMap, body: Bytes) -> Response {
    let c = match form_ctx(&state, &headers, &body).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let name = c.form.get("name").unwrap_or("").trim().to_string();
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return refused(
            &state,
            &c.session,
            &c.user,
            &c.bid,
            StatusCode::BAD_REQUEST,
            "The name must be at most 256 characters, without control characters.",
        )
        .await;
    }
    let r = async {
        // The stored claims, not the session's copy, so nothing set meanwhile is lost.
        let mut claims = users::by_id(&state.db, &c.user.id)
            .await?
            .map(|u| u.claims)
            .unwrap_or_else(|| c.user.claims.clone());
        if name.is_empty() {
            claims.remove("name");
        } else {
            claims.insert("name".into(), json!(name));
        }
        let event = crate::audit::Event::here(crate::audit::kind::UPDATED)
            .user(&c.user.id)
            .with("changed", vec!["name"]);
        let event = crate::audit::pending(&state, event);
        users::update_profile(&state.db, &c.user.id, &claims, state.clock.now(), event).await?;
        Ok::<_, Error>(back(&state, "profile"))
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}

/// The user's live session with this sid, if it is one of theirs.
async fn own_session(state: &State, user: &User, sid: &str) -> Result<Option<Session>, Error> {
    let s = sessions::by_sid(&state.db, sid).await?;
    Ok(s.filter(|s| {
        s.user_id == user.id && browser::is_live(&state.config.session, s, state.clock.now())
    }))
}

/// `POST /account/sessions/rename` `sid`, `name`: any of the user's own sessions.
async fn rename(AxState(state): AxState<State>, headers: HeaderMap, body: Bytes) -> Response {
    let c = match form_ctx(&state, &headers, &body).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let name = match crate::api::sessions::device_name(c.form.get("name").unwrap_or("")) {
        Ok(n) => n,
        Err(_) => {
            return refused(
                &state,
                &c.session,
                &c.user,
                &c.bid,
                StatusCode::BAD_REQUEST,
                "A device name must be at most 100 characters, without control characters.",
            )
            .await;
        }
    };
    let r = async {
        let sid = c.form.get("sid").unwrap_or("");
        if own_session(&state, &c.user, sid).await?.is_none() {
            return Ok(refused(
                &state,
                &c.session,
                &c.user,
                &c.bid,
                StatusCode::NOT_FOUND,
                "That device is not signed in to your account.",
            )
            .await);
        }
        sessions::rename(&state.db, &c.user.id, sid, name.as_deref()).await?;
        Ok::<_, Error>(back(&state, "renamed"))
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /account/sessions/revoke` `sid`: signs out one of the user's devices (this
/// one too: then it is a sign-out).
async fn revoke(AxState(state): AxState<State>, headers: HeaderMap, body: Bytes) -> Response {
    let c = match form_ctx(&state, &headers, &body).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let r = async {
        let sid = c.form.get("sid").unwrap_or("");
        let Some(target) = own_session(&state, &c.user, sid).await? else {
            return Ok(refused(
                &state,
                &c.session,
                &c.user,
                &c.bid,
                StatusCode::NOT_FOUND,
                "That device is not signed in to your account.",
            )
            .await);
        };
        crate::ui::session::end(&state, &c.user.id, &target.sid, "account_page").await?;
        if target.sid == c.session.sid {
            return Ok(signed_out(&state));
        }
        Ok::<_, Error>(back(&state, "revoked"))
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /account/sessions/revoke-others`.
async fn revoke_others(
    AxState(state): AxState<State>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let c = match form_ctx(&state, &headers, &body).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match crate::ui::session::end_all(&state, &c.user.id, Some(&c.session.sid), "account_page")
        .await
    {
        Ok(_) => back(&state, "revoked-others"),
        Err(e) => e.into_response(),
    }
}

/// `POST /account/sign-out`: ends this session and clears its cookie.
async fn sign_out(AxState(state): AxState<State>, headers: HeaderMap, body: Bytes) -> Response {
    let c = match form_ctx(&state, &headers, &body).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match crate::ui::session::end(&state, &c.user.id, &c.session.sid, "sign_out").await {
        Ok(_) => signed_out(&state),
        Err(e) => e.into_response(),
    }
}

fn signed_out(state: &State) -> Response {
    let mut resp = login_redirect(state);
    let clear: HeaderValue = cookies::clear(&state.config, cookies::SESSION);
    resp.headers_mut().append(header::SET_COOKIE, clear);
    resp
}
