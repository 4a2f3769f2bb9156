//! `sign-up/email`, `sign-in/email`, `sign-out` (better-auth `sign-up.ts`, `sign-in.ts`,
//! `sign-out.ts`).

use axum::extract::{ConnectInfo, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::extract::{self, OriginChecked, Via};
use super::{JsonBody, json_response, user_json};
use crate::app::State;
use crate::config::Config;
use crate::http::cookies;
use crate::http::request_meta::RequestMeta;
use crate::lockout;
use crate::password_policy::{self, PolicyViolation};
use crate::signup::{self, SignUpError};
use crate::store::users;
use crate::ui::session as browser;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignUpBody {
    name: String,
    email: String,
    password: String,
    image: Option<String>,
    #[serde(rename = "callbackURL")]
    callback_url: Option<String>,
    remember_me: Option<bool>,
    /// Required (`true`) when `sign_up.terms_version` is set.
    accept_terms: Option<bool>,
    /// Required when `sign_up.mode = "invite_only"`.
    invite_code: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignInBody {
    email: String,
    password: String,
    #[serde(rename = "callbackURL")]
    callback_url: Option<String>,
    remember_me: Option<bool>,
}

pub fn check_email(email: &str) -> Result<(), ApiError> {
    if crate::signup::is_email(email) {
        Ok(())
    } else {
        Err(ApiError::invalid_email())
    }
}

/// The password policy (`[password_policy]`, `password_policy::check`) as the API
/// answers it; every route that sets a password calls this. `email` is the account's
/// address, for `forbid_email`.
pub fn check_password(config: &Config, p: &str, email: Option<&str>) -> Result<(), ApiError> {
    password_policy::check(&config.password_policy, p, email).map_err(policy_error)
}

/// The password policy, then the breached-password check (`breach::check`): what every
/// route that sets a password calls before hashing it.
pub async fn check_new_password(
    state: &State,
    p: &str,
    email: Option<&str>,
) -> Result<(), ApiError> {
    check_password(&state.config, p, email)?;
    crate::breach::check(state, p).await.map_err(breach_error)
}

/// Better Auth's haveIBeenPwned plugin answers a breached password with 400
/// `PASSWORD_COMPROMISED`; a refused check (fail-closed outage) is 503
/// `PASSWORD_CHECK_UNAVAILABLE`.
pub fn breach_error(e: crate::breach::BreachError) -> ApiError {
    let (status, code) = match e {
        crate::breach::BreachError::Compromised => {
            (StatusCode::BAD_REQUEST, "PASSWORD_COMPROMISED")
        }
        crate::breach::BreachError::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "PASSWORD_CHECK_UNAVAILABLE",
        ),
    };
    ApiError::new(status, code, e.to_string())
}

/// Better Auth's `PASSWORD_TOO_SHORT` / `PASSWORD_TOO_LONG`; the other rules are
/// `PASSWORD_TOO_WEAK`, with the rule in the message.
pub fn policy_error(v: PolicyViolation) -> ApiError {
    let code = match v {
        PolicyViolation::TooShort(_) => "PASSWORD_TOO_SHORT",
        PolicyViolation::TooLong(_) => "PASSWORD_TOO_LONG",
        PolicyViolation::Weak(_) => "PASSWORD_TOO_WEAK",
    };
    ApiError::new(StatusCode::BAD_REQUEST, code, v.to_string())
}

/// A sign-up refusal as Better Auth's error.
fn sign_up_error(e: SignUpError) -> ApiError {
    let bad = StatusCode::BAD_REQUEST;
    match e {
        SignUpError::Disabled => ApiError::new(
            bad,
            "EMAIL_PASSWORD_SIGN_UP_DISABLED",
            "Email and password sign up is not enabled",
        ),
        SignUpError::InviteRequired => {
            ApiError::forbidden("INVITE_REQUIRED", "An invite code is required to sign up")
        }
        SignUpError::InvalidInvite => {
            ApiError::forbidden("INVALID_INVITE", "Invalid or expired invite code")
        }
        SignUpError::InvalidEmail => ApiError::invalid_email(),
        SignUpError::Password(v) => policy_error(v),
        SignUpError::Breach(b) => breach_error(b),
        SignUpError::Field(f) => ApiError::validation(f.to_string()),
        SignUpError::Invalid(m) => ApiError::validation(m),
        SignUpError::TermsNotAccepted => ApiError::new(
            bad,
            "TERMS_NOT_ACCEPTED",
            "The terms of service must be accepted (acceptTerms: true)",
        ),
        SignUpError::AlreadyExists => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL",
            "User already exists. Use another email.",
        ),
        SignUpError::Failed(m) => {
            tracing::warn!(error = %m, "sign-up failed");
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "FAILED_TO_CREATE_USER",
                "Failed to create user",
            )
        }
        SignUpError::Db(e) => e.into(),
    }
}

