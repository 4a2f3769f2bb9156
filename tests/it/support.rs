//! Shared fixtures: a real server on 127.0.0.1:0, a real database, a cookie-keeping
//! "browser" that answers the hosted login and consent forms.

#![allow(dead_code)]

use std::collections::HashMap;

use klard_auth::app::{self, Running, State};
use klard_auth::config::Config;
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Clone, Copy, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Expands `db_tests!(a, b)` into `sqlite::a`, `postgres::a`, ... calling `a(Db::..)`.
macro_rules! db_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(crate::support::Db::Sqlite).await }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(crate::support::Db::Postgres).await }
            )*
        }
    };
}

pub const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct TestServer {
    pub base: String,
    pub state: State,
    running: Running,
    _dir: tempfile::TempDir,
    pg_db: Option<String>,
}

impl TestServer {
    pub async fn start(db: Db) -> TestServer {
        Self::start_with(db, |_| {}).await
    }

    pub async fn start_with(db: Db, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (database_url, pg_db) = match db {
            Db::Sqlite => (
                format!("sqlite://{}/klard.db?mode=rwc", dir.path().display()),
                None,
            ),
            Db::Postgres => {
                let name = format!("klard_it_{}", uuid::Uuid::new_v4().simple());
                create_pg_database(&name).await;
                (
                    format!("postgres://postgres@127.0.0.1:5432/{name}"),
                    Some(name),
                )
            }
        };
        let mut cfg = Config::from_toml(&format!(
            r#"
issuer = "http://127.0.0.1:{port}"
bind = "127.0.0.1:{port}"
database_url = "{database_url}"
data_dir = "{dir}"
secret = "test-secret-test-secret-test-secret-0123"
[password]
argon2_m_cost = 64
argon2_t_cost = 1
argon2_p_cost = 1
"#,
            port = addr.port(),
            dir = dir.path().display()
        ))
        .expect("config");
        // The suite signs in hundreds of times from 127.0.0.1; tests of the limits
        // (rate_limit.rs) switch them back on in `tweak`.
        cfg.rate_limit.enabled = false;
        // Lockout stays on in the suite, without its waits (tests/it/lockout.rs).
        cfg.lockout.delay_base_ms = 0;
        // New-device alerts would add a mail to every second sign-in of the suite;
        // tests/it/lockout.rs turns them on where it checks them.
        cfg.alerts.new_device = false;
        tweak(&mut cfg);
        cfg.validate().expect("valid test config");
        let state = app::build_state(cfg).await.expect("state");
        let running = app::serve(state.clone(), listener).await.expect("serve");
        TestServer {
            base: format!("http://127.0.0.1:{}", addr.port()),
            state,
            running,
            _dir: dir,
            pg_db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.state.config.issuer, path)
    }

    pub fn issuer(&self) -> String {
        self.state.config.issuer.clone()
    }

    /// A user with every standard claim populated.
    pub async fn user(&self, email: &str) -> klard_auth::store::users::User {
        klard_auth::accounts::create_user(
            &self.state,
            json!({
                "email": email, "password": PASSWORD, "email_verified": true,
                "name": "Buffy Summers", "given_name": "Buffy", "family_name": "Summers",
                "middle_name": "Anne", "nickname": "Buff", "preferred_username": "buffy",
                "profile": "https://example.com/buffy", "picture": "https://example.com/buffy.png",
                "website": "https://example.com", "gender": "female", "birthdate": "1981-01-19",
                "zoneinfo": "America/Los_Angeles", "locale": "en-US",
                "phone_number": "+1 555 0100", "phone_number_verified": true,
                "address": {"street_address": "1630 Revello Drive", "locality": "Sunnydale", "region": "CA", "postal_code": "95037", "country": "US"}
            }),
        )
        .await
        .expect("user")
    }

