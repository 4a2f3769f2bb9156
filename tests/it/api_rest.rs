//! The `/auth/*` REST aliases: the same handlers as `/api/auth/*` (bodies, status codes,
//! error codes, cookies, `set-auth-token`), the resource-style session routes, and
//! `/auth/refresh`, the refresh-token grant for first-party clients.

use klard_auth::config::ClientConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const EMAIL: &str = "rupert@example.com";
const FP: &str = "klard-mobile";
const FP_SECRET: &str = "klard-mobile-secret-0123456789";

async fn server(db: Db) -> TestServer {
    TestServer::start_with(db, |c| {
        c.api_auth.auto_sign_in = true;
        // Reuse of a rotated refresh token is detected at once (no retry grace).
        c.tokens.refresh_reuse_grace = 0;
        c.clients.push(ClientConfig {
            client_id: FP.into(),
            client_secret: Some(FP_SECRET.into()),
            client_name: Some("Klard".into()),
            redirect_uris: vec![CB.into()],
            grant_types: Some(vec!["authorization_code".into(), "refresh_token".into()]),
            first_party: true,
            ..ClientConfig::default()
        });
        c.api_auth.client_id = Some(FP.into());
    })
    .await
}

async fn send(rb: reqwest::RequestBuilder) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let r = rb.send().await.expect("request");
    let s = r.status();
    let h = r.headers().clone();
    (s, h, r.json::<Value>().await.unwrap_or(Value::Null))
}

