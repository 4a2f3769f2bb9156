//! CORS for `/api/auth/*` (Fetch Standard §3.2): pages on a trusted origin
//! (`api_auth.trusted_origins` and the issuer's) may call the API with credentials, the
//! way Better Auth's client does from a separate front end (`credentials: "include"`),
//! and may read `set-auth-token` (bearer mode). Every other origin gets no CORS headers,
//! so its scripts cannot read our answers. `Vary: Origin` always, since the answer
//! depends on it.
//!
//! `/api/auth/jwks` is covered too: Better Auth's `jwtClient` fetches it with
//! credentials, which a browser refuses with `*`. Pages of other origins read the same
//! keys at `/jwks` (discovery's `jwks_uri`), which keeps the credential-less `*` CORS
//! of the back-channel endpoints (`app.rs`).

use axum::extract::{Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::extract::is_trusted_origin;
use crate::app::State;

/// Whether `path` (the full request path) is one of ours: under `{issuer path}/api/auth/`
/// (the JWKS alias included).
fn covers(state: &State, path: &str) -> bool {
    // Runs on every request: most are not ours, and they are told apart without parsing
    // the issuer or allocating.
    let Some(at) = path.find("/api/auth/") else {
        return false;
    };
    let (before, rest) = path.split_at(at);
    rest.len() > "/api/auth/".len() && before == state.config.issuer_path()
}

/// The request's Origin when it is trusted (exactly, as browsers send it).
fn trusted_origin(state: &State, h: &HeaderMap) -> Option<HeaderValue> {
    let v = h.get(header::ORIGIN)?;
    let o = v.to_str().ok()?;
    // `is_trusted_origin` normalises; the echo must be the browser's exact value, which
    // for a real Origin header is already the serialised origin.
    (is_trusted_origin(state, o)
        && url::Url::parse(o).is_ok_and(|u| u.origin().ascii_serialization() == o))
    .then(|| v.clone())
}

fn add_vary(h: &mut HeaderMap) {
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// The middleware, installed once around the whole router (`app::router`).
pub async fn layer(AxState(state): AxState<State>, req: Request, next: Next) -> Response {
    if !covers(&state, req.uri().path()) {
        return next.run(req).await;
    }
    let origin = trusted_origin(&state, req.headers());
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if let (true, Some(o)) = (preflight, &origin) {
        return preflight_answer(o.clone());
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    add_vary(h);
    if let Some(o) = origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED),
        );
    }
    resp
}

/// Response headers a trusted page's script may read: the bearer token, the rate-limit
/// fields (draft-ietf-httpapi-ratelimit-headers) with `Retry-After`, none of which is
/// CORS-safelisted (Fetch §3.2.6), and the request id for support tickets.
const EXPOSED: &str = "set-auth-token, retry-after, ratelimit, ratelimit-policy, x-request-id";

/// 204 to a trusted preflight (Fetch §4.8 "CORS-preflight fetch").
fn preflight_answer(origin: HeaderValue) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, authorization, x-captcha-response"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    add_vary(h);
    resp
}
