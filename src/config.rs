//! One typed configuration (DESIGN.md principle 7): built-in defaults, then a TOML file,
//! then `KLARD_*` environment variables (`__` separates sections), then `DATABASE_URL`.
//! `Config::validate` runs at start and names the field that is wrong.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration: `{field}`: {message}")]
    Invalid { field: String, message: String },
}

fn invalid(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The issuer identifier (OIDC Discovery §3, RFC 8414 §2). Every URL we publish is
    /// derived from it exactly; it may carry a path.
    pub issuer: String,
    /// Socket address to listen on.
    pub bind: String,
    /// `sqlite://...` (default, under `data_dir`) or `postgres://...`.
    pub database_url: String,
    /// Where the embedded database and generated dev secrets live.
    pub data_dir: PathBuf,
    /// Server secret (≥ 32 characters): keys the encryption of private signing keys at rest
    /// and the CSRF MACs. Generated into `data_dir/secret` when absent (dev mode).
    pub secret: Option<String>,
    pub tokens: TokensConfig,
    pub keys: KeysConfig,
    pub session: SessionConfig,
    pub registration: RegistrationConfig,
    pub password: PasswordConfig,
    pub pkce: PkceConfig,
    pub proxy: ProxyConfig,
    pub tls: Option<TlsConfig>,
    /// Clients declared in the configuration, created or updated at start.
    pub clients: Vec<ClientConfig>,
    /// Resource servers (RFC 8707 `resource` values) with their access-token format.
    pub resources: Vec<ResourceConfig>,
    /// Outgoing mail: the outbox worker's transport, retries and branding.
    pub mail: MailConfig,
    /// The Better-Auth-compatible `/api/auth/*` JSON API.
    pub api_auth: ApiAuthConfig,
    /// Changing the account's email address (`/api/auth/change-email`, `/account/email`).
    pub email_change: EmailChangeConfig,
    /// Deleting the account (`/api/auth/delete-user`, `/account/delete`).
    pub account_deletion: AccountDeletionConfig,
    /// Rules every new password must follow (sign-up, change, reset, CLI).
    pub password_policy: PasswordPolicyConfig,
    /// Self-service registration: mode, custom user fields, terms of service, invites.
    pub sign_up: SignUpConfig,
    /// Email verification mails, and whether sign-in requires a verified address.
    pub email_verification: EmailVerificationConfig,
    /// Password reset by mailed link.
    pub password_reset: PasswordResetConfig,
    /// The breached-password check (Have I Been Pwned range API), off by default.
    pub breach: BreachConfig,
    /// `[alerts]`: security alert mails to the account's owner.
    pub alerts: AlertsConfig,
    /// CAPTCHA verification (Turnstile, hCaptcha, reCAPTCHA v2/v3), off by default.
    pub captcha: CaptchaConfig,
    /// Request rate limits per IP, account, client and endpoint (see `rate_limit`).
    pub rate_limit: RateLimitConfig,
    /// `[audit]`: retention of the audit trail.
    pub audit: AuditConfig,
    /// Apply pending migrations when the server (or a CLI command) starts. Off when the
    /// app's database role may not change the schema (the restricted PostgreSQL role of
    /// the README): the owner runs `klard-auth migrate` instead.
    pub migrate_on_start: bool,
    /// `[lockout]`: progressive delays, IP blocks and account lockout after failed sign-ins.
    pub lockout: LockoutConfig,
}

/// `[rate_limit]`: Better Auth's `rateLimit` (`enabled`, `storage`, `window`, `max`,
/// `customRules`), with rules keyed by IP, account, client or endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Whether requests are counted at all.
    pub enabled: bool,
    /// Where the counters live: `memory` (one instance), `database` or `redis` (shared by
    /// every instance, so that limits hold across them).
    pub storage: RateLimitStorage,
    /// The Redis server of `storage = "redis"` (`redis://` or `rediss://`).
    pub redis_url: String,
    /// Prefix of every Redis key (several deployments may share one Redis).
    pub redis_prefix: String,
    /// Seconds of the general per-IP budget that every path without an `ip` rule has.
    pub window: u64,
    /// Requests per `window` of that general budget, per IP and path.
    pub max: u64,
    /// When the database or Redis cannot be asked: allow the request and log a warning
    /// (`true`), or answer 503.
    pub fail_open: bool,
    /// Whether the built-in rules (sign-in, sign-up, password reset, OTP, token,
    /// registration; see the README) apply. A configured rule with the same path and key
    /// replaces the built-in one either way.
    pub defaults: bool,
    /// `[[rate_limit.rules]]`.
    pub rules: Vec<RateLimitRuleConfig>,
}

/// Where the rate-limit counters are kept.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitStorage {
    #[default]
    Memory,
    Database,
    Redis,
}

/// What one rule counts by.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitKey {
    /// The client address (`proxy.trusted_proxies`; IPv6 by /64).
    #[default]
    Ip,
    /// The account named in the body (`email`, `username` or `phoneNumber`), whatever
    /// the address.
    Account,
    /// The OAuth client (`client_id` from HTTP Basic or the form).
    Client,
    /// One counter for every request the rule matches.
    Endpoint,
}

/// One `[[rate_limit.rules]]` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitRuleConfig {
    /// Issuer-relative path (`/api/auth/sign-in/email`); a trailing `*` matches any rest.
    pub path: String,
    /// HTTP methods the rule counts (e.g. `["POST"]`); empty: all.
    pub methods: Vec<String>,
    /// Seconds of the window.
    pub window: u64,
    /// Requests allowed per window and key.
    pub max: u64,
    /// `ip` (default), `account`, `client` or `endpoint`.
    pub key: RateLimitKey,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            storage: RateLimitStorage::Memory,
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_prefix: "klard:rl:".into(),
            window: 60,
            max: 300,
            fail_open: true,
            defaults: true,
            rules: Vec::new(),
        }
    }
}

/// `[audit]`: how long audit events are kept and who prunes them (see `audit::retention`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Days an event is kept; older ones are pruned behind an anchor. 0 keeps them forever.
    pub retention_days: u32,
    /// Seconds between two runs of the pruner.
    pub prune_interval: u64,
    /// Whether the server runs the pruner itself; off when the app's database role may
    /// not delete audit events and the owner runs `klard-auth audit prune` instead.
    pub prune_in_server: bool,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            retention_days: 365,
            prune_interval: 3600,
            prune_in_server: true,
        }
    }
}

