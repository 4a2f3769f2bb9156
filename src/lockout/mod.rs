//! Brute-force protection of password sign-in (issue 4, `[lockout]`): the one core every
//! sign-in door calls ([`attempt`]), so the API (`/api/auth/sign-in/email` and its
//! `/auth/*` alias), the interaction login and the standalone login count, delay, block
//! and lock alike.
//!
//! Order of one attempt: IP block check (no hash) → CAPTCHA after suspicion → progressive
//! delay → exactly one argon2 run (the account's hash or the dummy) → lock check →
//! counters and the audit event in one transaction. Unknown identifiers have counters
//! too (`acct:<normalised identifier>`), so an unknown, a locked and an existing account
//! take the same path and give the same answer (OWASP ASVS V2.2.1 / V3 "no enumeration").
//!
//! A request carrying a valid device cookie of the account ([`devices`]) is counted on
//! the device's own budget (`dev:`) instead of the account's and is not subject to the
//! IP block, so an attacker who locks an account does not lock its owner out of their
//! own device.

pub mod devices;
pub mod unlock;

use axum::http::HeaderMap;
use std::time::Duration;

use crate::app::State;
use crate::audit::{self, Event, kind};
use crate::captcha::CaptchaError;
use crate::config::LockoutConfig;
use crate::http::request_meta::RequestMeta;
use crate::store::lockout::{self as store, Counter, UNTIL_UNLOCKED};
use crate::store::users::{self, User};

/// The progressive delay before checking a password, for `failures` failures so far:
/// none for the first `free_failures`, then `delay_base_ms`·2^(f − free − 1), capped at
/// `delay_max_ms`.
pub fn delay_ms(cfg: &LockoutConfig, failures: i64) -> u64 {
    let free = i64::from(cfg.free_failures);
    if failures <= free {
        return 0;
    }
    let exp = u32::try_from((failures - free - 1).min(40)).unwrap_or(40);
    cfg.delay_base_ms
        .saturating_mul(1u64 << exp)
        .min(cfg.delay_max_ms)
}

/// The counter key of an account (also of an identifier without an account).
pub fn account_key(identifier: &str) -> String {
    format!("acct:{}", users::normalize_email(identifier))
}

/// The counter key of a client address: its group (the address, or the /64 of an IPv6
/// address, which one subscriber usually holds whole).
pub fn ip_key(meta: &RequestMeta) -> Option<String> {
    meta.ip
        .map(|ip| format!("ip:{}", crate::http::client_ip::group(ip)))
}

/// The counter key of a known device.
pub fn device_key(device_hash: &str) -> String {
    format!("dev:{device_hash}")
}

/// One sign-in attempt as a door received it.
pub struct Attempt<'a> {
    /// `api`, `login` or `account_login`: recorded in the audit event.
    pub door: &'static str,
    /// The CAPTCHA-protected path this door answers for (`captcha.endpoints`).
    pub captcha_path: &'static str,
    pub identifier: &'a str,
    pub password: &'a str,
    pub captcha_token: Option<&'a str>,
}

/// A password that matched, not yet a session: the door still applies its gates
/// (email verification) and then calls [`signed_in`].
#[derive(Debug)]
pub struct Verified {
    pub user: User,
    /// The request's device cookie when it is a known device of this user.
    pub device: Option<devices::Device>,
}

#[derive(Debug)]
pub enum Outcome {
    Success(Box<Verified>),
    /// Unknown account, wrong password or locked: one answer for all three.
    Invalid,
    /// The client address is blocked for this many more seconds (RFC 6585 §4 429).
    IpBlocked {
        retry_after: i64,
    },
    /// The CAPTCHA is required (after suspicion) and was missing or refused.
    Captcha(CaptchaError),
}

fn db(e: audit::AuditError) -> sqlx::Error {
    match e {
        audit::AuditError::Db(e) => e,
    }
}

/// The failures counted so far under `key` (0 when lockout is off or none).
async fn live(state: &State, key: Option<&str>, now: i64) -> Result<Counter, sqlx::Error> {
    let Some(key) = key else {
        return Ok(Counter::default());
    };
    let c = store::get(&state.db, key).await?.unwrap_or_default();
    let failures = c.live_failures(now, state.config.lockout.failure_window);
    Ok(Counter { failures, ..c })
}

