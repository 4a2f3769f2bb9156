//! CAPTCHA verification (issue 4, `[captcha]`): Cloudflare Turnstile, hCaptcha and
//! reCAPTCHA v2/v3, all checked the same way server-side: POST
//! `application/x-www-form-urlencoded` `secret`, `response`, `remoteip` to the
//! provider's siteverify URL and read its JSON (`success`, `error-codes`, and for
//! reCAPTCHA v3 `score` and `action`). See Turnstile's "Server-side validation",
//! hCaptcha's "Verify the user response server side" and reCAPTCHA's "Verifying the
//! user's response" pages.
//!
//! Better Auth's `captcha` plugin (packages/better-auth/src/plugins/captcha) reads the
//! token from the `x-captcha-response` header before the endpoint runs and answers a
//! missing token 400 `MISSING_RESPONSE`, a refused one 403 `VERIFICATION_FAILED` and a
//! provider it could not ask 503 `UNKNOWN_ERROR` (fail closed). [`api_layer`] does that
//! for the `/api/auth/*` paths in `captcha.endpoints`; the hosted `/sign-up` and
//! `/login` forms call [`check`] with the provider's own form field ([`form_field`]).
//! Both run before any account lookup or password hashing. Neither the secret nor the
//! response token is ever logged.

use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State as AxState};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::api::error::ApiError;
use crate::app::State;
use crate::config::{CaptchaConfig, CaptchaProvider};

/// The most a verify answer may weigh (real ones are a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;

/// The header Better Auth's captcha plugin reads the token from.
pub const HEADER: &str = "x-captcha-response";

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptchaError {
    /// No token was sent.
    #[error("Missing CAPTCHA response")]
    Missing,
    /// The provider refused the token (or a v3 score/action did not pass).
    #[error("Captcha verification failed")]
    Failed,
    /// The provider could not be asked or gave no usable answer (fail closed).
    #[error("Something went wrong verifying the CAPTCHA; try again later")]
    Unavailable,
}

impl CaptchaError {
    /// Better Auth's status for this refusal (also used by the hosted pages).
    pub fn status(&self) -> StatusCode {
        match self {
            CaptchaError::Missing => StatusCode::BAD_REQUEST,
            CaptchaError::Failed => StatusCode::FORBIDDEN,
            CaptchaError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Better Auth's error code (`captcha/error-codes.ts`).
    pub fn code(&self) -> &'static str {
        match self {
            CaptchaError::Missing => "MISSING_RESPONSE",
            CaptchaError::Failed => "VERIFICATION_FAILED",
            CaptchaError::Unavailable => "UNKNOWN_ERROR",
        }
    }
}

impl From<CaptchaError> for ApiError {
    fn from(e: CaptchaError) -> ApiError {
        ApiError::new(e.status(), e.code(), e.to_string())
    }
}

/// Why the provider gave no usable answer (logged, never shown).
#[derive(Debug, thiserror::Error)]
enum VerifyError {
    #[error("request failed: {0}")]
    Transport(reqwest::Error),
    #[error("status {0}")]
    Status(u16),
    #[error("answer larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("answer is not a siteverify JSON object: {0}")]
    Malformed(serde_json::Error),
}

/// The fields of a siteverify answer that matter here (all providers share them).
#[derive(Debug, Deserialize)]
pub struct Answer {
    pub success: bool,
    #[serde(default, rename = "error-codes")]
    pub error_codes: Vec<String>,
    /// reCAPTCHA v3 only: 0.0 (a bot) to 1.0 (a person).
    pub score: Option<f64>,
    /// reCAPTCHA v3 only: the action the page gave `grecaptcha.execute`.
    pub action: Option<String>,
}

/// The form field the provider's widget fills in on a hosted page.
pub fn form_field(provider: CaptchaProvider) -> &'static str {
    match provider {
        CaptchaProvider::Turnstile => "cf-turnstile-response",
        CaptchaProvider::Hcaptcha => "h-captcha-response",
        CaptchaProvider::RecaptchaV2 | CaptchaProvider::RecaptchaV3 => "g-recaptcha-response",
        CaptchaProvider::None => "",
    }
}

/// Whether `path` (relative to the issuer, e.g. `/sign-up`) is protected.
pub fn protects(cfg: &CaptchaConfig, path: &str) -> bool {
    cfg.provider != CaptchaProvider::None && cfg.endpoints.iter().any(|e| e == path)
}

