//! Rate limiting (issue 4, `[rate_limit]`): Better Auth's `rateLimit` (a general
//! `window`/`max` per IP and path, `customRules` per path), plus rules that count by
//! account, OAuth client or endpoint, so that an attacker who rotates addresses is still
//! stopped at the account being attacked.
//!
//! [`layer`] runs on every request, outside the CAPTCHA check and inside the request-id
//! layer, so a throttled request costs one counter update and never a password hash or
//! a CAPTCHA call. It finds the rules that match the request ([`Limiter::matching`]),
//! extracts each rule's key ([`Subject`]; the body is read only when an `account` or
//! `client` rule needs it), counts the request in the [`Store`] and answers 429 with
//! `Retry-After` (RFC 9110 §10.2.3) and the `RateLimit` / `RateLimit-Policy` fields of
//! draft-ietf-httpapi-ratelimit-headers, in the error format of the door it guards
//! ([`Door`]). Allowed responses carry `RateLimit` / `RateLimit-Policy` too.
//!
//! Counting is a sliding-window estimate over fixed windows (the count of the current
//! window plus the previous window's, weighted by how much of it still overlaps the
//! sliding window; [`decide`]): one counter pair per key, and no burst of 2×`max` at a
//! window boundary as plain fixed windows allow.

mod database;
mod memory;
mod redis;

use askama::Template;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::error::ApiError;
use crate::app::State;
use crate::config::{RateLimitConfig, RateLimitKey as Key, RateLimitStorage};
use crate::error::OAuthError;
use crate::http::client_ip;

/// The most of a body read to find the account or client (the router's own body limit,
/// `app::router`, so a body we refuse is one the handler would refuse too).
const MAX_PEEK: usize = 256 * 1024;

/// One rule: requests to `path` (issuer-relative, trailing `*` = prefix) with one of
/// `methods` (empty: any) are counted per `key`, at most `max` per `window` seconds.
/// Rules with the same `name` share their counters (one budget over several doors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub path: String,
    pub methods: Vec<Method>,
    pub window: u64,
    pub max: u64,
    pub key: Key,
}

impl Rule {
    fn matches(&self, method: &Method, path: &str) -> bool {
        let path_ok = match self.path.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == self.path,
        };
        path_ok && (self.methods.is_empty() || self.methods.contains(method))
    }
}

/// The built-in rules (`rate_limit.defaults`), documented in the README's security
/// section. Numbers a person does not reach and a script does: Better Auth allows 100
/// requests per 60 s in general and 3 sign-ins per 10 s; ours are per minute or longer
/// so that a person retrying a few times never waits.
pub fn default_rules() -> Vec<Rule> {
    const SIGN_IN: &[&str] = &["/api/auth/sign-in/*", "/auth/login", "/login"];
    const SIGN_UP: &[&str] = &["/api/auth/sign-up/*", "/auth/register", "/sign-up"];
    // Every door that mails an account a link: reset, and verification resends.
    const RESET: &[&str] = &[
        "/api/auth/request-password-reset",
        "/api/auth/forget-password",
        "/auth/forgot-password",
        "/forgot-password",
        "/api/auth/send-verification-email",
        "/auth/resend-verification",
    ];
    const OTP: &[&str] = &[
        "/api/auth/two-factor/*",
        "/api/auth/email-otp/*",
        "/api/auth/phone-number/*",
    ];
    // Signed-in requests that check the account's password: a stolen session must not
    // become a password oracle.
    const PASSWORD_CHECK: &[&str] = &[
        "/api/auth/verify-password",
        "/api/auth/change-password",
        "/api/auth/delete-user",
        "/account/password",
        "/account/delete",
    ];
    const TOKEN: &[&str] = &["/token", "/auth/refresh"];
    let groups: &[(&str, &[&str], Key, u64, u64)] = &[
        ("sign-in-ip", SIGN_IN, Key::Ip, 60, 30),
        ("sign-in-account", SIGN_IN, Key::Account, 300, 10),
        ("sign-up-ip", SIGN_UP, Key::Ip, 600, 20),
        ("password-reset-ip", RESET, Key::Ip, 600, 10),
        ("password-reset-account", RESET, Key::Account, 3600, 5),
        ("otp-ip", OTP, Key::Ip, 60, 20),
        ("otp-account", OTP, Key::Account, 300, 10),
        ("password-check-ip", PASSWORD_CHECK, Key::Ip, 60, 20),
        ("token-ip", TOKEN, Key::Ip, 60, 600),
        ("token-client", TOKEN, Key::Client, 60, 1200),
        ("register-ip", &["/register"], Key::Ip, 3600, 20),
    ];
    let mut rules = Vec::new();
    for (name, paths, key, window, max) in groups {
        for path in *paths {
            rules.push(Rule {
                name: (*name).to_string(),
                path: (*path).to_string(),
                methods: vec![Method::POST],
                window: *window,
                max: *max,
                key: *key,
            });
        }
    }
    rules
}