/// The core of every password sign-in; see the module documentation.
pub async fn attempt(
    state: &State,
    meta: &RequestMeta,
    headers: &HeaderMap,
    a: &Attempt<'_>,
) -> Result<Outcome, sqlx::Error> {
    let cfg = &state.config.lockout;
    let now = state.clock.now();
    let user = users::by_email(&state.db, a.identifier).await?;
    let device = match &user {
        Some(u) => devices::known(state, headers, &u.id).await?,
        None => None,
    };
    let on = cfg.enabled;
    // A known device has its own budget and is not held to the address's.
    let budget_key = match &device {
        Some(d) => device_key(&d.hash),
        None => account_key(a.identifier),
    };
    let ip_key = if device.is_none() { ip_key(meta) } else { None };
    let budget = live(state, on.then_some(budget_key.as_str()), now).await?;
    let ip = live(state, ip_key.as_deref().filter(|_| on), now).await?;
    let failed = |reason: &str| {
        Event::new(kind::SIGN_IN_FAILED, meta)
            .failed()
            .subject(user.as_ref().map(|u| u.id.as_str()))
            .with("identifier", users::normalize_email(a.identifier))
            .with("door", a.door)
            .with("reason", reason)
    };
    if on && ip.locked_at(now) {
        // About the address, not the account: telling it is no enumeration. No hash.
        audit::record(state, failed("ip_blocked"))
            .await
            .map_err(db)?;
        let retry_after = (ip.locked_until - now).max(1);
        return Ok(Outcome::IpBlocked { retry_after });
    }
    if let Some(n) = state.config.captcha.after_failures
        && crate::captcha::protects(&state.config.captcha, a.captcha_path)
        && budget.failures.max(ip.failures) >= i64::from(n)
    {
        let ip_s = meta.ip_string();
        if let Err(e) =
            crate::captcha::check(state, a.captcha_path, a.captcha_token, ip_s.as_deref()).await
        {
            audit::record(state, failed("captcha")).await.map_err(db)?;
            return Ok(Outcome::Captcha(e));
        }
    }
    if on {
        let wait = delay_ms(cfg, budget.failures.max(ip.failures));
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }
    // Exactly one argon2 run whatever the case (the dummy hash for unknown accounts).
    let ok = state
        .hasher
        .verify(
            a.password,
            user.as_ref().and_then(|u| u.password_hash.as_deref()),
        )
        .await;
    let locked = on && budget.locked_at(now);
    if ok
        && !locked
        && let Some(user) = user
    {
        return Ok(Outcome::Success(Box::new(Verified { user, device })));
    }
    let reason = match (&user, locked) {
        (_, true) => "locked",
        (None, _) => "unknown_account",
        (Some(_), _) => "wrong_password",
    };
    let newly_locked = count_failure(
        state,
        meta,
        &budget_key,
        device.is_some(),
        ip_key.as_deref().filter(|_| on),
        failed(reason),
        user.as_ref(),
    )
    .await?;
    if newly_locked
        && device.is_none()
        && state.config.alerts.account_locked
        && let Some(u) = &user
    {
        unlock::send_link(state, u).await;
    }
    Ok(Outcome::Invalid)
}

/// Counts a failure on the budget and the address and locks or blocks what crossed its
/// threshold, with the audit events, in one transaction. True when this failure locked
/// the account (so its owner is told once).
async fn count_failure(
    state: &State,
    meta: &RequestMeta,
    budget_key: &str,
    is_device: bool,
    ip_key: Option<&str>,
    event: Event,
    user: Option<&User>,
) -> Result<bool, sqlx::Error> {
    let cfg = &state.config.lockout;
    let now = state.clock.now();
    let mut tx = state.db.pool.begin().await?;
    let mut locked = false;
    let mut blocked = false;
    if cfg.enabled {
        let b = store::add_failure(&mut tx, budget_key, now, cfg.failure_window).await?;
        let limit = if is_device {
            cfg.device_lock_after
        } else {
            cfg.lock_after
        };
        if limit > 0 && b.failures >= i64::from(limit) {
            let until = if cfg.lock_duration == 0 {
                UNTIL_UNLOCKED
            } else {
                now + cfg.lock_duration
            };
            locked = store::lock(&mut tx, budget_key, until, now).await?;
        }
        if let Some(k) = ip_key {
            let c = store::add_failure(&mut tx, k, now, cfg.failure_window).await?;
            if cfg.ip_block_after > 0 && c.failures >= i64::from(cfg.ip_block_after) {
                blocked = store::lock(&mut tx, k, now + cfg.ip_block_duration, now).await?;
            }
        }
    }
    let identifier = event.data.get("identifier").cloned();
    audit::append(&mut tx, state, event).await.map_err(db)?;
    if locked {
        let mut ev = Event::new(kind::ACCOUNT_LOCKED, meta)
            .actor(audit::Actor::System)
            .subject(user.map(|u| u.id.as_str()))
            .with("budget", if is_device { "device" } else { "account" })
            .with("lock_duration", cfg.lock_duration);
        if let Some(i) = identifier {
            ev = ev.with("identifier", i);
        }
        audit::append(&mut tx, state, ev).await.map_err(db)?;
    }
    if blocked {
        let ev = Event::new(kind::IP_BLOCKED, meta)
            .actor(audit::Actor::System)
            .with("block_duration", cfg.ip_block_duration);
        audit::append(&mut tx, state, ev).await.map_err(db)?;
    }
    tx.commit().await?;
    Ok(locked && !is_device)
}

