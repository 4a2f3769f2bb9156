//! Password reset through `/api/auth` and the hosted pages, against a real SMTP server
//! (aiosmtpd): the mailed link, its callback, the reset itself (sessions and refresh
//! tokens revoked), the "password changed" notice, the link dying when the password
//! changes by another route, and every refusal with nothing changed in the database.

use klard_auth::store::verifications::{self, Purpose};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api_verify::{
    count, get_url, link_in, location, mail_server, outbox_count, post_json, query_value,
};
use crate::support::*;

const EMAIL: &str = "giles@example.com";
const NEW_PASSWORD: &str = "a whole new passphrase";
const ANSWER: &str = "If this email exists in our system, check your email for the reset link";

/// A user without a `locale` claim, so the request's Accept-Language decides.
async fn plain_user(server: &TestServer) -> klard_auth::store::users::User {
    klard_auth::accounts::create_user(
        &server.state,
        json!({ "email": EMAIL, "password": PASSWORD, "email_verified": true, "name": "Rupert Giles" }),
    )
    .await
    .expect("user")
}

async fn password_hash(server: &TestServer) -> Option<String> {
    klard_auth::store::users::by_email(&server.state.db, EMAIL)
        .await
        .expect("select")
        .expect("user")
        .password_hash
}

async fn sign_in(server: &TestServer, password: &str) -> (StatusCode, Option<String>) {
    let (s, h, _) = post_json(
        server,
        "/api/auth/sign-in/email",
        json!({ "email": EMAIL, "password": password }),
        &[],
    )
    .await;
    (
        s,
        h.get("set-auth-token")
            .and_then(|v| v.to_str().ok())
            .map(String::from),
    )
}

async fn request_reset(server: &TestServer, body: Value, lang: &str) -> (StatusCode, Value) {
    let (s, _, v) = post_json(
        server,
        "/api/auth/request-password-reset",
        body,
        &[("accept-language", lang)],
    )
    .await;
    (s, v)
}

async fn reset(server: &TestServer, body: Value) -> (StatusCode, Value) {
    let (s, _, v) = post_json(server, "/api/auth/reset-password", body, &[]).await;
    (s, v)
}

async fn mailed_link_resets_and_revokes(db: Db) {
    let (smtp, server) = mail_server(db, |_| {}).await;
    plain_user(&server).await;
    // A session and a refresh token from before the reset.
    let (s, old_session) = sign_in(&server, PASSWORD).await;
    assert_eq!(s, 200);
    let old_session = old_session.expect("set-auth-token");
    let (id, secret) = web_client(&server).await;
    let mut browser = Browser::new(EMAIL);
    let tokens = code_flow(
        &server,
        &mut browser,
        &id,
        &secret,
        "openid offline_access",
        &[("prompt", "consent")],
    )
    .await;
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_string();

    let (s, v) = request_reset(
        &server,
        json!({ "email": EMAIL, "redirectTo": "/app/reset?x=1" }),
        "de",
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v, json!({ "status": true, "message": ANSWER }));
    let mails = smtp.wait_for(1).await;
    let m = &mails[0];
    assert_eq!(m.to, EMAIL);
    assert_eq!(m.subject, "Setzen Sie Ihr Klard Test-Passwort zurück");
    assert!(m.part("text/plain").contains("läuft in 60 Minuten ab"));
    assert!(m.part("text/html").contains("Neues Passwort wählen"));
    let link = link_in(m, &server.url("/api/auth/reset-password/"));
    assert_eq!(
        query_value(&link, "callbackURL").as_deref(),
        Some("/app/reset?x=1")
    );
    assert!(m.part("text/html").contains(&link.replace('&', "&#38;")));

    // The callback hands the token to the app without spending it.
    let (s, h, _) = get_url(&server, &link, None).await;
    assert_eq!(s, 302);
    let to = location(&h);
    assert!(to.starts_with(&server.url("/app/reset?x=1&token=")), "{to}");
    let token = query_value(&to, "token").expect("token");
    let (s, h, _) = get_url(&server, &link, None).await;
    assert_eq!((s.as_u16(), location(&h)), (302, to.clone()));

    server.state.clock.advance(5);
    let (s, _, v) = post_json(
        &server,
        "/api/auth/reset-password",
        json!({ "newPassword": NEW_PASSWORD, "token": token }),
        &[("accept-language", "de-CH")],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v, json!({ "status": true }));
    assert_eq!(sign_in(&server, PASSWORD).await.0, 401);
    // revoke_sessions (default): the old session and the refresh token are dead.
    let (s, _, v) = get_url(
        &server,
        &server.url("/api/auth/get-session"),
        Some(&old_session),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v, Value::Null);
    let (s, v, _) = token_basic(
        &server,
        &id,
        &secret,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"], "invalid_grant");
    assert_eq!(sign_in(&server, NEW_PASSWORD).await.0, 200);

    // The notice, in the request's language, with a way to reset again.
    let mails = smtp.wait_for(2).await;
    let n = mails
        .iter()
        .find(|m| m.subject.contains("geändert"))
        .expect("password changed mail");
    assert_eq!(n.subject, "Ihr Klard Test-Passwort wurde geändert");
    assert!(
        n.part("text/plain")
            .contains(&format!("({EMAIL}) wurde soeben geändert"))
    );
    assert!(
        n.part("text/plain")
            .contains(&server.url("/forgot-password"))
    );
    assert!(n.part("text/html").contains("Passwort zurücksetzen"));

    // Spent: the token and the link are dead.
    let (s, v) = reset(
        &server,
        json!({ "newPassword": "yet another passphrase", "token": token }),
    )
    .await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (400, Some("INVALID_TOKEN"))
    );
    let (s, h, _) = get_url(&server, &link, None).await;
    assert_eq!(s, 302);
    assert_eq!(
        location(&h),
        server.url("/app/reset?x=1&error=INVALID_TOKEN")
    );
    assert_eq!(sign_in(&server, NEW_PASSWORD).await.0, 200);
}

