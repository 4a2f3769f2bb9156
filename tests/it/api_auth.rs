//! The Better-Auth-compatible `/api/auth/*` door: sign-up, sign-in (cookie and bearer),
//! sessions, sign-out, error shapes, the Origin check, and that its sessions are the
//! hosted login's sessions (OIDC /authorize accepts them).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const EMAIL: &str = "willow@example.com";

/// A client that keeps cookies and sends the issuer as Origin, like a first-party page.
fn browser_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn post(
    c: &reqwest::Client,
    server: &TestServer,
    path: &str,
    body: Value,
    origin: Option<&str>,
    bearer: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut rb = c.post(server.url(path)).json(&body);
    if let Some(o) = origin {
        rb = rb.header("origin", o);
    }
    if let Some(t) = bearer {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.expect("POST");
    let s = r.status();
    let h = r.headers().clone();
    let v = r.json::<Value>().await.unwrap_or(Value::Null);
    (s, h, v)
}

async fn get(
    c: &reqwest::Client,
    server: &TestServer,
    path: &str,
    bearer: Option<&str>,
) -> (StatusCode, Value) {
    let mut rb = c.get(server.url(path));
    if let Some(t) = bearer {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.expect("GET");
    let s = r.status();
    (s, r.json::<Value>().await.unwrap_or(Value::Null))
}

fn sign_in_body(password: &str) -> Value {
    json!({ "email": EMAIL, "password": password })
}

async fn sign_up_returns_user_and_signs_in_when_configured(db: Db) {
    let server = TestServer::start_with(db, |c| c.api_auth.auto_sign_in = true).await;
    let c = browser_client();
    let iss = server.issuer();
    let (s, h, v) = post(
        &c,
        &server,
        "/api/auth/sign-up/email",
        json!({ "name": "Willow Rosenberg", "email": "Willow@Example.com", "password": PASSWORD,
                "image": "https://example.com/w.png", "callbackURL": "/welcome" }),
        Some(&iss),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let token = v["token"].as_str().expect("token").to_string();
    assert_eq!(h["set-auth-token"].to_str().unwrap(), token);
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("klard_session="), "{cookie}");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let u = &v["user"];
    assert_eq!(u["email"], EMAIL);
    assert_eq!(u["name"], "Willow Rosenberg");
    assert_eq!(u["image"], "https://example.com/w.png");
    assert_eq!(u["emailVerified"], false);
    assert!(u["createdAt"].as_str().unwrap().ends_with('Z'));
    // The user is a real account of the core, and the cookie a session.
    let stored = klard_auth::store::users::by_email(&server.state.db, EMAIL)
        .await
        .unwrap()
        .expect("user");
    assert_eq!(u["id"], stored.id);
    let (s, v) = get(&c, &server, "/api/auth/get-session", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["user"]["id"], stored.id);
    // The same address again: Better Auth's 422 in this (enumerating) mode.
    let (s, _, v) = post(
        &browser_client(),
        &server,
        "/api/auth/sign-up/email",
        json!({ "name": "W", "email": EMAIL, "password": PASSWORD }),
        None,
        None,
    )
    .await;
    assert_eq!(s, 422);
    assert_eq!(v["code"], "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL");
}

async fn duplicate_sign_up_looks_like_a_new_one(db: Db) {
    let server = TestServer::start(db).await;
    server.user(EMAIL).await;
    let before = klard_auth::store::users::by_email(&server.state.db, EMAIL)
        .await
        .unwrap()
        .unwrap();
    let c = server.http();
    let body =
        |email: &str| json!({ "name": "Someone", "email": email, "password": "another password" });
    let (s1, h1, new) = post(
        &c,
        &server,
        "/api/auth/sign-up/email",
        body("xander@example.com"),
        None,
        None,
    )
    .await;
    let (s2, h2, dup) = post(
        &c,
        &server,
        "/api/auth/sign-up/email",
        body(EMAIL),
        None,
        None,
    )
    .await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{new} {dup}");
    assert_eq!(new["token"], Value::Null);
    assert_eq!(dup["token"], Value::Null);
    for h in [&h1, &h2] {
        assert!(h.get("set-cookie").is_none() && h.get("set-auth-token").is_none());
    }
    let keys = |v: &Value| {
        let mut k: Vec<String> = v["user"].as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&new), keys(&dup));
    assert_eq!(dup["user"]["email"], EMAIL);
    assert_eq!(dup["user"]["name"], "Someone");
    assert_ne!(dup["user"]["id"], before.id.as_str());
    // The existing account is untouched: the old password still works, the new does not.
    let after = klard_auth::store::users::by_email(&server.state.db, EMAIL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.password_hash, before.password_hash);
    assert_eq!(after.claims, before.claims);
    // The newly created one can sign in.
    let (s, _, v) = post(
        &c,
        &server,
        "/api/auth/sign-in/email",
        json!({ "email": "xander@example.com", "password": "another password" }),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

async fn sign_in_cookie_and_bearer_sessions(db: Db) {
    let server = TestServer::start(db).await;
    let user = server.user(EMAIL).await;
    let iss = server.issuer();
    // Browser: cookie.
    let web = browser_client();
    let (s, h, v) = post(
        &web,
        &server,
        "/api/auth/sign-in/email",
        sign_in_body(PASSWORD),
        Some(&iss),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["redirect"], false);
    assert!(v.get("url").is_none());
    assert_eq!(v["user"]["id"], user.id);
    assert_eq!(v["user"]["name"], "Buffy Summers");
    let web_token = v["token"].as_str().unwrap().to_string();
    assert_eq!(h["set-auth-token"].to_str().unwrap(), web_token);
    // The database holds only the token's hash.
    let row = klard_auth::store::sessions::by_hash(
        &server.state.db,
        &klard_auth::crypto::hash_secret(&web_token),
    )
    .await
    .unwrap()
    .expect("session row");
    assert_ne!(row.id_hash, web_token);
    // App: bearer, with a callbackURL.
    let app = server.http();
    let (s, h, v) = post(
        &app,
        &server,
        "/api/auth/sign-in/email",
        json!({ "email": EMAIL, "password": PASSWORD, "callbackURL": "/home" }),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["redirect"], true);
    assert_eq!(v["url"], "/home");
    assert_eq!(h["location"], "/home");
    let app_token = h["set-auth-token"].to_str().unwrap().to_string();
    assert_eq!(v["token"], app_token.as_str());
    assert_ne!(app_token, web_token);

    // get-session both ways.
    let (s, cur) = get(&web, &server, "/api/auth/get-session", None).await;
    assert_eq!(s, 200);
    assert_eq!(cur["user"]["email"], EMAIL);
    assert_eq!(cur["session"]["userId"], user.id);
    assert_eq!(cur["session"]["id"], row.sid);
    assert_eq!(cur["session"]["token"], web_token.as_str());
    let (s, cur_app) = get(&app, &server, "/api/auth/get-session", Some(&app_token)).await;
    assert_eq!(s, 200);
    assert_eq!(cur_app["user"]["id"], user.id);
    let app_sid = cur_app["session"]["id"].as_str().unwrap().to_string();
    // No session: null, not an error.
    let (s, none) = get(&server.http(), &server, "/api/auth/get-session", None).await;
    assert_eq!((s, none), (StatusCode::OK, Value::Null));
    let (s, none) = get(
        &server.http(),
        &server,
        "/api/auth/get-session",
        Some("nope"),
    )
    .await;
    assert_eq!((s, none), (StatusCode::OK, Value::Null));

    // list-sessions shows both, by sid, never a token.
    let (s, list) = get(&app, &server, "/api/auth/list-sessions", Some(&app_token)).await;
    assert_eq!(s, 200);
    let list = list.as_array().unwrap().clone();
    let ids: Vec<&str> = list.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(ids.contains(&row.sid.as_str()) && ids.contains(&app_sid.as_str()));
    let text = serde_json::to_string(&list).unwrap();
    assert!(!text.contains(&web_token) && !text.contains(&app_token));
    let (s, v) = get(&server.http(), &server, "/api/auth/list-sessions", None).await;
    assert_eq!(s, 401);
    assert_eq!(v["code"], "UNAUTHORIZED");

    // revoke-session with the sid from the list: the web session ends.
    let (s, _, v) = post(
        &app,
        &server,
        "/api/auth/revoke-session",
        json!({ "token": row.sid }),
        None,
        Some(&app_token),
    )
    .await;
    assert_eq!((s, &v), (StatusCode::OK, &json!({ "status": true })));
    let (_, v) = get(&web, &server, "/api/auth/get-session", None).await;
    assert_eq!(v, Value::Null);
    // Someone else's session cannot be revoked, and the answer does not say so.
    let other = server.user("dawn@example.com").await;
    let started =
        klard_auth::ui::session::begin(&server.state, &other, vec!["pwd".into()], None, None, true)
            .await
            .unwrap();
    let (s, _, v) = post(
        &app,
        &server,
        "/api/auth/revoke-session",
        json!({ "token": started.session.sid }),
        None,
        Some(&app_token),
    )
    .await;
    assert_eq!((s, &v), (StatusCode::OK, &json!({ "status": true })));
    let (_, v) = get(
        &server.http(),
        &server,
        "/api/auth/get-session",
        Some(&started.token),
    )
    .await;
    assert_eq!(v["user"]["id"], other.id);
    // Missing field.
    let (s, _, v) = post(
        &app,
        &server,
        "/api/auth/revoke-session",
        json!({}),
        None,
        Some(&app_token),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(v["code"], "VALIDATION_ERROR");

    // revoke-other-sessions keeps only the caller's.
    let web2 = browser_client();
    let (s, _, _) = post(
        &web2,
        &server,
        "/api/auth/sign-in/email",
        sign_in_body(PASSWORD),
        Some(&iss),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _, v) = post(
        &app,
        &server,
        "/api/auth/revoke-other-sessions",
        json!({}),
        None,
        Some(&app_token),
    )
    .await;
    assert_eq!((s, &v), (StatusCode::OK, &json!({ "status": true })));
    let (_, list) = get(&app, &server, "/api/auth/list-sessions", Some(&app_token)).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], app_sid.as_str());
    let (_, v) = get(&web2, &server, "/api/auth/get-session", None).await;
    assert_eq!(v, Value::Null);

    // sign-out ends the bearer session.
    let (s, _, v) = post(
        &app,
        &server,
        "/api/auth/sign-out",
        json!({}),
        None,
        Some(&app_token),
    )
    .await;
    assert_eq!((s, &v), (StatusCode::OK, &json!({ "success": true })));
    let (_, v) = get(&app, &server, "/api/auth/get-session", Some(&app_token)).await;
    assert_eq!(v, Value::Null);
    let (s, _, v) = post(
        &app,
        &server,
        "/api/auth/sign-out",
        json!({}),
        None,
        Some(&app_token),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(v["code"], "FAILED_TO_GET_SESSION");
}

async fn cookie_sign_out_and_revoke_sessions(db: Db) {
    let server = TestServer::start(db).await;
    server.user(EMAIL).await;
    let iss = server.issuer();
    let web = browser_client();
    let (s, _, _) = post(
        &web,
        &server,
        "/api/auth/sign-in/email",
        sign_in_body(PASSWORD),
        Some(&iss),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, h, v) = post(
        &web,
        &server,
        "/api/auth/sign-out",
        json!({}),
        Some(&iss),
        None,
    )
    .await;
    assert_eq!((s, &v), (StatusCode::OK, &json!({ "success": true })));
    assert!(h["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let (_, v) = get(&web, &server, "/api/auth/get-session", None).await;
    assert_eq!(v, Value::Null);
    // revoke-sessions ends all, the caller's too.
    let (_, _, a) = post(
        &web,
        &server,
        "/api/auth/sign-in/email",
        sign_in_body(PASSWORD),
        Some(&iss),
        None,
    )
    .await;
    let (_, _, b) = post(
        &server.http(),
        &server,
        "/api/auth/sign-in/email",
        sign_in_body(PASSWORD),
        None,
        None,
    )
    .await;
    let (s, _, v) = post(
        &web,
        &server,
        "/api/auth/revoke-sessions",
        json!({}),
        Some(&iss),
        None,
    )
    .await;
    assert_eq!((s, &v), (StatusCode::OK, &json!({ "status": true })), "{a}");
    for t in [a["token"].as_str().unwrap(), b["token"].as_str().unwrap()] {
        let (_, v) = get(&server.http(), &server, "/api/auth/get-session", Some(t)).await;
        assert_eq!(v, Value::Null);
    }
    let (_, v) = get(&server.http(), &server, "/api/auth/ok", None).await;
    assert_eq!(v, json!({ "ok": true }));
}

async fn wrong_password_and_unknown_email_look_the_same(db: Db) {
    let server = TestServer::start(db).await;
    server.user(EMAIL).await;
    let c = server.http();
    let (s1, h1, wrong) = post(
        &c,
        &server,
        "/api/auth/sign-in/email",
        sign_in_body("not the password"),
        None,
        None,
    )
    .await;
    let (s2, h2, unknown) = post(
        &c,
        &server,
        "/api/auth/sign-in/email",
        json!({ "email": "nobody@example.com", "password": PASSWORD }),
        None,
        None,
    )
    .await;
    assert_eq!(s1, 401);
    assert_eq!(s1, s2);
    assert_eq!(wrong, unknown);
    assert_eq!(
        wrong,
        json!({ "code": "INVALID_EMAIL_OR_PASSWORD", "message": "Invalid email or password" })
    );
    assert!(h1.get("set-cookie").is_none() && h2.get("set-cookie").is_none());
}

async fn bad_input_is_400_never_500(db: Db) {
    let server = TestServer::start(db).await;
    let c = server.http();
    let up = "/api/auth/sign-up/email";
    // Weak and overlong passwords.
    let (s, _, v) = post(
        &c,
        &server,
        up,
        json!({ "name": "W", "email": EMAIL, "password": "short" }),
        None,
        None,
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("PASSWORD_TOO_SHORT"))
    );
    let long = "x".repeat(129);
    let (s, _, v) = post(
        &c,
        &server,
        up,
        json!({ "name": "W", "email": EMAIL, "password": long }),
        None,
        None,
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("PASSWORD_TOO_LONG"))
    );
    // Bad email, missing and mistyped fields.
    let (s, _, v) = post(
        &c,
        &server,
        up,
        json!({ "name": "W", "email": "not-an-email", "password": PASSWORD }),
        None,
        None,
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_EMAIL"))
    );
    let (s, _, v) = post(
        &c,
        &server,
        up,
        json!({ "email": EMAIL, "password": PASSWORD }),
        None,
        None,
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("VALIDATION_ERROR"))
    );
    assert!(v["message"].as_str().unwrap().contains("name"), "{v}");
    let (s, _, v) = post(
        &c,
        &server,
        "/api/auth/sign-in/email",
        json!({ "email": EMAIL, "password": 5 }),
        None,
        None,
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("VALIDATION_ERROR"))
    );
    let (s, _, v) = post(&c, &server, up, json!(["an", "array"]), None, None).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("BODY_MUST_BE_AN_OBJECT"))
    );
    // Not JSON at all.
    for path in [up, "/api/auth/sign-in/email"] {
        let r = c
            .post(server.url(path))
            .header("content-type", "application/json")
            .body("{\"email\": ")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "VALIDATION_ERROR");
        let r = c
            .post(server.url(path))
            .form(&[("email", EMAIL)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415);
    }
    // Oversized.
    let big = json!({ "name": "x".repeat(300 * 1024), "email": EMAIL, "password": PASSWORD });
    let (s, _, v) = post(&c, &server, up, big, None, None).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("PAYLOAD_TOO_LARGE"))
    );
    // A foreign callbackURL.
    let (s, _, v) = post(
        &c,
        &server,
        up,
        json!({ "name": "W", "email": EMAIL, "password": PASSWORD, "callbackURL": "https://evil.example/x" }),
        None,
        None,
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("INVALID_CALLBACK_URL"))
    );
    // Nothing was written.
    assert!(
        klard_auth::store::users::by_email(&server.state.db, EMAIL)
            .await
            .unwrap()
            .is_none()
    );
}

