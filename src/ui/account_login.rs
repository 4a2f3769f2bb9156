//! The standalone login of the hosted account pages: `/login?return_to=...` without an
//! authorization request. The same form, CSRF scheme (a MAC bound to the browser id)
//! and session code (`ui::login::sign_in`) as the interaction login; afterwards a 303
//! to `return_to` when it is a local path under the issuer, else to the account page.

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::State;
use crate::http::pages::render;
use crate::http::params::Params;
use crate::http::request_meta::RequestMeta;
use crate::oauth::authorize::response;
use crate::ui::login::{check_password, sign_in};
use crate::ui::session as browser;

/// The CSRF purpose of this form; there is no interaction, so the MAC binds the
/// browser id alone.
const CSRF_PURPOSE: &str = "account-login";

#[derive(Template)]
#[template(path = "account_login.html")]
struct AccountLoginPage<'a> {
    lang: &'a str,
    base: &'a str,
    return_to: &'a str,
    csrf_token: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

/// `return_to` if it is a local path under the issuer (no scheme, host, `//`, `\`,
/// control characters, or `..` escaping the issuer path), normalised; otherwise the
/// account page.
pub fn safe_return_to(state: &State, raw: Option<&str>) -> String {
    let base = state.config.issuer_path();
    let fallback = format!("{base}/account");
    let Some(raw) = raw.filter(|r| {
        r.starts_with('/')
            && !r.starts_with("//")
            && !r.contains('\\')
            && !r.chars().any(char::is_control)
            && r.len() <= 2048
    }) else {
        return fallback;
    };
    let Some(issuer) = state.config.issuer_url() else {
        return fallback;
    };
    let Ok(u) = issuer.join(raw) else {
        return fallback;
    };
    let under = base.is_empty() || u.path() == base || u.path().starts_with(&format!("{base}/"));
    if u.origin() != issuer.origin() || !under || u.fragment().is_some() {
        return fallback;
    }
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    }
}

fn page(
    state: &State,
    bid: &str,
    return_to: &str,
    email: &str,
    error: Option<&str>,
    set_cookie: Option<HeaderValue>,
) -> Response {
    let csrf = browser::csrf_token(state, CSRF_PURPOSE, "", bid);
    let base = state.config.issuer_path();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut resp = render(
        status,
        &AccountLoginPage {
            lang: "en",
            base: &base,
            return_to,
            csrf_token: &csrf,
            email,
            error,
        },
    );
    if let Some(c) = set_cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// `GET /login?return_to=...`: the form, or straight on when already signed in.
pub async fn show(state: &State, headers: &HeaderMap, return_to: Option<&str>) -> Response {
    let return_to = safe_return_to(state, return_to);
    match browser::current(state, headers).await {
        Ok(Some(_)) => return response::redirect(&return_to),
        Ok(None) => {}
        Err(e) => return e.into_response(),
    }
    let (bid, set_cookie) = browser::browser_id(state, headers);
    page(state, &bid, &return_to, "", None, set_cookie)
}

/// `POST /login` without an interaction.
pub async fn submit(
    state: &State,
    peer: std::net::SocketAddr,
    meta: &RequestMeta,
    headers: &HeaderMap,
    p: &Params,
) -> Response {
    let return_to = safe_return_to(state, p.get("return_to"));
    let email = p.get("username").unwrap_or("");
    let (bid, set_cookie) = browser::browser_id(state, headers);
    if set_cookie.is_some()
        || !browser::check_csrf(
            state,
            CSRF_PURPOSE,
            "",
            &bid,
            p.get("csrf_token").unwrap_or(""),
        )
    {
        return page(
            state,
            &bid,
            &return_to,
            email,
            Some("The form expired or was not sent by this page. Please sign in again."),
            set_cookie,
        );
    }
    if let Err(e) = crate::captcha::check_form(state, "/login", peer, headers, p).await {
        let msg = format!("{e}.");
        return page(state, &bid, &return_to, email, Some(&msg), None);
    }
    let verified = match check_password(state, meta, headers, p, "account_login").await {
        Ok(Ok(v)) => v,
        Ok(Err(refusal)) => {
            let r = page(state, &bid, &return_to, email, Some(&refusal.message), None);
            return refusal.apply(r);
        }
        Err(e) => return e.into_response(),
    };
    let user = &verified.user;
    // `email_verification.require` holds for every sign-in path.
    if !crate::email_verification::sign_in_allowed(state, headers, user, None).await {
        let msg = crate::email_verification::not_verified_message(state);
        return page(state, &bid, &return_to, email, Some(msg), None);
    }
    let signed = async {
        let (cookie, _) = sign_in(state, peer, headers, user).await?;
        let device = crate::lockout::signed_in(state, meta, &verified, "account_login").await?;
        Ok::<_, crate::error::Error>((cookie, device))
    };
    match signed.await {
        Ok((cookie, device)) => {
            let mut resp = response::redirect(&return_to);
            resp.headers_mut().append(header::SET_COOKIE, cookie);
            resp.headers_mut().append(header::SET_COOKIE, device);
            resp
        }
        Err(e) => e.into_response(),
    }
}
