//! Cookies: HttpOnly, Secure, SameSite=Lax, scoped to the issuer path. Named with the
//! strongest prefix the issuer allows (RFC 6265bis §4.1.3): `__Host-` when it is https
//! without a path (the prefix requires Path=/ and no Domain), `__Secure-` when it is
//! https with a path, none on plain http (loopback development, where browsers would
//! refuse prefixed cookies from an insecure origin).

use axum::http::{HeaderMap, HeaderValue, header};

use crate::config::Config;

pub const SESSION: &str = "klard_session";
pub const BROWSER: &str = "klard_browser";

pub fn name(cfg: &Config, base: &str) -> String {
    match (cfg.is_https(), cfg.issuer_path().is_empty()) {
        (true, true) => format!("__Host-{base}"),
        (true, false) => format!("__Secure-{base}"),
        (false, _) => base.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(issuer: &str) -> Config {
        Config {
            issuer: issuer.into(),
            ..Config::default()
        }
    }

    fn set_str(c: &Config, max_age: Option<i64>) -> String {
        set(c, SESSION, "v4lue", max_age)
            .to_str()
            .expect("ascii")
            .to_string()
    }

    #[test]
    fn https_root_issuer_gets_host_prefix_and_root_path() {
        let c = cfg("https://id.example.com");
        assert_eq!(name(&c, SESSION), "__Host-klard_session");
        assert_eq!(
            set_str(&c, Some(60)),
            "__Host-klard_session=v4lue; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=60"
        );
    }

    #[test]
    fn https_path_issuer_gets_secure_prefix_and_its_path() {
        let c = cfg("https://example.com/auth");
        assert_eq!(name(&c, BROWSER), "__Secure-klard_browser");
        assert_eq!(
            set_str(&c, None),
            "__Secure-klard_session=v4lue; Path=/auth; HttpOnly; Secure; SameSite=Lax"
        );
    }

    #[test]
    fn plain_http_issuer_gets_no_prefix() {
        for iss in ["http://127.0.0.1:8080", "http://localhost:8080/auth"] {
            let c = cfg(iss);
            assert_eq!(name(&c, SESSION), "klard_session", "{iss}");
            let s = set_str(&c, None);
            assert!(s.starts_with("klard_session=v4lue; Path="), "{s}");
            assert!(s.contains("; HttpOnly; Secure; SameSite=Lax"), "{s}");
        }
        assert!(set_str(&cfg("http://localhost:8080/auth"), None).contains("Path=/auth;"));
    }

    #[test]
    fn clear_expires_the_same_cookie() {
        let c = cfg("https://example.com/auth");
        let v = clear(&c, SESSION);
        assert_eq!(
            v.to_str().expect("ascii"),
            "__Secure-klard_session=; Path=/auth; HttpOnly; Secure; SameSite=Lax; Max-Age=0"
        );
    }

    #[test]
    fn get_reads_only_the_prefixed_name() {
        let c = cfg("https://id.example.com");
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("klard_session=plain; __Host-klard_session=good"),
        );
        assert_eq!(get(&c, &h, SESSION).as_deref(), Some("good"));
        let mut h = HeaderMap::new();
        // An unprefixed cookie (e.g. planted by a sibling subdomain) is not ours.
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("klard_session=planted"),
        );
        assert_eq!(get(&c, &h, SESSION), None);
    }
}