fn validate_rate_limit(r: &RateLimitConfig) -> Result<(), ConfigError> {
    const DAY: u64 = 86_400;
    if !(1..=DAY).contains(&r.window) {
        return Err(invalid(
            "rate_limit.window",
            "must be between 1 and 86400 seconds",
        ));
    }
    if r.max < 1 {
        return Err(invalid("rate_limit.max", "must be at least 1"));
    }
    if r.storage == RateLimitStorage::Redis
        && !Url::parse(&r.redis_url)
            .is_ok_and(|u| (u.scheme() == "redis" || u.scheme() == "rediss") && u.has_host())
    {
        return Err(invalid(
            "rate_limit.redis_url",
            "must be a redis:// or rediss:// URL",
        ));
    }
    for (i, rule) in r.rules.iter().enumerate() {
        let field = |f: &str| format!("rate_limit.rules[{i}].{f}");
        if !rule.path.starts_with('/') || rule.path[..rule.path.len() - 1].contains('*') {
            return Err(invalid(
                &field("path"),
                "must start with / and may only end with a * wildcard",
            ));
        }
        if !(1..=DAY).contains(&rule.window) {
            return Err(invalid(
                &field("window"),
                "must be between 1 and 86400 seconds",
            ));
        }
        if rule.max < 1 {
            return Err(invalid(&field("max"), "must be at least 1"));
        }
        if let Some(m) = rule
            .methods
            .iter()
            .find(|m| axum::http::Method::from_bytes(m.as_bytes()).is_err() || m.is_empty())
        {
            return Err(invalid(
                &field("methods"),
                format!("{m:?} is not an HTTP method"),
            ));
        }
    }
    Ok(())
}

fn validate_audit(a: &AuditConfig) -> Result<(), ConfigError> {
    if a.retention_days > 36_500 {
        return Err(invalid(
            "audit.retention_days",
            "must be at most 36500 (0 keeps events forever)",
        ));
    }
    if !(1..=86_400).contains(&a.prune_interval) {
        return Err(invalid(
            "audit.prune_interval",
            "must be between 1 and 86400 seconds",
        ));
    }
    Ok(())
}

/// `[captcha]`: which CAPTCHA provider checks the protected endpoints (see `captcha`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptchaConfig {
    /// `none` (no check), `turnstile`, `hcaptcha`, `recaptcha_v2` or `recaptcha_v3`.
    pub provider: CaptchaProvider,
    /// The provider's secret key (`KLARD_CAPTCHA__SECRET_KEY`); never logged.
    pub secret_key: String,
    /// The siteverify URL; unset: the provider's own (see [`CaptchaConfig::verify_url`]).
    pub verify_url: Option<String>,
    /// reCAPTCHA v3: the lowest score (0.0–1.0) that passes.
    pub min_score: f64,
    /// reCAPTCHA v3: the action the token must carry, when set.
    pub action: Option<String>,
    /// Milliseconds the whole verify request may take (1–60000).
    pub timeout_ms: u64,
    /// The protected POST paths, relative to the issuer (from [`CAPTCHA_PROTECTABLE`]).
    pub endpoints: Vec<String>,
    /// When set, sign-in asks for the CAPTCHA only after this many failed sign-ins for
    /// the account or from the address (`lockout` counters); unset: always.
    pub after_failures: Option<u32>,
}

/// The routes `captcha.endpoints` may name.
pub const CAPTCHA_PROTECTABLE: &[&str] = &[
    "/api/auth/sign-up/email",
    "/api/auth/sign-in/email",
    "/api/auth/request-password-reset",
    "/api/auth/forget-password",
    "/sign-up",
    "/login",
];

/// The CAPTCHA service of `[captcha]`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CaptchaProvider {
    #[default]
    None,
    Turnstile,
    Hcaptcha,
    RecaptchaV2,
    RecaptchaV3,
}

impl CaptchaConfig {
    /// `verify_url`, or the provider's documented siteverify URL.
    pub fn verify_url(&self) -> &str {
        if let Some(u) = &self.verify_url {
            return u;
        }
        match self.provider {
            CaptchaProvider::Turnstile => {
                "https://challenges.cloudflare.com/turnstile/v0/siteverify"
            }
            CaptchaProvider::Hcaptcha => "https://api.hcaptcha.com/siteverify",
            CaptchaProvider::RecaptchaV2 | CaptchaProvider::RecaptchaV3 => {
                "https://www.google.com/recaptcha/api/siteverify"
            }
            CaptchaProvider::None => "",
        }
    }
}

/// The secret key stays out of `Debug` output (and so out of logs).
impl std::fmt::Debug for CaptchaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptchaConfig")
            .field("provider", &self.provider)
            .field("secret_key", &"<redacted>")
            .field("verify_url", &self.verify_url)
            .field("min_score", &self.min_score)
            .field("action", &self.action)
            .field("timeout_ms", &self.timeout_ms)
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

impl Default for CaptchaConfig {
    fn default() -> Self {
        CaptchaConfig {
            provider: CaptchaProvider::None,
            secret_key: String::new(),
            verify_url: None,
            min_score: 0.5,
            action: None,
            timeout_ms: 3000,
            endpoints: [
                "/api/auth/sign-up/email",
                "/api/auth/sign-in/email",
                "/api/auth/request-password-reset",
            ]
            .map(String::from)
            .to_vec(),
            after_failures: None,
        }
    }
}

/// `[lockout]`: brute-force protection of every sign-in door (see `lockout`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockoutConfig {
    pub enabled: bool,
    /// Seconds after which failures are forgotten (the window restarts).
    pub failure_window: i64,
    /// Failures per account or address before any delay.
    pub free_failures: u32,
    /// The first delay in milliseconds; it doubles per further failure.
    pub delay_base_ms: u64,
    /// The longest delay in milliseconds.
    pub delay_max_ms: u64,
    /// Failures from one address group that block it (0 = never).
    pub ip_block_after: u32,
    /// Seconds an address stays blocked.
    pub ip_block_duration: i64,
    /// Failures for one account that lock it (0 = never).
    pub lock_after: u32,
    /// Seconds an account stays locked (0 = until unlocked).
    pub lock_duration: i64,
    /// Failures from one known device that lock that device out (its own budget).
    pub device_lock_after: u32,
    /// Seconds an unlock link is valid.
    pub unlock_token_ttl: i64,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        LockoutConfig {
            enabled: true,
            failure_window: 900,
            free_failures: 3,
            delay_base_ms: 250,
            delay_max_ms: 8000,
            ip_block_after: 30,
            ip_block_duration: 900,
            lock_after: 10,
            lock_duration: 900,
            device_lock_after: 10,
            unlock_token_ttl: 86400,
        }
    }
}

/// `[alerts]`: which security alerts are mailed (through the outbox) to the account's
/// address. Each is on by default; the audit event is written either way.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// A sign-in from a device without a valid device cookie for the account.
    pub new_device: bool,
    /// The password was changed or reset.
    pub password_changed: bool,
    /// The email address was changed (the old address is told, with a revert link).
    pub email_changed: bool,
    /// The account was locked after repeated failed sign-ins (with an unlock link).
    pub account_locked: bool,
    /// A refresh token was used twice and its family revoked.
    pub refresh_reuse: bool,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            new_device: true,
            password_changed: true,
            email_changed: true,
            account_locked: true,
            refresh_reuse: true,
        }
    }
}

