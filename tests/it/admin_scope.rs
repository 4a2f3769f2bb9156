//! The admin scope is an operator's grant: self-service registration (RFC 7591) cannot
//! claim it, neither at registration nor by a later RFC 7592 update.

use serde_json::{Value, json};

use crate::support::*;

async fn register(server: &TestServer, doc: Value) -> (u16, Value) {
    let resp = server
        .http()
        .post(server.url("/register"))
        .json(&doc)
        .send()
        .await
        .expect("register");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn registration_cannot_claim_the_admin_scope(db: Db) {
    let server = TestServer::start(db).await;
    let doc = json!({
        "client_name": "Sneaky",
        "grant_types": ["client_credentials"],
        "redirect_uris": [],
        "scope": "read klard:admin",
    });
    let (status, body) = register(&server, doc).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_client_metadata", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("klard:admin")),
        "{body}"
    );
    assert!(
        klard_auth::store::clients::list(&server.state.db)
            .await
            .unwrap()
            .iter()
            .all(|c| c.metadata.client_name.as_deref() != Some("Sneaky")),
        "nothing stored"
    );

    // Registered without it, then updated to claim it (RFC 7592 §2.2).
    let (status, reg) = register(
        &server,
        json!({"client_name": "Later", "grant_types": ["client_credentials"], "redirect_uris": []}),
    )
    .await;
    assert_eq!(status, 201, "{reg}");
    let id = reg["client_id"].as_str().unwrap().to_string();
    let mut update = reg.clone();
    for k in [
        "registration_access_token",
        "registration_client_uri",
        "client_secret_expires_at",
        "client_id_issued_at",
    ] {
        update.as_object_mut().unwrap().remove(k);
    }
    update["scope"] = json!("klard:admin");
    let resp = server
        .http()
        .put(server.url(&format!("/register/{id}")))
        .bearer_auth(reg["registration_access_token"].as_str().unwrap())
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client_metadata", "{body}");
    let stored = klard_auth::store::clients::get(&server.state.db, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.metadata.scope, None, "the update was not applied");

    // An operator's client may hold it.
    let (_id, secret) = server
        .client(json!({
            "client_id": "ops",
            "grant_types": ["client_credentials"],
            "redirect_uris": [],
            "scope": "klard:admin",
        }))
        .await;
    let (status, tok, _) = token_basic(
        &server,
        "ops",
        &secret.unwrap(),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "klard:admin"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tok}");
    assert_eq!(tok["scope"], "klard:admin", "{tok}");
}

/// A client allowed `klard:admin` may ask for it at /authorize too, but a token that
/// acts for a user (authorization code) is refused by the admin API: only the client's
/// own client_credentials token is an admin token.
async fn user_delegated_admin_token_is_refused(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, secret) = server
        .client(json!({
            "client_name": "Ops console",
            "redirect_uris": [CB],
            "grant_types": ["authorization_code", "client_credentials"],
            "scope": "openid klard:admin",
        }))
        .await;
    let secret = secret.unwrap();
    let mut b = Browser::new("buffy@example.com");
    let tokens = code_flow(&server, &mut b, &id, &secret, "openid klard:admin", &[]).await;
    let user_token = tokens["access_token"].as_str().expect("access token");
    assert!(
        tokens["scope"]
            .as_str()
            .unwrap_or("")
            .contains("klard:admin"),
        "{tokens}"
    );
    let admin_get = |token: String| {
        server
            .http()
            .get(server.url("/admin/audit-events"))
            .bearer_auth(token)
            .send()
    };
    let r = admin_get(user_token.to_string()).await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope", "{body}");

    // The same client's own token is an admin token.
    let (status, tok, _) = token_basic(
        &server,
        &id,
        &secret,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "klard:admin"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tok}");
    let r = admin_get(tok["access_token"].as_str().unwrap().to_string())
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

db_tests!(
    registration_cannot_claim_the_admin_scope,
    user_delegated_admin_token_is_refused,
);
