//! Cookies: HttpOnly, Secure, SameSite=Lax, scoped to the issuer path; `__Host-` prefixed
//! when the issuer is https and has no path (the prefix requires Path=/).

use axum::http::{HeaderMap, HeaderValue, header};

use crate::config::Config;

pub const SESSION: &str = "klard_session";
pub const BROWSER: &str = "klard_browser";

pub fn name(cfg: &Config, base: &str) -> String {
    if cfg.is_https() && cfg.issuer_path().is_empty() {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

pub fn get(cfg: &Config, headers: &HeaderMap, base: &str) -> Option<String> {
    let want = name(cfg, base);
    for v in headers.get_all(header::COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for part in s.split(';') {
            if let Some((k, val)) = part.trim().split_once('=')
                && k == want
                && !val.is_empty()
            {
                return Some(val.to_string());
            }
        }
    }
    None
}

fn path(cfg: &Config) -> String {
    let p = cfg.issuer_path();
    if p.is_empty() { "/".into() } else { p }
}

/// A Set-Cookie value. `max_age` None makes a browser-session cookie.
pub fn set(cfg: &Config, base: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut s = format!(
        "{}={}; Path={}; HttpOnly; Secure; SameSite=Lax",
        name(cfg, base),
        value,
        path(cfg)
    );
    if let Some(m) = max_age {
        s.push_str(&format!("; Max-Age={m}"));
    }
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub fn clear(cfg: &Config, base: &str) -> HeaderValue {
    set(cfg, base, "", Some(0))
}
