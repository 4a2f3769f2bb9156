//! HTTP edge helpers: parameter parsing, cookies, CSRF, client addresses, pages.

pub mod cookies;
pub mod pages;
pub mod params;
pub mod user_agent;

use axum::http::HeaderMap;

/// The peer address, or the first X-Forwarded-For hop when the proxy is trusted.
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
    trust_proxy: bool,
) -> Option<String> {
    if trust_proxy
        && let Some(v) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok())
        && let Some(first) = v.split(',').next()
    {
        let ip = first.trim();
        if ip.parse::<std::net::IpAddr>().is_ok() {
            return Some(ip.to_string());
        }
    }
    peer.map(|p| p.ip().to_string())
}

pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(400).collect())
}