/// `[breach]`: refuse passwords known from data breaches, asking Have I Been Pwned's
/// k-anonymity range API (only the first 5 hex digits of the SHA-1 leave the server;
/// see `breach`). Checked on every route that sets a password.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreachConfig {
    /// Ask the service at all. Off by default, so a dev machine makes no network calls.
    pub enabled: bool,
    /// The range API's base URL (`{base_url}/range/{prefix}`).
    pub base_url: String,
    /// Milliseconds the whole request may take (1–60000).
    pub timeout_ms: u64,
    /// When the service is unreachable, slow or answers an error: allow the password and
    /// log a warning (`true`), or refuse it with 503 `PASSWORD_CHECK_UNAVAILABLE`.
    pub fail_open: bool,
    /// A password seen at least this many times (≥ 1) is refused.
    pub min_count: u64,
}

impl Default for BreachConfig {
    fn default() -> Self {
        BreachConfig {
            enabled: false,
            base_url: "https://api.pwnedpasswords.com".into(),
            timeout_ms: 1500,
            fail_open: true,
            min_count: 1,
        }
    }
}

/// Better Auth's `emailVerification` options plus `requireEmailVerification`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailVerificationConfig {
    /// Mail a verification link when a new account signs up (`sendOnSignUp`).
    pub send_on_sign_up: bool,
    /// Refuse sign-in (API and login page) until the address is verified
    /// (`requireEmailVerification`): 403 `EMAIL_NOT_VERIFIED` after the password check.
    pub require: bool,
    /// Seconds a verification link stays valid (`expiresIn`).
    pub token_ttl: i64,
    /// Start a session when a link is followed (`autoSignInAfterVerification`).
    pub auto_sign_in_after_verification: bool,
    /// With `require`, mail a fresh link when an unverified user signs in
    /// (`sendOnSignIn`).
    pub send_on_sign_in: bool,
}

impl Default for EmailVerificationConfig {
    fn default() -> Self {
        EmailVerificationConfig {
            send_on_sign_up: true,
            require: false,
            token_ttl: 3600,
            auto_sign_in_after_verification: false,
            send_on_sign_in: true,
        }
    }
}

/// Password reset by mailed link (Better Auth's `resetPasswordTokenExpiresIn`,
/// `revokeSessionsOnPasswordReset`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordResetConfig {
    /// Seconds a reset link stays valid.
    pub token_ttl: i64,
    /// On reset, revoke every session and refresh-token family of the user.
    pub revoke_sessions: bool,
}

impl Default for PasswordResetConfig {
    fn default() -> Self {
        PasswordResetConfig {
            token_ttl: 3600,
            revoke_sessions: true,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiAuthConfig {
    /// Origins (`scheme://host[:port]`) whose pages may make cookie-authenticated,
    /// state-changing calls to `/api/auth/*`, and that `callbackURL` may point to. The
    /// issuer's own origin is always trusted.
    pub trusted_origins: Vec<String>,
    /// Sign the user in on `sign-up/email` (Better Auth's `autoSignIn`). Off by default:
    /// only then can a sign-up with an address that already has an account be answered
    /// exactly like a new one (no user enumeration); when on, a duplicate gets 422
    /// `USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL` as in Better Auth.
    pub auto_sign_in: bool,
    /// The client on whose behalf `GET /api/auth/token` mints the session's JWT access
    /// token (typically a first-party client declared in `[[clients]]`). It must exist
    /// when the server starts. Unset, `/api/auth/token` answers 404 `JWT_NOT_CONFIGURED`.
    pub client_id: Option<String>,
    /// The `scope` of those tokens; `openid profile email` when unset.
    pub token_scope: Option<String>,
}

impl ApiAuthConfig {
    /// The trusted origins, normalised (`Url::origin`), with the issuer's first.
    pub fn origins(&self, issuer: &str) -> Vec<String> {
        let mut v: Vec<String> = Url::parse(issuer)
            .ok()
            .map(|u| u.origin().ascii_serialization())
            .into_iter()
            .collect();
        for o in &self.trusted_origins {
            if let Ok(u) = Url::parse(o) {
                v.push(u.origin().ascii_serialization());
            }
        }
        v
    }
}

/// The largest `password_policy.max_length` allowed: it bounds the argon2 input.
pub const PASSWORD_POLICY_MAX_LENGTH: usize = 1024;

/// The password policy (issue 3), checked by `password_policy::check`. Lengths count
/// characters (Unicode scalar values), as Better Auth's `minPasswordLength` /
/// `maxPasswordLength` count JavaScript string length.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordPolicyConfig {
    /// Fewest characters (Better Auth's default 8); at least 1.
    pub min_length: usize,
    /// Most characters (Better Auth's default 128); at most 1024.
    pub max_length: usize,
    /// Require a lower-case letter.
    pub require_lowercase: bool,
    /// Require an upper-case letter.
    pub require_uppercase: bool,
    /// Require a digit.
    pub require_digit: bool,
    /// Require a symbol: a character that is neither a letter, a digit nor a space.
    pub require_symbol: bool,
    /// Refuse a password that contains the local part of the account's email address
    /// (compared case-insensitively, when that part has at least 4 characters).
    pub forbid_email: bool,
}

impl Default for PasswordPolicyConfig {
    fn default() -> Self {
        PasswordPolicyConfig {
            min_length: 8,
            max_length: 128,
            require_lowercase: false,
            require_uppercase: false,
            require_digit: false,
            require_symbol: false,
            forbid_email: true,
        }
    }
}

/// Who may create an account through `/api/auth/sign-up/email` and `/sign-up`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SignUpMode {
    /// Anyone.
    #[default]
    Open,
    /// Only holders of an invite code (`klard-auth invite create`).
    InviteOnly,
    /// Nobody (Better Auth's `disableSignUp`); accounts come from the CLI only.
    Disabled,
}

/// Self-service registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignUpConfig {
    /// `open` (default), `invite_only` or `disabled`.
    pub mode: SignUpMode,
    /// The version of the terms of service a new user must accept (`acceptTerms: true`);
    /// recorded on the user with the time. Unset: no terms are asked for.
    pub terms_version: Option<String>,
    /// Where the hosted sign-up page links the terms of service to.
    pub terms_url: Option<String>,
    /// Seconds an invite code stays valid when `invite create` is given no `--ttl`.
    pub invite_ttl: i64,
    /// Custom user fields (Better Auth's `user.additionalFields`).
    pub fields: Vec<UserFieldConfig>,
}

impl Default for SignUpConfig {
    fn default() -> Self {
        SignUpConfig {
            mode: SignUpMode::Open,
            terms_version: None,
            terms_url: None,
            invite_ttl: 7 * 24 * 3600,
            fields: Vec::new(),
        }
    }
}

