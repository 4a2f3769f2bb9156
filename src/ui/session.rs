//! Browser sessions and the browser-binding cookie that ties interactions and CSRF
//! tokens to one browser.

use axum::http::{HeaderMap, HeaderValue};

use crate::app::State;
use crate::audit::{self, Event, kind};
use crate::config::SessionConfig;
use crate::crypto;
use crate::error::Result;
use crate::http::cookies;
use crate::store::sessions::{self, Session};
use crate::store::users::{self, User};

/// The `acr` of a password login (advertised in `acr_values_supported`).
pub const ACR_PASSWORD: &str = "urn:klard:acr:password";

/// The active session of this request's cookie, with its user.
pub async fn current(state: &State, headers: &HeaderMap) -> Result<Option<(Session, User)>> {
    let Some(token) = cookies::get(&state.config, headers, cookies::SESSION) else {
        return Ok(None);
    };
    by_token(state, &token).await
}

/// The active session a session token (cookie value or bearer token) stands for, with
/// its user. Every door (API, hosted pages, `/authorize` incl. `prompt=none`, hence
/// the ID token's `sid`) comes through here, so the idle and absolute timeouts hold
/// everywhere. Use renews the session (`renew_if_due`).
pub async fn by_token(state: &State, token: &str) -> Result<Option<(Session, User)>> {
    let now = state.clock.now();
    let Some(mut s) = sessions::by_hash(&state.db, &crypto::hash_secret(token)).await? else {
        return Ok(None);
    };
    if !is_live(&state.config.session, &s, now) {
        return Ok(None);
    }
    let Some(u) = users::by_id(&state.db, &s.user_id).await? else {
        return Ok(None);
    };
    renew_if_due(state, &mut s, now).await?;
    Ok(Some((s, u)))
}

/// Active: not revoked, before its absolute limit and its sliding limit, and (with an
/// idle timeout) used within the idle window. The window is checked against the
/// configuration too, so shortening `session.idle_timeout` applies to existing rows.
pub fn is_live(cfg: &SessionConfig, s: &Session, now: i64) -> bool {
    s.is_active(now) && (cfg.idle_timeout == 0 || now < s.last_seen + cfg.idle_timeout)
}

/// The sliding limit of a session renewed at `now`: the idle window from now, never past
/// the absolute limit (no idle timeout: the absolute limit).
pub fn sliding_expiry(cfg: &SessionConfig, now: i64, absolute: i64) -> i64 {
    if cfg.idle_timeout == 0 {
        absolute
    } else {
        absolute.min(now + cfg.idle_timeout)
    }
}

/// Better Auth's `updateAge` (packages/better-auth/src/api/routes/session.ts,
/// `shouldBeUpdated`): a session used at least `update_age` after its last renewal gets
/// `last_seen = now` and a moved sliding limit; within `update_age` nothing is written.
async fn renew_if_due(state: &State, s: &mut Session, now: i64) -> Result<()> {
    let cfg = &state.config.session;
    if now - s.last_seen < cfg.update_age || now == s.last_seen {
        return Ok(());
    }
    let expires_at = sliding_expiry(cfg, now, s.absolute_expires_at);
    sessions::renew(&state.db, &s.id_hash, s.last_seen, now, expires_at).await?;
    s.last_seen = now;
    s.expires_at = expires_at;
    Ok(())
}

/// The user's live sessions, oldest first.
pub async fn active_for_user(state: &State, user_id: &str) -> Result<Vec<Session>> {
    let now = state.clock.now();
    let list = sessions::active_for_user(&state.db, user_id, now).await?;
    Ok(list
        .into_iter()
        .filter(|s| is_live(&state.config.session, s, now))
        .collect())
}

/// A session just started: the token handed to the client (cookie value, or bearer
/// token for apps), the Set-Cookie header and the stored row (which holds only the
/// token's hash).
pub struct Started {
    pub token: String,
    pub cookie: HeaderValue,
    pub session: Session,
}

