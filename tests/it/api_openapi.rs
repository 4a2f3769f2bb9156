//! `/api/auth/openapi.json`: an OpenAPI 3.1 document that lists every route of
//! `/api/auth/*` and `/auth/*` (the list and whatever the router has), whose
//! references all resolve, and whose every operation is really routed.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::support::*;

/// The routes issue 3 asks for, as `METHOD path`.
const REQUIRED: &[&str] = &[
    "POST /api/auth/sign-up/email",
    "POST /api/auth/sign-in/email",
    "POST /api/auth/sign-out",
    "GET /api/auth/get-session",
    "GET /api/auth/list-sessions",
    "GET /api/auth/security-events",
    "POST /api/auth/revoke-session",
    "POST /api/auth/revoke-sessions",
    "POST /api/auth/revoke-other-sessions",
    "GET /api/auth/token",
    "GET /api/auth/jwks",
    "POST /api/auth/change-password",
    "POST /api/auth/verify-password",
    "POST /api/auth/update-user",
    "GET /api/auth/ok",
    "GET /api/auth/verify-email",
    "POST /api/auth/send-verification-email",
    "POST /api/auth/request-password-reset",
    "POST /api/auth/forget-password",
    "GET /api/auth/reset-password/{token}",
    "POST /api/auth/reset-password",
    "POST /auth/forgot-password",
    "POST /auth/reset-password",
    "POST /auth/verify-email",
    "POST /auth/resend-verification",
    "POST /api/auth/update-session",
    "GET /api/auth/error",
    "POST /api/auth/change-email",
    "POST /api/auth/delete-user",
    "GET /api/auth/delete-user/callback",
    "GET /api/auth/list-accounts",
    "POST /auth/register",
    "POST /auth/login",
    "POST /auth/logout",
    "POST /auth/refresh",
    "GET /auth/me",
    "PATCH /auth/me",
    "DELETE /auth/me",
    "POST /auth/change-email",
    "POST /auth/change-password",
    "GET /auth/sessions",
    "GET /auth/sessions/{id}",
    "DELETE /auth/sessions/{id}",
    "DELETE /auth/sessions",
];

fn documented(doc: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            out.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    out
}

fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r);
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

async fn document_lists_every_route(db: Db) {
    let server = TestServer::start(db).await;
    let c = server.http();
    let r = c
        .get(server.url("/api/auth/openapi.json"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], server.issuer());
    let have = documented(&doc);
    for want in REQUIRED {
        assert!(have.contains(*want), "{want} is not in the document");
    }
    // Everything the router was given is documented.
    for op in klard_auth::api::operations() {
        let key = format!("{} {}", op.verb.as_str().to_uppercase(), op.path);
        assert!(have.contains(&key), "{key} is routed but not documented");
    }
    assert_eq!(have.len(), klard_auth::api::operations().len());
    // Every reference resolves to a component schema.
    let mut rs = Vec::new();
    refs(&doc, &mut rs);
    assert!(!rs.is_empty());
    for r in rs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("foreign $ref {r}"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "dangling $ref {r}"
        );
    }
    // Request bodies are typed: sign-up names its required fields.
    let body = &doc["paths"]["/api/auth/sign-up/email"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["$ref"];
    let name = body.as_str().expect("ref").rsplit('/').next().unwrap();
    let req = doc["components"]["schemas"][name]["required"]
        .as_array()
        .expect("required");
    for f in ["name", "email", "password"] {
        assert!(req.iter().any(|x| x == f), "{f} not required: {req:?}");
    }

    // Every documented operation is routed: without credentials or a body it answers
    // with its own error (JSON), never the router's bare 404/405.
    for key in &have {
        let (method, path) = key.split_once(' ').unwrap();
        let path = path
            .replace("{id}", "no-such-id")
            .replace("{token}", "no-such-token");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let r = c
            .request(method.clone(), server.url(&path))
            .send()
            .await
            .expect("request");
        let status = r.status();
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(
            status != 405 && (status != 404 || ct.starts_with("application/json")),
            "{method} {path} is not routed ({status}, {ct:?})"
        );
    }
}

db_tests!(document_lists_every_route);
