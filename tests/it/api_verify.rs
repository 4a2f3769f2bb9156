//! Email verification through `/api/auth` and the hosted pages, against a real SMTP
//! server (aiosmtpd): the mail sent on sign-up (both parts, the locale), the link that
//! verifies, resending, `email_verification.require` on sign-in and the login page, and
//! every refusal (expired, reused, wrong-purpose token, foreign callbackURL, bad bodies)
//! with nothing changed in the database.

use klard_auth::config::Config;
use klard_auth::store::verifications::{self, Purpose};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::smtp::{Mail, SmtpServer, free_port, smtp_to};
use crate::support::*;

pub const EMAIL: &str = "willow@example.com";

/// A server whose mail goes to a fresh aiosmtpd, with `tweak` applied.
pub async fn mail_server(db: Db, tweak: impl FnOnce(&mut Config)) -> (SmtpServer, TestServer) {
    let port = free_port();
    let smtp = SmtpServer::start(port).await;
    let server = TestServer::start_with(db, |c| {
        smtp_to(port)(c);
        tweak(c);
    })
    .await;
    (smtp, server)
}

/// POSTs JSON with optional extra headers; returns status, headers and the JSON body.
pub async fn post_json(
    server: &TestServer,
    path: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut rb = server.http().post(server.url(path)).json(&body);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.expect("POST");
    let s = r.status();
    let h = r.headers().clone();
    (s, h, r.json::<Value>().await.unwrap_or(Value::Null))
}