async fn unknown_address_same_answer_no_mail(db: Db) {
    let (smtp, server) = mail_server(db, |_| {}).await;
    plain_user(&server).await;
    let (s1, unknown) =
        request_reset(&server, json!({ "email": "nobody@example.com" }), "en").await;
    let (s2, _, old) = post_json(
        &server,
        "/api/auth/forget-password",
        json!({ "email": "nobody@example.com" }),
        &[],
    )
    .await;
    let (s3, known) = request_reset(&server, json!({ "email": "GILES@example.com" }), "en").await;
    assert_eq!(
        (s1, s2, s3),
        (StatusCode::OK, StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(unknown, known);
    assert_eq!(old, known);
    // The writes for the real account run after the answer: wait for its mail.
    let mails = smtp.wait_for(1).await;
    assert_eq!(outbox_count(&server).await, 1);
    assert_eq!(
        count(&server, "SELECT COUNT(*) FROM verification_tokens").await,
        1
    );
    assert_eq!(mails[0].to, EMAIL);
    assert_eq!(mails[0].subject, "Reset your Klard Test password");
    // Without redirectTo the link leads to the hosted page.
    let link = link_in(&mails[0], &server.url("/api/auth/reset-password/"));
    assert!(!link.contains('?'), "{link}");
    let (s, h, _) = get_url(&server, &link, None).await;
    assert_eq!(s, 302);
    assert!(location(&h).starts_with(&server.url("/reset-password?token=")));
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(smtp.messages().len(), 1);
}

async fn refusals_change_nothing(db: Db) {
    let (smtp, server) = mail_server(db, |_| {}).await;
    let u = plain_user(&server).await;
    let hash0 = password_hash(&server).await;
    let (s, _) = request_reset(&server, json!({ "email": EMAIL }), "en").await;
    assert_eq!(s, 200);
    let mails = smtp.wait_for(1).await;
    let link = link_in(&mails[0], &server.url("/api/auth/reset-password/"));
    let token = link.rsplit('/').next().expect("token").to_string();

    // redirectTo / callbackURL on a foreign origin.
    let (s, v) = request_reset(
        &server,
        json!({ "email": EMAIL, "redirectTo": "https://evil.example/reset" }),
        "en",
    )
    .await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (403, Some("INVALID_CALLBACK_URL"))
    );
    let (s, _, v) = get_url(
        &server,
        &format!("{link}?callbackURL=https%3A%2F%2Fevil.example%2F"),
        None,
    )
    .await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (403, Some("INVALID_CALLBACK_URL"))
    );
    // Bad request bodies.
    let (s, v) = request_reset(&server, json!({}), "en").await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (400, Some("VALIDATION_ERROR"))
    );
    let (s, v) = request_reset(&server, json!({ "email": "no at sign" }), "en").await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (400, Some("INVALID_EMAIL"))
    );
    let (s, v) = reset(&server, json!({ "token": token })).await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (400, Some("VALIDATION_ERROR"))
    );
    let (s, v) = reset(&server, json!({ "newPassword": NEW_PASSWORD })).await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (400, Some("INVALID_TOKEN"))
    );
    let r = server
        .http()
        .post(server.url("/api/auth/reset-password"))
        .header("content-type", "application/json")
        .body("{\"newPassword\": \"x\", ")
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "VALIDATION_ERROR");
    // A weak password: refused, and the token stays usable.
    let (s, v) = reset(&server, json!({ "newPassword": "short", "token": token })).await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (400, Some("PASSWORD_TOO_SHORT"))
    );
    let long = "x".repeat(129);
    let (s, v) = reset(&server, json!({ "newPassword": long, "token": token })).await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (400, Some("PASSWORD_TOO_LONG"))
    );
    // A token for another purpose.
    let verify = verifications::issue(
        &server.state.db,
        Purpose::VerifyEmail,
        &u.id,
        &json!({ "email": EMAIL }),
        3600,
        server.state.clock.now(),
    )
    .await
    .expect("issue");
    let (s, v) = reset(
        &server,
        json!({ "newPassword": NEW_PASSWORD, "token": verify }),
    )
    .await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (400, Some("INVALID_TOKEN"))
    );
    let (s, h, _) = get_url(
        &server,
        &server.url(&format!(
            "/api/auth/reset-password/{verify}?callbackURL=%2Fr"
        )),
        None,
    )
    .await;
    assert_eq!(
        (s.as_u16(), location(&h)),
        (302, server.url("/r?error=INVALID_TOKEN"))
    );
    assert_eq!(password_hash(&server).await, hash0);
    assert_eq!(
        count(
            &server,
            "SELECT COUNT(*) FROM verification_tokens WHERE used_at IS NOT NULL"
        )
        .await,
        0
    );

    // Expired.
    server.state.clock.advance(3601);
    let (s, v) = reset(
        &server,
        json!({ "newPassword": NEW_PASSWORD, "token": token }),
    )
    .await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (400, Some("INVALID_TOKEN"))
    );
    let (s, h, _) = get_url(&server, &format!("{link}?callbackURL=%2Fr"), None).await;
    assert_eq!(
        (s.as_u16(), location(&h)),
        (302, server.url("/r?error=INVALID_TOKEN"))
    );
    assert_eq!(password_hash(&server).await, hash0);
    assert_eq!(sign_in(&server, PASSWORD).await.0, 200);
    // No "password changed" notice went out.
    assert_eq!(outbox_count(&server).await, 1);
}

