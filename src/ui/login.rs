//! The hosted login page: email + password, CSRF-protected, bound to the interaction.

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::State;
use crate::error::{Error, OAuthError};
use crate::http::pages::{ClientView, LoginPage, render};
use crate::http::params::{Params, form_body};
use crate::http::request_meta::RequestMeta;
use crate::oauth::authorize::{self, InteractionQuery, load_interaction, page_error, response};
use crate::store::{sessions, users};
use crate::ui::session as browser;

fn lang(req: &authorize::request::AuthzRequest) -> &'static str {
    // Only English pages exist so far; ui_locales is accepted and ignored (OIDC Core §3.1.2.1).
    let _ = &req.ui_locales;
    "en"
}

/// The login page of an interaction, fresh or after a failed attempt.
fn login_page(
    state: &State,
    i: &crate::store::sessions::Interaction,
    req: &authorize::request::AuthzRequest,
    client: &crate::store::clients::Client,
    bid: &str,
    login_hint: &str,
    error: Option<&str>,
) -> Response {
    let csrf = browser::csrf_token(state, "login", &i.id, bid);
    let base = state.config.issuer_path();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render(
        status,
        &LoginPage {
            lang: lang(req),
            base: &base,
            client: ClientView::of(client),
            interaction: &i.id,
            csrf_token: &csrf,
            login_hint,
            error,
            sign_up_url: sign_up_url(state, &base, &i.id),
        },
    )
}

/// `/login` takes an interaction (the OIDC flow) or, without one, a `return_to` (the
/// standalone login of the account pages, `ui::account_login`).
#[derive(serde::Deserialize)]
pub struct LoginQuery {
    interaction: Option<String>,
    return_to: Option<String>,
}

/// `/sign-up?return_to=<this login page>`, or none when sign-up is disabled.
fn sign_up_url(state: &State, base: &str, interaction: &str) -> Option<String> {
    if state.config.sign_up.mode == crate::config::SignUpMode::Disabled {
        return None;
    }
    let back = format!("{base}/login?interaction={interaction}");
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", &back)
        .finish();
    Some(format!("{base}/sign-up?{q}"))
}

pub async fn show(
    AxState(state): AxState<State>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    if q.interaction.is_none() {
        return crate::ui::account_login::show(&state, &headers, q.return_to.as_deref()).await;
    }
    let q = InteractionQuery {
        interaction: q.interaction,
    };
    let (i, req, client, bid) =
        match load_interaction(&state, &headers, q.interaction.as_deref()).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    login_page(
        &state,
        &i,
        &req,
        &client,
        &bid,
        req.login_hint.as_deref().unwrap_or(""),
        None,
    )
}

