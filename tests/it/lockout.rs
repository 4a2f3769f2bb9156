//! `[lockout]` (issue 4): lock after `lock_after` failures and its expiry, success
//! resetting the counters, unlock by the mailed link (GET confirms only, the POST
//! unlocks once), by the CLI (the real binary) and by the admin API (with its 401/403
//! paths), the new-device and account-locked alerts and their switches, and the
//! CAPTCHA asked only after suspicion. The delay function is unit-tested in
//! `lockout::tests` (no timing here).

use std::process::Command;

use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{Value, json};

use crate::support::*;

const SIGN_IN: &str = "/api/auth/sign-in/email";
const EMAIL: &str = "willow@example.com";

async fn server(db: Db, tweak: impl FnOnce(&mut klard_auth::config::Config)) -> TestServer {
    TestServer::start_with(db, |c| {
        c.lockout.lock_after = 3;
        c.lockout.free_failures = 1;
        tweak(c);
    })
    .await
}

async fn sign_in(server: &TestServer, password: &str, cookie: Option<&str>) -> (u16, HeaderMap) {
    let mut rb = server
        .http()
        .post(server.url(SIGN_IN))
        .json(&json!({ "email": EMAIL, "password": password }));
    if let Some(c) = cookie {
        rb = rb.header("cookie", c).header("origin", server.issuer());
    }
    let r = rb.send().await.expect("sign-in");
    (r.status().as_u16(), r.headers().clone())
}

fn device_cookie(h: &HeaderMap) -> Option<String> {
    h.get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("klard_device="))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
}

async fn lock(server: &TestServer) {
    for _ in 0..3 {
        assert_eq!(sign_in(server, "wrong", None).await.0, 401);
    }
}

/// Queued mails as (recipient, subject, text), oldest first.
async fn mails(server: &TestServer) -> Vec<(String, String, String)> {
    let rows =
        sqlx::query("SELECT recipient, subject, text FROM mail_outbox ORDER BY created_at, id")
            .fetch_all(&server.state.db.pool)
            .await
            .expect("outbox");
    rows.iter()
        .map(|r| {
            use sqlx::Row;
            (
                r.try_get("recipient").expect("recipient"),
                r.try_get("subject").expect("subject"),
                r.try_get("text").expect("text"),
            )
        })
        .collect()
}

async fn subjects(server: &TestServer) -> Vec<String> {
    mails(server).await.into_iter().map(|m| m.1).collect()
}