/// Starts a session for `user`; returns the Set-Cookie header and the session.
pub async fn start(
    state: &State,
    user: &User,
    amr: Vec<String>,
    ip: Option<String>,
    user_agent: Option<String>,
) -> Result<(HeaderValue, Session)> {
    let s = begin(state, user, amr, ip, user_agent, true).await?;
    Ok((s.cookie, s.session))
}

/// Starts a session for `user`. With `remember` false the cookie lives only as long as
/// the browser session and the session itself at most a day (Better Auth's
/// `rememberMe: false`).
pub async fn begin(
    state: &State,
    user: &User,
    amr: Vec<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    remember: bool,
) -> Result<Started> {
    let now = state.clock.now();
    let token = crypto::random_token(32);
    let cfg = &state.config.session;
    let ttl = if remember {
        cfg.absolute()
    } else {
        cfg.absolute().min(24 * 3600)
    };
    let s = Session {
        id_hash: crypto::hash_secret(&token),
        sid: uuid::Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        auth_time: now,
        amr,
        acr: ACR_PASSWORD.into(),
        ip,
        user_agent,
        created_at: now,
        last_seen: now,
        expires_at: sliding_expiry(cfg, now, now + ttl),
        absolute_expires_at: now + ttl,
        revoked_at: None,
        name: None,
    };
    let event = Event::here(kind::SESSION_CREATED)
        .user(&user.id)
        .with("sid", s.sid.clone())
        .with("amr", s.amr.clone())
        .with("remember", remember);
    sessions::insert_recorded(&state.db, &s, audit::pending(state, event)).await?;
    let cookie = cookies::set(
        &state.config,
        cookies::SESSION,
        &token,
        remember.then_some(ttl),
    );
    Ok(Started {
        token,
        cookie,
        session: s,
    })
}

/// The browser id from its cookie, or a new one with the cookie to set.
pub fn browser_id(state: &State, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cookies::get(&state.config, headers, cookies::BROWSER) {
        Some(b) if b.len() >= 32 => (b, None),
        _ => {
            let b = crypto::random_token(32);
            let c = cookies::set(&state.config, cookies::BROWSER, &b, None);
            (b, Some(c))
        }
    }
}

/// CSRF token for a form: a MAC over its purpose, the object it acts on and the browser
/// id, so it is useless in another browser or for another interaction.
pub fn csrf_token(state: &State, purpose: &str, id: &str, browser: &str) -> String {
    crypto::hmac_b64(state.secret.as_bytes(), &["csrf", purpose, id, browser])
}

pub fn check_csrf(state: &State, purpose: &str, id: &str, browser: &str, presented: &str) -> bool {
    let want = csrf_token(state, purpose, id, browser);
    crypto::ct_eq(want.as_bytes(), presented.as_bytes())
}

/// Ends one session of `user_id` and records `session.revoked` with `reason`, in one
/// transaction; true if it was still live. Every sign-out and revocation door calls
/// this (or [`end_all`]), never `store::sessions::revoke` directly.
pub async fn end(state: &State, user_id: &str, sid: &str, reason: &str) -> Result<bool> {
    let event = Event::here(kind::SESSION_REVOKED)
        .user(user_id)
        .with("sid", sid)
        .with("reason", reason);
    let now = state.clock.now();
    Ok(sessions::revoke_recorded(&state.db, sid, now, audit::pending(state, event)).await?)
}

/// Ends every session of `user_id` but `keep`, with one `session.revoked` event that
/// carries the count; returns the count.
pub async fn end_all(
    state: &State,
    user_id: &str,
    keep: Option<&str>,
    reason: &str,
) -> Result<u64> {
    let event = Event::here(kind::SESSION_REVOKED)
        .user(user_id)
        .with("reason", reason)
        .with("all", true);
    let now = state.clock.now();
    Ok(
        sessions::revoke_all_recorded(&state.db, user_id, keep, now, audit::pending(state, event))
            .await?,
    )
}