/// GETs a URL (no redirects followed); returns status, headers and the body as JSON.
pub async fn get_url(
    server: &TestServer,
    url: &str,
    bearer: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut rb = server.http().get(url);
    if let Some(t) = bearer {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.expect("GET");
    let s = r.status();
    let h = r.headers().clone();
    (s, h, r.json::<Value>().await.unwrap_or(Value::Null))
}

pub fn location(h: &reqwest::header::HeaderMap) -> String {
    h.get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The first line of the plain-text part that starts with `prefix`: the link.
pub fn link_in(mail: &Mail, prefix: &str) -> String {
    mail.part("text/plain")
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} link in {}", mail.part("text/plain")))
        .to_string()
}

pub fn query_value(url: &str, key: &str) -> Option<String> {
    url::Url::parse(url)
        .expect("URL")
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

pub async fn count(server: &TestServer, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&server.state.db.pool)
        .await
        .expect("count")
}

pub async fn outbox_count(server: &TestServer) -> i64 {
    count(server, "SELECT COUNT(*) FROM mail_outbox").await
}

async fn sign_up(server: &TestServer, body: Value, lang: &str) -> (StatusCode, Value) {
    let (s, _, v) = post_json(
        server,
        "/api/auth/sign-up/email",
        body,
        &[("accept-language", lang)],
    )
    .await;
    (s, v)
}

fn sign_up_body() -> Value {
    json!({ "name": "Willow Rosenberg", "email": EMAIL, "password": PASSWORD })
}

async fn user(server: &TestServer) -> klard_auth::store::users::User {
    klard_auth::store::users::by_email(&server.state.db, EMAIL)
        .await
        .expect("select")
        .expect("user")
}

async fn sign_in(server: &TestServer, password: &str) -> (StatusCode, Option<String>, Value) {
    let (s, h, v) = post_json(
        server,
        "/api/auth/sign-in/email",
        json!({ "email": EMAIL, "password": password }),
        &[],
    )
    .await;
    let t = h
        .get("set-auth-token")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    (s, t, v)
}

fn jwt_payload(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("payload");
    let bytes = klard_auth::crypto::b64url_decode(part).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

async fn sign_up_mails_a_link_that_verifies(db: Db) {
    let (smtp, server) = mail_server(db, |_| {}).await;
    let (s, v) = sign_up(&server, sign_up_body(), "de-DE,de;q=0.9").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["user"]["emailVerified"], json!(false));
    let mails = smtp.wait_for(1).await;
    let m = &mails[0];
    assert_eq!(m.to, EMAIL);
    assert_eq!(
        m.subject,
        "Bestätigen Sie Ihre E-Mail-Adresse für Klard Test"
    );
    assert_eq!(m.content_type, "multipart/alternative");
    let link = link_in(m, &server.url("/verify-email?token="));
    let html = m.part("text/html");
    assert!(html.contains("<html lang=\"de\">"), "{html}");
    assert!(html.contains("E-Mail-Adresse bestätigen"), "{html}");
    assert!(html.contains(&link.replace('&', "&#38;")), "{html}");
    assert!(m.part("text/plain").contains("help@klard.test"));
    let token = query_value(&link, "token").expect("token");
    // Only the hash is stored.
    let stored = count(
        &server,
        &format!(
            "SELECT COUNT(*) FROM verification_tokens WHERE token_hash = '{}' AND purpose = 'verify_email'",
            klard_auth::crypto::hash_secret(&token)
        ),
    )
    .await;
    assert_eq!(stored, 1);
    assert!(!user(&server).await.email_verified);

    server.state.clock.advance(10);
    let before = user(&server).await.updated_at;
    let (s, _, v) = get_url(
        &server,
        &server.url(&format!("/api/auth/verify-email?token={token}")),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v, json!({ "status": true, "user": null }));
    let u = user(&server).await;
    assert!(u.email_verified);
    assert!(u.updated_at >= before + 10, "{} {}", u.updated_at, before);

    // Spent: a second use is refused and changes nothing.
    let (s, _, v) = get_url(
        &server,
        &server.url(&format!("/api/auth/verify-email?token={token}")),
        None,
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(v["code"], "INVALID_TOKEN");

    // The hosted result page says the same for the spent link.
    let r = server.http().get(&link).send().await.expect("GET");
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("invalid or was already used")
    );

    // The OIDC claim follows: in the ID token when asked for there (OIDC Core §5.5),
    // and at userinfo.
    let (id, secret) = web_client(&server).await;
    let mut browser = Browser::new(EMAIL);
    let claims_param = r#"{"id_token":{"email_verified":null}}"#;
    let tokens = code_flow(
        &server,
        &mut browser,
        &id,
        &secret,
        "openid email",
        &[("claims", claims_param)],
    )
    .await;
    let claims = jwt_payload(tokens["id_token"].as_str().expect("id_token"));
    assert_eq!(claims["email_verified"], json!(true), "{claims}");
    let at = tokens["access_token"].as_str().expect("access_token");
    let (s, _, info) = get_url(&server, &server.url("/userinfo"), Some(at)).await;
    assert_eq!(s, 200, "{info}");
    assert_eq!(info["email_verified"], json!(true), "{info}");
    assert_eq!(info["email"], json!(EMAIL));
}

async fn callback_url_redirects_with_result(db: Db) {
    let (smtp, server) = mail_server(db, |_| {}).await;
    let mut body = sign_up_body();
    body["callbackURL"] = json!("/app/welcome?from=mail");
    let (s, v) = sign_up(&server, body, "en").await;
    assert_eq!(s, 200, "{v}");
    let mails = smtp.wait_for(1).await;
    assert_eq!(
        mails[0].subject,
        "Confirm your email address for Klard Test"
    );
    let link = link_in(&mails[0], &server.url("/api/auth/verify-email?"));
    assert_eq!(
        query_value(&link, "callbackURL").as_deref(),
        Some("/app/welcome?from=mail")
    );
    let (s, h, _) = get_url(&server, &link, None).await;
    assert_eq!(s, 302);
    assert_eq!(location(&h), server.url("/app/welcome?from=mail"));
    assert!(user(&server).await.email_verified);
    // Used again: back to the callback with the error.
    let (s, h, _) = get_url(&server, &link, None).await;
    assert_eq!(s, 302);
    assert_eq!(
        location(&h),
        server.url("/app/welcome?from=mail&error=INVALID_TOKEN")
    );
}

async fn refused_tokens_change_nothing(db: Db) {
    let (smtp, server) = mail_server(db, |_| {}).await;
    let (s, _) = sign_up(&server, sign_up_body(), "en").await;
    assert_eq!(s, 200);
    let mails = smtp.wait_for(1).await;
    let link = link_in(&mails[0], &server.url("/verify-email?token="));
    let token = query_value(&link, "token").expect("token");
    let u0 = user(&server).await;
    let verify = |q: String| server.url(&format!("/api/auth/verify-email?{q}"));

    // A foreign callbackURL is refused before the token is looked at.
    let (s, _, v) = get_url(
        &server,
        &verify(format!(
            "token={token}&callbackURL=https%3A%2F%2Fevil.example%2F"
        )),
        None,
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(v["code"], "INVALID_CALLBACK_URL");
    // No token at all.
    let (s, _, v) = get_url(&server, &verify(String::new()), None).await;
    assert_eq!(s, 400);
    assert_eq!(v["code"], "VALIDATION_ERROR");
    // A token for another purpose (a reset token of the same user).
    let reset = verifications::issue(
        &server.state.db,
        Purpose::ResetPassword,
        &u0.id,
        &json!({}),
        3600,
        server.state.clock.now(),
    )
    .await
    .expect("issue");
    let (s, _, v) = get_url(&server, &verify(format!("token={reset}")), None).await;
    assert_eq!(s, 401);
    assert_eq!(v["code"], "INVALID_TOKEN");
    // An unknown token.
    let (s, _, v) = get_url(&server, &verify("token=nonsense".into()), None).await;
    assert_eq!(s, 401);
    assert_eq!(v["code"], "INVALID_TOKEN");
    // Expired: the clock moves past token_ttl.
    server.state.clock.advance(3601);
    let (s, _, v) = get_url(&server, &verify(format!("token={token}")), None).await;
    assert_eq!(s, 401);
    assert_eq!(v["code"], "TOKEN_EXPIRED");
    let (s, h, _) = get_url(
        &server,
        &verify(format!("token={token}&callbackURL=%2Fdone")),
        None,
    )
    .await;
    assert_eq!(s, 302);
    assert_eq!(location(&h), server.url("/done?error=TOKEN_EXPIRED"));
    let r = server.http().get(&link).send().await.expect("GET");
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("has expired"));

    let u = user(&server).await;
    assert!(!u.email_verified);
    assert_eq!(u.updated_at, u0.updated_at);
    let spent = count(
        &server,
        "SELECT COUNT(*) FROM verification_tokens WHERE used_at IS NOT NULL",
    )
    .await;
    assert_eq!(spent, 0);
}

async fn resend_rules(db: Db) {
    let (smtp, server) = mail_server(db, |c| {
        c.email_verification.send_on_sign_up = false;
    })
    .await;
    let (s, _) = sign_up(&server, sign_up_body(), "en").await;
    assert_eq!(s, 200);
    assert_eq!(outbox_count(&server).await, 0, "send_on_sign_up = false");
    let send = "/api/auth/send-verification-email";

    // Unknown address: the same answer, no mail.
    let (s, _, unknown) =
        post_json(&server, send, json!({ "email": "nobody@example.com" }), &[]).await;
    assert_eq!(s, 200);
    assert_eq!(unknown, json!({ "status": true }));
    assert_eq!(outbox_count(&server).await, 0);
    // Known, unverified: the same answer and a mail.
    let (s, _, known) = post_json(
        &server,
        send,
        json!({ "email": "Willow@Example.com", "callbackURL": "/x" }),
        &[],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(known, unknown);
    let mails = smtp.wait_for(1).await;
    let link = link_in(&mails[0], &server.url("/api/auth/verify-email?"));
    assert_eq!(query_value(&link, "callbackURL").as_deref(), Some("/x"));

    // Bad bodies.
    let (s, _, v) = post_json(&server, send, json!({}), &[]).await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (400, Some("VALIDATION_ERROR"))
    );
    let r = server
        .http()
        .post(server.url(send))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "VALIDATION_ERROR");
    let (s, _, v) = post_json(&server, send, json!({ "email": "not-an-email" }), &[]).await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (400, Some("INVALID_EMAIL"))
    );
    let (s, _, v) = post_json(
        &server,
        send,
        json!({ "email": EMAIL, "callbackURL": "https://evil.example/" }),
        &[],
    )
    .await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (403, Some("INVALID_CALLBACK_URL"))
    );

    // With a session: the address must be the session's, and not yet verified.
    let (s, st, _) = sign_in(&server, PASSWORD).await;
    assert_eq!(s, 200);
    let st = st.expect("set-auth-token");
    let bearer = format!("Bearer {st}");
    let (s, _, v) = post_json(
        &server,
        send,
        json!({ "email": "xander@example.com" }),
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (400, Some("EMAIL_MISMATCH"))
    );
    let (s, _, v) = post_json(
        &server,
        send,
        json!({ "email": EMAIL }),
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let mails = smtp.wait_for(2).await;
    assert_eq!(outbox_count(&server).await, 2);
    let link = link_in(&mails[1], &server.url("/verify-email?token="));
    let (s, _, _) = get_url(
        &server,
        &link.replace("/verify-email?", "/api/auth/verify-email?"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _, v) = post_json(
        &server,
        send,
        json!({ "email": EMAIL }),
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (400, Some("EMAIL_ALREADY_VERIFIED"))
    );
    // Without a session a verified address gets the usual answer and no mail.
    let (s, _, v) = post_json(&server, send, json!({ "email": EMAIL }), &[]).await;
    assert_eq!((s, v), (StatusCode::OK, json!({ "status": true })));
    assert_eq!(outbox_count(&server).await, 2);
}

async fn existing_address_gets_no_mail(db: Db) {
    let (smtp, server) = mail_server(db, |_| {}).await;
    let (s, first) = sign_up(&server, sign_up_body(), "en").await;
    assert_eq!(s, 200);
    smtp.wait_for(1).await;
    let (s, second) = sign_up(&server, sign_up_body(), "en").await;
    assert_eq!(s, 200);
    assert_eq!(second["token"], Value::Null);
    assert_eq!(second["user"]["email"], first["user"]["email"]);
    assert_eq!(outbox_count(&server).await, 1);
    assert_eq!(
        count(&server, "SELECT COUNT(*) FROM verification_tokens").await,
        1
    );
}

async fn require_verification_gates_sign_in(db: Db) {
    let (smtp, server) = mail_server(db, |c| {
        c.email_verification.require = true;
        // Even with auto sign-in, a new unverified account gets no session.
        c.api_auth.auto_sign_in = true;
    })
    .await;
    let (s, v) = sign_up(&server, sign_up_body(), "en").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["token"], Value::Null);
    smtp.wait_for(1).await;

    // A wrong password is still the generic 401, and sends nothing.
    let (s, _, v) = sign_in(&server, "wrong password!").await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (401, Some("INVALID_EMAIL_OR_PASSWORD"))
    );
    assert_eq!(outbox_count(&server).await, 1);
    // The right one: 403 and a fresh link, no session.
    let (s, t, v) = sign_in(&server, PASSWORD).await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (403, Some("EMAIL_NOT_VERIFIED"))
    );
    assert!(t.is_none());
    assert_eq!(count(&server, "SELECT COUNT(*) FROM sessions").await, 0);
    let mails = smtp.wait_for(2).await;

    // The hosted login page refuses too.
    let (id, secret) = web_client(&server).await;
    let mut browser = Browser::new(EMAIL);
    let (_, challenge) = pkce();
    let url = authorize_url(
        &server,
        &[
            ("response_type", "code"),
            ("client_id", &id),
            ("redirect_uri", CB),
            ("scope", "openid email"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    match browser.go(&url, CB).await {
        Landing::Page(400, body) => {
            assert!(
                body.contains("Please confirm your email address first"),
                "{body}"
            )
        }
        other => panic!("expected the login page with an error, got {other:?}"),
    }
    assert_eq!(count(&server, "SELECT COUNT(*) FROM sessions").await, 0);
    smtp.wait_for(3).await;

    // Verified through the second link: sign-in works, the login page too.
    let link = link_in(&mails[1], &server.url("/verify-email?token="));
    let r = server.http().get(&link).send().await.expect("GET");
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Your email address is confirmed")
    );
    let (s, t, v) = sign_in(&server, PASSWORD).await;
    assert_eq!(s, 200, "{v}");
    assert!(t.is_some());
    assert_eq!(v["user"]["emailVerified"], json!(true));
    let mut browser = Browser::new(EMAIL);
    let tokens = code_flow(&server, &mut browser, &id, &secret, "openid email", &[]).await;
    let at = tokens["access_token"].as_str().expect("access_token");
    let (s, _, info) = get_url(&server, &server.url("/userinfo"), Some(at)).await;
    assert_eq!(s, 200, "{info}");
    assert_eq!(info["email_verified"], json!(true), "{info}");
}

async fn auto_sign_in_after_verification(db: Db) {
    let (smtp, server) = mail_server(db, |c| {
        c.email_verification.auto_sign_in_after_verification = true;
    })
    .await;
    let (s, _) = sign_up(&server, sign_up_body(), "en").await;
    assert_eq!(s, 200);
    let mails = smtp.wait_for(1).await;
    let link = link_in(&mails[0], &server.url("/verify-email?token="));
    let token = query_value(&link, "token").expect("token");
    let (s, h, v) = get_url(
        &server,
        &server.url(&format!("/api/auth/verify-email?token={token}")),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], json!(true));
    assert_eq!(v["user"]["email"], json!(EMAIL));
    assert_eq!(v["user"]["emailVerified"], json!(true));
    assert!(h.get("set-cookie").is_some());
    let st = h
        .get("set-auth-token")
        .and_then(|v| v.to_str().ok())
        .expect("set-auth-token");
    let (s, _, sess) = get_url(&server, &server.url("/api/auth/get-session"), Some(st)).await;
    assert_eq!(s, 200);
    assert_eq!(sess["user"]["email"], json!(EMAIL));
}

db_tests!(
    sign_up_mails_a_link_that_verifies,
    callback_url_redirects_with_result,
    refused_tokens_change_nothing,
    resend_rules,
    existing_address_gets_no_mail,
    require_verification_gates_sign_in,
    auto_sign_in_after_verification,
);