async fn last_event(server: &TestServer, kind: &str) -> Option<(String, String)> {
    let r = sqlx::query(
        "SELECT actor, data FROM audit_events WHERE event_type = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(kind)
    .fetch_optional(&server.state.db.pool)
    .await
    .expect("event")?;
    use sqlx::Row;
    Some((
        r.try_get("actor").expect("actor"),
        r.try_get("data").expect("data"),
    ))
}

async fn locks_after_n_and_expires(db: Db) {
    let s = server(db, |_| {}).await;
    s.user(EMAIL).await;
    assert_eq!(sign_in(&s, "wrong", None).await.0, 401);
    assert_eq!(sign_in(&s, "wrong", None).await.0, 401);
    // Not locked yet: the right password works and resets the counter ...
    assert_eq!(sign_in(&s, PASSWORD, None).await.0, 200);
    // ... so two more failures still do not lock.
    assert_eq!(sign_in(&s, "wrong", None).await.0, 401);
    assert_eq!(sign_in(&s, "wrong", None).await.0, 401);
    assert_eq!(sign_in(&s, PASSWORD, None).await.0, 200);
    lock(&s).await;
    assert_eq!(sign_in(&s, PASSWORD, None).await.0, 401, "locked");
    let (actor, _) = last_event(&s, "account.locked")
        .await
        .expect("locked event");
    assert_eq!(actor, "system");
    s.state
        .clock
        .advance(s.state.config.lockout.lock_duration + 1);
    assert_eq!(sign_in(&s, PASSWORD, None).await.0, 200, "lock expired");
    assert!(subjects(&s).await.iter().any(|m| m.contains("was locked")));
}

async fn unlock_by_mailed_link(db: Db) {
    let s = server(db, |c| c.lockout.lock_duration = 0).await;
    s.user(EMAIL).await;
    lock(&s).await;
    let (to, subject, text) = mails(&s)
        .await
        .into_iter()
        .find(|m| m.1.contains("was locked"))
        .expect("locked mail");
    assert_eq!((to.as_str(), subject.contains("locked")), (EMAIL, true));
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/unlock-account?token="))
        .expect("unlock link")
        .to_string();
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    // GET only shows the confirmation: a link scanner does not unlock.
    let page = http.get(&link).send().await.expect("GET");
    assert_eq!(page.status().as_u16(), 200);
    let form = Form::parse(&page.text().await.expect("html")).expect("confirm form");
    assert_eq!(
        sign_in(&s, PASSWORD, None).await.0,
        401,
        "GET must not unlock"
    );
    // A POST without the page's CSRF token is refused.
    let token = form
        .hidden
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.clone())
        .expect("token field");
    let r = http
        .post(s.url("/unlock-account"))
        .form(&[("token", token.as_str()), ("csrf_token", "forged")])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(sign_in(&s, PASSWORD, None).await.0, 401);
    let fields = form.hidden.clone();
    let r = http
        .post(s.url("/unlock-account"))
        .form(&fields)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.expect("html").contains("UNLOCKED"));
    let (actor, data) = last_event(&s, "account.unlocked").await.expect("event");
    assert!(actor.starts_with("user:"), "{actor}");
    assert!(data.contains("\"was_locked\":true"), "{data}");
    // Reused: refused.
    let r = http
        .post(s.url("/unlock-account"))
        .form(&fields)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(sign_in(&s, PASSWORD, None).await.0, 200);

    // Expired: refused, and the GET says so too.
    lock(&s).await;
    let text = mails(&s)
        .await
        .into_iter()
        .rfind(|m| m.1.contains("was locked"))
        .expect("second mail")
        .2;
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/unlock-account?token="))
        .expect("link")
        .to_string();
    let page = http.get(&link).send().await.expect("GET");
    let form = Form::parse(&page.text().await.expect("html")).expect("form");
    s.state
        .clock
        .advance(s.state.config.lockout.unlock_token_ttl + 1);
    assert_eq!(
        http.get(&link).send().await.expect("GET").status().as_u16(),
        400
    );
    let fields = form.hidden;
    let r = http
        .post(s.url("/unlock-account"))
        .form(&fields)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        sign_in(&s, PASSWORD, None).await.0,
        401,
        "lock_duration 0 holds"
    );
}

async fn unlock_by_cli(db: Db) {
    let s = server(db, |c| c.lockout.lock_duration = 0).await;
    s.user(EMAIL).await;
    lock(&s).await;
    let cfg = &s.state.config;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("klard.toml");
    std::fs::write(
        &file,
        format!(
            "issuer = \"{}\"\ndata_dir = \"{}\"\ndatabase_url = \"{}\"\nsecret = \"{}\"\n",
            cfg.issuer,
            cfg.data_dir.display(),
            cfg.database_url,
            cfg.secret.clone().expect("secret"),
        ),
    )
    .expect("config");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_klard-auth"))
            .arg("--config")
            .arg(&file)
            .args(args)
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "error")
            .output()
            .expect("run");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, out) = run(&["user", "unlock", "nobody@example.com", "--json"]);
    assert!(!ok, "{out}");
    let (ok, out) = run(&["user", "unlock", EMAIL, "--json"]);
    assert!(ok, "{out}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["was_locked"], true);
    let (actor, _) = last_event(&s, "account.unlocked").await.expect("event");
    assert_eq!(actor, "cli");
    assert_eq!(sign_in(&s, PASSWORD, None).await.0, 200);
}

async fn admin_token(s: &TestServer, scope: &str) -> String {
    let (id, secret) = s
        .client(json!({
            "client_name": "Ops",
            "grant_types": ["client_credentials"],
            "scope": scope,
        }))
        .await;
    let (st, v, _) = token_basic(
        s,
        &id,
        &secret.expect("secret"),
        &[("grant_type", "client_credentials"), ("scope", scope)],
    )
    .await;
    assert_eq!(st, 200, "{v}");
    v["access_token"].as_str().expect("token").to_string()
}

