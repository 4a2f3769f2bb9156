//! CAPTCHA verification (issue 4, `[captcha]`) against a local fake siteverify server
//! that answers like Turnstile, hCaptcha and reCAPTCHA do (`success`, `error-codes`,
//! v3 `score` and `action`) by the token it is sent, and records every posted form
//! (content type, `secret`, `response`, `remoteip`). Checked: each provider's request
//! shape; missing, refused, low-score and wrong-action tokens refused with Better
//! Auth's status and code and nothing written; a provider that is down or garbled is
//! 503 (fail closed); unlisted endpoints and provider `none` are not checked; the
//! hosted sign-up and login forms read the provider's own form field.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use klard_auth::config::CaptchaProvider;
use serde_json::{Value, json};

use crate::support::*;

const SIGN_UP: &str = "/api/auth/sign-up/email";
const SIGN_IN: &str = "/api/auth/sign-in/email";
const RESET: &str = "/api/auth/request-password-reset";
const PASSWORD: &str = "Sunnydale-Library-1997";

/// One posted form: the fake's path, its content type and its fields.
#[derive(Debug, Clone)]
struct Posted {
    path: String,
    content_type: String,
    form: HashMap<String, String>,
}

type Seen = Arc<Mutex<Vec<Posted>>>;

/// The fake verifier: `POST /{provider}` answers by the `response` token.
struct Verifier {
    base: String,
    seen: Seen,
    task: tokio::task::JoinHandle<()>,
}

/// The answer a real provider gives for `token` (reCAPTCHA v3 adds score and action;
/// the others ignore those fields, and so must the check).
fn answer(token: &str) -> axum::response::Response {
    let close = [(header::CONNECTION, "close")];
    let v = match token {
        "pass" => {
            json!({ "success": true, "hostname": "localhost", "score": 0.9, "action": "sign_up" })
        }
        "low" => {
            json!({ "success": true, "hostname": "localhost", "score": 0.2, "action": "sign_up" })
        }
        "edge" => {
            json!({ "success": true, "hostname": "localhost", "score": 0.5, "action": "sign_up" })
        }
        "wrong-action" => json!({ "success": true, "score": 0.9, "action": "login" }),
        "garbled" => return (close, "<html>oops</html>").into_response(),
        _ => json!({ "success": false, "error-codes": ["invalid-input-response"] }),
    };
    (close, axum::Json(v)).into_response()
}

async fn verify(
    AxState(seen): AxState<Seen>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let token = form.get("response").cloned().unwrap_or_default();
    seen.lock().expect("seen").push(Posted {
        path: format!("/{provider}"),
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        form,
    });
    answer(&token)
}

impl Verifier {
    async fn start() -> Verifier {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let seen: Seen = Arc::default();
        let app = axum::Router::new()
            .route("/{provider}", axum::routing::post(verify))
            .with_state(seen.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Verifier { base, seen, task }
    }

    fn posted(&self) -> Vec<Posted> {
        self.seen.lock().expect("seen").clone()
    }

    /// Stops listening: the port refuses connections from now on.
    async fn stop(&mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn name(p: CaptchaProvider) -> &'static str {
    match p {
        CaptchaProvider::None => "none",
        CaptchaProvider::Turnstile => "turnstile",
        CaptchaProvider::Hcaptcha => "hcaptcha",
        CaptchaProvider::RecaptchaV2 => "recaptcha_v2",
        CaptchaProvider::RecaptchaV3 => "recaptcha_v3",
    }
}

/// A server whose `[captcha]` asks `verifier` as `provider` on `endpoints` (None:
/// the defaults).
async fn start(
    db: Db,
    verifier: &Verifier,
    provider: CaptchaProvider,
    endpoints: Option<&[&str]>,
) -> TestServer {
    let url = format!("{}/{}", verifier.base, name(provider));
    let endpoints = endpoints.map(|e| e.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    TestServer::start_with(db, move |c| {
        c.captcha.provider = provider;
        c.captcha.secret_key = format!("secret-{}", name(provider));
        c.captcha.verify_url = Some(url);
        c.captcha.timeout_ms = 500;
        if provider == CaptchaProvider::RecaptchaV3 {
            c.captcha.action = Some("sign_up".into());
        }
        if let Some(e) = endpoints {
            c.captcha.endpoints = e;
        }
    })
    .await
}

async fn post(server: &TestServer, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
    let mut rb = server.http().post(server.url(path)).json(&body);
    if let Some(t) = token {
        rb = rb.header("x-captcha-response", t);
    }
    let r = rb.send().await.expect("POST");
    let s = r.status().as_u16();
    (s, r.json::<Value>().await.unwrap_or(Value::Null))
}

async fn count(server: &TestServer, table: &str) -> i64 {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) AS n FROM {table}"
    )))
    .fetch_one(&server.state.db.pool)
    .await
    .expect("count");
    sqlx::Row::try_get::<i64, _>(&row, "n").expect("n")
}

