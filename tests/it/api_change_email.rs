//! Email change through `/api/auth/change-email` and the hosted page `/account/email`,
//! against a real SMTP server: the mails are read (both parts, the locale), their links
//! followed to confirm and to revert; the negative paths leave the database as it was.

use klard_auth::config::{ClientConfig, Config};
use klard_auth::store::verifications::{self, Purpose};
use klard_auth::store::{lifecycle, users};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use crate::smtp::{Mail, SmtpServer, free_port, smtp_to};
use crate::support::*;

pub const EMAIL: &str = "tara@example.com";
pub const NEW_EMAIL: &str = "tara.maclay@example.org";
pub const CLIENT: &str = "klard-app";
pub const CLIENT_SECRET: &str = "klard-app-secret-0123456789";

/// A server mailing to a fresh aiosmtpd, with a first-party client for
/// `/api/auth/token` and a web client for the code flow.
pub async fn server_with_mail(db: Db, tweak: impl FnOnce(&mut Config)) -> (TestServer, SmtpServer) {
    let port = free_port();
    let smtp = SmtpServer::start(port).await;
    let server = TestServer::start_with(db, |c| {
        smtp_to(port)(c);
        c.clients.push(ClientConfig {
            client_id: CLIENT.into(),
            client_secret: Some(CLIENT_SECRET.into()),
            client_name: Some("Klard".into()),
            redirect_uris: vec![CB.into()],
            first_party: true,
            ..ClientConfig::default()
        });
        c.api_auth.client_id = Some(CLIENT.into());
        tweak(c);
    })
    .await;
    (server, smtp)
}

/// A user whose `locale` claim is `locale`.
pub async fn user_in(server: &TestServer, email: &str, locale: &str) -> users::User {
    klard_auth::accounts::create_user(
        &server.state,
        json!({ "email": email, "password": PASSWORD, "email_verified": true,
                "name": "Tara Maclay", "locale": locale }),
    )
    .await
    .expect("user")
}