async fn unlock_by_admin_api(db: Db) {
    let s = server(db, |c| c.lockout.lock_duration = 0).await;
    let u = s.user(EMAIL).await;
    lock(&s).await;
    let unlock = s.url(&format!("/admin/users/{}/unlock", u.id));
    let status = s.url(&format!("/admin/users/{}/lockout", u.id));
    let http = s.http();
    // No token: 401 with a bearer challenge.
    let r = http.post(&unlock).send().await.expect("POST");
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    // A token without klard:admin: 403.
    let weak = admin_token(&s, "profile").await;
    let r = http
        .post(&unlock)
        .bearer_auth(&weak)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(sign_in(&s, PASSWORD, None).await.0, 401, "still locked");

    let token = admin_token(&s, "klard:admin").await;
    let v: Value = http
        .get(&status)
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (v["locked"].as_bool(), v["locked_until"].as_i64()),
        (Some(true), Some(-1))
    );
    let r = http
        .post(s.url("/admin/users/no-such-user/unlock"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 404);
    let r = http
        .post(&unlock)
        .bearer_auth(&token)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["was_locked"], true);
    let (actor, _) = last_event(&s, "account.unlocked").await.expect("event");
    assert!(actor.starts_with("admin:"), "{actor}");
    let v: Value = http
        .get(&status)
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(v["locked"], false);
    assert_eq!(sign_in(&s, PASSWORD, None).await.0, 200);
}

async fn new_device_alert_once(db: Db) {
    let s = server(db, |c| c.alerts.new_device = true).await;
    s.user(EMAIL).await;
    let is_alert = |m: &String| m.contains("New sign-in");
    // The first sign-in is no "new device" for an account that has none yet.
    let (st, h) = sign_in(&s, PASSWORD, None).await;
    assert_eq!(st, 200);
    let device = device_cookie(&h).expect("device cookie");
    assert!(!subjects(&s).await.iter().any(is_alert));
    // The known device again: no alert.
    assert_eq!(sign_in(&s, PASSWORD, Some(&device)).await.0, 200);
    assert!(!subjects(&s).await.iter().any(is_alert));
    // Another device: one alert.
    assert_eq!(sign_in(&s, PASSWORD, None).await.0, 200);
    let alerts: Vec<_> = mails(&s)
        .await
        .into_iter()
        .filter(|m| is_alert(&m.1))
        .collect();
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].2.contains("/forgot-password"), "{}", alerts[0].2);

    let off = server(db, |c| c.alerts.new_device = false).await;
    off.user(EMAIL).await;
    assert_eq!(sign_in(&off, PASSWORD, None).await.0, 200);
    assert_eq!(sign_in(&off, PASSWORD, None).await.0, 200);
    assert!(!subjects(&off).await.iter().any(is_alert));
}

async fn no_locked_mail_when_switched_off(db: Db) {
    let s = server(db, |c| c.alerts.account_locked = false).await;
    s.user(EMAIL).await;
    lock(&s).await;
    assert!(last_event(&s, "account.locked").await.is_some());
    assert!(!subjects(&s).await.iter().any(|m| m.contains("locked")));
}

async fn captcha_only_after_suspicion(db: Db) {
    // The provider is unreachable: asking it would be 503, not asking it is a 401.
    let s = server(db, |c| {
        c.lockout.lock_after = 10;
        c.captcha.provider = klard_auth::config::CaptchaProvider::Turnstile;
        c.captcha.secret_key = "s".into();
        c.captcha.verify_url = Some("http://127.0.0.1:9/siteverify".into());
        c.captcha.timeout_ms = 200;
        c.captcha.after_failures = Some(2);
    })
    .await;
    s.user(EMAIL).await;
    assert_eq!(sign_in(&s, "wrong", None).await.0, 401);
    assert_eq!(sign_in(&s, "wrong", None).await.0, 401);
    // Two failures: from now on the CAPTCHA is required.
    let r = s
        .http()
        .post(s.url(SIGN_IN))
        .json(&json!({ "email": EMAIL, "password": PASSWORD }))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["code"], "MISSING_RESPONSE");
    let r = s
        .http()
        .post(s.url(SIGN_IN))
        .header("x-captcha-response", "tok")
        .json(&json!({ "email": EMAIL, "password": PASSWORD }))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 503, "the provider is asked now");
}

db_tests!(
    locks_after_n_and_expires,
    unlock_by_mailed_link,
    unlock_by_cli,
    unlock_by_admin_api,
    new_device_alert_once,
    no_locked_mail_when_switched_off,
    captcha_only_after_suspicion,
);