fn key_name(k: Key) -> &'static str {
    match k {
        Key::Ip => "ip",
        Key::Account => "account",
        Key::Client => "client",
        Key::Endpoint => "endpoint",
    }
}

/// The rules in force: the configured ones, and the built-in ones (with `defaults`)
/// that no configured rule replaces (same path and key).
pub fn rules(cfg: &RateLimitConfig) -> Vec<Rule> {
    let configured: Vec<Rule> = cfg
        .rules
        .iter()
        .map(|r| {
            let methods: Vec<Method> = r
                .methods
                .iter()
                .filter_map(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
                .collect();
            let mut name = format!("{}:{}", key_name(r.key), r.path);
            if !methods.is_empty() {
                let list: Vec<&str> = methods.iter().map(Method::as_str).collect();
                name = format!("{name} {}", list.join(","));
            }
            Rule {
                name,
                path: r.path.clone(),
                methods,
                window: r.window,
                max: r.max,
                key: r.key,
            }
        })
        .collect();
    let mut all = Vec::new();
    if cfg.defaults {
        all.extend(default_rules().into_iter().filter(|d| {
            !configured
                .iter()
                .any(|c| c.path == d.path && c.key == d.key)
        }));
    }
    all.extend(configured);
    all
}

/// Where the counters are kept.
pub enum Store {
    Memory(memory::Memory),
    Database(database::Database),
    Redis(redis::Redis),
}

/// The counts of one key after a hit: requests in the fixed window that starts at
/// `window_start`, and in the window before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub window_start: i64,
    pub count: u64,
    pub prev: u64,
}

/// The start of the fixed window of `window` seconds that `now` falls in.
fn window_start(now: i64, window: u64) -> i64 {
    let w = window.max(1) as i64;
    now - now.rem_euclid(w)
}

/// `c` moved to the window starting at `ws`: kept if it is that window (or a later
/// one), the previous window's count if it was the one before, else zero.
fn roll(c: Counts, ws: i64, window: u64) -> Counts {
    if c.window_start >= ws {
        c
    } else if c.window_start == ws - window as i64 {
        Counts {
            window_start: ws,
            count: 0,
            prev: c.count,
        }
    } else {
        Counts {
            window_start: ws,
            count: 0,
            prev: 0,
        }
    }
}

/// The counter store could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

impl Store {
    pub fn new(cfg: &RateLimitConfig, db: &crate::store::Db) -> Result<Store, String> {
        Ok(match cfg.storage {
            RateLimitStorage::Memory => Store::Memory(memory::Memory::default()),
            RateLimitStorage::Database => Store::Database(database::Database::new(db.clone())),
            RateLimitStorage::Redis => Store::Redis(
                redis::Redis::new(&cfg.redis_url, &cfg.redis_prefix)
                    .map_err(|e| format!("rate_limit.redis_url: {e}"))?,
            ),
        })
    }

    /// Counts one request against `key` (a window of `window` seconds) at `now`.
    pub async fn hit(&self, key: &str, window: u64, now: i64) -> Result<Counts, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.hit(key, window, now)),
            Store::Database(d) => Ok(d.hit(key, window, now).await?),
            Store::Redis(r) => Ok(r.hit(key, window, now).await?),
        }
    }
}

/// The rules and the store, built once at start (`app::build_state`).
pub struct Limiter {
    pub rules: Vec<Rule>,
    /// The general budget (`rate_limit.window` / `max`) per IP and path, for requests
    /// that no `ip` rule matches.
    pub general: Rule,
    pub store: Store,
}

