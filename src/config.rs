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
    /// Email verification mails, and whether sign-in requires a verified address.
    pub email_verification: EmailVerificationConfig,
    /// Password reset by mailed link.
    pub password_reset: PasswordResetConfig,
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
    /// Absolute lifetime of a login session in seconds.
    pub ttl: i64,
    /// Lifetime of a paused authorization request (login/consent interaction).
    pub interaction_ttl: i64,
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
    /// Honour X-Forwarded-For only when a trusted reverse proxy sets it.
    pub trust_forwarded_headers: bool,
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
            email_verification: EmailVerificationConfig::default(),
            password_reset: PasswordResetConfig::default(),
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

fn check_typ(field: &str, typ: &str) -> Result<(), ConfigError> {
    if typ == "JWT" || typ == "at+jwt" {
        Ok(())
    } else {
        Err(invalid(field, "must be \"JWT\" or \"at+jwt\""))
    }
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
