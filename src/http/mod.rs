//! HTTP edge helpers: parameter parsing, cookies, CSRF, client addresses, pages.

pub mod client_ip;
pub mod cookies;
pub mod pages;
pub mod params;
pub mod request_meta;
pub mod user_agent;

use axum::http::HeaderMap;

/// The client's address as text (`client_ip::resolve`, trusted proxies only).
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
    proxy: &crate::config::ProxyConfig,
) -> Option<String> {
    client_ip::resolve(proxy, headers, peer.map(|p| p.ip())).map(|ip| ip.to_string())
}

pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(400).collect())
}