async fn cookie_requests_need_a_trusted_origin(db: Db) {
    let server = TestServer::start_with(db, |c| {
        c.api_auth.trusted_origins = vec!["https://app.example.com".into()]
    })
    .await;
    server.user(EMAIL).await;
    let web = browser_client();
    // No cookie yet: no Origin needed (like Better Auth).
    let (s, _, _) = post(
        &web,
        &server,
        "/api/auth/sign-in/email",
        sign_in_body(PASSWORD),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200);
    // With the cookie: missing, untrusted, trusted Origin.
    let (s, _, v) = post(&web, &server, "/api/auth/sign-out", json!({}), None, None).await;
    assert_eq!(s, 403);
    assert_eq!(
        v,
        json!({ "code": "MISSING_OR_NULL_ORIGIN", "message": "Missing or null Origin" })
    );
    let (s, _, v) = post(
        &web,
        &server,
        "/api/auth/revoke-sessions",
        json!({}),
        Some("https://evil.example"),
        None,
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(v["code"], "INVALID_ORIGIN");
    let (s, _, v) = post(
        &web,
        &server,
        "/api/auth/sign-in/email",
        sign_in_body(PASSWORD),
        Some("null"),
        None,
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("MISSING_OR_NULL_ORIGIN"))
    );
    // Still signed in: the refused requests did nothing.
    let (_, v) = get(&web, &server, "/api/auth/get-session", None).await;
    assert_eq!(v["user"]["email"], EMAIL);
    let (s, _, _) = post(
        &web,
        &server,
        "/api/auth/sign-out",
        json!({}),
        Some("https://app.example.com"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    // A cross-site navigation without cookies (login CSRF) is refused.
    let r = server
        .http()
        .post(server.url("/api/auth/sign-in/email"))
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "navigate")
        .json(&sign_in_body(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Bearer requests need no Origin.
    let (_, _, v) = post(
        &server.http(),
        &server,
        "/api/auth/sign-in/email",
        sign_in_body(PASSWORD),
        None,
        None,
    )
    .await;
    let t = v["token"].as_str().unwrap();
    let (s, _, _) = post(
        &server.http(),
        &server,
        "/api/auth/sign-out",
        json!({}),
        None,
        Some(t),
    )
    .await;
    assert_eq!(s, 200);
}

async fn api_session_is_accepted_by_authorize(db: Db) {
    let server = TestServer::start(db).await;
    server.user(EMAIL).await;
    let (id, secret) = server
        .client(json!({
            "client_name": "Klard Web",
            "redirect_uris": [CB],
            "first_party": true,
        }))
        .await;
    let secret = secret.unwrap();
    let mut b = Browser::new(EMAIL);
    let r = b
        .http
        .post(server.url("/api/auth/sign-in/email"))
        .json(&sign_in_body(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let api_sid = {
        let (_, v) = get(&b.http, &server, "/api/auth/get-session", None).await;
        v["session"]["id"].as_str().unwrap().to_string()
    };
    let tokens = code_flow(
        &server,
        &mut b,
        &id,
        &secret,
        "openid",
        &[("prompt", "none")],
    )
    .await;
    assert!(b.pages_seen.is_empty(), "{:?}", b.pages_seen);
    // The ID token names the very session the API created.
    let idt = tokens["id_token"].as_str().unwrap();
    let payload = idt.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&klard_auth::crypto::b64url_decode(payload).unwrap()).unwrap();
    assert_eq!(claims["sid"], api_sid.as_str());
    assert_eq!(claims["amr"], json!(["pwd"]));
    // And the one session list holds it once.
    let (_, list) = get(&b.http, &server, "/api/auth/list-sessions", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], api_sid.as_str());
}

async fn hosted_login_session_is_an_api_session(db: Db) {
    let server = TestServer::start(db).await;
    server.user(EMAIL).await;
    let (id, secret) = web_client(&server).await;
    let mut b = Browser::new(EMAIL);
    code_flow(&server, &mut b, &id, &secret, "openid", &[]).await;
    assert_eq!(b.pages_seen, vec!["login", "consent"]);
    let (s, v) = get(&b.http, &server, "/api/auth/get-session", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["user"]["email"], EMAIL);
    let (_, list) = get(&b.http, &server, "/api/auth/list-sessions", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], v["session"]["id"]);
    // rememberMe: false gives a browser-session cookie.
    let (s, h, _) = post(
        &server.http(),
        &server,
        "/api/auth/sign-in/email",
        json!({ "email": EMAIL, "password": PASSWORD, "rememberMe": false }),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(!h["set-cookie"].to_str().unwrap().contains("Max-Age"));
}

db_tests!(
    hosted_login_session_is_an_api_session,
    sign_up_returns_user_and_signs_in_when_configured,
    duplicate_sign_up_looks_like_a_new_one,
    sign_in_cookie_and_bearer_sessions,
    cookie_sign_out_and_revoke_sessions,
    wrong_password_and_unknown_email_look_the_same,
    bad_input_is_400_never_500,
    cookie_requests_need_a_trusted_origin,
    api_session_is_accepted_by_authorize,
);