impl Limiter {
    pub fn new(cfg: &RateLimitConfig, db: &crate::store::Db) -> Result<Limiter, String> {
        Ok(Limiter {
            rules: rules(cfg),
            general: Rule {
                name: "default".into(),
                path: "/*".into(),
                methods: Vec::new(),
                window: cfg.window,
                max: cfg.max,
                key: Key::Ip,
            },
            store: Store::new(cfg, db)?,
        })
    }

    /// The rules a request matches, in the order they are checked: by IP first (an
    /// address already refused does not also spend the budget of the account it
    /// names), then client, endpoint and account.
    pub fn matching(&self, method: &Method, path: &str) -> Vec<&Rule> {
        let mut v: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| r.matches(method, path))
            .collect();
        if !v.iter().any(|r| r.key == Key::Ip) {
            v.push(&self.general);
        }
        let order = |k: Key| match k {
            Key::Ip => 0,
            Key::Client => 1,
            Key::Endpoint => 2,
            Key::Account => 3,
        };
        v.sort_by_key(|r| order(r.key));
        v
    }
}

/// What a request is counted by, as far as it could be told.
#[derive(Debug, Default, Clone)]
pub struct Subject {
    /// `client_ip::group` of the client address (IPv6 by /64).
    pub ip: Option<String>,
    /// The normalised account identifier from the body.
    pub account: Option<String>,
    /// The OAuth client id (HTTP Basic, or the body).
    pub client: Option<String>,
    /// The hash of the request's device cookie when it is a known device of `account`
    /// (`lockout::devices`).
    pub known_device: Option<String>,
}

/// The counter key of `rule` for `subject`, or `None` when the request does not name
/// what the rule counts by (the rule then does not apply). Subjects are hashed: the
/// store never holds an address, an email or a client id in clear.
fn counter_key(rule: &Rule, general: bool, path: &str, s: &Subject) -> Option<String> {
    let value = match rule.key {
        // The general budget is Better Auth's: per address and path.
        Key::Ip if general => format!("{} {path}", s.ip.as_deref()?),
        Key::Ip => s.ip.clone()?,
        // A known device of the account has a budget of its own (issue 4: an attacker
        // who spends the account's budget must not lock its owner out).
        Key::Account => match &s.known_device {
            Some(device) => format!("{}\0device:{device}", s.account.as_deref()?),
            None => s.account.clone()?,
        },
        Key::Client => s.client.clone()?,
        Key::Endpoint => String::new(),
    };
    Some(format!(
        "{}:{}",
        rule.name,
        crate::crypto::hash_secret(&value)
    ))
}

/// The verdict on one rule for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests left in the window (`r`).
    pub remaining: u64,
    /// Seconds until the quota frees up (`t`): when refused, until the next request
    /// would be allowed (also `Retry-After`); when allowed, until the current window ends.
    pub reset: u64,
}

/// The sliding-window estimate after a hit: the current window's count plus the
/// previous window's, weighted by the part of it that the sliding window
/// `(now - window, now]` still covers. Allowed while it is at most `max`. Integer
/// arithmetic, scaled by `window`.
pub fn decide(max: u64, window: u64, now: i64, c: Counts) -> Decision {
    let w = window.max(1);
    let elapsed = (now - c.window_start).clamp(0, w as i64 - 1) as u64;
    let weighted = c.prev * (w - elapsed) + c.count * w;
    let budget = max * w;
    if weighted <= budget {
        return Decision {
            allowed: true,
            remaining: (budget - weighted) / w,
            reset: w - elapsed,
        };
    }
    Decision {
        allowed: false,
        remaining: 0,
        reset: retry_after(max, w, elapsed, c),
    }
}

/// Seconds until one more request would be allowed, if none is made meanwhile.
fn retry_after(max: u64, w: u64, elapsed: u64, c: Counts) -> u64 {
    // Later in this window: the previous window's weight shrinks as time passes, but
    // the current count does not.
    if c.count < max && c.prev > 0 {
        // prev·(w − elapsed − d) ≤ (max − count − 1)·w
        let slack = (max - c.count - 1) * w / c.prev;
        let d = (w - elapsed).saturating_sub(slack).max(1);
        if d < w - elapsed {
            return d;
        }
    }
    // In the next window this window's count is the previous one, and one request has
    // been made in it: count·(w − e') + w ≤ max·w.
    let slack = (max - 1) * w / c.count.max(1);
    let e = w.saturating_sub(slack);
    (w - elapsed) + e
}

