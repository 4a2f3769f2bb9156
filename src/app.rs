//! Composition root: configuration → state → router → listener.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::sync::Mutex;

use crate::clock::Clock;
use crate::config::Config;
use crate::jose::keys::KeyRing;
use crate::passwords::Hasher;
use crate::store::Db;
use crate::{http, oauth, oidc, ui};

pub struct AppState {
    pub config: Config,
    pub db: Db,
    pub keys: KeyRing,
    pub clock: Clock,
    pub hasher: Hasher,
    /// The server secret (never logged).
    pub secret: String,
    /// Outbound HTTP (client `jwks_uri`).
    pub http: reqwest::Client,
    /// Fetched client JWKS documents: uri → (document, fetched_at).
    pub client_jwks: Mutex<HashMap<String, (serde_json::Value, i64)>>,
    /// `[rate_limit]`: the rules and the counter store (`rate_limit`).
    pub rate_limiter: crate::rate_limit::Limiter,
}

pub type State = Arc<AppState>;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("signing keys: {0}")]
    Keys(#[from] crate::jose::keys::KeyError),
    #[error("secret: {0}")]
    Secret(String),
    #[error("password hasher: {0}")]
    Hasher(#[from] crate::passwords::PasswordError),
    #[error("client `{0}` in the configuration: {1}")]
    Client(String, String),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    #[error("tls: {0}")]
    Tls(String),
    #[error("rate limit: {0}")]
    RateLimit(String),
}

/// Reads the server secret from config, or from `data_dir/secret`, generating it on the
/// first start (dev mode). Returns the secret and whether it was generated.
pub fn load_secret(cfg: &Config) -> Result<(String, bool), StartError> {
    if let Some(s) = &cfg.secret {
        return Ok((s.clone(), false));
    }
    let path = cfg.data_dir.join("secret");
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim().to_string();
        if s.len() >= 32 {
            return Ok((s, false));
        }
        return Err(StartError::Secret(format!(
            "{} is shorter than 32 characters",
            path.display()
        )));
    }
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
        StartError::Secret(format!("cannot create {}: {e}", cfg.data_dir.display()))
    })?;
    let s = crate::crypto::random_token(32);
    write_private_file(&path, &s)
        .map_err(|e| StartError::Secret(format!("cannot write {}: {e}", path.display())))?;
    Ok((s, true))
}

fn write_private_file(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(content.as_bytes())
}

/// Everything `serve` and the CLI need: database migrated, config clients applied,
/// signing keys present.
pub async fn build_state(config: Config) -> Result<State, StartError> {
    let (secret, _generated) = load_secret(&config)?;
    build_state_with_secret(config, secret).await
}

pub async fn build_state_with_secret(config: Config, secret: String) -> Result<State, StartError> {
    let db = Db::connect(&config.database_url).await?;
    if config.migrate_on_start {
        db.migrate().await?;
    }
    let clock = Clock::default();
    let keys = KeyRing::new(db.clone(), clock.clone(), &secret, config.keys.rsa_bits);
    keys.ensure_keys().await?;
    let hasher = Hasher::new(&config.password)?;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| StartError::Tls(e.to_string()))?;
    let rate_limiter =
        crate::rate_limit::Limiter::new(&config.rate_limit, &db).map_err(StartError::RateLimit)?;
    let state = Arc::new(AppState {
        config,
        db,
        keys,
        clock,
        hasher,
        secret,
        http,
        client_jwks: Mutex::new(HashMap::new()),
        rate_limiter,
    });
    oauth::clients::apply_config_clients(&state)
        .await
        .map_err(|(id, e)| StartError::Client(id, e))?;
    Ok(state)
}

/// The issuer-relative routes: browser pages, plus the back-channel and metadata
/// endpoints that single-page and native apps call cross-origin.
fn endpoints() -> Router<State> {
    Router::new()
        .route(
            "/authorize",
            get(oauth::authorize::get).post(oauth::authorize::post),
        )
        .route("/authorize/resume", get(oauth::authorize::resume))
        .route("/login", get(ui::login::show).post(ui::login::submit))
        .merge(ui::account::router())
        .route("/sign-up", get(ui::signup::show).post(ui::signup::submit))
        .route("/consent", get(ui::consent::show).post(ui::consent::submit))
        .route(
            "/account/email",
            get(ui::account_email::show).post(ui::account_email::submit),
        )
        .route(
            "/account/password",
            get(ui::account_password::show).post(ui::account_password::submit),
        )
        .route(
            "/account/delete",
            get(ui::account_delete::show).post(ui::account_delete::submit),
        )
        .route(
            "/forgot-password",
            get(ui::recovery::forgot_show).post(ui::recovery::forgot_submit),
        )
        .route(
            "/reset-password",
            get(ui::recovery::reset_show).post(ui::recovery::reset_submit),
        )
        .route("/verify-email", get(ui::recovery::verify_show))
        .route(
            "/unlock-account",
            get(crate::lockout::unlock::show).post(crate::lockout::unlock::submit),
        )
        .route(
            "/end_session",
            get(oidc::logout::get).post(oidc::logout::post),
        )
        .route("/end_session/confirm", post(oidc::logout::confirm))
        .route("/static/klard.css", get(css))
        .route("/health", get(|| async { "ok" }))
        .merge(crate::api::router())
        .merge(crate::admin::router())
        .merge(cross_origin_endpoints())
}