/// Starts a session the way the hosted login page does (`ui::session::begin`), and
/// answers with its cookie and, for bearer clients, the `set-auth-token` header
/// (Better Auth's bearer plugin).
pub(super) async fn start_session(
    state: &State,
    peer: std::net::SocketAddr,
    headers: &HeaderMap,
    user: &users::User,
    remember: bool,
) -> Result<browser::Started, ApiError> {
    let ip = crate::http::client_ip(headers, Some(peer), &state.config.proxy);
    Ok(browser::begin(
        state,
        user,
        vec!["pwd".into()],
        ip,
        crate::http::user_agent(headers),
        remember,
    )
    .await?)
}

pub(super) fn with_session(mut resp: Response, started: &browser::Started) -> Response {
    let h = resp.headers_mut();
    h.append(header::SET_COOKIE, started.cookie.clone());
    if let Ok(v) = HeaderValue::from_str(&started.token) {
        h.insert("set-auth-token", v);
    }
    resp
}

/// `POST /api/auth/sign-up/email` → 200 `{"token": string | null, "user": User}`.
///
/// The registration core is `signup::sign_up` (mode, invite, password policy, custom
/// fields, terms). No user enumeration (issue 3): with `api_auth.auto_sign_in` off (the
/// default), a new address and one that already has an account get the same answer:
/// 200 with `token: null` and a user built from the request (for the existing address
/// a synthetic one with a fresh id; the account is left untouched), and both hash the
/// password, so they also cost the same. This is Better Auth's own answer when
/// `autoSignIn` is false or email verification is required. With `auto_sign_in` on, a
/// new user is signed in (token, cookie, `set-auth-token`) and a duplicate gets 422
/// `USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL`, as Better Auth does: that mode reveals
/// which addresses have accounts and is documented as such.
pub async fn sign_up_email(
    _: OriginChecked,
    AxState(state): AxState<State>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    JsonBody(raw): JsonBody<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let b: SignUpBody = serde_json::from_value(Value::Object(raw.clone()))
        .map_err(|e| ApiError::validation(format!("[body] {e}")))?;
    extract::check_callback_url(&state, b.callback_url.as_deref())?;
    // With required verification a new account must not be signed in (Better Auth).
    let auto = state.config.api_auth.auto_sign_in && !state.config.email_verification.require;
    let req = signup::Request {
        name: b.name,
        email: b.email,
        password: b.password,
        image: b.image,
        body: raw,
        accept_terms: b.accept_terms == Some(true),
        invite_code: b.invite_code,
    };
    let outcome = signup::sign_up(&state, &req, auto)
        .await
        .map_err(sign_up_error)?;
    if let signup::Outcome::Created(u) = &outcome {
        super::verify::after_sign_up(&state, &headers, u, b.callback_url.as_deref()).await;
    }
    let user = match outcome {
        signup::Outcome::Created(u) if auto => u,
        other => {
            return Ok(json_response(
                json!({ "token": Value::Null, "user": user_json(other.user()) }),
            ));
        }
    };
    let started =
        start_session(&state, peer, &headers, &user, b.remember_me != Some(false)).await?;
    Ok(with_session(
        json_response(json!({ "token": started.token, "user": user_json(&user) })),
        &started,
    ))
}

