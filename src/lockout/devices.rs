//! Known devices: after a successful sign-in the browser (or app) gets a long-lived
//! random device cookie; only its SHA-256 is stored, bound to the user
//! (`known_devices`). A request that presents it for the same user is a known device:
//! it has its own failure budget and gets no new-device alert.

use axum::http::{HeaderMap, HeaderValue};

use crate::app::State;
use crate::crypto;
use crate::http::cookies;
use crate::http::request_meta::RequestMeta;
use crate::store::lockout as store;
use crate::store::users::User;

/// The cookie's base name (prefixed like the others, `http::cookies`).
pub const COOKIE: &str = "klard_device";

/// How long a device stays known without a sign-in: about 180 days.
pub const MAX_AGE: i64 = 180 * 24 * 3600;

/// A device cookie and its stored hash.
#[derive(Debug, Clone)]
pub struct Device {
    token: String,
    pub hash: String,
}

impl Device {
    /// A fresh device id.
    pub fn new() -> Device {
        let token = crypto::random_token(32);
        let hash = crypto::hash_secret(&token);
        Device { token, hash }
    }
}

impl Default for Device {
    fn default() -> Self {
        Device::new()
    }
}

/// The request's device cookie, when it names a known device of `user_id`.
pub async fn known(
    state: &State,
    headers: &HeaderMap,
    user_id: &str,
) -> Result<Option<Device>, sqlx::Error> {
    let Some(token) = cookies::get(&state.config, headers, COOKIE).filter(|t| t.len() <= 128)
    else {
        return Ok(None);
    };
    let hash = crypto::hash_secret(&token);
    let Some(d) = store::device(&state.db, &hash).await? else {
        return Ok(None);
    };
    // Compare the bound user in constant time out of habit; both are server data.
    Ok(crypto::ct_eq(d.user_id.as_bytes(), user_id.as_bytes()).then_some(Device { token, hash }))
}

/// The stored hash of the request's device cookie when it is a known device of the
/// account `identifier` names; `None` without a cookie (no lookup is made then).
pub async fn known_for_identifier(
    state: &State,
    headers: &HeaderMap,
    identifier: &str,
) -> Result<Option<String>, sqlx::Error> {
    if cookies::get(&state.config, headers, COOKIE).is_none() {
        return Ok(None);
    }
    let Some(user) = crate::store::users::by_email(&state.db, identifier).await? else {
        return Ok(None);
    };
    Ok(known(state, headers, &user.id).await?.map(|d| d.hash))
}

/// The Set-Cookie of `device` (HttpOnly, Secure, SameSite=Lax, issuer path).
pub fn cookie(state: &State, device: &Device) -> HeaderValue {
    cookies::set(&state.config, COOKIE, &device.token, Some(MAX_AGE))
}

/// Queues "New sign-in to your account" (browser and OS, address, time, links to the
/// account page and to password reset). Failures are logged: the sign-in stands.
pub async fn send_new_device_alert(state: &State, meta: &RequestMeta, user: &User) {
    let ua = meta.user_agent.as_deref().unwrap_or("");
    let d = crate::http::user_agent::parse(ua);
    let device = match (&d.browser, &d.os) {
        (Some(b), Some(o)) => format!("{} / {}", b.label(), o.label()),
        (Some(b), None) => b.label(),
        (None, Some(o)) => o.label(),
        (None, None) => "unknown".to_string(),
    };
    let now = state.clock.now();
    let locale = user
        .claims
        .get("locale")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("en");
    let msg = crate::mail::account_templates::new_device_sign_in(
        &state.config.mail.branding,
        &user.email,
        locale,
        &crate::mail::account_templates::SignInSeen {
            device: &device,
            ip: &meta.ip_string().unwrap_or_else(|| "unknown".into()),
            at: now,
        },
        &state.config.url("/account"),
        &state.config.url("/forgot-password"),
    );
    match msg {
        Ok(m) => {
            if let Err(e) = crate::mail::enqueue(&state.db, &m, now).await {
                tracing::error!(error = %e, "new-device alert: cannot queue");
            }
        }
        Err(e) => tracing::error!(error = %e, "new-device alert: cannot render"),
    }
}
