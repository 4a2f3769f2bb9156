//! Account deletion through `/api/auth/delete-user`, its mailed callback and the
//! hosted page `/account/delete`; the grace period, cancelled by a sign-in; the purge
//! after it (personal data gone, tokens dead at /introspect and /userinfo, a deletion
//! record without personal data); `list-accounts`.

use klard_auth::account_deletion;
use klard_auth::store::verifications::{self, Purpose};
use klard_auth::store::{lifecycle, users};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use crate::api_change_email::{
    CLIENT, CLIENT_SECRET, EMAIL, assert_error, count, get, link_in, mails_to, path_of, post,
    server_with_mail, sign_in, user_in,
};
use crate::support::*;

const DAY: i64 = 86_400;

/// /introspect's `active`, asked by the token's own client (`client` None: the
/// first-party client of `/api/auth/token`).
async fn introspect_active(server: &TestServer, client: Option<(&str, &str)>, token: &str) -> bool {
    let (id, secret) = client.unwrap_or((CLIENT, CLIENT_SECRET));
    let v: Value = server
        .http()
        .post(server.url("/introspect"))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .expect("introspect")
        .json()
        .await
        .expect("json");
    v["active"].as_bool().expect("active")
}

async fn exists(server: &TestServer, id: &str) -> bool {
    users::by_id(&server.state.db, id)
        .await
        .expect("db")
        .is_some()
}

/// Every row that still names the user, table by table.
async fn rows_of(server: &TestServer, id: &str) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    for t in [
        "users WHERE id",
        "sessions WHERE user_id",
        "grants WHERE user_id",
        "auth_codes WHERE user_id",
        "token_families WHERE user_id",
        "access_tokens WHERE user_id",
        "verification_tokens WHERE user_id",
    ] {
        let n = count(server, &format!("SELECT COUNT(*) FROM {t} = $1"), id).await;
        if n > 0 {
            out.push((t, n));
        }
    }
    out
}

