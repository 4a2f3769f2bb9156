//! `sign-up/email`, `sign-in/email`, `sign-out` (better-auth `sign-up.ts`, `sign-in.ts`,
//! `sign-out.ts`).

use axum::extract::{ConnectInfo, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{self, OriginChecked, Via};
use super::{JsonBody, json_response, user_json};
use crate::app::State;
use crate::http::cookies;
use crate::store::{sessions, users};
use crate::ui::session as browser;

/// Password length policy (issue 3 default; Better Auth's `minPasswordLength` 8 and
/// `maxPasswordLength` 128), counted in characters.
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignUpBody {
    name: String,
    email: String,
    password: String,
    image: Option<String>,
    #[serde(rename = "callbackURL")]
    callback_url: Option<String>,
    remember_me: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInBody {
    email: String,
    password: String,
    #[serde(rename = "callbackURL")]
    callback_url: Option<String>,
    remember_me: Option<bool>,
}

/// Better Auth validates with zod's `z.email()`; this is the same idea, loosely: one `@`,
/// a non-empty local part, a dotted domain, no spaces, at most 254 characters.
pub fn check_email(email: &str) -> Result<(), ApiError> {
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_email())
    }
}

pub fn check_password(p: &str) -> Result<(), ApiError> {
    let n = p.chars().count();
    if n < PASSWORD_MIN {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "PASSWORD_TOO_SHORT",
            "Password too short",
        ));
    }
    if n > PASSWORD_MAX {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "PASSWORD_TOO_LONG",
            "Password too long",
        ));
    }
    Ok(())
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
    let ip = crate::http::client_ip(
        headers,
        Some(peer),
        state.config.proxy.trust_forwarded_headers,
    );
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
/// No user enumeration (issue 3): with `api_auth.auto_sign_in` off (the default), a new
/// address and one that already has an account get the same answer: 200 with
/// `token: null` and a user built from the request (for the existing address a
/// synthetic one with a fresh id; the account is left untouched), and both hash the
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
    JsonBody(b): JsonBody<SignUpBody>,
) -> Result<Response, ApiError> {
    check_email(&b.email)?;
    check_password(&b.password)?;
    if b.name.chars().count() > 256 {
        return Err(ApiError::validation("[body.name] at most 256 characters"));
    }
    if b.image.as_ref().is_some_and(|i| i.len() > 2048) {
        return Err(ApiError::validation("[body.image] at most 2048 characters"));
    }
    extract::check_callback_url(&state, b.callback_url.as_deref())?;
    // With required verification a new account must not be signed in (Better Auth).
    let auto = state.config.api_auth.auto_sign_in && !state.config.email_verification.require;
    let exists = users::by_email(&state.db, &b.email).await?.is_some();
    if exists {
        return existing_sign_up(&state, &b, auto).await;
    }
    let mut doc = json!({ "email": b.email, "password": b.password, "name": b.name });
    if let Some(i) = &b.image {
        doc["picture"] = json!(i);
    }
    let user = match crate::accounts::create_user(&state, doc).await {
        Ok(u) => u,
        Err(e) => {
            // A concurrent sign-up with the same address won the insert.
            if users::by_email(&state.db, &b.email).await?.is_some() {
                return existing_sign_up(&state, &b, auto).await;
            }
            tracing::warn!(error = %e, "sign-up failed");
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "FAILED_TO_CREATE_USER",
                "Failed to create user",
            ));
        }
    };
    super::verify::after_sign_up(&state, &headers, &user, b.callback_url.as_deref()).await;
    if !auto {
        return Ok(json_response(
            json!({ "token": Value::Null, "user": user_json(&user) }),
        ));
    }
    let started =
        start_session(&state, peer, &headers, &user, b.remember_me != Some(false)).await?;
    Ok(with_session(
        json_response(json!({ "token": started.token, "user": user_json(&user) })),
        &started,
    ))
}

async fn existing_sign_up(state: &State, b: &SignUpBody, auto: bool) -> Result<Response, ApiError> {
    if auto {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL",
            "User already exists. Use another email.",
        ));
    }
    // The same work as creating the account.
    let _ = state.hasher.hash(&b.password).await;
    let now = state.clock.now();
    let synthetic = users::User {
        id: uuid::Uuid::new_v4().to_string(),
        email: users::normalize_email(&b.email),
        email_verified: false,
        password_hash: None,
        claims: {
            let mut m = serde_json::Map::new();
            m.insert("name".into(), json!(b.name));
            if let Some(i) = &b.image {
                m.insert("picture".into(), json!(i));
            }
            m
        },
        created_at: now,
        updated_at: now,
    };
    Ok(json_response(
        json!({ "token": Value::Null, "user": user_json(&synthetic) }),
    ))
}

/// `POST /api/auth/sign-in/email` → 200
/// `{"redirect": bool, "token": string, "url"?: string, "user": User}` with the session
/// cookie and `set-auth-token`; a `callbackURL` also goes into `Location` (as Better
/// Auth does). An unknown address and a wrong password both give 401
/// `INVALID_EMAIL_OR_PASSWORD` after the same argon2 work (`Hasher::verify` checks a
/// dummy hash when there is no account).
pub async fn sign_in_email(
    _: OriginChecked,
    AxState(state): AxState<State>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<SignInBody>,
) -> Result<Response, ApiError> {
    check_email(&b.email)?;
    extract::check_callback_url(&state, b.callback_url.as_deref())?;
    let user = users::by_email(&state.db, &b.email).await?;
    let ok = state
        .hasher
        .verify(
            &b.password,
            user.as_ref().and_then(|u| u.password_hash.as_deref()),
        )
        .await;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => return Err(ApiError::invalid_email_or_password()),
    };
    super::verify::sign_in_gate(&state, &headers, &user, b.callback_url.as_deref()).await?;
    // As on the login page, a new login through the cookie replaces that browser's
    // previous session instead of leaving it orphaned.
    if let Some(old) = extract::authed(&state, &headers).await?
        && old.via == Via::Cookie
    {
        sessions::revoke(&state.db, &old.session.sid, state.clock.now()).await?;
    }
    let started =
        start_session(&state, peer, &headers, &user, b.remember_me != Some(false)).await?;
    let mut body = json!({
        "redirect": b.callback_url.is_some(),
        "token": started.token,
        "user": user_json(&user),
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
    Ok(with_session(resp, &started))
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
    sessions::revoke(&state.db, &a.session.sid, state.clock.now()).await?;
    let mut r = json_response(json!({ "success": true }));
    r.headers_mut().append(header::SET_COOKIE, clear);
    Ok(r)
}