/// After a door's own gates passed: the account's (when not signed in on a known device)
/// and the device's counters reset, the
/// device remembered (a new cookie for a new device), a new-device alert when the user
/// has other devices, and the `user.sign_in` event. Returns the device cookie to set.
///
/// The address's counter is NOT reset: an attacker could otherwise interleave sign-ins
/// to an account of their own to keep a guessing address below the block threshold.
pub async fn signed_in(
    state: &State,
    meta: &RequestMeta,
    v: &Verified,
    door: &'static str,
) -> Result<axum::http::HeaderValue, sqlx::Error> {
    let now = state.clock.now();
    let user = &v.user;
    let (device, new_device) = match &v.device {
        Some(d) => (d.clone(), false),
        None => (devices::Device::new(), true),
    };
    let had_devices = new_device && store::device_count(&state.db, &user.id).await? > 0;
    let mut tx = state.db.pool.begin().await?;
    // A sign-in from a known device does not lift the account's lock: the owner using
    // their own device must not reopen the account to whoever is guessing from others.
    if v.device.is_none() {
        store::reset(&mut tx, &account_key(&user.email), now).await?;
    }
    store::reset(&mut tx, &device_key(&device.hash), now).await?;
    store::remember_device(
        &mut tx,
        &device.hash,
        &user.id,
        meta.user_agent.as_deref(),
        now,
    )
    .await?;
    let ev = Event::new(kind::SIGN_IN, meta)
        .user(&user.id)
        .with("door", door)
        .with("method", "password")
        .with("new_device", new_device);
    audit::append(&mut tx, state, ev).await.map_err(db)?;
    tx.commit().await?;
    if had_devices && state.config.alerts.new_device {
        devices::send_new_device_alert(state, meta, user).await;
    }
    // The cookie is set again each time so that its lifetime runs from the last use.
    Ok(devices::cookie(state, &device))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(base: u64, max: u64, free: u32) -> LockoutConfig {
        LockoutConfig {
            delay_base_ms: base,
            delay_max_ms: max,
            free_failures: free,
            ..LockoutConfig::default()
        }
    }

    #[test]
    fn no_delay_for_the_free_failures() {
        let c = cfg(250, 8000, 3);
        for f in 0..=3 {
            assert_eq!(delay_ms(&c, f), 0, "{f}");
        }
    }

    #[test]
    fn delay_doubles_then_caps() {
        let c = cfg(250, 8000, 3);
        let got: Vec<u64> = (4..=11).map(|f| delay_ms(&c, f)).collect();
        assert_eq!(got, [250, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
        // Huge counts neither overflow nor exceed the cap.
        assert_eq!(delay_ms(&c, i64::MAX), 8000);
    }

    #[test]
    fn zero_base_means_no_delay() {
        let c = cfg(0, 8000, 0);
        assert_eq!(delay_ms(&c, 50), 0);
    }

    #[test]
    fn keys_normalise_the_identifier() {
        assert_eq!(
            account_key("  Willow@Example.COM "),
            "acct:willow@example.com"
        );
        let meta = RequestMeta {
            ip: Some("2001:db8:1:2:3:4:5:6".parse().expect("ip")),
            ..RequestMeta::default()
        };
        let k = ip_key(&meta).expect("key");
        assert!(k.starts_with("ip:2001:db8:1:2"), "{k}");
    }
}