async fn change_password_kills_reset_links(db: Db) {
    let (smtp, server) = mail_server(db, |_| {}).await;
    plain_user(&server).await;
    let (s, _) = request_reset(&server, json!({ "email": EMAIL }), "en").await;
    assert_eq!(s, 200);
    let mails = smtp.wait_for(1).await;
    let link = link_in(&mails[0], &server.url("/api/auth/reset-password/"));
    let token = link.rsplit('/').next().expect("token").to_string();

    let (_, st) = sign_in(&server, PASSWORD).await;
    let st = st.expect("set-auth-token");
    let bearer = format!("Bearer {st}");
    let (s, _, v) = post_json(
        &server,
        "/api/auth/change-password",
        json!({ "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD }),
        &[("authorization", &bearer), ("accept-language", "en-US")],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // The session stays (no revokeOtherSessions), the reset link is dead.
    let (s, _, v) = get_url(&server, &server.url("/api/auth/get-session"), Some(&st)).await;
    assert_eq!(s, 200);
    assert_eq!(v["user"]["email"], json!(EMAIL));
    let (s, v) = reset(
        &server,
        json!({ "newPassword": "the attacker's choice", "token": token }),
    )
    .await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (400, Some("INVALID_TOKEN"))
    );
    let mails = smtp.wait_for(2).await;
    assert_eq!(mails[1].subject, "Your Klard Test password was changed");
    assert!(mails[1].part("text/plain").contains("was just changed"));
    assert_eq!(sign_in(&server, NEW_PASSWORD).await.0, 200);
}

/// The first form of a page: its hidden fields.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    Form::parse(html).expect("a form").hidden
}

async fn hosted_pages_reset_the_password(db: Db) {
    let (smtp, server) = mail_server(db, |_| {}).await;
    plain_user(&server).await;
    let b = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    // The login page links to the forgot-password page.
    let (id, _) = web_client(&server).await;
    let (_, challenge) = pkce();
    let authz = authorize_url(
        &server,
        &[
            ("response_type", "code"),
            ("client_id", &id),
            ("redirect_uri", CB),
            ("scope", "openid"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let r = b.get(&authz).send().await.expect("authorize");
    assert!(r.status().is_redirection(), "{}", r.status());
    let login = reqwest::Url::parse(&server.url("/"))
        .unwrap()
        .join(&location(r.headers()))
        .unwrap();
    let html = b
        .get(login)
        .send()
        .await
        .expect("login")
        .text()
        .await
        .unwrap();
    assert!(html.contains("Sign in"), "{html}");
    assert!(
        html.contains(&format!("href=\"{}\"", "/forgot-password")),
        "{html}"
    );
    let page = b
        .get(server.url("/forgot-password"))
        .send()
        .await
        .expect("GET");
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let mut fields = hidden_fields(&html);
    assert!(fields.iter().any(|(k, _)| k == "csrf_token"));
    // A forged form (no CSRF token) changes nothing.
    let r = b
        .post(server.url("/forgot-password"))
        .form(&[("email", EMAIL)])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 400);
    assert_eq!(outbox_count(&server).await, 0);
    fields.push(("email".into(), EMAIL.into()));
    let r = b
        .post(server.url("/forgot-password"))
        .header("accept-language", "de")
        .form(&fields)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("check your email for the reset link")
    );
    let mails = smtp.wait_for(1).await;
    assert_eq!(
        mails[0].subject,
        "Setzen Sie Ihr Klard Test-Passwort zurück"
    );
    let link = link_in(&mails[0], &server.url("/api/auth/reset-password/"));
    let r = b.get(&link).send().await.expect("GET");
    assert_eq!(r.status(), 302);
    let form_url = location(r.headers());
    assert!(form_url.starts_with(&server.url("/reset-password?token=")));
    let html = b
        .get(&form_url)
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .unwrap();
    assert!(html.contains("Choose a new password"), "{html}");
    let fields = hidden_fields(&html);
    let post = |extra: Vec<(&str, &str)>| {
        let mut f: Vec<(String, String)> = fields.clone();
        f.extend(
            extra
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        b.post(server.url("/reset-password")).form(&f).send()
    };
    let r = post(vec![
        ("new_password", NEW_PASSWORD),
        ("confirm_password", "something else"),
    ])
    .await
    .expect("POST");
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("do not match"));
    let r = post(vec![
        ("new_password", "short"),
        ("confirm_password", "short"),
    ])
    .await
    .expect("POST");
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Password too short"));
    // Another browser cannot replay the form.
    let r = server
        .http()
        .post(server.url("/reset-password"))
        .form(&{
            let mut f = fields.clone();
            f.push(("new_password".into(), NEW_PASSWORD.into()));
            f.push(("confirm_password".into(), NEW_PASSWORD.into()));
            f
        })
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 400);
    assert_eq!(sign_in(&server, PASSWORD).await.0, 200);
    let r = post(vec![
        ("new_password", NEW_PASSWORD),
        ("confirm_password", NEW_PASSWORD),
    ])
    .await
    .expect("POST");
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Your password was changed")
    );
    assert_eq!(sign_in(&server, NEW_PASSWORD).await.0, 200);
    // The used link now shows a clear error.
    let r = b.get(&form_url).send().await.expect("GET");
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("invalid, was already used or has expired")
    );
    let r = b
        .get(server.url("/reset-password?error=INVALID_TOKEN"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Ask for a new link"));
}

db_tests!(
    mailed_link_resets_and_revokes,
    unknown_address_same_answer_no_mail,
    refusals_change_nothing,
    change_password_kills_reset_links,
    hosted_pages_reset_the_password,
);
