//! The breached-password check (issue 4, `[breach]`) against a local stand-in for Have
//! I Been Pwned's range API: it serves range answers built from known test passwords,
//! padded with count-0 lines, and records every request path and its `Add-Padding`
//! header. Checked: refusal at sign-up (API and hosted page, new and existing address),
//! change-password, reset and the CLI's account service, with nothing written; clean
//! and padding-only passwords accepted; only the 5-digit prefix sent; fail-open and
//! fail-closed when the service answers 500, is slow or is down; disabled = no request.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode as AxStatus, header};
use axum::response::IntoResponse;
use klard_auth::breach::sha1_split;
use klard_auth::store::verifications::{self, Purpose};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

/// Seen 42 times.
const BREACHED: &str = "Correct-Horse-1";
/// Listed only as a padding line (count 0): not breached.
const PADDED: &str = "Padding-Only-Pass-7";
/// In no list.
const CLEAN: &str = "Unlisted-Clean-Pass-9";

const SIGN_UP: &str = "/api/auth/sign-up/email";

const OK: u8 = 0;
const FAIL_500: u8 = 1;
const SLOW: u8 = 2;

/// (path, `Add-Padding` header) of every request the stand-in answered.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// The stand-in range API.
struct Pwned {
    base: String,
    seen: Seen,
    mode: Arc<AtomicU8>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct PwnedState {
    seen: Seen,
    mode: Arc<AtomicU8>,
}

/// The range answer for `prefix`: the suffixes of the known passwords under it, and
/// padding lines (count 0), one of them `PADDED`'s.
fn range_body(prefix: &str) -> String {
    let mut lines = vec![
        "00000000000000000000000000000000000:0".to_string(),
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF:0".to_string(),
    ];
    for (password, count) in [(BREACHED, 42), (PADDED, 0)] {
        let (p, s) = sha1_split(password);
        if p == prefix {
            lines.push(format!("{s}:{count}"));
        }
    }
    lines.join("\r\n")
}

async fn range(
    AxState(st): AxState<PwnedState>,
    Path(prefix): Path<String>,
    headers: HeaderMap,
) -> axum::response::Response {
    let padding = headers
        .get("add-padding")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    st.seen
        .lock()
        .expect("seen")
        .push((format!("/range/{prefix}"), padding));
    let close = [(header::CONNECTION, "close")];
    match st.mode.load(Ordering::SeqCst) {
        FAIL_500 => (AxStatus::INTERNAL_SERVER_ERROR, close, "oops").into_response(),
        SLOW => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            (close, range_body(&prefix)).into_response()
        }
        _ => (close, range_body(&prefix)).into_response(),
    }
}