/// The door a path belongs to, which decides the error format of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// `/api/auth/*` and the `/auth/*` REST aliases: Better Auth's `{code, message}`.
    Api,
    /// The OAuth/OIDC JSON endpoints: `{error, error_description}`.
    OAuth,
    /// Browser pages (`/authorize`, `/login`, ...): an HTML page.
    Page,
}

pub fn door(path: &str) -> Door {
    const OAUTH: &[&str] = &[
        "/token",
        "/revoke",
        "/introspect",
        "/userinfo",
        "/jwks",
        "/register",
        "/auth/refresh",
    ];
    if OAUTH.contains(&path) || path.starts_with("/register/") || path.starts_with("/.well-known/")
    {
        Door::OAuth
    } else if path.starts_with("/api/auth/") || path.starts_with("/auth/") {
        Door::Api
    } else {
        Door::Page
    }
}

#[derive(Template)]
#[template(path = "rate_limited.html")]
struct RateLimitedPage<'a> {
    lang: &'a str,
    base: &'a str,
    error: &'a str,
    description: &'a str,
}

/// A refusal in `door`'s format, without the rate-limit fields.
fn refusal(state: &State, door: Door, status: StatusCode, message: &str) -> Response {
    match door {
        Door::Api => {
            let code = match status {
                StatusCode::TOO_MANY_REQUESTS => "TOO_MANY_REQUESTS",
                StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
                _ => "SERVICE_UNAVAILABLE",
            };
            ApiError::new(status, code, message).into_response()
        }
        // RFC 6749 defines no error code for "too many requests" at the token endpoint
        // (§5.2) or elsewhere; `temporarily_unavailable` (§4.1.2.1, registered in the
        // OAuth Extensions Error Registry, §11.4) is the one code whose meaning, "unable
        // to handle the request due to a temporary overloading", fits, and clients
        // treat it as retryable. The status says which case it is: 429 (RFC 6585 §4)
        // for a limit, 503 when the counters cannot be read. A body that is too large
        // is `invalid_request`.
        Door::OAuth => {
            let e = if status == StatusCode::PAYLOAD_TOO_LARGE {
                OAuthError::invalid_request(message)
            } else {
                OAuthError {
                    error: "temporarily_unavailable",
                    description: message.to_string(),
                    status,
                    www_authenticate: None,
                }
            };
            e.with_status(status).into_response()
        }
        // Never a redirect: the request is refused before anything in it (client,
        // redirect_uri) has been checked.
        Door::Page => {
            let base = state.config.issuer_path();
            let error = match status {
                StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
                StatusCode::PAYLOAD_TOO_LARGE => "request_too_large",
                _ => "temporarily_unavailable",
            };
            crate::http::pages::render(
                status,
                &RateLimitedPage {
                    lang: "en",
                    base: &base,
                    error,
                    description: message,
                },
            )
        }
    }
}

/// An sf-string (RFC 9651 §3.3.3): quoted, `"` and `\` escaped, printable ASCII only.
fn sf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            ' '..='~' => out.push(ch),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
}

/// `RateLimit-Policy` and `RateLimit` for the evaluated rules
/// (draft-ietf-httpapi-ratelimit-headers: `"name";q=<max>;w=<window>` and
/// `"name";r=<remaining>;t=<seconds>`, as structured-field lists).
fn set_fields(h: &mut HeaderMap, evaluated: &[(&Rule, Decision)]) {
    if evaluated.is_empty() {
        return;
    }
    let policy: Vec<String> = evaluated
        .iter()
        .map(|(r, _)| format!("{};q={};w={}", sf_string(&r.name), r.max, r.window))
        .collect();
    let limit: Vec<String> = evaluated
        .iter()
        .map(|(r, d)| format!("{};r={};t={}", sf_string(&r.name), d.remaining, d.reset))
        .collect();
    for (name, v) in [("ratelimit-policy", policy), ("ratelimit", limit)] {
        if let Ok(v) = HeaderValue::from_str(&v.join(", ")) {
            h.insert(name, v);
        }
    }
}

/// The back-channel endpoints answer any origin without credentials (`app.rs`,
/// `cross_origin_endpoints`), but a refusal here never reaches their CORS layer: say
/// the same, so a browser app can read the 429 and when to retry.
fn allow_any_origin(h: &mut HeaderMap) {
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("retry-after, ratelimit, ratelimit-policy"),
    );
}

