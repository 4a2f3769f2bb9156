//! Server-rendered pages (askama templates in templates/) and their security headers.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::store::clients::Client;

/// What a page shows of a client.
pub struct ClientView {
    pub name: String,
    pub logo_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
}

impl ClientView {
    pub fn of(c: &Client) -> ClientView {
        ClientView {
            name: c
                .metadata
                .client_name
                .clone()
                .unwrap_or_else(|| c.client_id.clone()),
            logo_uri: c.metadata.logo_uri.clone(),
            policy_uri: c.metadata.policy_uri.clone(),
            tos_uri: c.metadata.tos_uri.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub lang: &'a str,
    pub base: &'a str,
    pub client: ClientView,
    pub interaction: &'a str,
    pub csrf_token: &'a str,
    pub login_hint: &'a str,
    pub error: Option<&'a str>,
    /// The "Create an account" link (`/sign-up?return_to=` this page), unless
    /// `sign_up.mode = "disabled"`.
    pub sign_up_url: Option<String>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub lang: &'a str,
    pub base: &'a str,
    pub client: ClientView,
    pub interaction: &'a str,
    pub csrf_token: &'a str,
    pub user_email: &'a str,
    pub scopes: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub lang: &'a str,
    pub base: &'a str,
    pub error: &'a str,
    pub description: &'a str,
}

#[derive(Template)]
#[template(path = "logged_out.html")]
pub struct LoggedOutPage<'a> {
    pub lang: &'a str,
    pub base: &'a str,
}

#[derive(Template)]
#[template(path = "logout_confirm.html")]
pub struct LogoutConfirmPage<'a> {
    pub lang: &'a str,
    pub base: &'a str,
    pub client_name: Option<String>,
    pub csrf_token: &'a str,
    pub logout: &'a str,
}

#[derive(Template)]
#[template(path = "form_post.html")]
pub struct FormPostPage<'a> {
    pub action: &'a str,
    pub fields: Vec<(String, String)>,
    pub nonce: &'a str,
}

/// Renders a page with `status`, no caching, no framing and a strict CSP.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    render_with_csp(
        status,
        page,
        "default-src 'none'; style-src 'self'; img-src 'self' https: data:; frame-ancestors 'none'; base-uri 'none'",
    )
}

pub fn render_with_csp(status: StatusCode, page: &impl Template, csp: &str) -> Response {
    let html = match page.render() {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "page rendering failed").into_response();
        }
    };
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

/// An error page: shown instead of redirecting when the client or its redirect URI
/// cannot be trusted (RFC 6749 §4.1.2.1).
pub fn error_page(base: &str, status: StatusCode, error: &str, description: &str) -> Response {
    render(
        status,
        &ErrorPage {
            lang: "en",
            base,
            error,
            description,
        },
    )
}

pub const CSS: &str = include_str!("../../static/klard.css");
