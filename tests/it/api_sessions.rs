//! Sessions per device through `/api/auth/*`: the parsed device fields of
//! list-sessions / get-session, update-session, idle and absolute timeouts with sliding
//! renewal (on the injected clock), cookie names per issuer kind, CORS for trusted
//! origins, and the Better Auth error page.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const EMAIL: &str = "tara@example.com";
const CHROME_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const KLARD_ANDROID: &str = "Klard/2.3.1 (Android 14; Pixel 8) okhttp/4.12.0";
const TRUSTED: &str = "https://app.example.com";

/// Signs in through the API as an app (bearer), with `ua` as User-Agent; the token.
async fn sign_in(server: &TestServer, ua: &str) -> String {
    let r = server
        .http()
        .post(server.url("/api/auth/sign-in/email"))
        .header("user-agent", ua)
        .json(&json!({ "email": EMAIL, "password": PASSWORD }))
        .send()
        .await
        .expect("sign-in");
    assert_eq!(r.status(), 200);
    r.headers()["set-auth-token"]
        .to_str()
        .expect("token")
        .to_string()
}

async fn get(server: &TestServer, path: &str, token: &str) -> (StatusCode, Value) {
    let r = server
        .http()
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn update(server: &TestServer, token: Option<&str>, body: &str) -> (StatusCode, Value) {
    let mut rb = server
        .http()
        .post(server.url("/api/auth/update-session"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.expect("POST");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// The stored row of a session token.
async fn row(server: &TestServer, token: &str) -> klard_auth::store::sessions::Session {
    klard_auth::store::sessions::by_hash(&server.state.db, &klard_auth::crypto::hash_secret(token))
        .await
        .expect("query")
        .expect("row")
}

async fn list_sessions_show_devices_and_mark_the_current_one(db: Db) {
    let server = TestServer::start(db).await;
    server.user(EMAIL).await;
    let web = sign_in(&server, CHROME_MAC).await;
    let app = sign_in(&server, KLARD_ANDROID).await;
    let (s, list) = get(&server, "/api/auth/list-sessions", &app).await;
    assert_eq!(s, 200);
    let list = list.as_array().expect("array").clone();
    assert_eq!(list.len(), 2, "{list:?}");
    let web_sid = row(&server, &web).await.sid;
    let app_sid = row(&server, &app).await.sid;
    let by_id = |sid: &str| {
        list.iter()
            .find(|s| s["id"] == sid)
            .cloned()
            .expect("listed")
    };
    let w = by_id(&web_sid);
    assert_eq!(w["browser"], json!({ "name": "Chrome", "version": "124" }));
    assert_eq!(w["os"], json!({ "name": "macOS", "version": "10.15.7" }));
    assert_eq!(w["current"], false);
    assert_eq!(w["deviceName"], Value::Null);
    assert_eq!(w["userAgent"], CHROME_MAC);
    assert_eq!(w["ipAddress"], "127.0.0.1");
    assert_eq!(w["lastActiveAt"], w["updatedAt"]);
    let a = by_id(&app_sid);
    assert_eq!(a["browser"], json!({ "name": "Klard app", "version": "2" }));
    assert_eq!(a["os"], json!({ "name": "Android", "version": "14" }));
    assert_eq!(a["current"], true);
    // Better Auth's fields are all still there.
    for k in [
        "id",
        "token",
        "userId",
        "expiresAt",
        "createdAt",
        "updatedAt",
        "ipAddress",
        "userAgent",
    ] {
        assert!(a.get(k).is_some(), "{k} missing in {a}");
    }
    // From the other device, the other one is current.
    let (_, list) = get(&server, "/api/auth/list-sessions", &web).await;
    let current: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["current"] == true)
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], web_sid.as_str());
    // get-session has the same fields, current.
    let (_, v) = get(&server, "/api/auth/get-session", &app).await;
    assert_eq!(v["session"]["current"], true);
    assert_eq!(v["session"]["browser"]["name"], "Klard app");
    assert_eq!(v["session"]["os"]["name"], "Android");
    // An unknown agent: nulls, not errors.
    let other = sign_in(&server, "something/else").await;
    let (_, v) = get(&server, "/api/auth/get-session", &other).await;
    assert_eq!(v["session"]["browser"], Value::Null);
    assert_eq!(v["session"]["os"], Value::Null);
}

async fn update_session_names_the_device(db: Db) {
    let server = TestServer::start(db).await;
    server.user(EMAIL).await;
    let token = sign_in(&server, KLARD_ANDROID).await;
    let other = sign_in(&server, CHROME_MAC).await;
    let (s, v) = update(&server, Some(&token), r#"{"name": "  Tara's Pixel  "}"#).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["session"]["deviceName"], "Tara's Pixel");
    assert_eq!(v["session"]["current"], true);
    assert_eq!(v["session"]["token"], token.as_str());
    assert_eq!(
        row(&server, &token).await.name.as_deref(),
        Some("Tara's Pixel")
    );
    // Only the caller's session was renamed.
    assert_eq!(row(&server, &other).await.name, None);
    let (_, list) = get(&server, "/api/auth/list-sessions", &other).await;
    let named: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["deviceName"] == "Tara's Pixel")
        .collect();
    assert_eq!(named.len(), 1);
    assert_eq!(named[0]["current"], false);
    // `deviceName` is accepted too; exactly 100 characters is fine.
    let hundred = "é".repeat(100);
    let (s, v) = update(
        &server,
        Some(&token),
        &json!({ "deviceName": hundred }).to_string(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        row(&server, &token).await.name.as_deref(),
        Some(hundred.as_str())
    );

    // Errors leave the name as it was.
    let cases: Vec<(Option<&str>, String, u16, &str)> = vec![
        (
            Some(&token),
            json!({ "name": "x".repeat(101) }).to_string(),
            400,
            "VALIDATION_ERROR",
        ),
        (
            Some(&token),
            r#"{"name": 7}"#.into(),
            400,
            "VALIDATION_ERROR",
        ),
        (
            Some(&token),
            r#"{"name": "a\u0007b"}"#.into(),
            400,
            "VALIDATION_ERROR",
        ),
        (Some(&token), "{}".into(), 400, "NO_FIELDS_TO_UPDATE"),
        (
            Some(&token),
            r#"{"userId": "someone-else"}"#.into(),
            400,
            "NO_FIELDS_TO_UPDATE",
        ),
        (Some(&token), "[]".into(), 400, "BODY_MUST_BE_AN_OBJECT"),
        (Some(&token), "{nope".into(), 400, "VALIDATION_ERROR"),
        (None, r#"{"name": "x"}"#.into(), 401, "UNAUTHORIZED"),
        (
            Some("not-a-token"),
            r#"{"name": "x"}"#.into(),
            401,
            "UNAUTHORIZED",
        ),
    ];
    for (t, body, status, code) in cases {
        let (s, v) = update(&server, t, &body).await;
        assert_eq!(
            (s.as_u16(), v["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
        assert_eq!(
            row(&server, &token).await.name.as_deref(),
            Some(hundred.as_str()),
            "{body}"
        );
    }
    // A cookie request from a foreign origin is refused before anything happens.
    let r = server
        .http()
        .post(server.url("/api/auth/update-session"))
        .header("cookie", format!("klard_session={token}"))
        .header("origin", "https://evil.example.com")
        .json(&json!({ "name": "pwned" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "INVALID_ORIGIN");
    assert_eq!(
        row(&server, &token).await.name.as_deref(),
        Some(hundred.as_str())
    );
    // null clears it.
    let (s, v) = update(&server, Some(&token), r#"{"name": null}"#).await;
    assert_eq!(s, 200);
    assert_eq!(v["session"]["deviceName"], Value::Null);
    assert_eq!(row(&server, &token).await.name, None);
}

const IDLE: i64 = 1000;
const UPDATE_AGE: i64 = 100;
const ABSOLUTE: i64 = 3000;

async fn timed_server(db: Db) -> TestServer {
    TestServer::start_with(db, |c| {
        c.session.ttl = ABSOLUTE;
        c.session.idle_timeout = IDLE;
        c.session.update_age = UPDATE_AGE;
    })
    .await
}

async fn idle_sessions_expire_and_use_slides_the_window(db: Db) {
    let server = timed_server(db).await;
    server.user(EMAIL).await;
    let clock = &server.state.clock;
    let token = sign_in(&server, CHROME_MAC).await;
    let start = row(&server, &token).await;
    assert_eq!(start.expires_at, start.created_at + IDLE);
    assert_eq!(start.absolute_expires_at, start.created_at + ABSOLUTE);

    // Within update_age: used, but nothing is written.
    clock.advance(UPDATE_AGE / 2);
    let (_, v) = get(&server, "/api/auth/get-session", &token).await;
    assert!(v["session"].is_object());
    let r = row(&server, &token).await;
    assert_eq!(
        (r.last_seen, r.expires_at),
        (start.last_seen, start.expires_at)
    );

    // Past update_age: renewed, the idle window moves.
    clock.advance(UPDATE_AGE);
    let (_, v) = get(&server, "/api/auth/get-session", &token).await;
    let now = clock.now();
    let r = row(&server, &token).await;
    assert!(r.last_seen >= now - 1 && r.last_seen <= now, "{r:?}");
    assert_eq!(r.expires_at, r.last_seen + IDLE);
    assert_eq!(
        v["session"]["expiresAt"],
        klard_auth::api::iso8601(r.expires_at)
    );
    assert_eq!(
        v["session"]["lastActiveAt"],
        klard_auth::api::iso8601(r.last_seen)
    );

    // Idle for less than the window since the renewal (but more since sign-in): active.
    clock.advance(IDLE - UPDATE_AGE);
    assert!(clock.now() > start.created_at + IDLE);
    let (_, v) = get(&server, "/api/auth/get-session", &token).await;
    assert!(v["session"].is_object(), "slid: {v}");

    // Idle longer than the window: inactive everywhere.
    clock.advance(IDLE + 1);
    let (_, v) = get(&server, "/api/auth/get-session", &token).await;
    assert_eq!(v, Value::Null);
    let (s, v) = get(&server, "/api/auth/list-sessions", &token).await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (401, Some("UNAUTHORIZED"))
    );
    // The row was not revived by the attempts.
    let r = row(&server, &token).await;
    assert!(r.last_seen + IDLE < clock.now());
}

async fn idle_session_fails_prompt_none_and_hosted_pages(db: Db) {
    let server = timed_server(db).await;
    server.user(EMAIL).await;
    let (client, _) = web_client(&server).await;
    let jar = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = jar
        .post(server.url("/api/auth/sign-in/email"))
        .header("origin", server.issuer())
        .json(&json!({ "email": EMAIL, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, challenge) = pkce();
    let url = authorize_url(
        &server,
        &[
            ("response_type", "code"),
            ("client_id", &client),
            ("redirect_uri", CB),
            ("scope", "openid"),
            ("prompt", "none"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let consent = klard_auth::store::users::by_email(&server.state.db, EMAIL)
        .await
        .unwrap()
        .unwrap();
    klard_auth::store::grants::upsert(
        &server.state.db,
        &consent.id,
        &client,
        &["openid".to_string()],
        server.state.clock.now(),
    )
    .await
    .unwrap();
    let location = |r: &reqwest::Response| {
        r.headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let r = jar.get(&url).send().await.unwrap();
    assert!(location(&r).contains("code="), "{}", location(&r));
    let r = jar.get(server.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    server.state.clock.advance(IDLE + 1);
    let r = jar.get(&url).send().await.unwrap();
    assert!(
        location(&r).contains("error=login_required"),
        "{}",
        location(&r)
    );
    let r = jar.get(server.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login?return_to=/account");
}

async fn absolute_lifetime_ends_a_session_despite_activity(db: Db) {
    let server = timed_server(db).await;
    server.user(EMAIL).await;
    let clock = &server.state.clock;
    let token = sign_in(&server, CHROME_MAC).await;
    let start = row(&server, &token).await;
    // Used every 500 s: the idle window never closes, but it never passes the limit.
    while clock.now() + 500 < start.absolute_expires_at {
        clock.advance(500);
        let (_, v) = get(&server, "/api/auth/get-session", &token).await;
        assert!(v["session"].is_object(), "at {}: {v}", clock.now());
        let r = row(&server, &token).await;
        assert!(r.expires_at <= start.absolute_expires_at, "{r:?}");
        assert_eq!(r.absolute_expires_at, start.absolute_expires_at);
    }
    assert_eq!(
        row(&server, &token).await.expires_at,
        start.absolute_expires_at
    );
    clock.advance(start.absolute_expires_at - clock.now());
    let (_, v) = get(&server, "/api/auth/get-session", &token).await;
    assert_eq!(v, Value::Null);
}

async fn no_idle_timeout_keeps_the_absolute_limit_only(db: Db) {
    let server = TestServer::start_with(db, |c| {
        c.session.ttl = ABSOLUTE;
        c.session.idle_timeout = 0;
        c.session.update_age = UPDATE_AGE;
    })
    .await;
    server.user(EMAIL).await;
    let token = sign_in(&server, CHROME_MAC).await;
    let start = row(&server, &token).await;
    assert_eq!(start.expires_at, start.absolute_expires_at);
    server.state.clock.advance(ABSOLUTE - 1);
    let (_, v) = get(&server, "/api/auth/get-session", &token).await;
    assert!(v["session"].is_object());
    server.state.clock.advance(1);
    let (_, v) = get(&server, "/api/auth/get-session", &token).await;
    assert_eq!(v, Value::Null);
}

/// Starts a server whose issuer is `https://127.0.0.1:<port><path>` (served over plain
/// HTTP on loopback: the cookie attributes are what is under test); returns the
/// Set-Cookie of a sign-in.
async fn sign_in_cookie(db: Db, path: &str) -> String {
    let path = path.to_string();
    let server = TestServer::start_with(db, move |c| {
        let port = c.bind.rsplit(':').next().unwrap_or("0").to_string();
        c.issuer = format!("https://127.0.0.1:{port}{path}");
    })
    .await;
    server.user(EMAIL).await;
    let url = format!(
        "{}{}/api/auth/sign-in/email",
        server.base,
        server.state.config.issuer_path()
    );
    let r = server
        .http()
        .post(url)
        .json(&json!({ "email": EMAIL, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.headers()["set-cookie"].to_str().unwrap().to_string()
}

async fn cookie_names_follow_the_issuer(db: Db) {
    let root = sign_in_cookie(db, "").await;
    assert!(root.starts_with("__Host-klard_session="), "{root}");
    assert!(root.contains("; Path=/;"), "{root}");
    let sub = sign_in_cookie(db, "/auth").await;
    assert!(sub.starts_with("__Secure-klard_session="), "{sub}");
    assert!(sub.contains("; Path=/auth;"), "{sub}");
    let server = TestServer::start(db).await;
    server.user(EMAIL).await;
    let r = server
        .http()
        .post(server.url("/api/auth/sign-in/email"))
        .json(&json!({ "email": EMAIL, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let plain = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(plain.starts_with("klard_session="), "{plain}");
    for c in [&root, &sub, &plain] {
        assert!(c.contains("HttpOnly; Secure; SameSite=Lax"), "{c}");
    }
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, k: &str) -> Option<&'a str> {
    h.get(k).and_then(|v| v.to_str().ok())
}

async fn cors_answers_trusted_origins_only(db: Db) {
    let server = TestServer::start_with(db, |c| {
        c.api_auth.trusted_origins = vec![TRUSTED.into()];
    })
    .await;
    server.user(EMAIL).await;
    let http = server.http();
    let preflight = |origin: String| {
        http.request(
            reqwest::Method::OPTIONS,
            server.url("/api/auth/sign-in/email"),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
    };
    for origin in [TRUSTED.to_string(), server.issuer()] {
        let r = preflight(origin.clone()).await.unwrap();
        assert_eq!(r.status(), 204, "{origin}");
        let h = r.headers();
        assert_eq!(
            header(h, "access-control-allow-origin"),
            Some(origin.as_str())
        );
        assert_eq!(header(h, "access-control-allow-credentials"), Some("true"));
        let allowed = header(h, "access-control-allow-headers").unwrap_or("");
        assert!(allowed.contains("content-type") && allowed.contains("authorization"));
        assert!(
            header(h, "access-control-allow-methods")
                .unwrap_or("")
                .contains("POST")
        );
        assert_eq!(
            header(h, "access-control-expose-headers"),
            Some("set-auth-token, retry-after, ratelimit, ratelimit-policy, x-request-id")
        );
        assert!(header(h, "vary").unwrap_or("").contains("Origin"));
    }
    for origin in [
        "https://evil.example.com",
        "null",
        "https://app.example.com:444",
    ] {
        let r = preflight(origin.into()).await.unwrap();
        assert_ne!(r.status(), 204, "{origin}");
        assert!(
            r.headers().get("access-control-allow-origin").is_none(),
            "{origin}"
        );
        assert!(
            r.headers()
                .get("access-control-allow-credentials")
                .is_none()
        );
    }

    // Actual requests: a trusted origin can read the answer and the bearer token.
    let r = http
        .post(server.url("/api/auth/sign-in/email"))
        .header("origin", TRUSTED)
        .json(&json!({ "email": EMAIL, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers();
    assert_eq!(header(h, "access-control-allow-origin"), Some(TRUSTED));
    assert_eq!(header(h, "access-control-allow-credentials"), Some("true"));
    assert_eq!(
        header(h, "access-control-expose-headers"),
        Some("set-auth-token, retry-after, ratelimit, ratelimit-policy, x-request-id")
    );
    assert!(header(h, "vary").unwrap_or("").contains("Origin"));
    // Error answers carry them too (the page must be able to read the error code).
    let r = http
        .get(server.url("/api/auth/list-sessions"))
        .header("origin", TRUSTED)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        header(r.headers(), "access-control-allow-origin"),
        Some(TRUSTED)
    );
    // An untrusted origin gets the answer without CORS headers (its script cannot read it).
    let r = http
        .get(server.url("/api/auth/get-session"))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert!(
        r.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    assert!(header(r.headers(), "vary").unwrap_or("").contains("Origin"));
    // The public JWKS (`/jwks`, discovery's jwks_uri) keeps its credential-less CORS;
    // the `/api/auth/jwks` alias follows this router's policy (Better Auth's jwtClient
    // fetches it with credentials).
    let r = http
        .get(server.url("/api/auth/jwks"))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = http
        .get(server.url("/jwks"))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(r.headers(), "access-control-allow-origin"),
        Some("*")
    );
    assert!(
        r.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    // The hosted pages get none.
    let r = http
        .get(server.url("/login"))
        .header("origin", TRUSTED)
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

async fn error_page_shows_code_like_values_only(db: Db) {
    let server = TestServer::start(db).await;
    let http = server.http();
    let r = http
        .get(server.url("/api/auth/error?error=INVALID_TOKEN"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        header(r.headers(), "content-type")
            .unwrap_or("")
            .starts_with("text/html")
    );
    assert!(header(r.headers(), "content-security-policy").is_some());
    let body = r.text().await.unwrap();
    assert!(body.contains("<code>INVALID_TOKEN</code>"), "{body}");
    for bad in [
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "Your+account+is+locked%2C+call+555",
        "",
    ] {
        let body = http
            .get(server.url(&format!("/api/auth/error?error={bad}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.contains("<code>UNKNOWN</code>"), "{bad}: {body}");
        assert!(!body.contains("<script>") && !body.contains("555"), "{bad}");
    }
    let r = http
        .get(server.url("/api/auth/error"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("UNKNOWN"));
}

db_tests!(
    list_sessions_show_devices_and_mark_the_current_one,
    update_session_names_the_device,
    idle_sessions_expire_and_use_slides_the_window,
    idle_session_fails_prompt_none_and_hosted_pages,
    absolute_lifetime_ends_a_session_despite_activity,
    no_idle_timeout_keeps_the_absolute_limit_only,
    cookie_names_follow_the_issuer,
    cors_answers_trusted_origins_only,
    error_page_shows_code_like_values_only,
);
