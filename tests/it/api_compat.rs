//! What Better Auth's own client (`better-auth/client`, run against us by
//! `.ci/betterauth`) needs from `/api/auth` beyond bodies and status codes, pinned here
//! so it holds without node: CORS with credentials for trusted origins, so that a page
//! on `api_auth.trusted_origins` can use the client in cookie mode, and
//! `set-auth-token` exposed to that page's script.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::json;

use crate::support::*;

const APP: &str = "https://app.example.com";

async fn server(db: Db) -> TestServer {
    TestServer::start_with(db, |c| {
        c.api_auth.auto_sign_in = true;
        c.api_auth.trusted_origins = vec![APP.into()];
    })
    .await
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The preflight a browser sends before the client's JSON POSTs.
async fn preflight(server: &TestServer, path: &str, origin: &str, headers: &str) -> HeaderMap {
    let r = server
        .http()
        .request(reqwest::Method::OPTIONS, server.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", headers)
        .send()
        .await
        .expect("OPTIONS");
    assert!(r.status().is_success(), "{}", r.status());
    r.headers().clone()
}

async fn trusted_origin_may_call_with_credentials(db: Db) {
    let server = server(db).await;
    for path in [
        "/api/auth/sign-in/email",
        "/api/auth/sign-up/email",
        "/api/auth/change-password",
        "/api/auth/update-user",
    ] {
        let h = preflight(&server, path, APP, "content-type").await;
        assert_eq!(
            header(&h, "access-control-allow-origin"),
            Some(APP),
            "{path}"
        );
        assert_eq!(
            header(&h, "access-control-allow-credentials"),
            Some("true"),
            "{path}"
        );
        let methods = header(&h, "access-control-allow-methods").unwrap_or("");
        assert!(methods.contains("POST"), "{path}: {methods}");
        let allowed = header(&h, "access-control-allow-headers")
            .unwrap_or("")
            .to_ascii_lowercase();
        assert!(allowed.contains("content-type"), "{path}: {allowed}");
        assert!(allowed.contains("authorization"), "{path}: {allowed}");
        // Better Auth's captcha plugin sends its token in this header.
        assert!(allowed.contains("x-captcha-response"), "{path}: {allowed}");
    }

    // The real request: the page may read the answer and the `set-auth-token` header.
    let r = server
        .http()
        .post(server.url("/api/auth/sign-up/email"))
        .header("origin", APP)
        .json(&json!({ "name": "Dawn", "email": "dawn@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("sign-up");
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers();
    assert_eq!(header(h, "access-control-allow-origin"), Some(APP));
    assert_eq!(header(h, "access-control-allow-credentials"), Some("true"));
    let exposed = header(h, "access-control-expose-headers")
        .unwrap_or("")
        .to_ascii_lowercase();
    assert!(exposed.contains("set-auth-token"), "{exposed}");
    // A throttled page must be able to read when to retry.
    for h in [
        "retry-after",
        "ratelimit",
        "ratelimit-policy",
        "x-request-id",
    ] {
        assert!(exposed.contains(h), "{h} not in {exposed}");
    }
    let token = header(h, "set-auth-token")
        .expect("set-auth-token")
        .to_string();

    // A GET needs no preflight; its answer is readable by the trusted page only.
    let r = server
        .http()
        .get(server.url("/api/auth/get-session"))
        .header("origin", APP)
        .bearer_auth(&token)
        .send()
        .await
        .expect("get-session");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header(r.headers(), "access-control-allow-origin"),
        Some(APP)
    );
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["user"]["email"], "dawn@example.com");

    // The jwt plugin client fetches the JWKS with credentials too, which `*` would fail.
    let r = server
        .http()
        .get(server.url("/api/auth/jwks"))
        .header("origin", APP)
        .send()
        .await
        .expect("jwks");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header(r.headers(), "access-control-allow-origin"),
        Some(APP)
    );
    assert_eq!(
        header(r.headers(), "access-control-allow-credentials"),
        Some("true")
    );
    let v: serde_json::Value = r.json().await.expect("json");
    assert!(!v["keys"].as_array().expect("keys").is_empty());
}

async fn foreign_origin_gets_no_cors_grant(db: Db) {
    let server = server(db).await;
    let evil = "https://evil.example";
    // Without `Access-Control-Allow-Origin` naming it, a browser gives the page nothing:
    // a foreign preflight is not answered as one (it reaches the router: 405).
    let r = server
        .http()
        .request(
            reqwest::Method::OPTIONS,
            server.url("/api/auth/update-user"),
        )
        .header("origin", evil)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("OPTIONS");
    assert!(!r.status().is_success(), "{}", r.status());
    assert_eq!(header(r.headers(), "access-control-allow-origin"), None);
    assert_eq!(
        header(r.headers(), "access-control-allow-credentials"),
        None
    );

    let r = server
        .http()
        .get(server.url("/api/auth/get-session"))
        .header("origin", evil)
        .send()
        .await
        .expect("get-session");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(r.headers(), "access-control-allow-origin"), None);

    // Nothing is a wildcard, which browsers refuse with credentials anyway.
    let h = preflight(&server, "/api/auth/sign-in/email", APP, "content-type").await;
    assert_ne!(header(&h, "access-control-allow-origin"), Some("*"));
    // The OIDC endpoints keep their own, credential-less policy.
    let r = server
        .http()
        .get(server.url("/.well-known/openid-configuration"))
        .header("origin", evil)
        .send()
        .await
        .expect("discovery");
    assert_eq!(
        header(r.headers(), "access-control-allow-origin"),
        Some("*")
    );
    assert_eq!(
        header(r.headers(), "access-control-allow-credentials"),
        None
    );
}

db_tests!(
    trusted_origin_may_call_with_credentials,
    foreign_origin_gets_no_cors_grant,
);