/// With `captcha.after_failures` set, the sign-in paths ask for the CAPTCHA only after
/// suspicion: `lockout::attempt` checks it there, knowing the failure counts, so this
/// middleware and [`check_form`] leave those paths alone.
pub fn deferred_to_lockout(cfg: &CaptchaConfig, path: &str) -> bool {
    cfg.after_failures.is_some() && (path == "/api/auth/sign-in/email" || path == "/login")
}

/// Checks `token` for the request to `path` when `path` is protected (otherwise `Ok`
/// without a request). `ip` is sent as `remoteip`.
pub async fn check(
    state: &State,
    path: &str,
    token: Option<&str>,
    ip: Option<&str>,
) -> Result<(), CaptchaError> {
    let cfg = &state.config.captcha;
    if !protects(cfg, path) {
        return Ok(());
    }
    let token = token.map(str::trim).filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(CaptchaError::Missing);
    };
    match siteverify(&state.http, cfg, token, ip).await {
        Ok(a) => accepted(cfg, &a),
        Err(e) => {
            tracing::warn!(error = %e, provider = ?cfg.provider, "CAPTCHA provider unavailable; request refused");
            Err(CaptchaError::Unavailable)
        }
    }
}

/// The verdict on a siteverify answer: `success`, and for reCAPTCHA v3 a `score` of at
/// least `min_score` and, when `action` is configured, the same `action`.
pub fn accepted(cfg: &CaptchaConfig, a: &Answer) -> Result<(), CaptchaError> {
    if !a.success {
        tracing::info!(error_codes = ?a.error_codes, "CAPTCHA refused by the provider");
        return Err(CaptchaError::Failed);
    }
    if cfg.provider == CaptchaProvider::RecaptchaV3 {
        if a.score.is_none_or(|s| s < cfg.min_score) {
            tracing::info!(score = ?a.score, "CAPTCHA score below captcha.min_score");
            return Err(CaptchaError::Failed);
        }
        if let Some(want) = &cfg.action
            && a.action.as_deref() != Some(want.as_str())
        {
            tracing::info!(action = ?a.action, "CAPTCHA action does not match captcha.action");
            return Err(CaptchaError::Failed);
        }
    }
    Ok(())
}

/// POSTs the token to the provider's verify URL and parses its answer.
async fn siteverify(
    http: &reqwest::Client,
    cfg: &CaptchaConfig,
    token: &str,
    ip: Option<&str>,
) -> Result<Answer, VerifyError> {
    let mut form = vec![("secret", cfg.secret_key.as_str()), ("response", token)];
    if let Some(ip) = ip {
        form.push(("remoteip", ip));
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let transport = |e: reqwest::Error| VerifyError::Transport(e.without_url());
    let mut resp = http
        .post(cfg.verify_url())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .timeout(Duration::from_millis(cfg.timeout_ms))
        .send()
        .await
        .map_err(transport)?;
    if !resp.status().is_success() {
        return Err(VerifyError::Status(resp.status().as_u16()));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport)? {
        if bytes.len() + chunk.len() > MAX_BODY {
            return Err(VerifyError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&bytes).map_err(VerifyError::Malformed)
}

/// Axum middleware for the protected `/api/auth/*` POSTs: the token from
/// [`HEADER`], Better Auth's errors on refusal. Other requests pass untouched.
pub async fn api_layer(AxState(state): AxState<State>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || state.config.captcha.provider == CaptchaProvider::None {
        return next.run(req).await;
    }
    let base = state.config.issuer_path();
    let path = req.uri().path();
    let rel = path.strip_prefix(base.as_str()).unwrap_or(path);
    if !rel.starts_with("/api/auth/")
        || !protects(&state.config.captcha, rel)
        || deferred_to_lockout(&state.config.captcha, rel)
    {
        return next.run(req).await;
    }
    let rel = rel.to_string();
    let peer = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let headers = req.headers();
    let ip = crate::http::client_ip(headers, peer, &state.config.proxy);
    let token = headers.get(HEADER).and_then(|v| v.to_str().ok());
    match check(&state, &rel, token, ip.as_deref()).await {
        Ok(()) => next.run(req).await,
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// [`check`] for a hosted form posted to `path` (`/sign-up`, `/login`): the token from
/// the provider's own form field ([`form_field`]).
pub async fn check_form(
    state: &State,
    path: &str,
    peer: std::net::SocketAddr,
    headers: &axum::http::HeaderMap,
    p: &crate::http::params::Params,
) -> Result<(), CaptchaError> {
    let cfg = &state.config.captcha;
    if !protects(cfg, path) || deferred_to_lockout(cfg, path) {
        return Ok(());
    }
    let ip = crate::http::client_ip(headers, Some(peer), &state.config.proxy);
    check(state, path, p.get(form_field(cfg.provider)), ip.as_deref()).await
}