async fn delete_with_password_removes_everything(db: Db) {
    let (server, smtp) = server_with_mail(db, |_| {}).await;
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
    let at = tokens["access_token"].as_str().expect("at").to_string();
    let rt = tokens["refresh_token"].as_str().expect("rt").to_string();
    let st = sign_in(&server, EMAIL).await.expect("sign in");
    let (_, jwt) = get(&server, "/api/auth/token", Some(&st)).await;
    let jwt = jwt["token"].as_str().expect("jwt").to_string();
    let web = Some((id.as_str(), secret.as_str()));
    assert!(introspect_active(&server, None, &jwt).await);
    assert!(introspect_active(&server, web, &at).await);
    assert!(introspect_active(&server, web, &rt).await);
    assert_eq!(get(&server, "/userinfo", Some(&at)).await.0, StatusCode::OK);

    let interactions = "SELECT COUNT(*) FROM interactions WHERE session_sid <> $1";
    assert_eq!(count(&server, interactions, "").await, 1);
    // Wrong password, no session, an oversized password: nothing happens.
    let path = "/api/auth/delete-user";
    assert_error(
        &post(
            &server,
            path,
            json!({ "password": "wrong password" }),
            Some(&st),
        )
        .await,
        400,
        "INVALID_PASSWORD",
    );
    assert_error(
        &post(
            &server,
            path,
            json!({ "password": "x".repeat(500) }),
            Some(&st),
        )
        .await,
        400,
        "INVALID_PASSWORD",
    );
    assert_error(
        &post(&server, path, json!({ "password": PASSWORD }), None).await,
        401,
        "UNAUTHORIZED",
    );
    assert_error(
        &post(&server, path, json!({ "password": 5 }), Some(&st)).await,
        400,
        "VALIDATION_ERROR",
    );
    assert!(exists(&server, &user.id).await);
    assert!(introspect_active(&server, None, &jwt).await);

    let got = post(&server, path, json!({ "password": PASSWORD }), Some(&st)).await;
    assert_eq!(
        got,
        (
            StatusCode::OK,
            json!({ "success": true, "message": "User deleted" })
        )
    );
    assert_eq!(rows_of(&server, &user.id).await, vec![]);
    // The paused authorization request of its login (which carried its address) too.
    assert_eq!(
        count(
            &server,
            "SELECT COUNT(*) FROM interactions WHERE session_sid <> $1",
            ""
        )
        .await,
        0
    );
    // Sign-in fails like for any unknown address; every token is dead.
    assert_eq!(
        sign_in(&server, EMAIL).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        get(&server, "/api/auth/get-session", Some(&st)).await.1,
        Value::Null
    );
    assert!(!introspect_active(&server, None, &jwt).await);
    assert!(!introspect_active(&server, web, &at).await);
    assert!(!introspect_active(&server, web, &rt).await);
    assert_eq!(
        get(&server, "/userinfo", Some(&jwt)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&server, "/userinfo", Some(&at)).await.0,
        StatusCode::UNAUTHORIZED
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

    // The record: sub and times, nothing personal.
    let rec = lifecycle::deletion_record(&server.state.db, &user.id)
        .await
        .expect("db")
        .expect("record");
    assert_eq!(rec.sub, user.id);
    assert!(rec.deleted_at >= rec.requested_at);
    let row = sqlx::query("SELECT * FROM account_deletions")
        .fetch_one(&server.state.db.pool)
        .await
        .expect("row");
    assert_eq!(row.columns().len(), 4);
    for i in 0..4 {
        if let Ok(Some(s)) = row.try_get::<Option<String>, _>(i) {
            assert!(!s.contains('@') && !s.contains("Tara"), "{s}");
        }
    }

    // The notice arrives; once sent, the purge run forgets it, so the outbox keeps no
    // mail to the address either.
    let m = mails_to(&smtp, EMAIL, 1).await.remove(0);
    assert_eq!(m.subject, "Your Klard Test account was deleted");
    assert!(m.part("text/plain").contains("deleted"));
    assert!(m.part("text/html").contains("<html lang=\"en\">"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        account_deletion::purge_due(&server.state)
            .await
            .expect("purge");
        if count(
            &server,
            "SELECT COUNT(*) FROM mail_outbox WHERE recipient = $1",
            EMAIL,
        )
        .await
            == 0
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the notice stayed in the outbox"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let rec_after = lifecycle::deletion_record(&server.state.db, &user.id)
        .await
        .expect("db");
    assert_eq!(rec_after, Some(rec));
}

async fn fresh_session_or_password(db: Db) {
    let (server, _smtp) = server_with_mail(db, |_| {}).await;
    let user = user_in(&server, EMAIL, "en").await;
    let st = sign_in(&server, EMAIL).await.expect("sign in");
    server.state.clock.advance(DAY);
    assert_error(
        &post(&server, "/api/auth/delete-user", json!({}), Some(&st)).await,
        400,
        "SESSION_EXPIRED",
    );
    assert!(exists(&server, &user.id).await);
    // A fresh session needs no password.
    let fresh = sign_in(&server, EMAIL).await.expect("sign in");
    let got = post(&server, "/api/auth/delete-user", json!({}), Some(&fresh)).await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert!(!exists(&server, &user.id).await);
    // Disabled.
    drop(server);
    let (server, _smtp) = server_with_mail(db, |c| c.account_deletion.enabled = false).await;
    let user = user_in(&server, EMAIL, "en").await;
    let st = sign_in(&server, EMAIL).await.expect("sign in");
    assert_error(
        &post(
            &server,
            "/api/auth/delete-user",
            json!({ "password": PASSWORD }),
            Some(&st),
        )
        .await,
        404,
        "DELETE_USER_DISABLED",
    );
    assert!(exists(&server, &user.id).await);
}

async fn deletion_by_mailed_link(db: Db) {
    let (server, smtp) =
        server_with_mail(db, |c| c.account_deletion.send_verification = true).await;
    let user = user_in(&server, EMAIL, "de").await;
    let other = user_in(&server, "willow@example.com", "en").await;
    let st = sign_in(&server, EMAIL).await.expect("sign in");
    let got = post(
        &server,
        "/api/auth/delete-user",
        json!({ "password": PASSWORD, "callbackURL": "/bye" }),
        Some(&st),
    )
    .await;
    assert_eq!(
        got,
        (
            StatusCode::OK,
            json!({ "success": true, "message": "Verification email sent" })
        )
    );
    assert!(exists(&server, &user.id).await);
    let m = mails_to(&smtp, EMAIL, 1).await.remove(0);
    assert_eq!(
        m.subject,
        "Bestätigen Sie die Löschung Ihres Klard Test-Kontos"
    );
    assert!(
        m.part("text/plain").contains("Mein Konto löschen")
            || m.part("text/html").contains("Mein Konto löschen")
    );
    let link = link_in(&m);
    assert!(
        link.starts_with(&server.url("/api/auth/delete-user/callback?token=")),
        "{link}"
    );

    // Another account's session cannot spend it, nor a token of another purpose.
    let st_other = sign_in(&server, "willow@example.com")
        .await
        .expect("sign in");
    let no_cb = path_of(&link).replace("&callbackURL=%2Fbye", "");
    let token = url::Url::parse(&link)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "token")
        .expect("token")
        .1
        .to_string();
    assert_error(
        &post(
            &server,
            "/api/auth/delete-user",
            json!({ "token": token }),
            Some(&st_other),
        )
        .await,
        400,
        "INVALID_TOKEN",
    );
    let (s, v) = get(&server, &no_cb, Some(&st_other)).await;
    assert_error(&(s, v), 400, "INVALID_TOKEN");
    let now = server.state.clock.now();
    let change = verifications::issue(
        &server.state.db,
        Purpose::ChangeEmail,
        &user.id,
        &json!({}),
        600,
        now,
    )
    .await
    .expect("issue");
    assert_error(
        &get(
            &server,
            &format!("/api/auth/delete-user/callback?token={change}"),
            None,
        )
        .await,
        400,
        "INVALID_TOKEN",
    );
    assert_error(
        &get(&server, "/api/auth/delete-user/callback", None).await,
        400,
        "INVALID_TOKEN",
    );
    assert!(exists(&server, &user.id).await && exists(&server, &other.id).await);

    // Opened in a browser without a session: deleted, redirected to the callback.
    let r = server.http().get(&link).send().await.expect("callback");
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(r.headers()["location"], "/bye");
    assert!(!exists(&server, &user.id).await);
    assert!(exists(&server, &other.id).await);
    // Used once: the error goes to the callback, or is JSON.
    let r = server.http().get(&link).send().await.expect("again");
    assert_eq!(r.headers()["location"], "/bye?error=INVALID_TOKEN");
    assert_error(&get(&server, &no_cb, None).await, 400, "INVALID_TOKEN");

    // Expired: the account stays.
    let st = sign_in(&server, "willow@example.com")
        .await
        .expect("sign in");
    post(
        &server,
        "/api/auth/delete-user",
        json!({ "password": PASSWORD }),
        Some(&st),
    )
    .await;
    let link = link_in(&mails_to(&smtp, "willow@example.com", 1).await[0]);
    server.state.clock.advance(3601);
    let r = server
        .http()
        .get(&link)
        .header("accept", "text/html")
        .send()
        .await
        .expect("expired");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.expect("html").contains("TOKEN_EXPIRED"));
    assert!(exists(&server, &other.id).await);
}

async fn grace_period_cancel_and_purge(db: Db) {
    let (server, smtp) = server_with_mail(db, |c| c.account_deletion.grace_period = 30 * DAY).await;
    let user = user_in(&server, EMAIL, "en").await;
    let st = sign_in(&server, EMAIL).await.expect("sign in");
    let got = post(
        &server,
        "/api/auth/delete-user",
        json!({ "password": PASSWORD }),
        Some(&st),
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(got.1["message"], "User deletion scheduled");
    let (requested, due) = lifecycle::deletion_schedule(&server.state.db, &user.id)
        .await
        .expect("db")
        .expect("scheduled");
    assert_eq!(due - requested, 30 * DAY);
    assert_eq!(got.1["deletionDate"], json!(klard_auth::api::iso8601(due)));
    assert_eq!(
        get(&server, "/api/auth/get-session", Some(&st)).await.1,
        Value::Null
    );
    let m = mails_to(&smtp, EMAIL, 1).await.remove(0);
    assert_eq!(m.subject, "Your Klard Test account will be deleted");
    assert!(
        m.part("text/plain")
            .contains(&klard_auth::mail::account_templates::when(due))
    );
    // Nothing is removed early.
    server.state.clock.advance(29 * DAY);
    assert_eq!(
        account_deletion::purge_due(&server.state)
            .await
            .expect("purge"),
        0
    );
    // A sign-in through the API cancels it.
    let st = sign_in(&server, EMAIL).await.expect("sign in");
    assert!(
        lifecycle::deletion_schedule(&server.state.db, &user.id)
            .await
            .expect("db")
            .is_none()
    );
    server.state.clock.advance(2 * DAY);
    assert_eq!(
        account_deletion::purge_due(&server.state)
            .await
            .expect("purge"),
        0
    );
    assert!(exists(&server, &user.id).await);

    // So does one at the hosted login page.
    post(
        &server,
        "/api/auth/delete-user",
        json!({ "password": PASSWORD }),
        Some(&st),
    )
    .await;
    assert!(
        lifecycle::deletion_schedule(&server.state.db, &user.id)
            .await
            .expect("db")
            .is_some()
    );
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
    assert!(
        lifecycle::deletion_schedule(&server.state.db, &user.id)
            .await
            .expect("db")
            .is_none()
    );

    // Scheduled again and left alone: purged after the grace period.
    let st = sign_in(&server, EMAIL).await.expect("sign in");
    let (_, jwt) = get(&server, "/api/auth/token", Some(&st)).await;
    let jwt = jwt["token"].as_str().expect("jwt").to_string();
    let asked = server.state.clock.now();
    post(
        &server,
        "/api/auth/delete-user",
        json!({ "password": PASSWORD }),
        Some(&st),
    )
    .await;
    // Scheduling already ends every session and token.
    assert!(!introspect_active(&server, None, &jwt).await);
    let at = tokens["access_token"].as_str().expect("at");
    assert_eq!(
        get(&server, "/userinfo", Some(at)).await.0,
        StatusCode::UNAUTHORIZED
    );
    server.state.clock.advance(30 * DAY + 1);
    assert_eq!(
        account_deletion::purge_due(&server.state)
            .await
            .expect("purge"),
        1
    );
    assert_eq!(rows_of(&server, &user.id).await, vec![]);
    let rec = lifecycle::deletion_record(&server.state.db, &user.id)
        .await
        .expect("db")
        .expect("record");
    assert!(
        rec.requested_at >= asked && rec.requested_at < asked + 60,
        "{rec:?}"
    );
    assert!(rec.deleted_at >= asked + 30 * DAY);
    assert_eq!(
        sign_in(&server, EMAIL).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    assert!(!introspect_active(&server, None, &jwt).await);
    assert_eq!(
        account_deletion::purge_due(&server.state)
            .await
            .expect("purge"),
        0
    );
}

async fn list_accounts_shape(db: Db) {
    let server = TestServer::start(db).await;
    assert_error(
        &get(&server, "/api/auth/list-accounts", None).await,
        401,
        "UNAUTHORIZED",
    );
    let user = server.user("buffy@example.com").await;
    let st = sign_in(&server, "buffy@example.com")
        .await
        .expect("sign in");
    let (s, v) = get(&server, "/api/auth/list-accounts", Some(&st)).await;
    assert_eq!(s, StatusCode::OK);
    let iso = klard_auth::api::iso8601;
    assert_eq!(
        v,
        json!([{
            "id": user.id, "providerId": "credential", "accountId": user.id, "userId": user.id,
            "scopes": [], "createdAt": iso(user.created_at), "updatedAt": iso(user.updated_at),
        }])
    );
    // No password, no credential account.
    let nopw =
        klard_auth::accounts::create_user(&server.state, json!({ "email": "spike@example.com" }))
            .await
            .expect("user");
    let started = klard_auth::ui::session::begin(&server.state, &nopw, vec![], None, None, true)
        .await
        .expect("session");
    assert_eq!(
        get(&server, "/api/auth/list-accounts", Some(&started.token)).await,
        (StatusCode::OK, json!([]))
    );
}

async fn hosted_delete_page(db: Db) {
    let (server, smtp) = server_with_mail(db, |c| c.account_deletion.grace_period = 7 * DAY).await;
    let user = user_in(&server, EMAIL, "en").await;
    let r = server
        .http()
        .get(server.url("/account/delete"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login?return_to=/account/delete");
    let (id, secret) = web_client(&server).await;
    let mut browser = Browser::new(EMAIL);
    code_flow(&server, &mut browser, &id, &secret, "openid", &[]).await;
    let html = browser
        .http
        .get(server.url("/account/delete"))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("html");
    assert!(html.contains("7 day(s)"), "{html}");
    let form = Form::parse(&html).expect("form");
    assert!(form.has_password);
    let csrf = form
        .hidden
        .iter()
        .find(|(k, _)| k == "csrf_token")
        .expect("csrf")
        .1
        .clone();
    let send = |fields: Vec<(&'static str, String)>| {
        let b = &browser;
        let url = server.url("/account/delete");
        async move { b.http.post(url).form(&fields).send().await.expect("POST") }
    };
    let r = send(vec![
        ("csrf_token", "forged".into()),
        ("password", PASSWORD.into()),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = send(vec![
        ("csrf_token", csrf.clone()),
        ("password", "wrong password".into()),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .expect("html")
            .contains("The password is incorrect.")
    );
    assert!(
        lifecycle::deletion_schedule(&server.state.db, &user.id)
            .await
            .expect("db")
            .is_none()
    );
    let r = send(vec![
        ("csrf_token", csrf.clone()),
        ("password", PASSWORD.into()),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.expect("html");
    assert!(html.contains("Account deletion scheduled"), "{html}");
    assert!(html.contains("Deletion date: "), "{html}");
    assert!(
        lifecycle::deletion_schedule(&server.state.db, &user.id)
            .await
            .expect("db")
            .is_some()
    );
    mails_to(&smtp, EMAIL, 1).await;
    // The session ended with it: the page sends the browser to the login again.
    let r = browser
        .http
        .get(server.url("/account/delete"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

db_tests!(
    delete_with_password_removes_everything,
    fresh_session_or_password,
    deletion_by_mailed_link,
    grace_period_cancel_and_purge,
    list_accounts_shape,
    hosted_delete_page,
);