impl Pwned {
    async fn start() -> Pwned {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let st = PwnedState {
            seen: Arc::default(),
            mode: Arc::new(AtomicU8::new(OK)),
        };
        let app = axum::Router::new()
            .route("/range/{prefix}", axum::routing::get(range))
            .with_state(st.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Pwned {
            base,
            seen: st.seen,
            mode: st.mode,
            task,
        }
    }

    fn requests(&self) -> Vec<(String, Option<String>)> {
        self.seen.lock().expect("seen").clone()
    }

    /// Stops listening: the port refuses connections from now on.
    async fn stop(&mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Pwned {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(db: Db, pwned: &Pwned, fail_open: bool) -> TestServer {
    let base = pwned.base.clone();
    TestServer::start_with(db, move |c| {
        c.breach.enabled = true;
        c.breach.base_url = base;
        c.breach.timeout_ms = 300;
        c.breach.fail_open = fail_open;
    })
    .await
}

async fn post(
    server: &TestServer,
    path: &str,
    body: Value,
    bearer: Option<&str>,
) -> (StatusCode, Value) {
    let mut rb = server.http().post(server.url(path)).json(&body);
    if let Some(t) = bearer {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.expect("POST");
    let s = r.status();
    (s, r.json::<Value>().await.unwrap_or(Value::Null))
}

async fn users(server: &TestServer) -> i64 {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
        .fetch_one(&server.state.db.pool)
        .await
        .expect("count");
    sqlx::Row::try_get::<i64, _>(&row, "n").expect("n")
}

async fn hash_of(server: &TestServer, email: &str) -> Option<String> {
    klard_auth::store::users::by_email(&server.state.db, email)
        .await
        .expect("by_email")
        .expect("user")
        .password_hash
}

fn sign_up_body(email: &str, password: &str) -> Value {
    json!({ "name": "Rupert Giles", "email": email, "password": password })
}

fn assert_compromised(s: StatusCode, v: &Value) {
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (400, Some("PASSWORD_COMPROMISED")),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("data breach")),
        "{v}"
    );
}

/// Every request asked for a 5-digit upper-case hex prefix, with padding, and never
/// for more of the hash.
fn assert_prefix_only(pwned: &Pwned, passwords: &[&str]) {
    let reqs = pwned.requests();
    assert!(!reqs.is_empty());
    for (path, padding) in &reqs {
        let prefix = path.strip_prefix("/range/").expect("range path");
        assert_eq!(prefix.len(), 5, "{path}");
        assert!(
            prefix
                .chars()
                .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c)),
            "{path}"
        );
        assert_eq!(padding.as_deref(), Some("true"), "{path}");
        for p in passwords {
            let (_, suffix) = sha1_split(p);
            assert!(!path.contains(&suffix[..10]), "{path} leaks the hash");
            assert!(!path.contains(p), "{path} leaks the password");
        }
    }
}

async fn refused_on_every_route(db: Db) {
    let pwned = Pwned::start().await;
    let server = start(db, &pwned, true).await;
    let email = "giles@example.com";
    // Sign-up: a breached password, nothing written.
    let (s, v) = post(&server, SIGN_UP, sign_up_body(email, BREACHED), None).await;
    assert_compromised(s, &v);
    assert_eq!(users(&server).await, 0);
    let (breached_prefix, _) = sha1_split(BREACHED);
    assert_eq!(
        pwned.requests(),
        vec![(format!("/range/{breached_prefix}"), Some("true".into()))]
    );
    // Listed only as padding: accepted.
    let (s, v) = post(&server, SIGN_UP, sign_up_body(email, PADDED), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(users(&server).await, 1);
    // An existing address gets the same refusal after the same request.
    let before = pwned.requests().len();
    let (s, v) = post(&server, SIGN_UP, sign_up_body(email, BREACHED), None).await;
    assert_compromised(s, &v);
    assert_eq!(pwned.requests().len(), before + 1);
    assert_eq!(users(&server).await, 1);

    // change-password.
    let (s, v) = post(
        &server,
        "/api/auth/sign-in/email",
        json!({ "email": email, "password": PADDED }),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let token = v["token"].as_str().expect("token").to_string();
    let hash = hash_of(&server, email).await;
    let (s, v) = post(
        &server,
        "/api/auth/change-password",
        json!({ "currentPassword": PADDED, "newPassword": BREACHED }),
        Some(&token),
    )
    .await;
    assert_compromised(s, &v);
    assert_eq!(hash_of(&server, email).await, hash);
    let (s, v) = post(
        &server,
        "/api/auth/change-password",
        json!({ "currentPassword": PADDED, "newPassword": CLEAN }),
        Some(&token),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let hash = hash_of(&server, email).await;

    // reset: refused, the token stays open and then works with a clean password.
    let user = klard_auth::store::users::by_email(&server.state.db, email)
        .await
        .expect("by_email")
        .expect("user");
    let reset = verifications::issue(
        &server.state.db,
        Purpose::ResetPassword,
        &user.id,
        &json!({}),
        3600,
        server.state.clock.now(),
    )
    .await
    .expect("issue");
    let (s, v) = post(
        &server,
        "/api/auth/reset-password",
        json!({ "token": reset, "newPassword": BREACHED }),
        None,
    )
    .await;
    assert_compromised(s, &v);
    assert_eq!(hash_of(&server, email).await, hash);
    let (s, v) = post(
        &server,
        "/api/auth/reset-password",
        json!({ "token": reset, "newPassword": "Another-Clean-Pass-3" }),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_ne!(hash_of(&server, email).await, hash);

    // The CLI's account service.
    let e = klard_auth::accounts::create_user(
        &server.state,
        json!({ "email": "ethan@example.com", "password": BREACHED }),
    )
    .await
    .expect_err("breached password accepted");
    assert!(e.contains("data breach"), "{e}");
    assert_eq!(users(&server).await, 1);

    // The hosted sign-up page shows it inline.
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let html = c
        .get(server.url("/sign-up"))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("html");
    let mut fields = Form::parse(&html).expect("form").hidden;
    for (k, v) in [
        ("name", "Ethan Rayne"),
        ("email", "ethan@example.com"),
        ("password", BREACHED),
    ] {
        fields.push((k.into(), v.into()));
    }
    let r = c
        .post(server.url("/sign-up"))
        .form(&fields)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 400);
    let body = r.text().await.expect("body");
    assert!(
        body.contains("role=\"alert\"") && body.contains("data breach"),
        "{body}"
    );
    assert!(!body.contains(BREACHED), "the password is echoed");
    assert_eq!(users(&server).await, 1);

    assert_prefix_only(&pwned, &[BREACHED, PADDED, CLEAN, "Another-Clean-Pass-3"]);
}

/// Sign-up with a breached password while the service fails in `mode`: allowed when
/// failing open, 503 `PASSWORD_CHECK_UNAVAILABLE` with nothing written when closed.
async fn during_outage(open: &TestServer, closed: &TestServer, what: &str, n: usize) {
    let started = Instant::now();
    let (s, v) = post(
        closed,
        SIGN_UP,
        sign_up_body(&format!("closed{n}@example.com"), BREACHED),
        None,
    )
    .await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (503, Some("PASSWORD_CHECK_UNAVAILABLE")),
        "{what}: {v}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{what}: the timeout was not applied"
    );
    assert_eq!(users(closed).await, 0, "{what}");
    let (s, v) = post(
        open,
        SIGN_UP,
        sign_up_body(&format!("open{n}@example.com"), BREACHED),
        None,
    )
    .await;
    assert_eq!(s, 200, "{what}: {v}");
    assert_eq!(users(open).await, n as i64, "{what}");
}

async fn fail_open_and_closed(db: Db) {
    let (mut p_open, mut p_closed) = (Pwned::start().await, Pwned::start().await);
    let open = start(db, &p_open, true).await;
    let closed = start(db, &p_closed, false).await;
    for p in [&p_open, &p_closed] {
        p.mode.store(FAIL_500, Ordering::SeqCst);
    }
    during_outage(&open, &closed, "500", 1).await;
    for p in [&p_open, &p_closed] {
        p.mode.store(SLOW, Ordering::SeqCst);
    }
    during_outage(&open, &closed, "slow", 2).await;
    p_open.stop().await;
    p_closed.stop().await;
    during_outage(&open, &closed, "down", 3).await;
    assert_eq!(
        p_closed.requests().len(),
        2,
        "one request per answered sign-up"
    );
}

async fn disabled_makes_no_request(db: Db) {
    let pwned = Pwned::start().await;
    let base = pwned.base.clone();
    let server = TestServer::start_with(db, move |c| {
        c.breach.base_url = base;
    })
    .await;
    assert!(!server.state.config.breach.enabled, "off by default");
    let (s, v) = post(
        &server,
        SIGN_UP,
        sign_up_body("angel@example.com", BREACHED),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(pwned.requests().is_empty(), "{:?}", pwned.requests());
}

/// `min_count`: a password seen fewer times is allowed.
async fn min_count_threshold(db: Db) {
    let pwned = Pwned::start().await;
    let base = pwned.base.clone();
    let server = TestServer::start_with(db, move |c| {
        c.breach.enabled = true;
        c.breach.base_url = base;
        c.breach.min_count = 43;
    })
    .await;
    let (s, v) = post(
        &server,
        SIGN_UP,
        sign_up_body("spike@example.com", BREACHED),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(pwned.requests().len(), 1);
}

fn jar() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The value of the hidden input `name` on a page.
fn hidden(html: &str, name: &str) -> String {
    let pat = format!("name=\"{name}\" value=\"");
    let i = html
        .find(&pat)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + pat.len();
    let j = html[i..].find('"').expect("quote") + i;
    html[i..j]
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&amp;", "&")
}

async fn page(c: &reqwest::Client, url: String) -> String {
    let r = c.get(url).send().await.expect("GET");
    assert_eq!(r.status(), 200);
    r.text().await.expect("html")
}

/// POSTs a hosted form; expects 400 with the breach message inline.
async fn form_refused(c: &reqwest::Client, url: String, fields: &[(&str, &str)]) {
    let r = c.post(url).form(fields).send().await.expect("POST");
    assert_eq!(r.status(), 400);
    let body = r.text().await.expect("body");
    assert!(
        body.contains("role=\"alert\"") && body.contains("data breach"),
        "{body}"
    );
    assert!(!body.contains(BREACHED), "the password is echoed");
}

/// The hosted `/account/password` and `/reset-password` forms show the refusal inline
/// and change nothing.
async fn hosted_pages_refuse(db: Db) {
    let pwned = Pwned::start().await;
    let server = start(db, &pwned, true).await;
    let email = "joyce@example.com";
    let user = klard_auth::accounts::create_user(
        &server.state,
        json!({ "email": email, "password": CLEAN, "email_verified": true }),
    )
    .await
    .expect("user");
    let hash = hash_of(&server, email).await;
    let c = jar();
    let login = page(&c, server.url("/login?return_to=%2Faccount%2Fpassword")).await;
    let csrf = hidden(&login, "csrf_token");
    let r = c
        .post(server.url("/login"))
        .form(&[
            ("return_to", "/account/password"),
            ("csrf_token", csrf.as_str()),
            ("username", email),
            ("password", CLEAN),
        ])
        .send()
        .await
        .expect("POST login");
    assert_eq!(r.status(), 303);
    let form = page(&c, server.url("/account/password")).await;
    let csrf = hidden(&form, "csrf_token");
    form_refused(
        &c,
        server.url("/account/password"),
        &[
            ("csrf_token", csrf.as_str()),
            ("current_password", CLEAN),
            ("new_password", BREACHED),
            ("confirm_password", BREACHED),
        ],
    )
    .await;
    assert_eq!(hash_of(&server, email).await, hash);

    let token = verifications::issue(
        &server.state.db,
        Purpose::ResetPassword,
        &user.id,
        &json!({}),
        3600,
        server.state.clock.now(),
    )
    .await
    .expect("issue");
    let b = jar();
    let form = page(&b, server.url(&format!("/reset-password?token={token}"))).await;
    let csrf = hidden(&form, "csrf_token");
    form_refused(
        &b,
        server.url("/reset-password"),
        &[
            ("token", token.as_str()),
            ("csrf_token", csrf.as_str()),
            ("new_password", BREACHED),
            ("confirm_password", BREACHED),
        ],
    )
    .await;
    assert_eq!(hash_of(&server, email).await, hash);
    assert!(
        klard_auth::password_change::check_token(&server.state, &token)
            .await
            .expect("peek")
            .is_ok(),
        "the reset token was spent"
    );
}

db_tests!(
    refused_on_every_route,
    hosted_pages_refuse,
    fail_open_and_closed,
    disabled_makes_no_request,
    min_count_threshold,
);
