//! CORS for `/api/auth/*`, so that a page on a trusted origin (`app.example.com` calling
//! `auth.example.com`) can use Better Auth's client in cookie mode: the client sends
//! every request with `credentials: "include"` (better-auth `client/config.ts`) and its
//! POSTs are JSON, hence preflighted. A browser hands the answer to the page only if it
//! names the page's exact origin with `Access-Control-Allow-Credentials: true`, so only
//! `api_auth.trusted_origins` (and the issuer's origin) get that, never `*`: any other
//! site may not read a cookie-authenticated `get-session`. `set-auth-token` is exposed,
//! as Better Auth's bearer plugin does (`plugins/bearer/index.ts`), so that the page's
//! script can read it.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Config;

/// The CORS policy of the `/api/auth/*` routes for this configuration.
pub fn layer(cfg: &Config) -> CorsLayer {
    let origins: Vec<HeaderValue> = cfg
        .api_auth
        .origins(&cfg.issuer)
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .expose_headers([HeaderName::from_static("set-auth-token")])
        .max_age(Duration::from_secs(600))
}