pub async fn call(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    bearer: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut rb = server.http().request(method, server.url(path));
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    if let Some(t) = bearer {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.expect("request");
    let s = r.status();
    let h = r.headers().clone();
    (s, h, r.json::<Value>().await.unwrap_or(Value::Null))
}

pub async fn post(
    server: &TestServer,
    path: &str,
    body: Value,
    bearer: Option<&str>,
) -> (StatusCode, Value) {
    let (s, _, v) = call(server, reqwest::Method::POST, path, Some(body), bearer).await;
    (s, v)
}

pub async fn get(server: &TestServer, path: &str, bearer: Option<&str>) -> (StatusCode, Value) {
    let (s, _, v) = call(server, reqwest::Method::GET, path, None, bearer).await;
    (s, v)
}

/// Signs in through the API (bearer mode); the session token, or the status.
pub async fn sign_in(server: &TestServer, email: &str) -> Result<String, StatusCode> {
    let (s, h, _) = call(
        server,
        reqwest::Method::POST,
        "/api/auth/sign-in/email",
        Some(json!({ "email": email, "password": PASSWORD })),
        None,
    )
    .await;
    if s != StatusCode::OK {
        return Err(s);
    }
    Ok(h.get("set-auth-token")
        .and_then(|v| v.to_str().ok())
        .expect("set-auth-token")
        .to_string())
}

pub fn assert_error(got: &(StatusCode, Value), status: u16, code: &str) {
    assert_eq!(got.0.as_u16(), status, "{}", got.1);
    assert_eq!(got.1["code"], code, "{}", got.1);
    assert!(
        got.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        got.1
    );
}

/// The messages delivered to `to`, once there are `n` of them.
pub async fn mails_to(smtp: &SmtpServer, to: &str, n: usize) -> Vec<Mail> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let m: Vec<Mail> = smtp
            .messages()
            .into_iter()
            .filter(|m| m.to.contains(to))
            .collect();
        if m.len() >= n {
            return m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expected {n} messages to {to}, have {}",
            m.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The one link of a message's plain-text part, checked to be in the HTML part too.
pub fn link_in(m: &Mail) -> String {
    let text = m.part("text/plain");
    let links: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("http://") || l.starts_with("https://"))
        .collect();
    assert_eq!(links.len(), 1, "{text}");
    let html = m.part("text/html");
    assert!(html.contains(&links[0].replace('&', "&#38;")), "{html}");
    links[0].to_string()
}

/// `path?query` of a link, for `server.url`.
pub fn path_of(link: &str) -> String {
    let u = url::Url::parse(link).expect("link");
    format!("{}?{}", u.path(), u.query().unwrap_or(""))
}

pub async fn count(server: &TestServer, sql: &str, arg: &str) -> i64 {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(arg.to_string())
        .fetch_one(&server.state.db.pool)
        .await
        .expect("count")
        .try_get::<i64, _>(0)
        .expect("count value")
}

async fn open_tokens(server: &TestServer, user: &str, purpose: Purpose) -> i64 {
    count(
        server,
        &format!(
            "SELECT COUNT(*) FROM verification_tokens WHERE user_id = $1 AND purpose = '{}' AND used_at IS NULL",
            purpose.as_str()
        ),
        user,
    )
    .await
}

async fn email_of(server: &TestServer, id: &str) -> users::User {
    users::by_id(&server.state.db, id)
        .await
        .expect("db")
        .expect("user")
}

async fn change_confirm_and_revert(db: Db) {
    let (server, smtp) = server_with_mail(db, |_| {}).await;
    let user = user_in(&server, EMAIL, "de-DE").await;
    let st = sign_in(&server, EMAIL).await.expect("sign in");
    let other = sign_in(&server, EMAIL).await.expect("second session");
    let got = post(
        &server,
        "/api/auth/change-email",
        json!({ "newEmail": "Tara.Maclay@Example.org", "callbackURL": "/welcome" }),
        Some(&st),
    )
    .await;
    assert_eq!(got, (StatusCode::OK, json!({ "status": true })));
    // Nothing switches before the new address is proven.
    assert_eq!(email_of(&server, &user.id).await.email, EMAIL);

    let m = mails_to(&smtp, NEW_EMAIL, 1).await.remove(0);
    assert_eq!(
        m.subject,
        "Bestätigen Sie Ihre neue E-Mail-Adresse für Klard Test"
    );
    assert!(m.part("text/html").contains("<html lang=\"de\">"));
    assert!(
        m.part("text/plain").contains("Neue Adresse") || m.part("text/plain").contains(NEW_EMAIL)
    );
    let confirm = link_in(&m);
    assert!(
        confirm.starts_with(&server.url("/api/auth/change-email/confirm?token=")),
        "{confirm}"
    );
    assert!(confirm.contains("callbackURL=%2Fwelcome"), "{confirm}");

    server.state.clock.advance(5);
    let r = server.http().get(&confirm).send().await.expect("confirm");
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(r.headers()["location"], "/welcome");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let changed = email_of(&server, &user.id).await;
    assert_eq!(changed.email, NEW_EMAIL);
    assert!(changed.email_verified);
    assert!(changed.updated_at > user.updated_at);
    // revoke_sessions is off: both sessions live on.
    assert_eq!(
        get(&server, "/api/auth/get-session", Some(&other)).await.1["user"]["email"],
        NEW_EMAIL
    );
    // Sign-in follows the address.
    assert_eq!(
        sign_in(&server, EMAIL).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    sign_in(&server, NEW_EMAIL)
        .await
        .expect("new address signs in");
    // The link works once.
    let r = server
        .http()
        .get(
            server
                .url(&path_of(&confirm))
                .replace("&callbackURL=%2Fwelcome", ""),
        )
        .send()
        .await
        .expect("again");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // The old address is told, in German, with the revert link.
    let notice = mails_to(&smtp, EMAIL, 1).await.remove(0);
    assert_eq!(
        notice.subject,
        "Die E-Mail-Adresse Ihres Klard Test-Kontos wurde geändert"
    );
    assert!(notice.part("text/plain").contains(NEW_EMAIL));
    assert!(notice.part("text/plain").contains("rückgängig"));
    let revert = link_in(&notice);
    assert!(revert.starts_with(&server.url("/api/auth/change-email/revert?token=")));

    // A browser gets a page; the account is back and signed out everywhere.
    let r = server
        .http()
        .get(&revert)
        .header("accept", "text/html")
        .send()
        .await
        .expect("revert");
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.expect("page");
    assert!(page.contains("Email change undone"), "{page}");
    let back = email_of(&server, &user.id).await;
    assert_eq!(back.email, EMAIL);
    assert!(back.email_verified);
    for t in [&st, &other] {
        assert_eq!(
            get(&server, "/api/auth/get-session", Some(t)).await.1,
            Value::Null
        );
    }
    sign_in(&server, EMAIL)
        .await
        .expect("old address signs in again");
    // Spent, and of no use at the confirm endpoint either (wrong purpose).
    let (s, v) = get(&server, &path_of(&revert), None).await;
    assert_error(&(s, v), 400, "INVALID_TOKEN");
    let wrong = path_of(&revert).replace("/revert?", "/confirm?");
    assert_error(&get(&server, &wrong, None).await, 400, "INVALID_TOKEN");
}

async fn change_email_refusals(db: Db) {
    let (server, smtp) = server_with_mail(db, |_| {}).await;
    let user = user_in(&server, EMAIL, "en").await;
    let taken = user_in(&server, "willow@example.com", "en").await;
    let st = sign_in(&server, EMAIL).await.expect("sign in");
    let path = "/api/auth/change-email";
    assert_error(
        &post(&server, path, json!({ "newEmail": NEW_EMAIL }), None).await,
        401,
        "UNAUTHORIZED",
    );
    assert_error(
        &post(
            &server,
            path,
            json!({ "newEmail": " TARA@example.com " }),
            Some(&st),
        )
        .await,
        400,
        "EMAIL_IS_THE_SAME",
    );
    assert_error(
        &post(
            &server,
            path,
            json!({ "newEmail": "not-an-address" }),
            Some(&st),
        )
        .await,
        400,
        "INVALID_EMAIL",
    );
    assert_error(
        &post(&server, path, json!({ "email": NEW_EMAIL }), Some(&st)).await,
        400,
        "VALIDATION_ERROR",
    );
    assert_error(
        &post(
            &server,
            path,
            json!({ "newEmail": NEW_EMAIL, "callbackURL": "https://evil.example/x" }),
            Some(&st),
        )
        .await,
        403,
        "INVALID_CALLBACK_URL",
    );
    assert_eq!(
        open_tokens(&server, &user.id, Purpose::ChangeEmail).await,
        0
    );
    assert_eq!(
        count(
            &server,
            "SELECT COUNT(*) FROM mail_outbox WHERE recipient <> $1",
            ""
        )
        .await,
        0
    );

    // An address with an account: the same answer, no token, a notice to its owner.
    assert_eq!(
        post(
            &server,
            path,
            json!({ "newEmail": "willow@example.com" }),
            Some(&st)
        )
        .await,
        (StatusCode::OK, json!({ "status": true }))
    );
    assert_eq!(
        open_tokens(&server, &user.id, Purpose::ChangeEmail).await,
        0
    );
    let m = mails_to(&smtp, "willow@example.com", 1).await.remove(0);
    assert_eq!(
        m.subject,
        "Your email address was not added to another Klard Test account"
    );
    assert!(
        !m.part("text/plain").contains("token="),
        "{}",
        m.part("text/plain")
    );
    assert!(!m.part("text/html").contains("token="));
    assert_eq!(email_of(&server, &user.id).await.email, EMAIL);
    assert_eq!(
        email_of(&server, &taken.id).await.email,
        "willow@example.com"
    );

    // Disabled: refused before anything is written.
    drop(server);
    let (server, _smtp2) = server_with_mail(db, |c| c.email_change.enabled = false).await;
    let user = user_in(&server, EMAIL, "en").await;
    let st = sign_in(&server, EMAIL).await.expect("sign in");
    assert_error(
        &post(&server, path, json!({ "newEmail": NEW_EMAIL }), Some(&st)).await,
        400,
        "CHANGE_EMAIL_DISABLED",
    );
    assert_eq!(
        open_tokens(&server, &user.id, Purpose::ChangeEmail).await,
        0
    );
}

async fn change_links_fail_cleanly(db: Db) {
    let (server, smtp) = server_with_mail(db, |_| {}).await;
    let user = user_in(&server, EMAIL, "en").await;
    let st = sign_in(&server, EMAIL).await.expect("sign in");
    let request = |to: &'static str| {
        let st = st.clone();
        let server = &server;
        async move {
            let got = post(
                server,
                "/api/auth/change-email",
                json!({ "newEmail": to }),
                Some(&st),
            )
            .await;
            assert_eq!(got.0, StatusCode::OK, "{}", got.1);
        }
    };
    // Only the newest link works.
    request("first@example.org").await;
    request(NEW_EMAIL).await;
    let first = link_in(&mails_to(&smtp, "first@example.org", 1).await[0]);
    assert_error(
        &get(&server, &path_of(&first), None).await,
        400,
        "INVALID_TOKEN",
    );
    // The address is taken meanwhile: 409, and nothing happened (no switch, no notice,
    // no revert token, the link not spent).
    let link = link_in(&mails_to(&smtp, NEW_EMAIL, 1).await[0]);
    let squatter = user_in(&server, NEW_EMAIL, "en").await;
    let outbox_before = count(
        &server,
        "SELECT COUNT(*) FROM mail_outbox WHERE recipient <> $1",
        "",
    )
    .await;
    assert_error(
        &get(&server, &path_of(&link), None).await,
        409,
        "EMAIL_ALREADY_IN_USE",
    );
    assert_eq!(email_of(&server, &user.id).await.email, EMAIL);
    assert_eq!(email_of(&server, &squatter.id).await.email, NEW_EMAIL);
    assert_eq!(
        open_tokens(&server, &user.id, Purpose::RevertEmail).await,
        0
    );
    assert_eq!(
        open_tokens(&server, &user.id, Purpose::ChangeEmail).await,
        1
    );
    assert_eq!(
        count(
            &server,
            "SELECT COUNT(*) FROM mail_outbox WHERE recipient <> $1",
            ""
        )
        .await,
        outbox_before
    );
    // With a callbackURL, the error goes there.
    let r = server
        .http()
        .get(format!(
            "{}&callbackURL=%2Fdone%3Fx%3D1",
            server.url(&path_of(&link))
        ))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(
        r.headers()["location"],
        "/done?x=1&error=EMAIL_ALREADY_IN_USE"
    );
    // Expired.
    request("third@example.org").await;
    let third = link_in(&mails_to(&smtp, "third@example.org", 1).await[0]);
    server.state.clock.advance(3601);
    assert_error(
        &get(&server, &path_of(&third), None).await,
        400,
        "TOKEN_EXPIRED",
    );
    assert_eq!(email_of(&server, &user.id).await.email, EMAIL);
    // Missing, unknown, wrong purpose.
    assert_error(
        &get(&server, "/api/auth/change-email/confirm", None).await,
        400,
        "INVALID_TOKEN",
    );
    assert_error(
        &get(&server, "/api/auth/change-email/confirm?token=nope", None).await,
        400,
        "INVALID_TOKEN",
    );
    let now = server.state.clock.now();
    let reset = verifications::issue(
        &server.state.db,
        Purpose::ResetPassword,
        &user.id,
        &json!({"newEmail": "x@example.org"}),
        600,
        now,
    )
    .await
    .expect("issue");
    assert_error(
        &get(
            &server,
            &format!("/api/auth/change-email/confirm?token={reset}"),
            None,
        )
        .await,
        400,
        "INVALID_TOKEN",
    );
    assert_error(
        &get(
            &server,
            &format!("/api/auth/change-email/revert?token={reset}"),
            None,
        )
        .await,
        400,
        "INVALID_TOKEN",
    );
    assert_eq!(email_of(&server, &user.id).await.email, EMAIL);
    // A repeated parameter is a bad link, answered as JSON too.
    assert_error(
        &get(
            &server,
            "/api/auth/change-email/confirm?token=a&token=b",
            None,
        )
        .await,
        400,
        "INVALID_TOKEN",
    );
    assert_error(
        &get(
            &server,
            "/api/auth/delete-user/callback?token=a&token=b",
            None,
        )
        .await,
        400,
        "INVALID_TOKEN",
    );
    // A foreign callbackURL is refused before the token is looked at.
    let got = get(
        &server,
        "/api/auth/change-email/confirm?token=x&callbackURL=https%3A%2F%2Fevil.example",
        None,
    )
    .await;
    assert_error(&got, 403, "INVALID_CALLBACK_URL");
}

async fn change_revokes_sessions_and_tokens_when_configured(db: Db) {
    let (server, smtp) = server_with_mail(db, |c| c.email_change.revoke_sessions = true).await;
    let user = user_in(&server, EMAIL, "en").await;
    let (id, secret) = web_client(&server).await;
    let mut browser = Browser::new(EMAIL);
    let tokens = code_flow(
        &server,
        &mut browser,
        &id,
        &secret,
        "openid offline_access",
        &[],
    )
    .await;
    let rt = tokens["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_string();
    let at = tokens["access_token"]
        .as_str()
        .expect("access token")
        .to_string();
    let st = sign_in(&server, EMAIL).await.expect("sign in");
    let other = sign_in(&server, EMAIL).await.expect("other");
    post(
        &server,
        "/api/auth/change-email",
        json!({ "newEmail": NEW_EMAIL }),
        Some(&st),
    )
    .await;
    let link = link_in(&mails_to(&smtp, NEW_EMAIL, 1).await[0]);
    // Opened by the requesting app: its session stays, every other one goes.
    let r = server
        .http()
        .get(&link)
        .bearer_auth(&st)
        .send()
        .await
        .expect("confirm");
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["status"], true);
    assert_eq!(v["user"]["email"], NEW_EMAIL);
    assert_eq!(
        get(&server, "/api/auth/get-session", Some(&st)).await.1["user"]["id"],
        json!(user.id)
    );
    assert_eq!(
        get(&server, "/api/auth/get-session", Some(&other)).await.1,
        Value::Null
    );
    let (s, body, _) = token_basic(
        &server,
        &id,
        &secret,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(
        get(&server, "/userinfo", Some(&at)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        lifecycle::deletion_schedule(&server.state.db, &user.id)
            .await
            .expect("db")
            .is_none()
    );
}

async fn hosted_email_page(db: Db) {
    let (server, smtp) = server_with_mail(db, |_| {}).await;
    let user = user_in(&server, EMAIL, "en").await;
    // Without a session: to the login page.
    let r = server
        .http()
        .get(server.url("/account/email"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login?return_to=/account/email");
    let (id, secret) = web_client(&server).await;
    let mut browser = Browser::new(EMAIL);
    code_flow(&server, &mut browser, &id, &secret, "openid", &[]).await;
    let page = browser
        .http
        .get(server.url("/account/email"))
        .send()
        .await
        .expect("GET");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(html.contains(EMAIL), "{html}");
    let form = Form::parse(&html).expect("form");
    assert_eq!(form.action, "/account/email");
    let csrf = form
        .hidden
        .iter()
        .find(|(k, _)| k == "csrf_token")
        .expect("csrf")
        .1
        .clone();
    // A forged form (no or wrong CSRF token) changes nothing.
    for bad in ["", "forged"] {
        let r = browser
            .http
            .post(server.url("/account/email"))
            .form(&[("csrf_token", bad), ("new_email", NEW_EMAIL)])
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    // A bad address: the form again, with the error.
    let r = browser
        .http
        .post(server.url("/account/email"))
        .form(&[("csrf_token", csrf.as_str()), ("new_email", "nope")])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .expect("html")
            .contains("not a valid email address")
    );
    assert_eq!(
        open_tokens(&server, &user.id, Purpose::ChangeEmail).await,
        0
    );
    let r = browser
        .http
        .post(server.url("/account/email"))
        .form(&[("csrf_token", csrf.as_str()), ("new_email", NEW_EMAIL)])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.expect("html").contains("Check your inbox"));
    let m = mails_to(&smtp, NEW_EMAIL, 1).await.remove(0);
    assert_eq!(m.subject, "Confirm your new email address for Klard Test");
    let link = link_in(&m);
    let r = browser
        .http
        .get(&link)
        .header("accept", "text/html")
        .send()
        .await
        .expect("confirm");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text()
            .await
            .expect("html")
            .contains("Email address changed")
    );
    assert_eq!(email_of(&server, &user.id).await.email, NEW_EMAIL);
}

db_tests!(
    change_confirm_and_revert,
    change_email_refusals,
    change_links_fail_cleanly,
    change_revokes_sessions_and_tokens_when_configured,
    hosted_email_page,
);