pub async fn submit(
    AxState(state): AxState<State>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    meta: RequestMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match form_body(&headers, &body) {
        Ok(p) => p,
        Err(e) => return page_error(&state, &e),
    };
    if p.get("interaction").is_none() {
        return crate::ui::account_login::submit(&state, peer, &meta, &headers, &p).await;
    }
    match submit_inner(&state, peer, &meta, &headers, &p).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn submit_inner(
    state: &State,
    peer: std::net::SocketAddr,
    meta: &RequestMeta,
    headers: &HeaderMap,
    p: &Params,
) -> Result<Response, Error> {
    let (i, req, client, bid) = match load_interaction(state, headers, p.get("interaction")).await {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    if !browser::check_csrf(
        state,
        "login",
        &i.id,
        &bid,
        p.get("csrf_token").unwrap_or(""),
    ) {
        return Ok(page_error(
            state,
            &OAuthError::invalid_request(
                "the form expired or was not sent by this page; go back and try again",
            ),
        ));
    }
    let email = p.get("username").unwrap_or("");
    if let Err(e) = crate::captcha::check_form(state, "/login", peer, headers, p).await {
        let msg = format!("{e}.");
        return Ok(login_page(
            state,
            &i,
            &req,
            &client,
            &bid,
            email,
            Some(&msg),
        ));
    }
    let verified = match check_password(state, meta, headers, p, "login").await? {
        Ok(v) => v,
        Err(refusal) => {
            let page = login_page(
                state,
                &i,
                &req,
                &client,
                &bid,
                email,
                Some(&refusal.message),
            );
            return Ok(refusal.apply(page));
        }
    };
    let user = &verified.user;
    if !crate::email_verification::sign_in_allowed(state, headers, user, None).await {
        let msg = crate::email_verification::not_verified_message(state);
        return Ok(login_page(state, &i, &req, &client, &bid, email, Some(msg)));
    }
    let (cookie, session) = sign_in(state, peer, headers, user).await?;
    let device = crate::lockout::signed_in(state, meta, &verified, "login").await?;
    sessions::interaction_logged_in(&state.db, &i.id, &session.sid).await?;
    let mut resp = response::redirect(&format!(
        "{}/authorize/resume?interaction={}",
        state.config.issuer_path(),
        i.id
    ));
    resp.headers_mut().append(header::SET_COOKIE, cookie);
    resp.headers_mut().append(header::SET_COOKIE, device);
    Ok(resp)
}

/// Why a hosted login form refused an attempt, as the form shows it.
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
    /// Seconds, for a blocked address (`Retry-After`).
    pub retry_after: Option<i64>,
}

impl Refusal {
    /// The form page with this refusal's status (and `Retry-After`).
    pub fn apply(&self, mut page: Response) -> Response {
        *page.status_mut() = self.status;
        if let Some(s) = self.retry_after
            && let Ok(v) = axum::http::HeaderValue::from_str(&s.to_string())
        {
            page.headers_mut().insert(header::RETRY_AFTER, v);
        }
        page
    }
}

/// The password check of both hosted login forms (`username`, `password` and the
/// CAPTCHA provider's field): `lockout::attempt`, so an unknown account, a locked one
/// and a wrong password get the same answer after the same work.
pub async fn check_password(
    state: &State,
    meta: &RequestMeta,
    headers: &HeaderMap,
    p: &Params,
    door: &'static str,
) -> Result<Result<crate::lockout::Verified, Refusal>, Error> {
    let field = crate::captcha::form_field(state.config.captcha.provider);
    let attempt = crate::lockout::Attempt {
        door,
        captcha_path: "/login",
        identifier: p.get("username").unwrap_or(""),
        password: p.get("password").unwrap_or(""),
        captcha_token: p.get(field),
    };
    let refusal = |status, message: String, retry_after| {
        Ok(Err(Refusal {
            status,
            message,
            retry_after,
        }))
    };
    match crate::lockout::attempt(state, meta, headers, &attempt).await? {
        crate::lockout::Outcome::Success(v) => Ok(Ok(*v)),
        crate::lockout::Outcome::Invalid => refusal(
            StatusCode::BAD_REQUEST,
            "The email or password is incorrect.".into(),
            None,
        ),
        crate::lockout::Outcome::Captcha(e) => refusal(e.status(), format!("{e}."), None),
        crate::lockout::Outcome::IpBlocked { retry_after } => refusal(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed sign-ins from this address. Please try again later.".into(),
            Some(retry_after),
        ),
    }
}

/// Starts the browser session of a password login, shared by the interaction login and
/// the standalone one: a new login replaces the browser's previous session.
pub async fn sign_in(
    state: &State,
    peer: std::net::SocketAddr,
    headers: &HeaderMap,
    user: &users::User,
) -> Result<(axum::http::HeaderValue, sessions::Session), Error> {
    // A sign-in during the grace period of a requested deletion cancels it.
    crate::account_deletion::cancel_on_sign_in(state, user).await?;
    // A new login replaces the browser's previous session.
    if let Some((old, _)) = browser::current(state, headers).await? {
        browser::end(state, &old.user_id, &old.sid, "replaced").await?;
    }
    let ip = crate::http::client_ip(headers, Some(peer), &state.config.proxy);
    browser::start(
        state,
        user,
        vec!["pwd".into()],
        ip,
        crate::http::user_agent(headers),
    )
    .await
}
