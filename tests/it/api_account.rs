//! The account part of the `/api/auth/*` door: `token` (a core access token, valid at
//! /userinfo, reached by /revoke), `change-password`, `verify-password`, `update-user`.

use josekit::jwk::Jwk;
use josekit::jws::{self, JwsVerifier};
use klard_auth::config::ClientConfig;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use crate::support::*;

const EMAIL: &str = "tara@example.com";
const CLIENT: &str = "klard-app";
const CLIENT_SECRET: &str = "klard-app-secret-0123456789";
const NEW_PASSWORD: &str = "a brand new passphrase";

/// A server with a first-party config client named by `api_auth.client_id`.
async fn server(db: Db) -> TestServer {
    TestServer::start_with(db, |c| {
        c.clients.push(ClientConfig {
            client_id: CLIENT.into(),
            client_secret: Some(CLIENT_SECRET.into()),
            client_name: Some("Klard".into()),
            redirect_uris: vec![CB.into()],
            first_party: true,
            ..ClientConfig::default()
        });
        c.api_auth.client_id = Some(CLIENT.into());
    })
    .await
}

async fn post(
    c: &reqwest::Client,
    server: &TestServer,
    path: &str,
    body: Value,
    bearer: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut rb = c.post(server.url(path)).json(&body);
    if let Some(t) = bearer {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.expect("POST");
    let s = r.status();
    let h = r.headers().clone();
    (s, h, r.json::<Value>().await.unwrap_or(Value::Null))
}

async fn get(server: &TestServer, path: &str, bearer: Option<&str>) -> (StatusCode, Value) {
    let mut rb = server.http().get(server.url(path));
    if let Some(t) = bearer {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.expect("GET");
    let s = r.status();
    (s, r.json::<Value>().await.unwrap_or(Value::Null))
}

/// Signs in through the API in bearer mode; returns the session token.
async fn sign_in(server: &TestServer, password: &str) -> (StatusCode, Option<String>) {
    let (s, h, _) = post(
        &server.http(),
        server,
        "/api/auth/sign-in/email",
        json!({ "email": EMAIL, "password": password }),
        None,
    )
    .await;
    let t = h
        .get("set-auth-token")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    (s, t)
}

async fn session(server: &TestServer) -> String {
    let (s, t) = sign_in(server, PASSWORD).await;
    assert_eq!(s, 200);
    t.expect("set-auth-token")
}

/// Verifies `token` with the JWKS key of its `kid`; returns the claims.
fn verify_with_jwks(set: &Value, token: &str) -> Map<String, Value> {
    let header = josekit::jwt::decode_header(token).expect("header");
    let kid = header.claim("kid").and_then(Value::as_str).expect("kid");
    let key = set["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} not in {set}"));
    let jwk = Jwk::from_map(key.as_object().unwrap().clone()).expect("JWK");
    let alg = jwk.algorithm().expect("JWK alg").to_string();
    let verifier: Box<dyn JwsVerifier> = match alg.as_str() {
        "RS256" => Box::new(jws::RS256.verifier_from_jwk(&jwk).expect("RS256 key")),
        "ES256" => Box::new(jws::ES256.verifier_from_jwk(&jwk).expect("ES256 key")),
        "EdDSA" => Box::new(jws::EdDSA.verifier_from_jwk(&jwk).expect("EdDSA key")),
        other => panic!("unexpected alg {other}"),
    };
    let (payload, _) =
        josekit::jwt::decode_with_verifier(token, verifier.as_ref()).expect("signature");
    payload.claims_set().clone()
}

async fn token_is_a_core_access_token(db: Db) {
    let server = server(db).await;
    let user = server.user(EMAIL).await;
    let st = session(&server).await;
    let (s, v) = get(&server, "/api/auth/token", Some(&st)).await;
    assert_eq!(s, 200, "{v}");
    let jwt = v["token"].as_str().expect("token").to_string();
    let (_, jwks) = get(&server, "/api/auth/jwks", None).await;
    let c = verify_with_jwks(&jwks, &jwt);
    assert_eq!(c["iss"], json!(server.issuer()));
    assert_eq!(c["sub"], json!(user.id));
    assert_eq!(c["aud"], json!(CLIENT));
    assert_eq!(c["client_id"], json!(CLIENT));
    assert_eq!(c["scope"], json!("openid profile email"));
    assert!(c["exp"].as_i64().unwrap() > c["iat"].as_i64().unwrap());
    assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let (_, cur) = get(&server, "/api/auth/get-session", Some(&st)).await;
    assert_eq!(c["sid"], cur["session"]["id"]);
    // /userinfo accepts it.
    let (s, info) = get(&server, "/userinfo", Some(&jwt)).await;
    assert_eq!(s, 200, "{info}");
    assert_eq!(info["sub"], json!(user.id));
    assert_eq!(info["name"], "Buffy Summers");
    assert_eq!(info["email"], EMAIL);
    // /introspect calls it active, for the same user and client.
    let introspect = || async {
        server
            .http()
            .post(server.url("/introspect"))
            .basic_auth(CLIENT, Some(CLIENT_SECRET))
            .form(&[("token", jwt.as_str())])
            .send()
            .await
            .expect("introspect")
            .json::<Value>()
            .await
            .expect("introspection JSON")
    };
    let i = introspect().await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["sub"], json!(user.id));
    assert_eq!(i["client_id"], CLIENT);
    // /revoke reaches it (RFC 7009), then /userinfo and /introspect refuse it.
    let r = server
        .http()
        .post(server.url("/revoke"))
        .basic_auth(CLIENT, Some(CLIENT_SECRET))
        .form(&[("token", jwt.as_str())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status(), 200);
    let (s, _) = get(&server, "/userinfo", Some(&jwt)).await;
    assert_eq!(s, 401);
    assert_eq!(introspect().await["active"], false);
    // Each call mints a new token; no session, no token.
    let (_, v2) = get(&server, "/api/auth/token", Some(&st)).await;
    assert_ne!(v2["token"], json!(jwt));
    let (s, v) = get(&server, "/api/auth/token", None).await;
    assert_eq!(s, 401);
    assert_eq!(v["code"], "UNAUTHORIZED");
}

async fn token_needs_a_configured_client(db: Db) {
    let server = TestServer::start(db).await;
    server.user(EMAIL).await;
    let st = session(&server).await;
    let (s, v) = get(&server, "/api/auth/token", Some(&st)).await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["code"], "JWT_NOT_CONFIGURED");
    // A client_id that names no client stops the server from starting.
    let mut cfg = server.state.config.clone();
    cfg.api_auth.client_id = Some("no-such-client".into());
    let state = klard_auth::app::build_state(cfg).await.expect("state");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let e = klard_auth::app::serve(state, listener)
        .await
        .err()
        .expect("refused to start");
    assert!(e.to_string().contains("api_auth.client_id"), "{e}");
    // So does a token scope the client may not request.
    let mut cfg = server.state.config.clone();
    cfg.clients.push(ClientConfig {
        client_id: CLIENT.into(),
        client_secret: Some(CLIENT_SECRET.into()),
        redirect_uris: vec![CB.into()],
        ..ClientConfig::default()
    });
    cfg.api_auth.client_id = Some(CLIENT.into());
    cfg.api_auth.token_scope = Some("openid admin".into());
    let state = klard_auth::app::build_state(cfg).await.expect("state");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let e = klard_auth::app::serve(state, listener)
        .await
        .err()
        .expect("refused to start");
    assert!(e.to_string().contains("api_auth.token_scope"), "{e}");
}