/// The client id a request claims: HTTP Basic's user part, form-decoded (RFC 6749
/// §2.3.1), else `client_id` from the body, else the `sub` of a `client_assertion`
/// (RFC 7523 §3; not verified here: it only names the budget).
fn client_id(headers: &HeaderMap, body: Option<&BodyFields>) -> Option<String> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, b64)| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|text| {
            let id = text.split_once(':')?.0.replace('+', " ");
            percent_encoding::percent_decode_str(&id)
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
        });
    basic
        .or_else(|| body.and_then(|b| b.client_id.clone()))
        .or_else(|| body.and_then(|b| b.assertion_sub.clone()))
        .filter(|c| !c.is_empty())
}

/// What the body says about who is asking.
#[derive(Debug, Default)]
struct BodyFields {
    account: Option<String>,
    client_id: Option<String>,
    assertion_sub: Option<String>,
}

/// The account identifier, as every sign-in path compares it: trimmed, lower case.
fn normalise_account(s: &str) -> Option<String> {
    let s = s.trim().to_lowercase();
    (!s.is_empty()).then_some(s)
}

/// Reads the fields of a JSON or form body.
fn body_fields(headers: &HeaderMap, body: &[u8]) -> BodyFields {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut f = BodyFields::default();
    let pick =
        |get: &dyn Fn(&str) -> Option<String>, names: &[&str]| names.iter().find_map(|n| get(n));
    const ACCOUNT: &[&str] = &["email", "username", "phoneNumber", "phone_number"];
    if ct.starts_with("application/json") || ct.ends_with("+json") {
        let Ok(serde_json::Value::Object(o)) = serde_json::from_slice(body) else {
            return f;
        };
        let get = |k: &str| o.get(k).and_then(|v| v.as_str()).map(String::from);
        f.account = pick(&get, ACCOUNT).and_then(|a| normalise_account(&a));
        f.client_id = get("client_id");
        f.assertion_sub = get("client_assertion").and_then(|a| assertion_sub(&a));
    } else {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
        };
        f.account = pick(&get, ACCOUNT).and_then(|a| normalise_account(&a));
        f.client_id = get("client_id");
        f.assertion_sub = get("client_assertion").and_then(|a| assertion_sub(&a));
    }
    f
}

/// The `sub` claim of a JWT, unverified.
fn assertion_sub(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let raw = crate::crypto::b64url_decode(payload)?;
    let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    v.get("sub")?.as_str().map(String::from)
}

/// Who is asking: the client address, and (read from the body only when a rule counts
/// by it) the account and the client. Returns the request with its body restored.
async fn subject_of(
    state: &State,
    req: Request,
    rules: &[&Rule],
) -> Result<(Request, Subject), axum::Error> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let mut subject = Subject {
        ip: client_ip::resolve(&state.config.proxy, req.headers(), peer).map(client_ip::group),
        ..Subject::default()
    };
    let basic_client = client_id(req.headers(), None);
    let needs_body = rules
        .iter()
        .any(|r| r.key == Key::Account || (r.key == Key::Client && basic_client.is_none()));
    if !needs_body {
        subject.client = basic_client;
        return Ok((req, subject));
    }
    let (parts, body) = req.into_parts();
    // Over the limit, or a broken upload: the handler would refuse it too.
    let bytes = axum::body::to_bytes(body, MAX_PEEK).await?;
    let fields = body_fields(&parts.headers, &bytes);
    subject.client = client_id(&parts.headers, Some(&fields));
    subject.account = fields.account;
    if let Some(account) = &subject.account {
        // A lookup failure only costs the device its own budget.
        subject.known_device =
            crate::lockout::devices::known_for_identifier(state, &parts.headers, account)
                .await
                .unwrap_or_default();
    }
    Ok((Request::from_parts(parts, Body::from(bytes)), subject))
}