async fn register_and_login(server: &TestServer, c: &reqwest::Client) -> String {
    let (s, h, v) = send(
        c.post(server.url("/auth/register"))
            .json(&json!({ "name": "Rupert Giles", "email": EMAIL, "password": PASSWORD })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["user"]["email"], EMAIL);
    assert!(h.contains_key("set-auth-token"));
    let (s, h, v) = send(
        c.post(server.url("/auth/login"))
            .json(&json!({ "email": EMAIL, "password": PASSWORD })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let token = v["token"].as_str().expect("token").to_string();
    assert_eq!(h["set-auth-token"].to_str().unwrap(), token);
    token
}

async fn aliases_share_the_api_handlers(db: Db) {
    let server = server(db).await;
    let c = server.http();
    let token = register_and_login(&server, &c).await;
    // Same error shape as /api/auth/sign-in/email.
    let (s, _, v) = send(
        c.post(server.url("/auth/login"))
            .json(&json!({ "email": EMAIL, "password": "not the password" })),
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(v["code"], "INVALID_EMAIL_OR_PASSWORD");
    let (s, _, v) = send(
        c.post(server.url("/auth/login"))
            .json(&json!({ "email": EMAIL })),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(v["code"], "VALIDATION_ERROR");

    // GET /auth/me is the session's user; without a session 401.
    let (s, _, v) = send(c.get(server.url("/auth/me")).bearer_auth(&token)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["email"], EMAIL);
    assert_eq!(v["name"], "Rupert Giles");
    let (s, _, v) = send(c.get(server.url("/auth/me"))).await;
    assert_eq!(s, 401);
    assert_eq!(v["code"], "UNAUTHORIZED");

    // PATCH /auth/me is update-user.
    let (s, _, v) = send(
        c.patch(server.url("/auth/me"))
            .bearer_auth(&token)
            .json(&json!({ "name": "Ripper" })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, _, v) = send(c.get(server.url("/auth/me")).bearer_auth(&token)).await;
    assert_eq!(v["name"], "Ripper");
    let (s, _, v) = send(
        c.patch(server.url("/auth/me"))
            .bearer_auth(&token)
            .json(&json!({})),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(v["code"], "NO_FIELDS_TO_UPDATE");

    // POST /auth/change-password is change-password.
    let (s, _, v) = send(
        c.post(server.url("/auth/change-password"))
            .bearer_auth(&token)
            .json(&json!({ "currentPassword": "wrong wrong wrong", "newPassword": "another passphrase" })),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(v["code"], "INVALID_PASSWORD");

    // POST /auth/logout is sign-out: the session is gone afterwards.
    let (s, _, v) = send(c.post(server.url("/auth/logout")).bearer_auth(&token)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["success"], true);
    let (s, _, _) = send(c.get(server.url("/auth/me")).bearer_auth(&token)).await;
    assert_eq!(s, 401);
}

async fn session_resources(db: Db) {
    let server = server(db).await;
    let c = server.http();
    let first = register_and_login(&server, &c).await;
    let (_, _, v) = send(
        c.post(server.url("/auth/login"))
            .json(&json!({ "email": EMAIL, "password": PASSWORD })),
    )
    .await;
    let second = v["token"].as_str().expect("token").to_string();

    let (s, _, list) = send(c.get(server.url("/auth/sessions")).bearer_auth(&first)).await;
    assert_eq!(s, 200, "{list}");
    let ids: Vec<String> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    // Sign-up (auto sign-in) and the two sign-ins.
    assert_eq!(ids.len(), 3, "{list}");
    // The second session, as a resource of the first one's user.
    let (_, _, me2) = send(
        c.get(server.url("/api/auth/get-session"))
            .bearer_auth(&second),
    )
    .await;
    let sid2 = me2["session"]["id"].as_str().expect("sid").to_string();
    let (s, _, v) = send(
        c.get(server.url(&format!("/auth/sessions/{sid2}")))
            .bearer_auth(&first),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["id"], sid2.as_str());
    // An unknown session: 404.
    let (s, _, v) = send(
        c.get(server.url("/auth/sessions/no-such-session"))
            .bearer_auth(&first),
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(v["code"], "SESSION_NOT_FOUND");
    let (s, _, v) = send(
        c.delete(server.url("/auth/sessions/no-such-session"))
            .bearer_auth(&first),
    )
    .await;
    assert_eq!(s, 404, "{v}");

    let (s, _, v) = send(
        c.delete(server.url(&format!("/auth/sessions/{sid2}")))
            .bearer_auth(&first),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, _, v) = send(
        c.get(server.url("/api/auth/get-session"))
            .bearer_auth(&second),
    )
    .await;
    assert_eq!(v, Value::Null, "the deleted session is gone");
    let (_, _, v) = send(c.get(server.url("/auth/me")).bearer_auth(&first)).await;
    assert_eq!(v["email"], EMAIL, "the caller's session stays");

    // DELETE /auth/sessions revokes all of them, the caller's included.
    let (s, _, _) = send(c.delete(server.url("/auth/sessions")).bearer_auth(&first)).await;
    assert_eq!(s, 200);
    let (s, _, _) = send(c.get(server.url("/auth/me")).bearer_auth(&first)).await;
    assert_eq!(s, 401);
}

async fn another_users_session_is_not_found(db: Db) {
    let server = server(db).await;
    let c = server.http();
    let mine = register_and_login(&server, &c).await;
    server.user("faith@example.com").await;
    let (_, _, v) = send(
        c.post(server.url("/auth/login"))
            .json(&json!({ "email": "faith@example.com", "password": PASSWORD })),
    )
    .await;
    let theirs = v["token"].as_str().expect("token").to_string();
    let (_, _, v) = send(
        c.get(server.url("/api/auth/get-session"))
            .bearer_auth(&theirs),
    )
    .await;
    let their_sid = v["session"]["id"].as_str().expect("sid").to_string();
    for req in [
        c.get(server.url(&format!("/auth/sessions/{their_sid}"))),
        c.delete(server.url(&format!("/auth/sessions/{their_sid}"))),
    ] {
        let (s, _, v) = send(req.bearer_auth(&mine)).await;
        assert_eq!(s, 404, "{v}");
        assert_eq!(v["code"], "SESSION_NOT_FOUND");
    }
    let (_, _, v) = send(
        c.get(server.url("/api/auth/get-session"))
            .bearer_auth(&theirs),
    )
    .await;
    assert_eq!(v["session"]["id"], their_sid.as_str(), "still active");
}

async fn refresh_for_first_party_clients(db: Db) {
    let server = server(db).await;
    server.user(EMAIL).await;
    let mut b = Browser::new(EMAIL);
    let t = code_flow(&server, &mut b, FP, FP_SECRET, "openid offline_access", &[]).await;
    let rt = t["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_string();
    let c = server.http();
    let (s, h, v) = send(
        c.post(server.url("/auth/refresh"))
            .basic_auth(FP, Some(FP_SECRET))
            .json(&json!({ "refreshToken": rt })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(v["token_type"], "Bearer");
    let new_rt = v["refresh_token"].as_str().expect("rotated").to_string();
    assert_ne!(new_rt, rt);
    let at = v["access_token"].as_str().expect("access token");
    let r = c
        .get(server.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The rotated-out token again: reuse detection revokes the family, as at /token.
    let (s, _, v) = send(
        c.post(server.url("/auth/refresh"))
            .basic_auth(FP, Some(FP_SECRET))
            .json(&json!({ "refresh_token": rt })),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"], "invalid_grant");
    let (s, _, v) = send(
        c.post(server.url("/auth/refresh"))
            .basic_auth(FP, Some(FP_SECRET))
            .json(&json!({ "refresh_token": new_rt })),
    )
    .await;
    assert_eq!(s, 400, "the family is revoked: {v}");
    assert_eq!(v["error"], "invalid_grant");

    // A wrong client secret, a missing token, a third-party client.
    let (s, _, v) = send(
        c.post(server.url("/auth/refresh"))
            .basic_auth(FP, Some("wrong"))
            .json(&json!({ "refresh_token": new_rt })),
    )
    .await;
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["error"], "invalid_client");
    let (s, _, v) = send(
        c.post(server.url("/auth/refresh"))
            .basic_auth(FP, Some(FP_SECRET))
            .json(&json!({})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["code"], "VALIDATION_ERROR");
    let (id, secret) = web_client(&server).await;
    let mut b = Browser::new(EMAIL);
    let t = code_flow(&server, &mut b, &id, &secret, "openid offline_access", &[]).await;
    let third = t["refresh_token"].as_str().expect("refresh token");
    let (s, _, v) = send(
        c.post(server.url("/auth/refresh"))
            .basic_auth(&id, Some(&secret))
            .json(&json!({ "refresh_token": third })),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"], "unauthorized_client");
}

async fn change_email_and_delete_me(db: Db) {
    let server = server(db).await;
    let c = server.http();
    let token = register_and_login(&server, &c).await;
    let (s, _, v) = send(
        c.post(server.url("/auth/change-email"))
            .bearer_auth(&token)
            .json(&json!({ "newEmail": EMAIL })),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["code"], "EMAIL_IS_THE_SAME");
    let (s, _, v) = send(
        c.post(server.url("/auth/change-email"))
            .bearer_auth(&token)
            .json(&json!({ "newEmail": "ripper@example.com" })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], true);
    // DELETE /auth/me is delete-user: a wrong password changes nothing.
    let (s, _, v) = send(
        c.delete(server.url("/auth/me"))
            .bearer_auth(&token)
            .json(&json!({ "password": "not the password" })),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["code"], "INVALID_PASSWORD");
    assert!(
        klard_auth::store::users::by_email(&server.state.db, EMAIL)
            .await
            .unwrap()
            .is_some()
    );
    let (s, _, v) = send(
        c.delete(server.url("/auth/me"))
            .bearer_auth(&token)
            .json(&json!({ "password": PASSWORD })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["success"], true);
    assert!(
        klard_auth::store::users::by_email(&server.state.db, EMAIL)
            .await
            .unwrap()
            .is_none()
    );
    let (s, _, _) = send(c.get(server.url("/auth/me")).bearer_auth(&token)).await;
    assert_eq!(s, 401);
}

db_tests!(
    change_email_and_delete_me,
    aliases_share_the_api_handlers,
    session_resources,
    another_users_session_is_not_found,
    refresh_for_first_party_clients,
);