async fn change_password_keeps_or_revokes_sessions(db: Db) {
    let server = server(db).await;
    server.user(EMAIL).await;
    let st = session(&server).await;
    let other = session(&server).await;
    let c = server.http();
    // Without revokeOtherSessions: token null, every session stays.
    let (s, h, v) = post(
        &c,
        &server,
        "/api/auth/change-password",
        json!({ "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD }),
        Some(&st),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["token"], Value::Null);
    assert_eq!(v["user"]["email"], EMAIL);
    assert!(h.get("set-auth-token").is_none());
    for t in [&st, &other] {
        let (_, cur) = get(&server, "/api/auth/get-session", Some(t)).await;
        assert_eq!(cur["user"]["email"], EMAIL);
    }
    // The old password no longer signs in; the new one does.
    assert_eq!(sign_in(&server, PASSWORD).await.0, 401);
    assert_eq!(sign_in(&server, NEW_PASSWORD).await.0, 200);
    // With revokeOtherSessions: all sessions end, a new one replaces the caller's.
    let (s, h, v) = post(
        &c,
        &server,
        "/api/auth/change-password",
        json!({ "currentPassword": NEW_PASSWORD, "newPassword": PASSWORD,
                "revokeOtherSessions": true }),
        Some(&st),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let fresh = v["token"].as_str().expect("new session token").to_string();
    assert_eq!(h["set-auth-token"].to_str().unwrap(), fresh);
    assert!(
        h["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("klard_session=")
    );
    for t in [&st, &other] {
        let (_, cur) = get(&server, "/api/auth/get-session", Some(t)).await;
        assert_eq!(cur, Value::Null);
    }
    let (_, cur) = get(&server, "/api/auth/get-session", Some(&fresh)).await;
    assert_eq!(cur["user"]["email"], EMAIL);
    let (_, list) = get(&server, "/api/auth/list-sessions", Some(&fresh)).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(sign_in(&server, PASSWORD).await.0, 200);
}

async fn change_password_errors(db: Db) {
    let server = server(db).await;
    server.user(EMAIL).await;
    let st = session(&server).await;
    let before = klard_auth::store::users::by_email(&server.state.db, EMAIL)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    let c = server.http();
    let cases = [
        (
            json!({ "currentPassword": "not my password", "newPassword": NEW_PASSWORD }),
            400,
            "INVALID_PASSWORD",
        ),
        (
            json!({ "currentPassword": PASSWORD, "newPassword": "short" }),
            400,
            "PASSWORD_TOO_SHORT",
        ),
        (
            json!({ "currentPassword": PASSWORD, "newPassword": "x".repeat(129) }),
            400,
            "PASSWORD_TOO_LONG",
        ),
        (
            json!({ "newPassword": NEW_PASSWORD }),
            400,
            "VALIDATION_ERROR",
        ),
        (
            json!({ "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD,
                    "revokeOtherSessions": "yes" }),
            400,
            "VALIDATION_ERROR",
        ),
    ];
    for (body, status, code) in cases {
        let (s, _, v) = post(&c, &server, "/api/auth/change-password", body, Some(&st)).await;
        assert_eq!(
            (s.as_u16(), v["code"].as_str()),
            (status, Some(code)),
            "{v}"
        );
    }
    // Bad JSON.
    let r = c
        .post(server.url("/api/auth/change-password"))
        .bearer_auth(&st)
        .header("content-type", "application/json")
        .body("{\"currentPassword\":")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "VALIDATION_ERROR");
    // No session.
    let (s, _, v) = post(
        &c,
        &server,
        "/api/auth/change-password",
        json!({ "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD }),
        None,
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(v["code"], "UNAUTHORIZED");
    // Nothing was changed, the session is still there.
    let after = klard_auth::store::users::by_email(&server.state.db, EMAIL)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert_eq!(before, after);
    let (_, cur) = get(&server, "/api/auth/get-session", Some(&st)).await;
    assert_eq!(cur["user"]["email"], EMAIL);
}

async fn verify_password_right_and_wrong(db: Db) {
    let server = server(db).await;
    server.user(EMAIL).await;
    let st = session(&server).await;
    let c = server.http();
    let (s, _, v) = post(
        &c,
        &server,
        "/api/auth/verify-password",
        json!({ "password": PASSWORD }),
        Some(&st),
    )
    .await;
    assert_eq!((s, v), (StatusCode::OK, json!({ "status": true })));
    let (s, _, v) = post(
        &c,
        &server,
        "/api/auth/verify-password",
        json!({ "password": "wrong password" }),
        Some(&st),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(v["code"], "INVALID_PASSWORD");
    assert_eq!(v["message"], "Invalid password");
    let (s, _, v) = post(
        &c,
        &server,
        "/api/auth/verify-password",
        json!({ "password": PASSWORD }),
        None,
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(v["code"], "UNAUTHORIZED");
    let (s, _, v) = post(
        &c,
        &server,
        "/api/auth/verify-password",
        json!([]),
        Some(&st),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(v["code"], "BODY_MUST_BE_AN_OBJECT");
}

async fn update_user_changes_profile_claims(db: Db) {
    let server = server(db).await;
    let user = server.user(EMAIL).await;
    let st = session(&server).await;
    let c = server.http();
    server.state.clock.advance(5);
    let (s, _, v) = post(
        &c,
        &server,
        "/api/auth/update-user",
        json!({ "name": "Tara Maclay", "image": null }),
        Some(&st),
    )
    .await;
    assert_eq!((s, &v), (StatusCode::OK, &json!({ "status": true })));
    let (_, cur) = get(&server, "/api/auth/get-session", Some(&st)).await;
    assert_eq!(cur["user"]["name"], "Tara Maclay");
    assert_eq!(cur["user"]["image"], Value::Null);
    assert_ne!(cur["user"]["updatedAt"], cur["user"]["createdAt"]);
    // The OIDC claims follow: name, picture gone, updated_at; the rest is kept.
    let (_, t) = get(&server, "/api/auth/token", Some(&st)).await;
    let (s, info) = get(&server, "/userinfo", t["token"].as_str()).await;
    assert_eq!(s, 200, "{info}");
    assert_eq!(info["name"], "Tara Maclay");
    assert!(info.get("picture").is_none(), "{info}");
    assert_eq!(info["given_name"], "Buffy");
    // (The clock was advanced 5 s; real time may add a second.)
    assert!(
        info["updated_at"].as_i64().unwrap() >= user.updated_at + 5,
        "{info}"
    );
    let (s, _, _) = post(
        &c,
        &server,
        "/api/auth/update-user",
        json!({ "image": "https://example.com/t.png" }),
        Some(&st),
    )
    .await;
    assert_eq!(s, 200);
    let (_, cur) = get(&server, "/api/auth/get-session", Some(&st)).await;
    assert_eq!(cur["user"]["image"], "https://example.com/t.png");
    assert_eq!(cur["user"]["name"], "Tara Maclay");
    // Errors, and nothing written by them.
    let cases = [
        (
            json!({ "name": "X", "email": "other@example.com" }),
            "EMAIL_CAN_NOT_BE_UPDATED",
        ),
        (json!({}), "NO_FIELDS_TO_UPDATE"),
        (json!({ "name": 42 }), "VALIDATION_ERROR"),
        (json!({ "name": "n".repeat(257) }), "VALIDATION_ERROR"),
    ];
    for (body, code) in cases {
        let (s, _, v) = post(&c, &server, "/api/auth/update-user", body, Some(&st)).await;
        assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some(code)), "{v}");
    }
    let r = c
        .post(server.url("/api/auth/update-user"))
        .bearer_auth(&st)
        .header("content-type", "application/json")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (_, cur) = get(&server, "/api/auth/get-session", Some(&st)).await;
    assert_eq!(cur["user"]["name"], "Tara Maclay");
    assert_eq!(cur["user"]["email"], EMAIL);
    let (s, _, _) = post(
        &c,
        &server,
        "/api/auth/update-user",
        json!({ "name": "Nobody" }),
        None,
    )
    .await;
    assert_eq!(s, 401);
}

/// Browser mode: the cookie works, and a state-changing call needs a trusted Origin.
async fn cookie_mode_needs_origin(db: Db) {
    let server = server(db).await;
    server.user(EMAIL).await;
    let iss = server.issuer();
    let web = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = web
        .post(server.url("/api/auth/sign-in/email"))
        .header("origin", &iss)
        .json(&json!({ "email": EMAIL, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let send = |body: Value, origin: Option<&str>| {
        let mut rb = web.post(server.url("/api/auth/update-user")).json(&body);
        if let Some(o) = origin {
            rb = rb.header("origin", o);
        }
        rb.send()
    };
    let r = send(json!({ "name": "Evil" }), Some("https://evil.example"))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "INVALID_ORIGIN");
    let r = send(json!({ "name": "Evil" }), None).await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "MISSING_OR_NULL_ORIGIN"
    );
    let r = send(json!({ "name": "Tara" }), Some(&iss)).await.unwrap();
    assert_eq!(r.status(), 200);
    let r = web
        .post(server.url("/api/auth/verify-password"))
        .header("origin", &iss)
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The JWT is a GET: no Origin needed.
    let r = web.get(server.url("/api/auth/token")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = web
        .get(server.url("/api/auth/get-session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["user"]["name"], "Tara");
}

db_tests!(
    token_is_a_core_access_token,
    token_needs_a_configured_client,
    change_password_keeps_or_revokes_sessions,
    change_password_errors,
    verify_password_right_and_wrong,
    update_user_changes_profile_claims,
    cookie_mode_needs_origin,
);