/// Rows of every table a refused request could have written to.
async fn written(server: &TestServer) -> [i64; 4] {
    [
        count(server, "users").await,
        count(server, "sessions").await,
        count(server, "mail_outbox").await,
        count(server, "verification_tokens").await,
    ]
}

fn sign_up_body(email: &str) -> Value {
    json!({ "name": "Rupert Giles", "email": email, "password": PASSWORD })
}

fn assert_refused(got: (u16, Value), status: u16, code: &str) {
    assert_eq!(
        (got.0, got.1["code"].as_str()),
        (status, Some(code)),
        "{}",
        got.1
    );
    assert!(
        got.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        got.1
    );
}

async fn each_provider_request_shape(db: Db) {
    let verifier = Verifier::start().await;
    for (i, provider) in [
        CaptchaProvider::Turnstile,
        CaptchaProvider::Hcaptcha,
        CaptchaProvider::RecaptchaV2,
        CaptchaProvider::RecaptchaV3,
    ]
    .into_iter()
    .enumerate()
    {
        let server = start(db, &verifier, provider, None).await;
        let (s, v) = post(
            &server,
            SIGN_UP,
            sign_up_body("giles@example.com"),
            Some("pass"),
        )
        .await;
        assert_eq!(s, 200, "{}: {v}", name(provider));
        assert_eq!(count(&server, "users").await, 1);
        let posted = verifier.posted();
        assert_eq!(posted.len(), i + 1, "{}", name(provider));
        let p = &posted[i];
        assert_eq!(p.path, format!("/{}", name(provider)));
        assert_eq!(p.content_type, "application/x-www-form-urlencoded");
        let want: HashMap<String, String> = [
            ("secret", format!("secret-{}", name(provider))),
            ("response", "pass".to_string()),
            ("remoteip", "127.0.0.1".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(p.form, want, "{}", name(provider));
        drop(server);
    }
}

async fn refusals_write_nothing(db: Db) {
    let mut verifier = Verifier::start().await;
    let server = start(db, &verifier, CaptchaProvider::Turnstile, None).await;
    let body = sign_up_body("giles@example.com");
    // Missing (or blank) token: 400, no request to the provider.
    assert_refused(
        post(&server, SIGN_UP, body.clone(), None).await,
        400,
        "MISSING_RESPONSE",
    );
    assert_refused(
        post(&server, SIGN_UP, body.clone(), Some("  ")).await,
        400,
        "MISSING_RESPONSE",
    );
    assert!(verifier.posted().is_empty());
    // Refused by the provider: 403.
    assert_refused(
        post(&server, SIGN_UP, body.clone(), Some("bad")).await,
        403,
        "VERIFICATION_FAILED",
    );
    // Garbled answer: 503.
    assert_refused(
        post(&server, SIGN_UP, body.clone(), Some("garbled")).await,
        503,
        "UNKNOWN_ERROR",
    );
    assert_eq!(written(&server).await, [0, 0, 0, 0]);

    // Success creates the account; sign-in and reset are protected by default too.
    let (s, v) = post(&server, SIGN_UP, body.clone(), Some("pass")).await;
    assert_eq!(s, 200, "{v}");
    // The sign-up's verification mail may be queued after the answer: wait for it.
    let mut before = written(&server).await;
    for _ in 0..50 {
        if before[2] > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        before = written(&server).await;
    }
    assert_eq!(before[0], 1);
    let creds = json!({ "email": "giles@example.com", "password": PASSWORD });
    assert_refused(
        post(&server, SIGN_IN, creds.clone(), None).await,
        400,
        "MISSING_RESPONSE",
    );
    assert_refused(
        post(&server, SIGN_IN, creds.clone(), Some("bad")).await,
        403,
        "VERIFICATION_FAILED",
    );
    let reset = json!({ "email": "giles@example.com" });
    assert_refused(
        post(&server, RESET, reset.clone(), None).await,
        400,
        "MISSING_RESPONSE",
    );
    assert_refused(
        post(&server, RESET, reset.clone(), Some("bad")).await,
        403,
        "VERIFICATION_FAILED",
    );
    assert_eq!(
        written(&server).await,
        before,
        "a refused request wrote rows"
    );
    let (s, v) = post(&server, SIGN_IN, creds.clone(), Some("pass")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(count(&server, "sessions").await, before[1] + 1);

    // Provider down: fail closed.
    verifier.stop().await;
    let before = written(&server).await;
    assert_refused(
        post(&server, SIGN_IN, creds, Some("pass")).await,
        503,
        "UNKNOWN_ERROR",
    );
    assert_refused(
        post(
            &server,
            SIGN_UP,
            sign_up_body("ethan@example.com"),
            Some("pass"),
        )
        .await,
        503,
        "UNKNOWN_ERROR",
    );
    assert_eq!(written(&server).await, before);
}

async fn recaptcha_v3_score_and_action(db: Db) {
    let verifier = Verifier::start().await;
    let server = start(db, &verifier, CaptchaProvider::RecaptchaV3, None).await;
    let body = sign_up_body("giles@example.com");
    assert_refused(
        post(&server, SIGN_UP, body.clone(), Some("low")).await,
        403,
        "VERIFICATION_FAILED",
    );
    assert_refused(
        post(&server, SIGN_UP, body.clone(), Some("wrong-action")).await,
        403,
        "VERIFICATION_FAILED",
    );
    assert_refused(
        post(&server, SIGN_UP, body.clone(), Some("bad")).await,
        403,
        "VERIFICATION_FAILED",
    );
    assert_eq!(written(&server).await, [0, 0, 0, 0]);
    // A score equal to min_score (0.5) passes.
    let (s, v) = post(&server, SIGN_UP, body, Some("edge")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(count(&server, "users").await, 1);
    // The same low score passes for reCAPTCHA v2, which has no score.
    let v2 = start(db, &verifier, CaptchaProvider::RecaptchaV2, None).await;
    let (s, v) = post(&v2, SIGN_UP, sign_up_body("ethan@example.com"), Some("low")).await;
    assert_eq!(s, 200, "{v}");
}

async fn unlisted_endpoints_and_none_unchecked(db: Db) {
    let verifier = Verifier::start().await;
    let server = start(db, &verifier, CaptchaProvider::Hcaptcha, Some(&[SIGN_IN])).await;
    // Sign-up is not listed: no token needed, no request made.
    let (s, v) = post(&server, SIGN_UP, sign_up_body("giles@example.com"), None).await;
    assert_eq!(s, 200, "{v}");
    assert!(verifier.posted().is_empty());
    let creds = json!({ "email": "giles@example.com", "password": PASSWORD });
    assert_refused(
        post(&server, SIGN_IN, creds.clone(), None).await,
        400,
        "MISSING_RESPONSE",
    );
    assert_eq!(count(&server, "sessions").await, 0);
    // Provider none: nothing is checked, whatever the endpoints.
    let plain = TestServer::start_with(db, |_| {}).await;
    let (s, v) = post(&plain, SIGN_UP, sign_up_body("giles@example.com"), None).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(&plain, SIGN_IN, creds, None).await;
    assert_eq!(s, 200, "{v}");
    assert!(verifier.posted().is_empty());
}

/// Posts the hosted form at `page` with `fields` added to its hidden ones.
async fn post_form(
    server: &TestServer,
    c: &reqwest::Client,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let html = c
        .get(server.url(page))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("html");
    let mut form = Form::parse(&html).expect("form").hidden;
    for (k, v) in fields {
        form.push((k.to_string(), v.to_string()));
    }
    let r = c
        .post(server.url(action))
        .form(&form)
        .send()
        .await
        .expect("POST");
    (r.status().as_u16(), r.text().await.expect("body"))
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn hosted_forms_read_the_provider_field(db: Db) {
    let verifier = Verifier::start().await;
    let server = start(
        db,
        &verifier,
        CaptchaProvider::Hcaptcha,
        Some(&["/sign-up", "/login"]),
    )
    .await;
    let c = browser();
    let account = [
        ("name", "Ethan Rayne"),
        ("email", "ethan@example.com"),
        ("password", PASSWORD),
    ];
    // No field: the form again with the message, nothing written.
    let (s, body) = post_form(&server, &c, "/sign-up", "/sign-up", &account).await;
    assert_eq!(s, 400);
    assert!(
        body.contains("role=\"alert\"") && body.contains("Missing CAPTCHA response"),
        "{body}"
    );
    assert!(!body.contains(PASSWORD), "the password is echoed");
    // Another provider's field does not count.
    let mut wrong = account.to_vec();
    wrong.push(("g-recaptcha-response", "pass"));
    let (s, _) = post_form(&server, &c, "/sign-up", "/sign-up", &wrong).await;
    assert_eq!(s, 400);
    let mut bad = account.to_vec();
    bad.push(("h-captcha-response", "bad"));
    let (s, body) = post_form(&server, &c, "/sign-up", "/sign-up", &bad).await;
    assert_eq!(s, 403);
    assert!(body.contains("Captcha verification failed"), "{body}");
    assert_eq!(written(&server).await, [0, 0, 0, 0]);
    let mut good = account.to_vec();
    good.push(("h-captcha-response", "pass"));
    let (s, body) = post_form(&server, &c, "/sign-up", "/sign-up", &good).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(count(&server, "users").await, 1);
    let posted = verifier.posted();
    assert_eq!(posted.len(), 2);
    assert_eq!(
        posted[1].form.get("response").map(String::as_str),
        Some("pass")
    );
    // The API route is not listed here.
    let (s, v) = post(&server, SIGN_UP, sign_up_body("giles@example.com"), None).await;
    assert_eq!(s, 200, "{v}");

    // The standalone login form.
    let c = browser();
    let page = "/login?return_to=/account";
    let creds = [("username", "ethan@example.com"), ("password", PASSWORD)];
    let sessions = count(&server, "sessions").await;
    let (s, body) = post_form(&server, &c, page, "/login", &creds).await;
    assert_eq!(s, 400);
    assert!(body.contains("Missing CAPTCHA response"), "{body}");
    assert_eq!(count(&server, "sessions").await, sessions);
    let mut good = creds.to_vec();
    good.push(("h-captcha-response", "pass"));
    let (s, body) = post_form(&server, &c, page, "/login", &good).await;
    assert_eq!(s, 303, "{body}");
    assert_eq!(count(&server, "sessions").await, sessions + 1);
}

db_tests!(
    each_provider_request_shape,
    refusals_write_nothing,
    recaptcha_v3_score_and_action,
    unlisted_endpoints_and_none_unchecked,
    hosted_forms_read_the_provider_field,
);

#[test]
fn config_defaults_and_validation() {
    use klard_auth::config::Config;
    let d = Config::from_toml("").expect("defaults");
    assert_eq!(d.captcha.provider, CaptchaProvider::None);
    assert_eq!(d.captcha.min_score, 0.5);
    assert_eq!(d.captcha.timeout_ms, 3000);
    assert_eq!(d.captcha.endpoints, [SIGN_UP, SIGN_IN, RESET]);
    for (provider, url) in [
        (
            "turnstile",
            "https://challenges.cloudflare.com/turnstile/v0/siteverify",
        ),
        ("hcaptcha", "https://api.hcaptcha.com/siteverify"),
        (
            "recaptcha_v2",
            "https://www.google.com/recaptcha/api/siteverify",
        ),
        (
            "recaptcha_v3",
            "https://www.google.com/recaptcha/api/siteverify",
        ),
    ] {
        let c = Config::from_toml(&format!(
            "[captcha]\nprovider = \"{provider}\"\nsecret_key = \"s\""
        ))
        .expect(provider);
        assert_eq!(c.captcha.verify_url(), url);
        assert!(
            !format!("{:?}", c.captcha).contains("\"s\""),
            "secret in Debug"
        );
    }
    for (toml, field) in [
        ("provider = \"turnstile\"", "captcha.secret_key"),
        ("verify_url = \"ftp://x\"", "captcha.verify_url"),
        ("min_score = 1.5", "captcha.min_score"),
        ("timeout_ms = 0", "captcha.timeout_ms"),
        ("endpoints = [\"/api/auth/sign-out\"]", "captcha.endpoints"),
        ("provider = \"funcaptcha\"", "provider"),
    ] {
        let e = Config::from_toml(&format!("[captcha]\n{toml}"))
            .expect_err(toml)
            .to_string();
        assert!(e.contains(field), "{toml}: {e}");
    }
}