/// The type of a custom user field.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UserFieldType {
    #[default]
    String,
    Number,
    Boolean,
    /// A string out of `values`.
    Enum,
}

/// One custom user field, `[[sign_up.fields]]`, validated by `user_fields`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserFieldConfig {
    /// The JSON key, camelCase (`^[a-z][A-Za-z0-9]*$`); not a built-in user key.
    pub name: String,
    /// `string` (default), `number`, `boolean` or `enum`.
    #[serde(rename = "type")]
    pub kind: UserFieldType,
    /// The label on the hosted sign-up page; the name when unset.
    pub label: Option<String>,
    /// Must be given at sign-up (unless there is a `default`).
    pub required: bool,
    /// Most characters of a string (default 256 for strings).
    pub max_length: Option<usize>,
    /// Smallest allowed number.
    pub min: Option<f64>,
    /// Largest allowed number.
    pub max: Option<f64>,
    /// The allowed values of an enum.
    pub values: Vec<String>,
    /// Whether the client may set it at sign-up and in update-user (default true). A
    /// field with `input = false` takes its default and only the CLI can set it.
    pub input: bool,
    /// The value when none is given.
    pub default: Option<serde_json::Value>,
}

impl Default for UserFieldConfig {
    fn default() -> Self {
        UserFieldConfig {
            name: String::new(),
            kind: UserFieldType::String,
            label: None,
            required: false,
            max_length: None,
            min: None,
            max: None,
            values: Vec::new(),
            input: true,
            default: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokensConfig {
    pub access_token_ttl: i64,
    pub id_token_ttl: i64,
    /// Authorization codes are short-lived (RFC 6749 §4.1.2 recommends at most 10 minutes).
    pub code_ttl: i64,
    pub refresh_token_ttl: i64,
    /// Seconds during which a just-rotated refresh token still yields a fresh pair in the
    /// same family (client retries, parallel refreshes). 0 disables.
    pub refresh_reuse_grace: i64,
    /// Issue refresh tokens to first-party clients without `offline_access`.
    pub first_party_refresh_without_offline_access: bool,
    /// JOSE `typ` of access tokens when no resource overrides it: `JWT` (what stock Spring
    /// Security accepts) or `at+jwt` (RFC 9068 §2.1).
    pub access_token_typ: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// Seconds a rotated-out key stays in the JWKS so tokens it signed keep validating.
    pub rotation_grace: i64,
    /// Seconds a new key is published before it starts signing, so relying parties that
    /// cache the JWKS already know it.
    pub publish_ahead: i64,
    /// RSA modulus size.
    pub rsa_bits: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Absolute lifetime of a login session in seconds (activity never extends it).
    pub ttl: i64,
    /// Lifetime of a paused authorization request (login/consent interaction).
    pub interaction_ttl: i64,
    /// The absolute lifetime under its explicit name; when set it replaces `ttl`.
    pub absolute_ttl: Option<i64>,
    /// Seconds without use after which a session is inactive everywhere; 0 = no idle
    /// timeout. Use renews the window (sliding), up to the absolute lifetime.
    pub idle_timeout: i64,
    /// Better Auth's `updateAge`: a session used more than this many seconds after its
    /// last renewal is renewed (`last_seen` written, idle window moved). Bounds the
    /// writes to one per session per `update_age`.
    pub update_age: i64,
}

impl SessionConfig {
    /// The absolute lifetime: `absolute_ttl` if set, else `ttl`.
    pub fn absolute(&self) -> i64 {
        self.absolute_ttl.unwrap_or(self.ttl)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationMode {
    /// Anyone may register (RFC 7591 §3 open registration).
    Open,
    /// A bearer initial access token is required (RFC 7591 §3.1).
    InitialAccessToken,
    /// Dynamic registration disabled.
    Closed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrationConfig {
    pub mode: RegistrationMode,
    pub initial_access_tokens: Vec<String>,
    /// Seconds until a dynamically issued client secret expires; 0 = never.
    pub client_secret_ttl: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordConfig {
    /// argon2id memory cost in KiB (OWASP: 19456).
    pub argon2_m_cost: u32,
    pub argon2_t_cost: u32,
    pub argon2_p_cost: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PkceConfig {
    /// RFC 7636 `plain` is refused unless this is set (RFC 9700 §2.1.1).
    pub allow_plain: bool,
    /// Require PKCE from confidential clients too.
    pub require_for_confidential: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Treat the immediate peer, whatever its address, as one trusted proxy hop (the
    /// older switch; prefer `trusted_proxies`).
    pub trust_forwarded_headers: bool,
    /// Addresses or CIDR blocks of the reverse proxies whose `X-Forwarded-For` hops are
    /// believed (`http::client_ip`). Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<crate::http::client_ip::Cidr>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Seconds between checks of the files for changes.
    #[serde(default = "default_tls_reload")]
    pub reload_interval: u64,
}

fn default_tls_reload() -> u64 {
    10
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    /// `web` or `native` (OIDC Registration §2).
    pub application_type: Option<String>,
    pub scope: Option<String>,
    pub first_party: bool,
    pub logo_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub client_uri: Option<String>,
    pub id_token_signed_response_alg: Option<String>,
    pub access_token_signed_response_alg: Option<String>,
    /// Default `aud` of this client's access tokens.
    pub access_token_audience: Option<Vec<String>>,
    pub jwks_uri: Option<String>,
    pub jwks: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// The resource indicator (RFC 8707 §2), used as `aud`.
    pub identifier: String,
    /// `JWT` or `at+jwt`.
    #[serde(default = "default_typ")]
    pub access_token_typ: String,
    #[serde(default)]
    pub access_token_ttl: Option<i64>,
}

fn default_typ() -> String {
    "JWT".into()
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MailTransportKind {
    /// Development: log recipient and subject, send nothing.
    Log,
    /// Deliver over SMTP (`mail.smtp`).
    Smtp,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain SMTP (loopback relays only when credentials are set).
    None,
    /// STARTTLS is required (submission, port 587).
    Starttls,
    /// Implicit TLS (SMTPS, port 465).
    Tls,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    pub transport: MailTransportKind,
    /// `From` of every message: `addr@example.com` or `Name <addr@example.com>`.
    pub from: String,
    /// Attempts before a message is given up (`failed`).
    pub max_attempts: i64,
    /// Seconds the worker waits before looking at an empty outbox again.
    pub poll_interval: u64,
    pub smtp: SmtpConfig,
    pub branding: BrandingConfig,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    /// Also `KLARD_MAIL__SMTP__PASSWORD`. Never logged (see the `Debug` impl).
    pub password: Option<String>,
    /// Seconds for connecting and for each SMTP command.
    pub timeout: u64,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrandingConfig {
    pub product_name: String,
    /// Absolute http(s) URL of a logo shown at the top of HTML mail.
    pub logo_url: Option<String>,
    /// `#rgb` or `#rrggbb`.
    pub accent_color: String,
    /// Address people may write to for help, shown in the footer.
    pub support_email: Option<String>,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            transport: MailTransportKind::Log,
            from: "Klard <no-reply@localhost>".into(),
            max_attempts: 8,
            poll_interval: 2,
            smtp: SmtpConfig::default(),
            branding: BrandingConfig::default(),
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: String::new(),
            port: 587,
            security: SmtpSecurity::Starttls,
            username: None,
            password: None,
            timeout: 10,
        }
    }
}

impl Default for BrandingConfig {
    fn default() -> Self {
        BrandingConfig {
            product_name: "Klard".into(),
            logo_url: None,
            accent_color: "#4f46e5".into(),
            support_email: None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            issuer: "http://127.0.0.1:8080".into(),
            bind: "127.0.0.1:8080".into(),
            database_url: String::new(),
            data_dir: PathBuf::from("data"),
            secret: None,
            tokens: TokensConfig::default(),
            keys: KeysConfig::default(),
            session: SessionConfig::default(),
            registration: RegistrationConfig::default(),
            password: PasswordConfig::default(),
            pkce: PkceConfig::default(),
            proxy: ProxyConfig::default(),
            tls: None,
            clients: Vec::new(),
            resources: Vec::new(),
            mail: MailConfig::default(),
            api_auth: ApiAuthConfig::default(),
            email_change: EmailChangeConfig::default(),
            account_deletion: AccountDeletionConfig::default(),
            password_policy: PasswordPolicyConfig::default(),
            sign_up: SignUpConfig::default(),
            email_verification: EmailVerificationConfig::default(),
            password_reset: PasswordResetConfig::default(),
            breach: BreachConfig::default(),
            alerts: AlertsConfig::default(),
            captcha: CaptchaConfig::default(),
            rate_limit: RateLimitConfig::default(),
            audit: AuditConfig::default(),
            migrate_on_start: true,
            lockout: LockoutConfig::default(),
        }
    }
}

impl Default for TokensConfig {
    fn default() -> Self {
        TokensConfig {
            access_token_ttl: 3600,
            id_token_ttl: 3600,
            code_ttl: 60,
            refresh_token_ttl: 30 * 24 * 3600,
            refresh_reuse_grace: 5,
            first_party_refresh_without_offline_access: false,
            access_token_typ: "JWT".into(),
        }
    }
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            rotation_grace: 7 * 24 * 3600,
            // Longer than the JWKS cache lifetime (max-age=60), so a resource server that
            // caches the JWKS knows a key before the first token it signs.
            publish_ahead: 90,
            rsa_bits: 2048,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            ttl: 14 * 24 * 3600,
            interaction_ttl: 3600,
            absolute_ttl: None,
            idle_timeout: 7 * 24 * 3600,
            update_age: 24 * 3600,
        }
    }
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        RegistrationConfig {
            mode: RegistrationMode::Open,
            initial_access_tokens: Vec::new(),
            client_secret_ttl: 0,
        }
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        PasswordConfig {
            argon2_m_cost: 19456,
            argon2_t_cost: 2,
            argon2_p_cost: 1,
        }
    }
}

impl Config {
    /// Defaults → TOML file (if given or `./klard.toml` exists) → `KLARD_*` env → `DATABASE_URL`.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(f) => {
                if !f.exists() {
                    return Err(invalid(
                        "--config",
                        format!("{} does not exist", f.display()),
                    ));
                }
                fig = fig.merge(Toml::file(f));
            }
            None => {
                if Path::new("klard.toml").exists() {
                    fig = fig.merge(Toml::file("klard.toml"));
                }
            }
        }
        fig = fig.merge(Env::prefixed("KLARD_").split("__").ignore(&["config"]));
        if let Ok(db) = std::env::var("DATABASE_URL") {
            fig = fig.merge(Serialized::default("database_url", db));
        }
        let mut cfg: Config = fig.extract().map_err(Box::new)?;
        cfg.finish()?;
        Ok(cfg)
    }

    /// Parses a TOML document on top of the defaults (used by tests and tools).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let mut cfg: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(text))
            .extract()
            .map_err(Box::new)?;
        cfg.finish()?;
        Ok(cfg)
    }

    fn finish(&mut self) -> Result<(), ConfigError> {
        if self.database_url.is_empty() {
            let path = self.data_dir.join("klard.db");
            self.database_url = format!("sqlite://{}?mode=rwc", path.display());
        }
        self.issuer = self.issuer.trim_end_matches('/').to_string();
        self.validate()
    }

    /// Start-up validation with messages that name the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let iss =
            Url::parse(&self.issuer).map_err(|e| invalid("issuer", format!("not a URL ({e})")))?;
        // OIDC Discovery §3 / RFC 8414 §2: https, no query, no fragment.
        if iss.query().is_some() || iss.fragment().is_some() {
            return Err(invalid("issuer", "must not have a query or fragment"));
        }
        if iss.scheme() != "https" && !is_loopback_url(&iss) {
            return Err(invalid(
                "issuer",
                "must be https (plain http is allowed only for loopback development)",
            ));
        }
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid("bind", "must be host:port, e.g. 127.0.0.1:8080"));
        }
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database_url",
                "must start with sqlite: or postgres://",
            ));
        }
        if let Some(s) = &self.secret
            && s.len() < 32
        {
            return Err(invalid("secret", "must be at least 32 characters"));
        }
        let t = &self.tokens;
        for (name, v) in [
            ("tokens.access_token_ttl", t.access_token_ttl),
            ("tokens.id_token_ttl", t.id_token_ttl),
            ("tokens.code_ttl", t.code_ttl),
            ("tokens.refresh_token_ttl", t.refresh_token_ttl),
            ("session.ttl", self.session.ttl),
            ("session.interaction_ttl", self.session.interaction_ttl),
        ] {
            if v <= 0 {
                return Err(invalid(name, "must be a positive number of seconds"));
            }
        }
        if t.code_ttl > 600 {
            return Err(invalid(
                "tokens.code_ttl",
                "must be at most 600 (RFC 6749 §4.1.2)",
            ));
        }
        if t.refresh_reuse_grace < 0 || t.refresh_reuse_grace > 60 {
            return Err(invalid(
                "tokens.refresh_reuse_grace",
                "must be between 0 and 60",
            ));
        }
        check_typ("tokens.access_token_typ", &t.access_token_typ)?;
        validate_session(&self.session)?;
        if self.keys.rotation_grace < 0 || self.keys.publish_ahead < 0 {
            return Err(invalid("keys", "durations must not be negative"));
        }
        if ![2048, 3072, 4096].contains(&self.keys.rsa_bits) {
            return Err(invalid("keys.rsa_bits", "must be 2048, 3072 or 4096"));
        }
        if self.registration.mode == RegistrationMode::InitialAccessToken
            && self.registration.initial_access_tokens.is_empty()
        {
            return Err(invalid(
                "registration.initial_access_tokens",
                "must list at least one token when mode = \"initial_access_token\"",
            ));
        }
        let p = &self.password;
        if argon2::Params::new(p.argon2_m_cost, p.argon2_t_cost, p.argon2_p_cost, None).is_err() {
            return Err(invalid("password", "argon2 parameters out of range"));
        }
        for r in &self.resources {
            check_typ("resources.access_token_typ", &r.access_token_typ)?;
            if Url::parse(&r.identifier).is_err() {
                return Err(invalid(
                    "resources.identifier",
                    "must be an absolute URI (RFC 8707 §2)",
                ));
            }
        }
        validate_mail(&self.mail)?;
        validate_account_lifecycle(&self.email_change, &self.account_deletion)?;
        validate_password_policy(&self.password_policy)?;
        validate_sign_up(&self.sign_up)?;
        validate_breach(&self.breach)?;
        validate_captcha(&self.captcha)?;
        validate_audit(&self.audit)?;
        validate_lockout(&self.lockout)?;
        validate_rate_limit(&self.rate_limit)?;
        if !(60..=30 * 24 * 3600).contains(&self.email_verification.token_ttl) {
            return Err(invalid(
                "email_verification.token_ttl",
                "must be between 60 seconds and 30 days",
            ));
        }
        if !(60..=7 * 24 * 3600).contains(&self.password_reset.token_ttl) {
            return Err(invalid(
                "password_reset.token_ttl",
                "must be between 60 seconds and 7 days",
            ));
        }
        for o in &self.api_auth.trusted_origins {
            let ok = Url::parse(o).is_ok_and(|u| {
                (u.scheme() == "https" || u.scheme() == "http")
                    && u.host().is_some()
                    && u.username().is_empty()
                    && u.password().is_none()
                    && u.path() == "/"
                    && u.query().is_none()
                    && u.fragment().is_none()
                    && !o.ends_with('/')
            });
            if !ok {
                return Err(invalid(
                    "api_auth.trusted_origins",
                    format!("`{o}` is not an origin: scheme://host[:port], without path or slash"),
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for c in &self.clients {
            if c.client_id.is_empty() {
                return Err(invalid("clients.client_id", "must not be empty"));
            }
            if !seen.insert(c.client_id.as_str()) {
                return Err(invalid(
                    "clients.client_id",
                    format!("{} declared twice", c.client_id),
                ));
            }
        }
        Ok(())
    }

    pub fn issuer_url(&self) -> Option<Url> {
        Url::parse(&self.issuer).ok()
    }

    /// The path part of the issuer, without a trailing slash ("" for a bare host).
    pub fn issuer_path(&self) -> String {
        self.issuer_url()
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default()
    }

    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// An absolute URL of one of our endpoints: the issuer string plus `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailChangeConfig {
    /// Whether users may change their email address.
    pub enabled: bool,
    /// Seconds the confirmation link mailed to the new address stays valid.
    pub token_ttl: i64,
    /// Seconds during which the link mailed to the old address can undo the change.
    pub revert_window: i64,
    /// On a confirmed change, revoke the user's other sessions and every refresh-token
    /// family (and the access tokens they issued).
    pub revoke_sessions: bool,
}

impl Default for EmailChangeConfig {
    fn default() -> Self {
        EmailChangeConfig {
            enabled: true,
            token_ttl: 3600,
            revert_window: 7 * 24 * 3600,
            revoke_sessions: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountDeletionConfig {
    /// Whether users may delete their account.
    pub enabled: bool,
    /// Seconds between the request and the removal of the account's data; a sign-in
    /// meanwhile cancels it. 0 deletes at once.
    pub grace_period: i64,
    /// Seconds the mailed deletion link stays valid.
    pub token_ttl: i64,
    /// Better Auth's `freshAge`: a session younger than this many seconds may delete the
    /// account without the password.
    pub fresh_age: i64,
    /// Confirm every deletion only through a link mailed to the account's address
    /// (Better Auth's `sendDeleteAccountVerification`).
    pub send_verification: bool,
    /// Seconds between two runs of the task that removes accounts whose grace period
    /// is over.
    pub purge_interval: u64,
}

impl Default for AccountDeletionConfig {
    fn default() -> Self {
        AccountDeletionConfig {
            enabled: true,
            grace_period: 0,
            token_ttl: 3600,
            fresh_age: 86_400,
            send_verification: false,
            purge_interval: 3600,
        }
    }
}

fn validate_account_lifecycle(
    e: &EmailChangeConfig,
    d: &AccountDeletionConfig,
) -> Result<(), ConfigError> {
    let week = 7 * 24 * 3600;
    if !(60..=week).contains(&e.token_ttl) {
        return Err(invalid(
            "email_change.token_ttl",
            "must be between 60 and 604800 seconds",
        ));
    }
    if !(3600..=365 * 24 * 3600).contains(&e.revert_window) {
        return Err(invalid(
            "email_change.revert_window",
            "must be between 3600 seconds and a year",
        ));
    }
    if !(0..=365 * 24 * 3600).contains(&d.grace_period) {
        return Err(invalid(
            "account_deletion.grace_period",
            "must be between 0 and a year (in seconds)",
        ));
    }
    if !(60..=week).contains(&d.token_ttl) {
        return Err(invalid(
            "account_deletion.token_ttl",
            "must be between 60 and 604800 seconds",
        ));
    }
    if d.fresh_age < 0 {
        return Err(invalid(
            "account_deletion.fresh_age",
            "must not be negative",
        ));
    }
    if !(1..=86_400).contains(&d.purge_interval) {
        return Err(invalid(
            "account_deletion.purge_interval",
            "must be between 1 and 86400 seconds",
        ));
    }
    Ok(())
}

fn check_typ(field: &str, typ: &str) -> Result<(), ConfigError> {
    if typ == "JWT" || typ == "at+jwt" {
        Ok(())
    } else {
        Err(invalid(field, "must be \"JWT\" or \"at+jwt\""))
    }
}

fn validate_session(s: &SessionConfig) -> Result<(), ConfigError> {
    if s.absolute_ttl.is_some_and(|v| v <= 0) {
        return Err(invalid(
            "session.absolute_ttl",
            "must be a positive number of seconds",
        ));
    }
    if s.idle_timeout < 0 {
        return Err(invalid(
            "session.idle_timeout",
            "must be 0 (none) or a positive number of seconds",
        ));
    }
    if s.update_age < 0 {
        return Err(invalid(
            "session.update_age",
            "must not be a negative number of seconds",
        ));
    }
    // Renewals that come less often than the idle window would let a session in use
    // time out.
    if s.idle_timeout > 0 && s.update_age >= s.idle_timeout {
        return Err(invalid(
            "session.update_age",
            "must be shorter than session.idle_timeout",
        ));
    }
    Ok(())
}

fn validate_mail(m: &MailConfig) -> Result<(), ConfigError> {
    if m.from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(invalid(
            "mail.from",
            "must be an email address, optionally as `Name <addr@example.com>`",
        ));
    }
    if !(1..=100).contains(&m.max_attempts) {
        return Err(invalid("mail.max_attempts", "must be between 1 and 100"));
    }
    if !(1..=3600).contains(&m.poll_interval) {
        return Err(invalid(
            "mail.poll_interval",
            "must be between 1 and 3600 seconds",
        ));
    }
    let s = &m.smtp;
    if m.transport == MailTransportKind::Smtp {
        if s.host.is_empty() {
            return Err(invalid(
                "mail.smtp.host",
                "must be set when mail.transport = \"smtp\"",
            ));
        }
        if s.port == 0 {
            return Err(invalid("mail.smtp.port", "must be between 1 and 65535"));
        }
    }
    if s.timeout == 0 || s.timeout > 600 {
        return Err(invalid(
            "mail.smtp.timeout",
            "must be between 1 and 600 seconds",
        ));
    }
    match (&s.username, &s.password) {
        (Some(_), None) => {
            return Err(invalid(
                "mail.smtp.password",
                "must be set when mail.smtp.username is (or KLARD_MAIL__SMTP__PASSWORD)",
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                "mail.smtp.username",
                "must be set when mail.smtp.password is",
            ));
        }
        _ => {}
    }
    if s.username.is_some() && s.security == SmtpSecurity::None && !is_loopback_host(&s.host) {
        return Err(invalid(
            "mail.smtp.security",
            "must be starttls or tls when credentials are sent to a non-loopback host",
        ));
    }
    let b = &m.branding;
    if b.product_name.trim().is_empty() {
        return Err(invalid("mail.branding.product_name", "must not be empty"));
    }
    if let Some(u) = &b.logo_url {
        match Url::parse(u) {
            Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
            _ => {
                return Err(invalid(
                    "mail.branding.logo_url",
                    "must be an absolute http(s) URL",
                ));
            }
        }
    }
    let hex = b.accent_color.strip_prefix('#').unwrap_or("");
    if !((hex.len() == 3 || hex.len() == 6) && hex.chars().all(|c| c.is_ascii_hexdigit())) {
        return Err(invalid(
            "mail.branding.accent_color",
            "must be a hex colour, #rgb or #rrggbb",
        ));
    }
    if let Some(e) = &b.support_email
        && e.parse::<lettre::Address>().is_err()
    {
        return Err(invalid(
            "mail.branding.support_email",
            "must be an email address",
        ));
    }
    Ok(())
}

fn validate_password_policy(p: &PasswordPolicyConfig) -> Result<(), ConfigError> {
    if p.min_length < 1 {
        return Err(invalid("password_policy.min_length", "must be at least 1"));
    }
    if p.max_length > PASSWORD_POLICY_MAX_LENGTH {
        return Err(invalid(
            "password_policy.max_length",
            format!("must be at most {PASSWORD_POLICY_MAX_LENGTH}"),
        ));
    }
    if p.min_length > p.max_length {
        return Err(invalid(
            "password_policy.min_length",
            "must not be greater than password_policy.max_length",
        ));
    }
    Ok(())
}

fn validate_breach(b: &BreachConfig) -> Result<(), ConfigError> {
    let ok = Url::parse(&b.base_url).is_ok_and(|u| {
        (u.scheme() == "https" || u.scheme() == "http")
            && u.host().is_some()
            && u.query().is_none()
            && u.fragment().is_none()
    });
    if !ok {
        return Err(invalid("breach.base_url", "must be an http(s) URL"));
    }
    if !(1..=60_000).contains(&b.timeout_ms) {
        return Err(invalid("breach.timeout_ms", "must be between 1 and 60000"));
    }
    if b.min_count < 1 {
        return Err(invalid("breach.min_count", "must be at least 1"));
    }
    Ok(())
}

fn validate_lockout(l: &LockoutConfig) -> Result<(), ConfigError> {
    let day = 24 * 3600;
    if !(1..=30 * day).contains(&l.failure_window) {
        return Err(invalid(
            "lockout.failure_window",
            "must be between 1 second and 30 days",
        ));
    }
    if l.delay_base_ms > l.delay_max_ms {
        return Err(invalid(
            "lockout.delay_base_ms",
            "must not exceed lockout.delay_max_ms",
        ));
    }
    if l.delay_max_ms > 60_000 {
        return Err(invalid("lockout.delay_max_ms", "must be at most 60000"));
    }
    if !(1..=30 * day).contains(&l.ip_block_duration) {
        return Err(invalid(
            "lockout.ip_block_duration",
            "must be between 1 second and 30 days",
        ));
    }
    if !(0..=365 * day).contains(&l.lock_duration) {
        return Err(invalid(
            "lockout.lock_duration",
            "must be between 0 (until unlocked) and a year",
        ));
    }
    if !(60..=30 * day).contains(&l.unlock_token_ttl) {
        return Err(invalid(
            "lockout.unlock_token_ttl",
            "must be between 60 seconds and 30 days",
        ));
    }
    Ok(())
}

fn validate_captcha(c: &CaptchaConfig) -> Result<(), ConfigError> {
    if let Some(u) = &c.verify_url {
        let ok = Url::parse(u)
            .is_ok_and(|u| (u.scheme() == "https" || u.scheme() == "http") && u.host().is_some());
        if !ok {
            return Err(invalid("captcha.verify_url", "must be an http(s) URL"));
        }
    }
    if c.provider != CaptchaProvider::None && c.secret_key.trim().is_empty() {
        return Err(invalid(
            "captcha.secret_key",
            "is required when a provider is set",
        ));
    }
    if !(0.0..=1.0).contains(&c.min_score) {
        return Err(invalid("captcha.min_score", "must be between 0.0 and 1.0"));
    }
    if !(1..=60_000).contains(&c.timeout_ms) {
        return Err(invalid("captcha.timeout_ms", "must be between 1 and 60000"));
    }
    if let Some(e) = c
        .endpoints
        .iter()
        .find(|e| !CAPTCHA_PROTECTABLE.contains(&e.as_str()))
    {
        return Err(invalid(
            "captcha.endpoints",
            format!("{e:?} is not one of {}", CAPTCHA_PROTECTABLE.join(", ")),
        ));
    }
    Ok(())
}

fn validate_sign_up(s: &SignUpConfig) -> Result<(), ConfigError> {
    if let Some(v) = &s.terms_version
        && (v.trim().is_empty() || v.chars().count() > 64)
    {
        return Err(invalid(
            "sign_up.terms_version",
            "must be 1 to 64 characters when set",
        ));
    }
    if let Some(u) = &s.terms_url
        && !Url::parse(u).is_ok_and(|u| u.scheme() == "https" || u.scheme() == "http")
    {
        return Err(invalid(
            "sign_up.terms_url",
            "must be an absolute http(s) URL",
        ));
    }
    if s.invite_ttl <= 0 {
        return Err(invalid(
            "sign_up.invite_ttl",
            "must be a positive number of seconds",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for f in &s.fields {
        crate::user_fields::check_declaration(f)
            .map_err(|m| invalid("sign_up.fields", format!("`{}`: {m}", f.name)))?;
        if !seen.insert(f.name.as_str()) {
            return Err(invalid(
                "sign_up.fields",
                format!("`{}` declared twice", f.name),
            ));
        }
    }
    Ok(())
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub fn is_loopback_url(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies_are_cidrs() {
        let ok = Config::from_toml("[proxy]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]")
            .expect("valid");
        let back: Vec<String> = ok
            .proxy
            .trusted_proxies
            .iter()
            .map(|c| (*c).into())
            .collect();
        assert_eq!(back, vec!["10.0.0.0/8", "::1/128"]);
        for bad in ["10.0.0.0/33", "proxy.example.com", "10.0.0.0/x"] {
            let e = Config::from_toml(&format!("[proxy]\ntrusted_proxies = [\"{bad}\"]"))
                .expect_err(bad)
                .to_string();
            assert!(
                e.contains("trusted_proxies") && e.contains(bad),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn trusted_origins_must_be_origins() {
        let ok =
            Config::from_toml("[api_auth]\ntrusted_origins = [\"https://app.example.com:8443\"]")
                .expect("valid");
        assert_eq!(
            ok.api_auth.origins(&ok.issuer),
            vec!["http://127.0.0.1:8080", "https://app.example.com:8443"]
        );
        for bad in [
            "https://app.example.com/",
            "https://app.example.com/x",
            "app.example.com",
            "ftp://x.example",
        ] {
            let e = Config::from_toml(&format!("[api_auth]\ntrusted_origins = [\"{bad}\"]"))
                .expect_err(bad)
                .to_string();
            assert!(e.contains("api_auth.trusted_origins"), "{e}");
        }
        let e = Config::from_toml("[api_auth]\nunknown = 1").expect_err("unknown field");
        assert!(e.to_string().contains("unknown"), "{e}");
    }

    #[test]
    fn account_lifecycle_defaults_and_bad_values() {
        let c = Config::from_toml("").expect("defaults");
        assert!(c.email_change.enabled && !c.email_change.revoke_sessions);
        assert_eq!(c.email_change.revert_window, 7 * 24 * 3600);
        assert_eq!(c.account_deletion.grace_period, 0);
        assert_eq!(c.account_deletion.fresh_age, 86_400);
        let ok = Config::from_toml(
            "[account_deletion]\ngrace_period = 2592000\nsend_verification = true",
        )
        .expect("valid");
        assert_eq!(ok.account_deletion.grace_period, 30 * 24 * 3600);
        for (toml, field) in [
            ("[email_change]\ntoken_ttl = 0", "email_change.token_ttl"),
            (
                "[email_change]\nrevert_window = 10",
                "email_change.revert_window",
            ),
            (
                "[account_deletion]\ngrace_period = -1",
                "account_deletion.grace_period",
            ),
            (
                "[account_deletion]\ntoken_ttl = 1",
                "account_deletion.token_ttl",
            ),
            (
                "[account_deletion]\nfresh_age = -5",
                "account_deletion.fresh_age",
            ),
            (
                "[account_deletion]\npurge_interval = 0",
                "account_deletion.purge_interval",
            ),
            ("[audit]\nprune_interval = 0", "audit.prune_interval"),
            ("[audit]\nretention_days = 40000", "audit.retention_days"),
        ] {
            let e = Config::from_toml(toml).expect_err(toml).to_string();
            assert!(e.contains(field), "{e}");
        }
        let e = Config::from_toml("[email_change]\nunknown = 1").expect_err("unknown field");
        assert!(e.to_string().contains("unknown"), "{e}");
    }

    #[test]
    fn session_timeouts_are_checked_and_named() {
        let d = Config::from_toml("").expect("defaults");
        assert_eq!(
            (
                d.session.idle_timeout,
                d.session.update_age,
                d.session.absolute()
            ),
            (7 * 24 * 3600, 24 * 3600, 14 * 24 * 3600)
        );
        let c = Config::from_toml("[session]\nabsolute_ttl = 600\nidle_timeout = 0")
            .expect("no idle timeout");
        assert_eq!(c.session.absolute(), 600);
        for (toml, field) in [
            ("absolute_ttl = 0", "session.absolute_ttl"),
            ("idle_timeout = -1", "session.idle_timeout"),
            ("update_age = -1", "session.update_age"),
            ("idle_timeout = 100\nupdate_age = 100", "session.update_age"),
        ] {
            let e = Config::from_toml(&format!("[session]\n{toml}"))
                .expect_err(toml)
                .to_string();
            assert!(e.contains(field), "{toml}: {e}");
        }
    }

    #[test]
    fn recovery_sections_have_defaults_and_checked_ttls() {
        let d = Config::from_toml("").expect("defaults");
        assert!(d.email_verification.send_on_sign_up);
        assert!(!d.email_verification.require);
        assert!(!d.email_verification.auto_sign_in_after_verification);
        assert!(d.email_verification.send_on_sign_in);
        assert_eq!(d.email_verification.token_ttl, 3600);
        assert_eq!(d.password_reset.token_ttl, 3600);
        assert!(d.password_reset.revoke_sessions);
        let c = Config::from_toml(
            "[email_verification]\nrequire = true\ntoken_ttl = 86400\n[password_reset]\nrevoke_sessions = false",
        )
        .expect("valid");
        assert!(c.email_verification.require);
        assert_eq!(c.email_verification.token_ttl, 86400);
        assert!(!c.password_reset.revoke_sessions);
        for (toml, field) in [
            (
                "[email_verification]\ntoken_ttl = 10",
                "email_verification.token_ttl",
            ),
            (
                "[password_reset]\ntoken_ttl = 0",
                "password_reset.token_ttl",
            ),
            (
                "[password_reset]\ntoken_ttl = 99999999",
                "password_reset.token_ttl",
            ),
        ] {
            let e = Config::from_toml(toml).expect_err(toml).to_string();
            assert!(e.contains(field), "{e}");
        }
        let e = Config::from_toml("[password_reset]\nrevoke = true").expect_err("unknown");
        assert!(e.to_string().contains("revoke"), "{e}");
    }
}