    /// Creates a client through the same validation as the CLI; returns (id, secret).
    pub async fn client(&self, doc: Value) -> (String, Option<String>) {
        let meta = klard_auth::oauth::clients::validate_metadata(&doc, true).expect("valid client");
        let id = doc
            .get("client_id")
            .and_then(Value::as_str)
            .map(String::from);
        let secret = doc
            .get("client_secret")
            .and_then(Value::as_str)
            .map(String::from);
        let (c, s) = klard_auth::oauth::clients::new_client(
            meta,
            id,
            secret,
            "cli",
            self.state.clock.now(),
            0,
        );
        klard_auth::store::clients::insert(&self.state.db, &c)
            .await
            .expect("insert client");
        (c.client_id, s)
    }

    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.running.shutdown();
        if let Some(name) = self.pg_db.take() {
            drop_pg_database(name, Some(self.state.db.pool.clone()));
        }
    }
}

/// Drops a per-test database from a thread of its own (Drop cannot await), closing the
/// server's pool first.
pub fn drop_pg_database(name: String, pool: Option<sqlx::AnyPool>) {
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            if let Some(p) = pool {
                p.close().await;
            }
            if let Ok(admin) = sqlx::PgPool::connect(PG_ADMIN).await {
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await;
            }
        });
    })
    .join();
}

pub async fn create_pg_database(name: &str) {
    let admin = sqlx::PgPool::connect(PG_ADMIN)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&admin)
        .await
        .expect("create database");
    admin.close().await;
}

/// What the browser ended at.
#[derive(Debug)]
pub enum Landing {
    /// A redirect to the client's redirect URI (the full URL).
    Callback(String),
    /// An HTML page that is neither login nor consent: (status, body).
    Page(u16, String),
}

impl Landing {
    pub fn callback(self) -> url::Url {
        match self {
            Landing::Callback(u) => url::Url::parse(&u).expect("callback URL"),
            Landing::Page(s, b) => panic!("expected a redirect to the client, got page {s}: {b}"),
        }
    }
    pub fn params(self) -> HashMap<String, String> {
        self.callback().query_pairs().into_owned().collect()
    }
}

/// A browser: keeps cookies, follows redirects itself, answers login and consent.
pub struct Browser {
    pub http: reqwest::Client,
    pub email: String,
    pub password: String,
    /// allow or deny at the consent page.
    pub consent: &'static str,
    pub pages_seen: Vec<String>,
}

impl Browser {
    pub fn new(email: &str) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            email: email.into(),
            password: PASSWORD.into(),
            consent: "allow",
            pages_seen: Vec::new(),
        }
    }

    /// GETs `url` and follows the flow until it reaches `redirect_prefix` or a page.
    pub async fn go(&mut self, url: &str, redirect_prefix: &str) -> Landing {
        let resp = self.http.get(url).send().await.expect("GET");
        self.follow(resp, redirect_prefix).await
    }

    pub async fn follow(&mut self, mut resp: reqwest::Response, redirect_prefix: &str) -> Landing {
        for _ in 0..20 {
            let status = resp.status();
            if status.is_redirection() {
                let loc = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let next = resp.url().join(&loc).expect("location").to_string();
                if next.starts_with(redirect_prefix) {
                    return Landing::Callback(next);
                }
                resp = self.http.get(&next).send().await.expect("follow");
                continue;
            }
            let page_url = resp.url().clone();
            let body = resp.text().await.unwrap_or_default();
            if let Some(form) = Form::parse(&body) {
                let action = page_url
                    .join(&form.action)
                    .expect("form action")
                    .to_string();
                let mut fields = form.hidden.clone();
                if form.has_password {
                    self.pages_seen.push("login".into());
                    fields.push(("username".into(), self.email.clone()));
                    fields.push(("password".into(), self.password.clone()));
                } else if form.has_decision {
                    self.pages_seen.push("consent".into());
                    fields.push(("decision".into(), self.consent.into()));
                } else {
                    return Landing::Page(status.as_u16(), body);
                }
                if status.as_u16() == 400
                    && form.has_password
                    && self.pages_seen.iter().filter(|p| *p == "login").count() > 1
                {
                    return Landing::Page(status.as_u16(), body);
                }
                resp = self
                    .http
                    .post(&action)
                    .form(&fields)
                    .send()
                    .await
                    .expect("POST form");
                continue;
            }
            return Landing::Page(status.as_u16(), body);
        }
        panic!("too many redirects");
    }
}