/// `POST /api/auth/sign-in/email` → 200
/// `{"redirect": bool, "token": string, "url"?: string, "user": User}` with the session
/// cookie and `set-auth-token`; a `callbackURL` also goes into `Location` (as Better
/// Auth does). The attempt goes through `lockout::attempt` (delay, IP block, lock,
/// audit): an unknown address, a locked account and a wrong password all give 401
/// `INVALID_EMAIL_OR_PASSWORD` after the same single argon2 run; a blocked address
/// gets 429 ([`ip_blocked`]). A success also sets the device cookie (`lockout::devices`).
pub async fn sign_in_email(
    _: OriginChecked,
    AxState(state): AxState<State>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    meta: RequestMeta,
    headers: HeaderMap,
    JsonBody(b): JsonBody<SignInBody>,
) -> Result<Response, ApiError> {
    check_email(&b.email)?;
    extract::check_callback_url(&state, b.callback_url.as_deref())?;
    let attempt = lockout::Attempt {
        door: "api",
        captcha_path: "/api/auth/sign-in/email",
        identifier: &b.email,
        password: &b.password,
        captcha_token: headers
            .get(crate::captcha::HEADER)
            .and_then(|v| v.to_str().ok()),
    };
    let verified = match lockout::attempt(&state, &meta, &headers, &attempt).await? {
        lockout::Outcome::Success(v) => v,
        lockout::Outcome::Invalid => return Err(ApiError::invalid_email_or_password()),
        lockout::Outcome::Captcha(e) => return Err(e.into()),
        lockout::Outcome::IpBlocked { retry_after } => {
            return Ok(ip_blocked(retry_after));
        }
    };
    let user = &verified.user;
    super::verify::sign_in_gate(&state, &headers, user, b.callback_url.as_deref()).await?;
    crate::account_deletion::cancel_on_sign_in(&state, user).await?;
    // As on the login page, a new login through the cookie replaces that browser's
    // previous session instead of leaving it orphaned.
    if let Some(old) = extract::authed(&state, &headers).await?
        && old.via == Via::Cookie
    {
        browser::end(&state, &old.session.user_id, &old.session.sid, "replaced").await?;
    }
    let started = start_session(&state, peer, &headers, user, b.remember_me != Some(false)).await?;
    let device = lockout::signed_in(&state, &meta, &verified, "api").await?;
    let mut body = json!({
        "redirect": b.callback_url.is_some(),
        "token": started.token,
        "user": user_json(user),
    });
    let mut resp;
    if let Some(u) = &b.callback_url {
        body["url"] = json!(u);
        resp = json_response(body);
        if let Ok(v) = HeaderValue::from_str(u) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
    } else {
        resp = json_response(body);
    }
    // After the session cookie, which clients read first.
    let mut resp = with_session(resp, &started);
    resp.headers_mut().append(header::SET_COOKIE, device);
    Ok(resp)
}

/// A blocked client address (`lockout.ip_block_after`): 429 `TOO_MANY_REQUESTS` with
/// `Retry-After` (RFC 6585 §4, RFC 9110 §10.2.3), checked before any account lookup.
pub fn ip_blocked(retry_after: i64) -> Response {
    let mut r = axum::response::IntoResponse::into_response(ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "TOO_MANY_REQUESTS",
        "Too many failed sign-ins from this address; try again later",
    ));
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// `POST /api/auth/sign-out` → 200 `{"success": true}`, the session revoked and its
/// cookie cleared; without a session 400 `FAILED_TO_GET_SESSION` (as Better Auth).
pub async fn sign_out(
    _: OriginChecked,
    AxState(state): AxState<State>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let clear = cookies::clear(&state.config, cookies::SESSION);
    let Some(a) = extract::authed(&state, &headers).await? else {
        let mut r = axum::response::IntoResponse::into_response(ApiError::new(
            StatusCode::BAD_REQUEST,
            "FAILED_TO_GET_SESSION",
            "Failed to get session",
        ));
        r.headers_mut().append(header::SET_COOKIE, clear);
        return Ok(r);
    };
    crate::ui::session::end(&state, &a.user.id, &a.session.sid, "sign_out").await?;
    let mut r = json_response(json!({ "success": true }));
    r.headers_mut().append(header::SET_COOKIE, clear);
    Ok(r)
}
