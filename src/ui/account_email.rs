//! The hosted page `/account/email`: a CSRF-protected form that starts an email change
//! (`crate::email_change::request`, the same core as `POST /api/auth/change-email`).
//! It needs a browser session; without one it sends the browser to the login page.

use askama::Template;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::State;
use crate::email_change::{self, RequestError};
use crate::error::Error;
use crate::http::pages::render;
use crate::http::params::form_body;
use crate::oauth::authorize::response::redirect;
use crate::store::sessions::Session;
use crate::store::users::User;
use crate::ui::account_result;
use crate::ui::session as browser;

const CSRF_PURPOSE: &str = "account_email";

#[derive(Template)]
#[template(path = "account_email.html")]
struct EmailPage<'a> {
    lang: &'a str,
    base: &'a str,
    current: &'a str,
    csrf_token: &'a str,
    new_email: &'a str,
    error: Option<&'a str>,
}

/// The signed-in browser's session, or the redirect to the login page that comes
/// back to `return_to`.
pub(crate) async fn signed_in(
    state: &State,
    headers: &HeaderMap,
    return_to: &str,
) -> Result<Result<(Session, User), Response>, Error> {
    Ok(match browser::current(state, headers).await? {
        Some(x) => Ok(x),
        // `return_to` is one of our own fixed paths, safe in a query as it is.
        None => Err(redirect(&format!(
            "{}/login?return_to={return_to}",
            state.config.issuer_path()
        ))),
    })
}

/// Renders `page` with the browser-binding cookie when it was just made.
pub(crate) fn with_browser_cookie(mut r: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

fn form(
    state: &State,
    headers: &HeaderMap,
    s: &Session,
    u: &User,
    new_email: &str,
    error: Option<&str>,
) -> Response {
    let (bid, cookie) = browser::browser_id(state, headers);
    let csrf = browser::csrf_token(state, CSRF_PURPOSE, &s.sid, &bid);
    let base = state.config.issuer_path();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    with_browser_cookie(
        render(
            status,
            &EmailPage {
                lang: "en",
                base: &base,
                current: &u.email,
                csrf_token: &csrf,
                new_email,
                error,
            },
        ),
        cookie,
    )
}

pub async fn show(AxState(state): AxState<State>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers, "/account/email").await {
        Ok(Ok((s, u))) => form(&state, &headers, &s, &u, "", None),
        Ok(Err(r)) => r,
        Err(e) => e.into_response(),
    }
}

/// The form expired, or was not sent by our page (CSRF): a 400 result page.
pub(crate) fn csrf_failed(state: &State) -> Response {
    account_result::page(
        state,
        StatusCode::BAD_REQUEST,
        "invalid_csrf",
        "Please try again",
        "The form expired or was not sent by this page; go back and try again.",
        None,
    )
}

/// The posted form of a signed-in account page when its CSRF token was made for this
/// session, this browser and `purpose`; `None` for a body that does not parse or a
/// token that does not check out (answer with [`csrf_failed`]).
pub(crate) fn checked_form(
    state: &State,
    headers: &HeaderMap,
    body: &[u8],
    purpose: &str,
    session: &Session,
) -> Option<crate::http::params::Params> {
    let p = form_body(headers, body).ok()?;
    let bid = crate::http::cookies::get(&state.config, headers, crate::http::cookies::BROWSER)
        .unwrap_or_default();
    let ok = !bid.is_empty()
        && browser::check_csrf(
            state,
            purpose,
            &session.sid,
            &bid,
            p.get("csrf_token").unwrap_or(""),
        );
    ok.then_some(p)
}

pub async fn submit(AxState(state): AxState<State>, headers: HeaderMap, body: Bytes) -> Response {
    match submit_inner(&state, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn submit_inner(state: &State, headers: &HeaderMap, body: &[u8]) -> Result<Response, Error> {
    let (s, u) = match signed_in(state, headers, "/account/email").await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let Some(p) = checked_form(state, headers, body, CSRF_PURPOSE, &s) else {
        return Ok(csrf_failed(state));
    };
    let new_email = p.get("new_email").unwrap_or("").trim();
    if crate::api::sign::check_email(new_email).is_err() {
        return Ok(form(
            state,
            headers,
            &s,
            &u,
            new_email,
            Some("That is not a valid email address."),
        ));
    }
    let locale = email_change::mail_locale(&u, headers);
    match email_change::request(state, &u, new_email, None, &locale).await {
        Ok(()) => Ok(account_result::page(
            state,
            StatusCode::OK,
            "ok",
            "Check your inbox",
            "We sent a link to the new address. Open it to finish the change; until then your account keeps its current address.",
            None,
        )),
        Err(RequestError::SameEmail) => Ok(form(
            state,
            headers,
            &s,
            &u,
            new_email,
            Some("That is already your email address."),
        )),
        Err(RequestError::Disabled) => Ok(account_result::page(
            state,
            StatusCode::NOT_FOUND,
            "CHANGE_EMAIL_DISABLED",
            "Not available",
            "Changing the email address is disabled on this server.",
            None,
        )),
        Err(RequestError::Internal(e)) => Err(e),
    }
}