/// The first form of a page, read with plain string scanning.
#[derive(Debug, Clone)]
pub struct Form {
    pub action: String,
    pub hidden: Vec<(String, String)>,
    pub has_password: bool,
    pub has_decision: bool,
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let pat = format!(" {name}=\"");
    let i = tag.find(&pat)? + pat.len();
    let j = tag[i..].find('"')? + i;
    Some(
        tag[i..j]
            .replace("&amp;", "&")
            .replace("&#x2f;", "/")
            .replace("&#47;", "/")
            .replace("&quot;", "\"")
            .replace("&#x3d;", "=")
            .replace("&#61;", "="),
    )
}

impl Form {
    pub fn parse(html: &str) -> Option<Form> {
        let start = html.find("<form")?;
        let end = html[start..]
            .find("</form>")
            .map(|e| e + start)
            .unwrap_or(html.len());
        let body = &html[start..end];
        let head_end = body.find('>')?;
        let action = attr(&body[..head_end], "action").unwrap_or_default();
        let mut hidden = Vec::new();
        let mut has_password = false;
        for piece in body.split("<input").skip(1) {
            let tag = &piece[..piece.find('>').unwrap_or(piece.len())];
            let ty = attr(tag, "type").unwrap_or_default();
            if ty == "hidden" {
                hidden.push((
                    attr(tag, "name").unwrap_or_default(),
                    attr(tag, "value").unwrap_or_default(),
                ));
            }
            if ty == "password" {
                has_password = true;
            }
        }
        let has_decision = body.contains("name=\"decision\"");
        Some(Form {
            action,
            hidden,
            has_password,
            has_decision,
        })
    }
}

/// PKCE pair (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let v = klard_auth::crypto::random_token(32);
    let c = klard_auth::crypto::s256(&v);
    (v, c)
}

/// Builds an authorization URL from pairs.
pub fn authorize_url(server: &TestServer, pairs: &[(&str, &str)]) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{}?{}", server.url("/authorize"), q)
}

/// POSTs a form to the token endpoint with Basic auth.
pub async fn token_basic(
    server: &TestServer,
    id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let resp = server
        .http()
        .post(server.url("/token"))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .await
        .expect("token");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let v = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, v, headers)
}

/// A confidential web client registered for code + refresh, with a loopback redirect.
pub async fn web_client(server: &TestServer) -> (String, String) {
    let (id, secret) = server
        .client(json!({
            "client_name": "Test RP",
            "redirect_uris": ["http://127.0.0.1:9/callback"],
            "post_logout_redirect_uris": ["http://127.0.0.1:9/logged-out"],
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .await;
    (id, secret.expect("secret"))
}

pub const CB: &str = "http://127.0.0.1:9/callback";

/// Runs a full code flow for `client` as `email` and returns the token response.
pub async fn code_flow(
    server: &TestServer,
    browser: &mut Browser,
    id: &str,
    secret: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> Value {
    let (verifier, challenge) = pkce();
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", id),
        ("redirect_uri", CB),
        ("scope", scope),
        ("state", "st4te"),
        ("nonce", "n0nce"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    pairs.extend_from_slice(extra);
    let params = browser
        .go(&authorize_url(server, &pairs), CB)
        .await
        .params();
    assert_eq!(
        params.get("state").map(String::as_str),
        Some("st4te"),
        "{params:?}"
    );
    assert_eq!(params.get("iss"), Some(&server.issuer()));
    let code = params.get("code").expect("code").clone();
    let (status, body, _) = token_basic(
        server,
        id,
        secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}