/// Endpoints a browser app may call from its own origin. They authenticate by client
/// credentials or bearer tokens, never by our cookies, so any origin may call them
/// (no `Access-Control-Allow-Credentials`).
fn cross_origin_endpoints() -> Router<State> {
    use axum::http::Method;
    use tower_http::cors::{Any, CorsLayer};
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([
            header::WWW_AUTHENTICATE,
            header::RETRY_AFTER,
            axum::http::HeaderName::from_static("ratelimit"),
            axum::http::HeaderName::from_static("ratelimit-policy"),
            axum::http::HeaderName::from_static("x-request-id"),
        ])
        .max_age(std::time::Duration::from_secs(600));
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(oidc::discovery::openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(oidc::discovery::oauth_metadata),
        )
        .route("/.well-known/jwks.json", get(oidc::discovery::jwks))
        .route("/jwks", get(oidc::discovery::jwks))
        .route("/token", post(oauth::token::handle))
        .route(
            "/userinfo",
            get(oidc::userinfo::get).post(oidc::userinfo::post),
        )
        .route("/revoke", post(oauth::revoke::handle))
        .route("/introspect", post(oauth::introspect::handle))
        .route("/register", post(oauth::registration::create))
        .route(
            "/register/{client_id}",
            get(oauth::registration::read)
                .put(oauth::registration::update)
                .delete(oauth::registration::delete),
        )
        .layer(cors)
}

async fn css() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        http::pages::CSS,
    )
}

pub fn router(state: State) -> Router {
    let path = state.config.issuer_path();
    let mut app: Router<State> = if path.is_empty() {
        endpoints()
    } else {
        // RFC 8414 §3.1: with a path in the issuer, the metadata lives at
        // /.well-known/oauth-authorization-server{path}. Spring Security also tries the
        // same insertion for openid-configuration, so serve both.
        Router::new()
            .nest(&path, endpoints())
            .route(
                &format!("/.well-known/oauth-authorization-server{path}"),
                get(oidc::discovery::oauth_metadata),
            )
            .route(
                &format!("/.well-known/openid-configuration{path}"),
                get(oidc::discovery::openid_configuration),
            )
    };
    app = app.fallback(not_found);
    // Spans name the method and path only: query strings carry codes and tokens, which
    // must never reach a log.
    let trace = tower_http::trace::TraceLayer::new_for_http().make_span_with(
        |req: &axum::http::Request<axum::body::Body>| {
            tracing::info_span!("http", method = %req.method(), path = %crate::api::reset::loggable_path(req.uri().path()))
        },
    );
    // `[captcha]` on the protected /api/auth/* POSTs (captcha.rs), inside CORS.
    app = app.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        crate::captcha::api_layer,
    ));
    // `[rate_limit]` (rate_limit/mod.rs): outside the CAPTCHA check, so a throttled
    // request costs neither a CAPTCHA call nor a password hash; inside CORS, so that a
    // trusted page can read the 429.
    app = app.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        crate::rate_limit::layer,
    ));
    // CORS of /api/auth/* for trusted origins (api/cors.rs).
    app = app.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        crate::api::cors::layer,
    ));
    app.layer(DefaultBodyLimit::max(256 * 1024))
        .layer(trace)
        // Outermost, so that every response, refusals included, carries its id.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::request_meta::layer,
        ))
        .with_state(state)
}

async fn not_found() -> impl IntoResponse {
    (axum::http::StatusCode::NOT_FOUND, "not found")
}

/// A running server (used by `serve` and by the integration tests).
pub struct Running {
    pub addr: SocketAddr,
    pub state: State,
    pub handle: axum_server::Handle<SocketAddr>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub fn shutdown(&self) {
        self.handle.shutdown();
    }
}

/// Serves `state` on an already bound listener, over TLS when configured.
/// `GET /api/auth/token` mints on behalf of `api_auth.client_id`: a typo must stop the
/// server from starting, not surface later as a failing endpoint. Checked in `serve`,
/// not `build_state`, so that the CLI can still create that client. `api_auth.token_scope`
/// must be a scope that client may request.
async fn check_api_client(state: &State) -> Result<(), StartError> {
    let Some(id) = &state.config.api_auth.client_id else {
        return Ok(());
    };
    let found = crate::store::clients::get(&state.db, id)
        .await
        .map_err(|e| StartError::Client(id.clone(), e.to_string()))?;
    let Some(client) = found else {
        return Err(StartError::Client(
            id.clone(),
            "named by `api_auth.client_id` but not registered (declare it in [[clients]] \
             or create it with `klard-auth client create`)"
                .into(),
        ));
    };
    // The tokens' scope must be one the client may request, as at /authorize.
    let scope = crate::api::account::token_scope(&state.config);
    oauth::scopes::parse(&scope)
        .and_then(|s| oauth::scopes::check_allowed(&s, &client.metadata))
        .map_err(|e| {
            StartError::Client(
                id.clone(),
                format!("api_auth.token_scope: {}", e.description),
            )
        })?;
    Ok(())
}

pub async fn serve(state: State, listener: std::net::TcpListener) -> Result<Running, StartError> {
    check_api_client(&state).await?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let handle: axum_server::Handle<SocketAddr> = axum_server::Handle::new();
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    crate::mail::spawn_worker(state.clone());
    crate::account_deletion::spawn_purger(state.clone());
    crate::audit::retention::spawn_pruner(state.clone());
    let task = match &state.config.tls {
        Some(tls) => {
            let rustls = crate::tls::load(tls).await.map_err(StartError::Tls)?;
            crate::tls::watch(rustls.clone(), tls.clone());
            let server = axum_server::from_tcp_rustls(listener, rustls)
                .map_err(|e| StartError::Tls(e.to_string()))?
                .handle(handle.clone());
            tokio::spawn(async move { server.serve(app).await })
        }
        None => {
            let server = axum_server::from_tcp(listener)
                .map_err(|e| StartError::Tls(e.to_string()))?
                .handle(handle.clone());
            tokio::spawn(async move { server.serve(app).await })
        }
    };
    Ok(Running {
        addr,
        state,
        handle,
        task,
    })
}