/// Counts the request against each rule that applies, in order, until one refuses.
/// A store error is skipped with a warning under `fail_open`, else returned.
async fn count<'a>(
    state: &State,
    rules: Vec<&'a Rule>,
    path: &str,
    subject: &Subject,
) -> Result<Vec<(&'a Rule, Decision)>, StoreError> {
    let limiter = &state.rate_limiter;
    let now = state.clock.now();
    let mut evaluated = Vec::new();
    for rule in rules {
        let general = std::ptr::eq(rule, &limiter.general);
        let Some(key) = counter_key(rule, general, path, subject) else {
            continue;
        };
        let counts = match limiter.store.hit(&key, rule.window, now).await {
            Ok(c) => c,
            Err(e) if state.config.rate_limit.fail_open => {
                tracing::warn!(error = %e, rule = %rule.name, "rate limit store unavailable; request allowed (rate_limit.fail_open)");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, rule = %rule.name, "rate limit store unavailable; request refused");
                return Err(e);
            }
        };
        let d = decide(rule.max, rule.window, now, counts);
        let refused = !d.allowed;
        evaluated.push((rule, d));
        if refused {
            break;
        }
    }
    Ok(evaluated)
}

/// The middleware (`app::router`).
pub async fn layer(AxState(state): AxState<State>, req: Request, next: Next) -> Response {
    if !state.config.rate_limit.enabled {
        return next.run(req).await;
    }
    let base = state.config.issuer_path();
    let full = req.uri().path();
    let path = full.strip_prefix(base.as_str()).unwrap_or(full).to_string();
    let rules = state.rate_limiter.matching(req.method(), &path);
    let door = door(&path);
    let cross_origin = door == Door::OAuth
        && path != "/auth/refresh"
        && req.headers().contains_key(header::ORIGIN);
    let refuse = |status: StatusCode, message: &str| {
        let mut resp = refusal(&state, door, status, message);
        if cross_origin {
            allow_any_origin(resp.headers_mut());
        }
        resp
    };
    let Ok((req, subject)) = subject_of(&state, req, &rules).await else {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body is too large or could not be read",
        );
    };
    let Ok(evaluated) = count(&state, rules, &path, &subject).await else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server cannot take this request right now; try again later",
        );
    };
    if let Some((rule, d)) = evaluated.iter().find(|(_, d)| !d.allowed) {
        tracing::info!(rule = %rule.name, retry_after = d.reset, "rate limit reached");
        let message = format!("Too many requests; try again in {} seconds", d.reset);
        let mut resp = refuse(StatusCode::TOO_MANY_REQUESTS, &message);
        let h = resp.headers_mut();
        h.insert(header::RETRY_AFTER, HeaderValue::from(d.reset));
        set_fields(h, &evaluated);
        return resp;
    }
    let mut resp = next.run(req).await;
    set_fields(resp.headers_mut(), &evaluated);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(ws: i64, count: u64, prev: u64) -> Counts {
        Counts {
            window_start: ws,
            count,
            prev,
        }
    }

    #[test]
    fn fixed_window_without_history_allows_exactly_max() {
        for n in 1..=5 {
            let d = decide(5, 60, 1000, counts(960, n, 0));
            assert!(d.allowed, "{n}");
            assert_eq!(d.remaining, 5 - n);
            assert_eq!(d.reset, 20);
        }
        let d = decide(5, 60, 1000, counts(960, 6, 0));
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        // The next window starts in 20 s; the 6 counted (the refused one too) then
        // weigh as the previous window, so one more fits once 6·(60 − e) + 60 ≤ 300,
        // at e = 20.
        assert_eq!(d.reset, 20 + 20);
    }

    #[test]
    fn the_previous_window_weighs_by_overlap() {
        // 10 in the previous window, a quarter of the way into this one: 7.5 + 1.
        let d = decide(10, 60, 975, counts(960, 1, 10));
        assert!(d.allowed);
        assert_eq!(d.remaining, 1);
        // Two more: 7.5 + 3 > 10. Refused until 10·(60 − e) ≤ (10 − 3 − 1)·60 → e ≥ 24.
        let d = decide(10, 60, 975, counts(960, 3, 10));
        assert!(!d.allowed);
        assert_eq!(d.reset, 24 - 15);
        // The estimate at the promised time admits one more request.
        let later = decide(10, 60, 975 + d.reset as i64, counts(960, 4, 10));
        assert!(later.allowed, "{later:?}");
    }

    #[test]
    fn retry_after_is_never_zero() {
        let d = decide(1, 1, 100, counts(100, 2, 0));
        assert!(!d.allowed);
        assert!(d.reset >= 1);
        let d = decide(3, 10, 109, counts(100, 5, 9));
        assert!(!d.allowed && d.reset >= 1, "{d:?}");
    }

    #[test]
    fn rules_match_paths_methods_and_replace_defaults() {
        let cfg: RateLimitConfig = crate::config::Config::from_toml(
            "[rate_limit]\n[[rate_limit.rules]]\npath = \"/login\"\nkey = \"ip\"\nwindow = 10\nmax = 2\n",
        )
        .expect("config")
        .rate_limit;
        let rules = rules(&cfg);
        let login_ip: Vec<&Rule> = rules
            .iter()
            .filter(|r| r.path == "/login" && r.key == Key::Ip)
            .collect();
        assert_eq!(login_ip.len(), 1);
        assert_eq!((login_ip[0].window, login_ip[0].max), (10, 2));
        assert!(login_ip[0].matches(&Method::GET, "/login"));
        let sign_in = rules
            .iter()
            .find(|r| r.name == "sign-in-ip")
            .expect("default");
        assert!(sign_in.matches(&Method::POST, "/api/auth/sign-in/email"));
        assert!(!sign_in.matches(&Method::GET, "/api/auth/sign-in/email"));
        assert!(!sign_in.matches(&Method::POST, "/api/auth/sign-out"));
    }

    #[test]
    fn body_fields_and_client_ids() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let f = body_fields(&h, br#"{"email":"  Buffy@Example.COM ","password":"x"}"#);
        assert_eq!(f.account.as_deref(), Some("buffy@example.com"));
        h.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let f = body_fields(&h, b"username=Willow%40example.com&client_id=app+1");
        assert_eq!(f.account.as_deref(), Some("willow@example.com"));
        assert_eq!(f.client_id.as_deref(), Some("app 1"));
        // RFC 6749 §2.3.1: the Basic user part is form-encoded.
        h.insert(
            header::AUTHORIZATION,
            "Basic bXklM0FhcHA6c2VjcmV0".parse().unwrap(), // my%3Aapp:secret
        );
        assert_eq!(client_id(&h, Some(&f)).as_deref(), Some("my:app"));
        assert_eq!(door("/token"), Door::OAuth);
        assert_eq!(door("/api/auth/sign-in/email"), Door::Api);
        assert_eq!(door("/auth/login"), Door::Api);
        assert_eq!(door("/authorize"), Door::Page);
    }

    #[test]
    fn config_is_checked_and_names_the_field() {
        let ok = crate::config::Config::from_toml(
            "[rate_limit]\nstorage = \"redis\"\ndefaults = false\nmax = 1000000\n\
             [[rate_limit.rules]]\npath = \"/login\"\nmethods = [\"POST\"]\nkey = \"account\"\nwindow = 60\nmax = 5\n",
        )
        .expect("valid");
        assert_eq!(ok.rate_limit.rules[0].key, Key::Account);
        for (toml, field) in [
            ("window = 0", "rate_limit.window"),
            ("max = 0", "rate_limit.max"),
            (
                "storage = \"redis\"\nredis_url = \"http://x\"",
                "rate_limit.redis_url",
            ),
            (
                "[[rate_limit.rules]]\npath = \"login\"\nwindow = 1\nmax = 1",
                "rate_limit.rules[0].path",
            ),
            (
                "[[rate_limit.rules]]\npath = \"/a*b\"\nwindow = 1\nmax = 1",
                "rate_limit.rules[0].path",
            ),
            (
                "[[rate_limit.rules]]\npath = \"/a\"\nwindow = 0\nmax = 1",
                "rate_limit.rules[0].window",
            ),
            (
                "[[rate_limit.rules]]\npath = \"/a\"\nwindow = 1\nmax = 0",
                "rate_limit.rules[0].max",
            ),
            (
                "[[rate_limit.rules]]\npath = \"/a\"\nwindow = 1\nmax = 1\nmethods = [\"PO ST\"]",
                "rate_limit.rules[0].methods",
            ),
        ] {
            let e = crate::config::Config::from_toml(&format!("[rate_limit]\n{toml}"))
                .expect_err(toml)
                .to_string();
            assert!(e.contains(field), "{toml}: {e}");
        }
        let e = crate::config::Config::from_toml(
            "[[rate_limit.rules]]\npath = \"/a\"\nwindow = 1\nmax = 1\nkey = \"user\"",
        )
        .expect_err("unknown key");
        assert!(e.to_string().contains("user"), "{e}");
    }

    #[test]
    fn structured_field_strings_are_escaped() {
        assert_eq!(sf_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(sf_string("ip:/x ü"), "\"ip:/x ?\"");
    }
}
