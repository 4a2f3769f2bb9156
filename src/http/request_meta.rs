//! Who sent a request, as the audit trail, the rate limiter and the lockout counters
//! record it: the client address (trusted proxies only), the user agent, and a request
//! id that ties a log line, a response and an audit event together.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State as AxState};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use crate::app::State;

/// The id of one request (`x-request-id`), set by [`layer`].
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: String,
}

impl RequestMeta {
    pub fn from_parts(state: &State, headers: &HeaderMap, ext: &axum::http::Extensions) -> Self {
        let peer = ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        RequestMeta {
            ip: super::client_ip::resolve(&state.config.proxy, headers, peer),
            user_agent: super::user_agent(headers),
            request_id: ext
                .get::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_else(new_id),
        }
    }

    /// The address as stored (sessions, audit events).
    pub fn ip_string(&self) -> Option<String> {
        self.ip.map(|ip| ip.to_string())
    }

    /// Metadata of work the server does on its own (CLI, background tasks).
    pub fn internal(request_id: &str) -> Self {
        RequestMeta {
            ip: None,
            user_agent: None,
            request_id: request_id.to_string(),
        }
    }
}

impl FromRequestParts<State> for RequestMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        Ok(RequestMeta::from_parts(
            state,
            &parts.headers,
            &parts.extensions,
        ))
    }
}

fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// An incoming `x-request-id` is kept only from a trusted proxy (which may have logged
/// it already) and only when it is short and printable; anything else gets a fresh id.
fn incoming_id(state: &State, req: &Request) -> Option<String> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    if !super::client_ip::peer_is_trusted(&state.config.proxy, peer) {
        return None;
    }
    let v = req.headers().get("x-request-id")?.to_str().ok()?;
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then(|| v.to_string())
}

tokio::task_local! {
    /// The metadata of the request being handled, for cores deep below the door (session
    /// start, password change) that record audit events but are also called by doors that
    /// cannot thread it through. Set by [`layer`] for the whole handler.
    static CURRENT: RequestMeta;
}

impl RequestMeta {
    /// The metadata of the request this task is handling, or an internal one (fresh id,
    /// no address) outside a request (CLI, background tasks).
    pub fn current() -> RequestMeta {
        CURRENT
            .try_with(Clone::clone)
            .unwrap_or_else(|_| RequestMeta::internal(&new_id()))
    }
}

/// Gives every request an id (extension [`RequestId`]) and echoes it in `x-request-id`.
pub async fn layer(AxState(state): AxState<State>, mut req: Request, next: Next) -> Response {
    let id = incoming_id(&state, &req).unwrap_or_else(new_id);
    req.extensions_mut().insert(RequestId(id.clone()));
    let meta = RequestMeta::from_parts(&state, req.headers(), req.extensions());
    let mut resp = CURRENT.scope(meta, next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}
