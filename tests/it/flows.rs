//! The main flows with the `openidconnect` crate as the relying party.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};

use crate::support::{Browser, CB, Db, TestServer, web_client};

async fn openidconnect_code_flow(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, secret) = web_client(&server).await;
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .expect("http");
    let meta = CoreProviderMetadata::discover_async(
        IssuerUrl::new(server.issuer()).expect("issuer"),
        &http,
    )
    .await
    .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(id.clone()),
        Some(ClientSecret::new(secret)),
    )
    .set_redirect_uri(RedirectUrl::new(CB.into()).expect("redirect"));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let mut browser = Browser::new("buffy@example.com");
    let params = browser.go(auth_url.as_str(), CB).await.params();
    assert_eq!(browser.pages_seen, vec!["login", "consent"]);
    assert_eq!(params.get("state"), Some(csrf.secret()));
    assert_eq!(params.get("iss"), Some(&server.issuer()));
    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .expect("token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("token exchange");
    let id_token = tokens.id_token().expect("id_token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("ID token verifies");
    assert_eq!(claims.issuer().as_str(), server.issuer());
    assert!(claims.auth_time().is_some());
    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .expect("userinfo endpoint")
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.email().map(|e| e.as_str()), Some("buffy@example.com"));
    assert_eq!(info.email_verified(), Some(true));
    assert_eq!(info.subject(), claims.subject());
    // Second authorization in the same browser: remembered consent, no pages.
    let mut again = browser;
    again.pages_seen.clear();
    let (auth_url, _, _) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .url();
    let p = again.go(auth_url.as_str(), CB).await.params();
    assert!(p.contains_key("code"));
    assert!(again.pages_seen.is_empty(), "{:?}", again.pages_seen);
}

/// Browser apps call the back-channel endpoints cross-origin (CORS, no credentials);
/// the cookie-authenticated pages are not opened to other origins.
async fn cross_origin_access(db: Db) {
    let server = TestServer::start(db).await;
    let http = server.http();
    let pre = http
        .request(reqwest::Method::OPTIONS, server.url("/token"))
        .header("Origin", "https://app.example.com")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("preflight");
    assert!(pre.status().is_success(), "{}", pre.status());
    let h = pre.headers();
    assert_eq!(
        h.get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("*")
    );
    assert!(h.get("access-control-allow-credentials").is_none());
    let allow = h
        .get("access-control-allow-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_lowercase();
    assert!(
        allow.contains("authorization") && allow.contains("content-type"),
        "{allow}"
    );
    for path in ["/.well-known/openid-configuration", "/jwks", "/userinfo"] {
        let r = http
            .get(server.url(path))
            .header("Origin", "https://app.example.com")
            .send()
            .await
            .expect("get");
        assert_eq!(
            r.headers()
                .get("access-control-allow-origin")
                .and_then(|v| v.to_str().ok()),
            Some("*"),
            "{path}"
        );
    }
    let page = http
        .get(server.url("/login"))
        .header("Origin", "https://evil.example.com")
        .send()
        .await
        .expect("login");
    assert!(page.headers().get("access-control-allow-origin").is_none());
}

/// Two consents of one user to one client at the same time (two devices) must both be
/// remembered: the grant ends with the union of their scopes.
async fn concurrent_consents_keep_every_scope(db: Db) {
    let server = TestServer::start(db).await;
    let user = server.user("buffy@example.com").await;
    let (client, _) = web_client(&server).await;
    let now = server.state.clock.now();
    let sets: Vec<Vec<String>> = [
        "openid",
        "email",
        "profile",
        "offline_access",
        "phone",
        "address",
    ]
    .iter()
    .map(|s| vec!["openid".to_string(), s.to_string()])
    .collect();
    let db = &server.state.db;
    let results = futures::future::join_all(
        sets.iter()
            .map(|s| klard_auth::store::grants::upsert(db, &user.id, &client, s, now)),
    )
    .await;
    let ids: Vec<String> = results.into_iter().map(|r| r.expect("upsert")).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "one grant: {ids:?}");
    let g = klard_auth::store::grants::find(db, &user.id, &client)
        .await
        .expect("find")
        .expect("grant");
    let all: Vec<String> = sets.concat();
    assert!(g.covers(&all), "lost a scope: {}", g.scope);
}

db_tests!(
    openidconnect_code_flow,
    cross_origin_access,
    concurrent_consents_keep_every_scope
);
