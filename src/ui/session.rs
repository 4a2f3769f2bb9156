//! Browser sessions and the browser-binding cookie that ties interactions and CSRF
//! tokens to one browser.

use axum::http::{HeaderMap, HeaderValue};

use crate::app::State;
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
/// its user; refreshes `last_seen` at most once a minute.
pub async fn by_token(state: &State, token: &str) -> Result<Option<(Session, User)>> {
    let now = state.clock.now();
    let Some(s) = sessions::by_hash(&state.db, &crypto::hash_secret(token)).await? else {
        return Ok(None);
    };
    if !s.is_active(now) {
        return Ok(None);
    }
    let Some(u) = users::by_id(&state.db, &s.user_id).await? else {
        return Ok(None);
    };
    if now - s.last_seen > 60 {
        sessions::touch(&state.db, &s.id_hash, now).await?;
    }
    Ok(Some((s, u)))
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
    let ttl = if remember {
        state.config.session.ttl
    } else {
        state.config.session.ttl.min(24 * 3600)
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
        expires_at: now + ttl,
        revoked_at: None,
    };
    sessions::insert(&state.db, &s).await?;
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
