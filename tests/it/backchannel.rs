//! The back-channel endpoints over real HTTP: the token endpoint (RFC 6749 §3.2, §5),
//! its three grants, client authentication (RFC 6749 §2.3, RFC 7523), revocation
//! (RFC 7009), introspection (RFC 7662), and the signing keys as a resource server sees
//! them (discovery, JWKS, rotation).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use josekit::jwk::Jwk;
use josekit::jws::{self, JwsHeader, JwsVerifier};
use josekit::jwt::{self, JwtPayload};
use reqwest::header::HeaderMap;
use serde_json::{Map, Value, json};

use crate::support::{Browser, CB, Db, TestServer, authorize_url, code_flow, pkce, web_client};

const EMAIL: &str = "buffy@example.com";
const FORM: &str = "application/x-www-form-urlencoded";

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// An answer of one of our endpoints.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn str(&self, k: &str) -> &str {
        self.body[k]
            .as_str()
            .unwrap_or_else(|| panic!("`{k}` missing in {}", self.body))
    }
}

/// How a request authenticates its client.
enum Auth<'a> {
    None,
    /// client_secret_basic, with RFC 6749 §2.3.1 form-encoding of id and secret.
    Basic(&'a str, &'a str),
    /// client_secret_post.
    Post(&'a str, &'a str),
    /// A ready-made Authorization header value.
    Header(String),
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn basic_header(id: &str, secret: &str) -> String {
    let raw = format!("{}:{}", form_encode(id), form_encode(secret));
    format!("Basic {}", b64(raw.as_bytes()))
}

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

async fn send(req: reqwest::RequestBuilder) -> Resp {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
    }
}

/// POSTs a form to `path` (issuer-relative) with the given client authentication.
async fn post(server: &TestServer, path: &str, auth: Auth<'_>, form: &[(&str, &str)]) -> Resp {
    let mut pairs: Vec<(&str, &str)> = form.to_vec();
    let mut req = server.http().post(server.url(path));
    match auth {
        Auth::None => {}
        Auth::Basic(id, secret) => req = req.header("authorization", basic_header(id, secret)),
        Auth::Post(id, secret) => {
            pairs.push(("client_id", id));
            pairs.push(("client_secret", secret));
        }
        Auth::Header(h) => req = req.header("authorization", h),
    }
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    send(req.header("content-type", FORM).body(body)).await
}

async fn token(server: &TestServer, auth: Auth<'_>, form: &[(&str, &str)]) -> Resp {
    post(server, "/token", auth, form).await
}

/// RFC 6749 §5.2 error: exact status and code, a description, never cached (§5.1).
#[track_caller]
fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.body["error"], json!(code), "{r:?}");
    assert!(
        r.body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "error_description missing: {r:?}"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"), "{r:?}");
}

/// RFC 6749 §5.1 success: 200, Bearer, never cached.
#[track_caller]
fn assert_tokens(r: &Resp) {
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["token_type"], json!("Bearer"), "{r:?}");
    assert!(r.body["access_token"].is_string(), "{r:?}");
    assert!(
        r.body["expires_in"].as_i64().is_some_and(|e| e > 0),
        "{r:?}"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"), "{r:?}");
    assert_eq!(r.header("pragma"), Some("no-cache"), "{r:?}");
}

/// Header and claims of a compact JWS, unverified.
fn jwt_parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let mut part = || {
        let bytes = klard_auth::crypto::b64url_decode(it.next().expect("JWS part")).expect("b64");
        serde_json::from_slice::<Value>(&bytes).expect("JSON")
    };
    let h = part();
    let c = part();
    (h, c)
}

fn kid_of(token: &str) -> String {
    jwt_parts(token).0["kid"].as_str().expect("kid").to_string()
}

async fn userinfo(server: &TestServer, access_token: &str) -> Resp {
    send(
        server
            .http()
            .get(server.url("/userinfo"))
            .bearer_auth(access_token),
    )
    .await
}

/// RFC 6750 §3.1: 401 invalid_token with a Bearer challenge naming the error.
#[track_caller]
fn assert_userinfo_refused(r: &Resp) {
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.body["error"], json!("invalid_token"), "{r:?}");
    let www = r.header("www-authenticate").unwrap_or("");
    assert!(
        www.starts_with("Bearer ") && www.contains("error=\"invalid_token\""),
        "{www}"
    );
}

async fn introspect(server: &TestServer, auth: Auth<'_>, tok: &str) -> Resp {
    post(server, "/introspect", auth, &[("token", tok)]).await
}

/// RFC 7662 §2.2: an inactive token yields `{"active": false}` and nothing else.
#[track_caller]
fn assert_inactive(r: &Resp) {
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, json!({"active": false}), "{r:?}");
}

async fn revoke(server: &TestServer, auth: Auth<'_>, form: &[(&str, &str)]) -> Resp {
    post(server, "/revoke", auth, form).await
}

async fn jwks(server: &TestServer) -> Value {
    let r = send(server.http().get(server.url("/jwks"))).await;
    assert_eq!(r.status, 200);
    r.body
}

fn jwks_kids(set: &Value) -> Vec<String> {
    set["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_string())
        .collect()
}

fn jwk_by_kid(set: &Value, kid: &str) -> Option<Jwk> {
    set["keys"]
        .as_array()?
        .iter()
        .find(|k| k["kid"] == json!(kid))
        .and_then(|k| Jwk::from_map(k.as_object()?.clone()).ok())
}

/// Verifies `token` against the key the JWKS publishes under its `kid`, with the
/// verifier of the key's own `alg`. Returns the claims.
fn verify_with_jwks(set: &Value, token: &str) -> Map<String, Value> {
    let (header, _) = jwt_parts(token);
    let kid = header["kid"].as_str().expect("kid");
    let jwk = jwk_by_kid(set, kid).unwrap_or_else(|| panic!("kid {kid} not in {set}"));
    let alg = jwk.algorithm().expect("JWK alg").to_string();
    assert_eq!(header["alg"], json!(alg), "header alg vs JWK alg");
    let verifier: Box<dyn JwsVerifier> = match alg.as_str() {
        "RS256" => Box::new(jws::RS256.verifier_from_jwk(&jwk).expect("RS256 key")),
        "ES256" => Box::new(jws::ES256.verifier_from_jwk(&jwk).expect("ES256 key")),
        "EdDSA" => Box::new(jws::EdDSA.verifier_from_jwk(&jwk).expect("EdDSA key")),
        other => panic!("unexpected alg {other}"),
    };
    let (payload, _) = jwt::decode_with_verifier(token, verifier.as_ref()).expect("signature");
    payload.claims_set().clone()
}

/// Runs the browser part of a code flow and returns (code, PKCE verifier).
async fn get_code(
    server: &TestServer,
    browser: &mut Browser,
    client_id: &str,
    scope: &str,
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        server,
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", CB),
            ("scope", scope),
            ("state", "st4te"),
            ("nonce", "n0nce"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let params = browser.go(&url, CB).await.params();
    let code = params.get("code").expect("code").clone();
    (code, verifier)
}

async fn exchange(server: &TestServer, id: &str, secret: &str, code: &str, verifier: &str) -> Resp {
    token(
        server,
        Auth::Basic(id, secret),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
            ("code_verifier", verifier),
        ],
    )
    .await
}

async fn refresh_scope(server: &TestServer, id: &str, secret: &str, rt: &str, scope: &str) -> Resp {
    token(
        server,
        Auth::Basic(id, secret),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("scope", scope),
        ],
    )
    .await
}

async fn refresh(server: &TestServer, id: &str, secret: &str, rt: &str) -> Resp {
    token(
        server,
        Auth::Basic(id, secret),
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await
}

/// A confidential client for client_credentials only.
async fn service_client(server: &TestServer, scope: &str) -> (String, String) {
    let (id, secret) = server
        .client(json!({
            "client_name": "Service",
            "grant_types": ["client_credentials"],
            "scope": scope,
        }))
        .await;
    (id, secret.expect("secret"))
}

/// A public client (auth method `none`) for the code flow.
async fn public_client(server: &TestServer) -> String {
    server
        .client(json!({
            "client_name": "SPA",
            "redirect_uris": [CB],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        }))
        .await
        .0
}

/// A user, a web client, and tokens from a full code flow with `scope`.
struct Session {
    id: String,
    secret: String,
    tokens: Value,
}

async fn session(server: &TestServer, scope: &str) -> Session {
    server.user(EMAIL).await;
    let (id, secret) = web_client(server).await;
    let mut browser = Browser::new(EMAIL);
    let tokens = code_flow(server, &mut browser, &id, &secret, scope, &[]).await;
    Session { id, secret, tokens }
}

impl Session {
    fn at(&self) -> &str {
        self.tokens["access_token"].as_str().expect("access_token")
    }
    fn rt(&self) -> &str {
        self.tokens["refresh_token"]
            .as_str()
            .expect("refresh_token")
    }
}

// ---------------------------------------------------------------------------------------
// 1. Token endpoint errors (RFC 6749 §5.2) and client authentication (§2.3)
// ---------------------------------------------------------------------------------------

async fn token_request_errors(db: Db) {
    let server = TestServer::start(db).await;
    let (id, secret) = service_client(&server, "api.read").await;

    // §3.2 / §4.4.2: the body must be application/x-www-form-urlencoded.
    let r = send(
        server
            .http()
            .post(server.url("/token"))
            .basic_auth(&id, Some(&secret))
            .json(&json!({"grant_type": "client_credentials"})),
    )
    .await;
    assert_error(&r, 400, "invalid_request");

    // grant_type is REQUIRED.
    let r = token(&server, Auth::Basic(&id, &secret), &[("scope", "api.read")]).await;
    assert_error(&r, 400, "invalid_request");

    // §3.1: a repeated parameter is invalid_request.
    let r = token(
        &server,
        Auth::Basic(&id, &secret),
        &[
            ("grant_type", "client_credentials"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_error(&r, 400, "invalid_request");

    // Grants the server does not implement.
    for g in [
        "password",
        "urn:ietf:params:oauth:grant-type:device_code",
        "implicit",
    ] {
        let r = token(&server, Auth::Basic(&id, &secret), &[("grant_type", g)]).await;
        assert_error(&r, 400, "unsupported_grant_type");
    }

    // A client not registered for the grant: unauthorized_client.
    for g in ["authorization_code", "refresh_token"] {
        let r = token(
            &server,
            Auth::Basic(&id, &secret),
            &[("grant_type", g), ("code", "x"), ("refresh_token", "x")],
        )
        .await;
        assert_error(&r, 400, "unauthorized_client");
    }
    let (web_id, web_secret) = web_client(&server).await;
    let r = token(
        &server,
        Auth::Basic(&web_id, &web_secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_error(&r, 400, "unauthorized_client");

    // Success carries Cache-Control: no-store and Pragma: no-cache (§5.1).
    let r = token(
        &server,
        Auth::Basic(&id, &secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_tokens(&r);
}

async fn client_authentication_errors(db: Db) {
    let server = TestServer::start(db).await;
    let (id, secret) = service_client(&server, "api.read").await;
    let (post_id, post_secret) = server
        .client(json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_post",
        }))
        .await;
    let post_secret = post_secret.expect("secret");
    let cc = [("grant_type", "client_credentials")];

    // §5.2: failed Basic authentication is 401 with a Basic challenge.
    let r = token(&server, Auth::Basic(&id, "wrong"), &cc).await;
    assert_error(&r, 401, "invalid_client");
    let www = r.header("www-authenticate").expect("WWW-Authenticate");
    assert!(www.to_ascii_lowercase().starts_with("basic "), "{www}");

    // Unknown client over Basic: the same answer.
    let r = token(&server, Auth::Basic("nobody", "wrong"), &cc).await;
    assert_error(&r, 401, "invalid_client");
    assert!(r.header("www-authenticate").is_some());

    // Malformed Basic credentials.
    for h in ["Basic %%%", &format!("Basic {}", b64(b"no-colon"))] {
        let r = token(&server, Auth::Header(h.to_string()), &cc).await;
        assert_error(&r, 401, "invalid_client");
        assert!(r.header("www-authenticate").is_some(), "{h}");
    }

    // client_secret_post with a bad secret.
    let r = token(&server, Auth::Post(&post_id, "wrong"), &cc).await;
    assert_error(&r, 401, "invalid_client");
    // ... with the right one.
    assert_tokens(&token(&server, Auth::Post(&post_id, &post_secret), &cc).await);
    // A method other than the registered one is refused (OIDC Registration §2).
    let r = token(&server, Auth::Basic(&post_id, &post_secret), &cc).await;
    assert_error(&r, 401, "invalid_client");
    let r = token(&server, Auth::Post(&id, &secret), &cc).await;
    assert_error(&r, 401, "invalid_client");

    // Unknown client id without credentials.
    let r = token(
        &server,
        Auth::None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "nobody"),
        ],
    )
    .await;
    assert_error(&r, 401, "invalid_client");
    // A confidential client that does not authenticate at all.
    let r = token(
        &server,
        Auth::None,
        &[("grant_type", "client_credentials"), ("client_id", &id)],
    )
    .await;
    assert_error(&r, 401, "invalid_client");
    // No client at all.
    let r = token(&server, Auth::None, &cc).await;
    assert_error(&r, 401, "invalid_client");

    // §2.3: the client MUST NOT use more than one authentication method per request.
    let r = token(
        &server,
        Auth::Basic(&id, &secret),
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_error(&r, 400, "invalid_request");
    let r = token(
        &server,
        Auth::Post(&post_id, &post_secret),
        &[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", "a.b.c"),
        ],
    )
    .await;
    assert_error(&r, 400, "invalid_request");
    // client_id in the body that contradicts the Basic credentials.
    let r = token(
        &server,
        Auth::Basic(&id, &secret),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &post_id),
        ],
    )
    .await;
    assert_error(&r, 400, "invalid_request");
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded, then joined by `:` and base64'd.
async fn basic_credentials_are_form_decoded(db: Db) {
    let server = TestServer::start(db).await;
    let secret = "a:b+c%d é/=&";
    let (id, _) = server
        .client(json!({
            "client_id": "svc:one+two%",
            "client_secret": secret,
            "grant_types": ["client_credentials"],
        }))
        .await;
    assert_eq!(id, "svc:one+two%");
    let cc = [("grant_type", "client_credentials")];
    let r = token(&server, Auth::Basic(&id, secret), &cc).await;
    assert_tokens(&r);
    assert_eq!(jwt_parts(r.str("access_token")).1["client_id"], json!(id));

    // `+` is a space once decoded, so the un-encoded secret is a different secret.
    let raw = format!(
        "Basic {}",
        b64(format!("{}:{secret}", form_encode(&id)).as_bytes())
    );
    let r = token(&server, Auth::Header(raw), &cc).await;
    assert_error(&r, 401, "invalid_client");

    // The same client over client_secret_post needs no special encoding (the form does it),
    // but it is registered for Basic, so that is refused.
    let r = token(&server, Auth::Post(&id, secret), &cc).await;
    assert_error(&r, 401, "invalid_client");
}

// ---------------------------------------------------------------------------------------
// 2. authorization_code (RFC 6749 §4.1.3, RFC 7636 §4.6)
// ---------------------------------------------------------------------------------------

async fn code_reuse_revokes_tokens(db: Db) {
    let server = TestServer::start(db).await;
    server.user(EMAIL).await;
    let (id, secret) = web_client(&server).await;
    let mut browser = Browser::new(EMAIL);
    let (code, verifier) = get_code(&server, &mut browser, &id, "openid offline_access").await;
    let first = exchange(&server, &id, &secret, &code, &verifier).await;
    assert_tokens(&first);
    let at = first.str("access_token").to_string();
    let rt = first.str("refresh_token").to_string();
    assert!(first.body["id_token"].is_string());
    assert_eq!(userinfo(&server, &at).await.status, 200);
    // A refresh in between: its tokens descend from the code too.
    let r2 = refresh(&server, &id, &secret, &rt).await;
    assert_tokens(&r2);
    let (rt2, at2) = (r2.str("refresh_token"), r2.str("access_token"));

    // §4.1.2: a second use fails, and the tokens of the first use SHOULD be revoked.
    let second = exchange(&server, &id, &secret, &code, &verifier).await;
    assert_error(&second, 400, "invalid_grant");
    assert_userinfo_refused(&userinfo(&server, &at).await);
    assert_error(
        &refresh(&server, &id, &secret, &rt).await,
        400,
        "invalid_grant",
    );
    assert_inactive(&introspect(&server, Auth::Basic(&id, &secret), &at).await);
    assert_userinfo_refused(&userinfo(&server, at2).await);
    assert_error(
        &refresh(&server, &id, &secret, rt2).await,
        400,
        "invalid_grant",
    );
}

/// Two redemptions of one code at once: exactly one wins (RFC 6749 §4.1.2).
async fn code_exchange_concurrent(db: Db) {
    let server = TestServer::start(db).await;
    server.user(EMAIL).await;
    let (id, secret) = web_client(&server).await;
    let mut browser = Browser::new(EMAIL);
    let (code, verifier) = get_code(&server, &mut browser, &id, "openid").await;
    let (a, b) = tokio::join!(
        exchange(&server, &id, &secret, &code, &verifier),
        exchange(&server, &id, &secret, &code, &verifier),
    );
    // Never both. A replay revokes what the code yielded (RFC 6749 §4.1.2): if it
    // arrived after the winner linked its tokens, the replay revokes them; if before,
    // the winner sees the replay and fails too. Either way no token of this code lives.
    let winners: Vec<&Resp> = [&a, &b].into_iter().filter(|r| r.status == 200).collect();
    assert!(winners.len() <= 1, "{a:?} {b:?}");
    for r in [&a, &b].into_iter().filter(|r| r.status != 200) {
        assert_error(r, 400, "invalid_grant");
    }
    for w in winners {
        let at = w.body["access_token"].as_str().expect("access_token");
        assert_eq!(
            userinfo(&server, at).await.status,
            401,
            "a replayed code's token still works"
        );
    }
}

async fn code_exchange_errors(db: Db) {
    let server = TestServer::start(db).await;
    server.user(EMAIL).await;
    let (id, secret) = web_client(&server).await;
    let (other_id, other_secret) = web_client(&server).await;
    let mut browser = Browser::new(EMAIL);
    let scope = "openid";

    // Missing and unknown code.
    let r = token(
        &server,
        Auth::Basic(&id, &secret),
        &[("grant_type", "authorization_code"), ("redirect_uri", CB)],
    )
    .await;
    assert_error(&r, 400, "invalid_request");
    let r = exchange(&server, &id, &secret, "not-a-code", &pkce().0).await;
    assert_error(&r, 400, "invalid_grant");

    // §4.1.3: redirect_uri must be identical to the one of the authorization request.
    let (code, verifier) = get_code(&server, &mut browser, &id, scope).await;
    let r = token(
        &server,
        Auth::Basic(&id, &secret),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/other"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_error(&r, 400, "invalid_grant");

    // ... and REQUIRED when it was sent there.
    let (code, verifier) = get_code(&server, &mut browser, &id, scope).await;
    let r = token(
        &server,
        Auth::Basic(&id, &secret),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_error(&r, 400, "invalid_request");

    // RFC 7636 §4.6: a verifier that does not match, or none at all.
    let (code, _) = get_code(&server, &mut browser, &id, scope).await;
    let r = exchange(&server, &id, &secret, &code, &pkce().0).await;
    assert_error(&r, 400, "invalid_grant");
    let (code, _) = get_code(&server, &mut browser, &id, scope).await;
    let r = token(
        &server,
        Auth::Basic(&id, &secret),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
        ],
    )
    .await;
    assert_error(&r, 400, "invalid_grant");
    // A malformed verifier (too short for RFC 7636 §4.1).
    let (code, _) = get_code(&server, &mut browser, &id, scope).await;
    let r = exchange(&server, &id, &secret, &code, "short").await;
    assert_error(&r, 400, "invalid_grant");

    // §4.1.3: the code is bound to the client it was issued to.
    let (code, verifier) = get_code(&server, &mut browser, &id, scope).await;
    let r = exchange(&server, &other_id, &other_secret, &code, &verifier).await;
    assert_error(&r, 400, "invalid_grant");

    // Expired code (code_ttl is 60 s by default).
    let (code, verifier) = get_code(&server, &mut browser, &id, scope).await;
    server
        .state
        .clock
        .advance(server.state.config.tokens.code_ttl + 1);
    let r = exchange(&server, &id, &secret, &code, &verifier).await;
    assert_error(&r, 400, "invalid_grant");

    // A fresh code still works with everything right.
    let (code, verifier) = get_code(&server, &mut browser, &id, scope).await;
    assert_tokens(&exchange(&server, &id, &secret, &code, &verifier).await);
}

/// Public clients redeem codes with client_id and PKCE only.
async fn public_client_code_exchange(db: Db) {
    let server = TestServer::start(db).await;
    server.user(EMAIL).await;
    let id = public_client(&server).await;
    let mut browser = Browser::new(EMAIL);
    let (code, verifier) = get_code(&server, &mut browser, &id, "openid").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CB),
        ("code_verifier", verifier.as_str()),
    ];
    // Without client_id the server cannot tell who is asking.
    assert_error(
        &token(&server, Auth::None, &form).await,
        401,
        "invalid_client",
    );
    // Client authentication comes first, so that attempt did not spend the code.
    let with_id = [
        ("grant_type", "authorization_code"),
        ("client_id", id.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", CB),
        ("code_verifier", verifier.as_str()),
    ];
    assert_tokens(&token(&server, Auth::None, &with_id).await);
    // A public client presenting a secret it does not have.
    let (code3, verifier3) = get_code(&server, &mut browser, &id, "openid").await;
    let r = token(
        &server,
        Auth::Post(&id, "made-up"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code3),
            ("redirect_uri", CB),
            ("code_verifier", &verifier3),
        ],
    )
    .await;
    assert_error(&r, 401, "invalid_client");
}

// ---------------------------------------------------------------------------------------
// 3. refresh_token (RFC 6749 §6, RFC 9700 §4.14.2)
// ---------------------------------------------------------------------------------------

async fn refresh_rotates_and_detects_reuse(db: Db) {
    let server = TestServer::start_with(db, |c| c.tokens.refresh_reuse_grace = 0).await;
    let s = session(&server, "openid offline_access").await;
    let rt1 = s.rt().to_string();

    let r2 = refresh(&server, &s.id, &s.secret, &rt1).await;
    assert_tokens(&r2);
    let rt2 = r2.str("refresh_token").to_string();
    assert_ne!(rt2, rt1);
    assert_ne!(r2.str("access_token"), s.at());
    // OIDC Core §12.2: an ID token may come along, with the same sub and no nonce.
    let (_, first_id) = jwt_parts(s.tokens["id_token"].as_str().expect("id_token"));
    let (_, again) = jwt_parts(r2.str("id_token"));
    assert_eq!(again["sub"], first_id["sub"]);
    assert!(again.get("nonce").is_none(), "{again}");

    let r3 = refresh(&server, &s.id, &s.secret, &rt2).await;
    assert_tokens(&r3);
    let rt3 = r3.str("refresh_token").to_string();
    let at3 = r3.str("access_token").to_string();
    assert!(rt3 != rt1 && rt3 != rt2);
    assert_eq!(userinfo(&server, &at3).await.status, 200);

    // Reuse of a rotated token: refused, and the whole family goes.
    assert_error(
        &refresh(&server, &s.id, &s.secret, &rt1).await,
        400,
        "invalid_grant",
    );
    assert_error(
        &refresh(&server, &s.id, &s.secret, &rt3).await,
        400,
        "invalid_grant",
    );
    assert_userinfo_refused(&userinfo(&server, &at3).await);
    assert_userinfo_refused(&userinfo(&server, s.at()).await);
    assert_inactive(&introspect(&server, Auth::Basic(&s.id, &s.secret), &rt3).await);
}

async fn refresh_reuse_after_grace_revokes_family(db: Db) {
    let server = TestServer::start(db).await;
    let grace = server.state.config.tokens.refresh_reuse_grace;
    assert_eq!(grace, 5, "the documented default");
    let s = session(&server, "openid offline_access").await;
    let r2 = refresh(&server, &s.id, &s.secret, s.rt()).await;
    assert_tokens(&r2);
    let rt2 = r2.str("refresh_token").to_string();
    let at2 = r2.str("access_token").to_string();

    server.state.clock.advance(grace + 1);
    assert_error(
        &refresh(&server, &s.id, &s.secret, s.rt()).await,
        400,
        "invalid_grant",
    );
    assert_error(
        &refresh(&server, &s.id, &s.secret, &rt2).await,
        400,
        "invalid_grant",
    );
    assert_userinfo_refused(&userinfo(&server, &at2).await);
}

async fn refresh_retry_within_grace(db: Db) {
    let server = TestServer::start(db).await;
    let s = session(&server, "openid offline_access").await;
    let r2 = refresh(&server, &s.id, &s.secret, s.rt()).await;
    assert_tokens(&r2);
    let rt2 = r2.str("refresh_token").to_string();
    // The client lost the answer and retries at once with the just-rotated token.
    let retry = refresh(&server, &s.id, &s.secret, s.rt()).await;
    assert_tokens(&retry);
    let rt2b = retry.str("refresh_token").to_string();
    assert_ne!(rt2b, rt2);
    assert_ne!(rt2b, s.rt());
    assert_eq!(
        userinfo(&server, retry.str("access_token")).await.status,
        200
    );
    // The fresh pair works, and the first rotation was not punished.
    assert_tokens(&refresh(&server, &s.id, &s.secret, &rt2b).await);
    assert_eq!(userinfo(&server, r2.str("access_token")).await.status, 200);
}

async fn refresh_concurrent_without_grace(db: Db) {
    let server = TestServer::start_with(db, |c| c.tokens.refresh_reuse_grace = 0).await;
    let s = session(&server, "openid offline_access").await;
    let (a, b) = tokio::join!(
        refresh(&server, &s.id, &s.secret, s.rt()),
        refresh(&server, &s.id, &s.secret, s.rt()),
    );
    let ok: Vec<&Resp> = [&a, &b].into_iter().filter(|r| r.status == 200).collect();
    assert_eq!(
        ok.len(),
        1,
        "exactly one of two parallel refreshes wins: {a:?} {b:?}"
    );
    let loser = if a.status == 200 { &b } else { &a };
    assert_error(loser, 400, "invalid_grant");
    // The loser looks like a replay: the family, and so the winner's token, is revoked.
    let winner_rt = ok[0].str("refresh_token");
    assert_error(
        &refresh(&server, &s.id, &s.secret, winner_rt).await,
        400,
        "invalid_grant",
    );
}

async fn refresh_concurrent_within_grace(db: Db) {
    let server = TestServer::start(db).await;
    let s = session(&server, "openid offline_access").await;
    let (a, b) = tokio::join!(
        refresh(&server, &s.id, &s.secret, s.rt()),
        refresh(&server, &s.id, &s.secret, s.rt()),
    );
    assert_tokens(&a);
    assert_tokens(&b);
    assert_ne!(a.str("refresh_token"), b.str("refresh_token"));
    for r in [&a, &b] {
        assert_tokens(&refresh(&server, &s.id, &s.secret, r.str("refresh_token")).await);
    }
}

async fn refresh_binding_and_scope(db: Db) {
    let server = TestServer::start(db).await;
    let s = session(&server, "openid offline_access email").await;
    let (other_id, other_secret) = web_client(&server).await;
    let rt = s.rt().to_string();
    assert_eq!(s.tokens["scope"], json!("openid offline_access email"));

    // §6: bound to its client.
    let r = refresh(&server, &other_id, &other_secret, &rt).await;
    assert_error(&r, 400, "invalid_grant");
    // Missing refresh_token.
    let r = token(
        &server,
        Auth::Basic(&s.id, &s.secret),
        &[("grant_type", "refresh_token")],
    )
    .await;
    assert_error(&r, 400, "invalid_request");
    // Unknown token.
    assert_error(
        &refresh(&server, &s.id, &s.secret, "nope").await,
        400,
        "invalid_grant",
    );

    // §6: a scope not originally granted is invalid_scope, and the token survives it.
    let r = refresh_scope(&server, &s.id, &s.secret, &rt, "openid email profile").await;
    assert_error(&r, 400, "invalid_scope");

    // Narrowing is allowed.
    let r = refresh_scope(&server, &s.id, &s.secret, &rt, "openid").await;
    assert_tokens(&r);
    assert_eq!(r.body["scope"], json!("openid"));
    assert_eq!(jwt_parts(r.str("access_token")).1["scope"], json!("openid"));
    let info = userinfo(&server, r.str("access_token")).await;
    assert_eq!(info.status, 200);
    assert!(info.body.get("email").is_none(), "{}", info.body);
    // ... and what was originally granted may be asked for again later.
    let r = refresh_scope(
        &server,
        &s.id,
        &s.secret,
        r.str("refresh_token"),
        "openid email",
    )
    .await;
    assert_tokens(&r);
    assert_eq!(r.body["scope"], json!("openid email"));
    let r = refresh_scope(
        &server,
        &s.id,
        &s.secret,
        r.str("refresh_token"),
        "openid profile",
    )
    .await;
    assert_error(&r, 400, "invalid_scope");
}

async fn no_refresh_token_without_offline_access(db: Db) {
    let server = TestServer::start(db).await;
    let s = session(&server, "openid email").await;
    assert!(s.tokens.get("refresh_token").is_none(), "{}", s.tokens);
    // A client without the refresh_token grant gets none even when asking offline_access.
    let (id, secret) = server
        .client(json!({
            "redirect_uris": [CB],
            "grant_types": ["authorization_code"],
        }))
        .await;
    let secret = secret.expect("secret");
    let mut browser = Browser::new(EMAIL);
    let t = code_flow(
        &server,
        &mut browser,
        &id,
        &secret,
        "openid offline_access",
        &[],
    )
    .await;
    assert!(t.get("refresh_token").is_none(), "{t}");
    assert!(
        !t["scope"].as_str().unwrap_or("").contains("offline_access"),
        "{t}"
    );
}

// ---------------------------------------------------------------------------------------
// 4. client_credentials (RFC 6749 §4.4)
// ---------------------------------------------------------------------------------------

async fn client_credentials_grant(db: Db) {
    let server = TestServer::start(db).await;
    let (id, secret) = service_client(&server, "api.read api.write").await;
    let r = token(
        &server,
        Auth::Basic(&id, &secret),
        &[("grant_type", "client_credentials"), ("scope", "api.read")],
    )
    .await;
    assert_tokens(&r);
    // §4.4.3: no refresh token; no user, so no ID token.
    assert!(r.body.get("refresh_token").is_none(), "{}", r.body);
    assert!(r.body.get("id_token").is_none(), "{}", r.body);
    assert_eq!(r.body["scope"], json!("api.read"));
    let set = jwks(&server).await;
    let c = verify_with_jwks(&set, r.str("access_token"));
    // RFC 9068 §2.2: sub is the client itself when no user is involved.
    assert_eq!(c["sub"], json!(id));
    assert_eq!(c["client_id"], json!(id));
    assert_eq!(c["aud"], json!(id));
    assert_eq!(c["iss"], json!(server.issuer()));
    assert_eq!(c["scope"], json!("api.read"));
    assert!(c["jti"].is_string() && c["exp"].is_i64() && c["iat"].is_i64());
    assert!(c.get("auth_time").is_none());

    // Without scope: the token has none.
    let r = token(
        &server,
        Auth::Basic(&id, &secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_tokens(&r);

    // OIDC scopes need a user; scopes outside the registration are refused.
    for sc in ["openid", "offline_access", "api.read admin", "profile"] {
        let r = token(
            &server,
            Auth::Basic(&id, &secret),
            &[("grant_type", "client_credentials"), ("scope", sc)],
        )
        .await;
        assert_error(&r, 400, "invalid_scope");
    }
    // RFC 8707 §2: an unknown resource is invalid_target.
    let r = token(
        &server,
        Auth::Basic(&id, &secret),
        &[
            ("grant_type", "client_credentials"),
            ("resource", "https://unknown.example.com/"),
        ],
    )
    .await;
    assert_error(&r, 400, "invalid_target");

    // A public client cannot register for client_credentials, and using it without the
    // registration is unauthorized_client.
    let public = public_client(&server).await;
    let r = token(
        &server,
        Auth::None,
        &[("grant_type", "client_credentials"), ("client_id", &public)],
    )
    .await;
    assert_error(&r, 400, "unauthorized_client");
    assert!(
        klard_auth::oauth::clients::validate_metadata(
            &json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
            true
        )
        .is_err()
    );
}

// ---------------------------------------------------------------------------------------
// 5. private_key_jwt (RFC 7523 §2.2, §3; OIDC Core §9)
// ---------------------------------------------------------------------------------------

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct ClientKey {
    private: Jwk,
    public: Jwk,
}

fn client_key(kid: &str) -> ClientKey {
    let pair = jws::RS256.generate_key_pair(2048).expect("RSA key");
    let mut private = pair.to_jwk_private_key();
    let mut public = pair.to_jwk_public_key();
    for k in [&mut private, &mut public] {
        k.set_key_id(kid);
        k.set_algorithm("RS256");
        k.set_key_use("sig");
    }
    ClientKey { private, public }
}

fn sign_rs256(key: &ClientKey, header_kid: Option<&str>, claims: Value) -> String {
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    if let Some(k) = header_kid {
        header.set_key_id(k);
    }
    let payload =
        JwtPayload::from_map(claims.as_object().expect("object").clone()).expect("claims");
    let signer = jws::RS256.signer_from_jwk(&key.private).expect("signer");
    jwt::encode_with_signer(&payload, &header, &signer).expect("sign")
}

fn assertion_claims(server: &TestServer, client_id: &str, aud: &str) -> Value {
    let now = server.state.clock.now();
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "iat": now,
        "exp": now + 60,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

async fn with_assertion(server: &TestServer, assertion: &str) -> Resp {
    token(
        server,
        Auth::None,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ],
    )
    .await
}

async fn private_key_jwt_inline_jwks(db: Db) {
    let server = TestServer::start(db).await;
    let key = client_key("k1");
    let (id, secret) = server
        .client(json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [Value::Object(key.public.as_ref().clone())]},
        }))
        .await;
    assert!(secret.is_none());
    let token_endpoint = server.url("/token");

    // aud = the token endpoint, and aud = the issuer (RFC 7523 §3 item 3).
    for aud in [token_endpoint.as_str(), &server.issuer()] {
        let a = sign_rs256(&key, Some("k1"), assertion_claims(&server, &id, aud));
        let r = with_assertion(&server, &a).await;
        assert_tokens(&r);
        assert_eq!(jwt_parts(r.str("access_token")).1["sub"], json!(id));
    }
    // aud as an array holding the token endpoint, and without kid in the header.
    let mut c = assertion_claims(&server, &id, "x");
    c["aud"] = json!(["https://other.example.com", token_endpoint]);
    assert_tokens(&with_assertion(&server, &sign_rs256(&key, None, c)).await);
    // client_id may accompany the assertion when it matches.
    let a = sign_rs256(
        &key,
        Some("k1"),
        assertion_claims(&server, &id, &token_endpoint),
    );
    let r = token(
        &server,
        Auth::None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &a),
        ],
    )
    .await;
    assert_tokens(&r);

    // Item 7: a replayed jti.
    let r = with_assertion(&server, &a).await;
    assert_error(&r, 401, "invalid_client");

    // Item 4: expired (beyond the 60 s skew).
    let mut c = assertion_claims(&server, &id, &token_endpoint);
    c["exp"] = json!(server.state.clock.now() - 120);
    c["iat"] = json!(server.state.clock.now() - 180);
    assert_error(
        &with_assertion(&server, &sign_rs256(&key, Some("k1"), c)).await,
        401,
        "invalid_client",
    );
    // No exp at all.
    let mut c = assertion_claims(&server, &id, &token_endpoint);
    c.as_object_mut().expect("obj").remove("exp");
    assert_error(
        &with_assertion(&server, &sign_rs256(&key, Some("k1"), c)).await,
        401,
        "invalid_client",
    );
    // No jti.
    let mut c = assertion_claims(&server, &id, &token_endpoint);
    c.as_object_mut().expect("obj").remove("jti");
    assert_error(
        &with_assertion(&server, &sign_rs256(&key, Some("k1"), c)).await,
        401,
        "invalid_client",
    );
    // nbf far in the future.
    let mut c = assertion_claims(&server, &id, &token_endpoint);
    c["nbf"] = json!(server.state.clock.now() + 600);
    assert_error(
        &with_assertion(&server, &sign_rs256(&key, Some("k1"), c)).await,
        401,
        "invalid_client",
    );

    // Item 3: an audience that is not us.
    for aud in [
        server.url("/introspect-not"),
        "https://evil.example.com/token".to_string(),
    ] {
        let a = sign_rs256(&key, Some("k1"), assertion_claims(&server, &id, &aud));
        assert_error(&with_assertion(&server, &a).await, 401, "invalid_client");
    }
    // Items 1-2: iss and sub must both be the client.
    let mut c = assertion_claims(&server, &id, &token_endpoint);
    c["sub"] = json!("someone-else");
    assert_error(
        &with_assertion(&server, &sign_rs256(&key, Some("k1"), c)).await,
        401,
        "invalid_client",
    );

    // Signed by another key: with the registered kid, with another kid, with none.
    let stranger = client_key("k1");
    for kid in [Some("k1"), Some("k2"), None] {
        let a = sign_rs256(
            &stranger,
            kid,
            assertion_claims(&server, &id, &token_endpoint),
        );
        assert_error(&with_assertion(&server, &a).await, 401, "invalid_client");
    }
    // alg none.
    let mut h = JwsHeader::new();
    h.set_key_id("k1");
    let p = JwtPayload::from_map(
        assertion_claims(&server, &id, &token_endpoint)
            .as_object()
            .expect("obj")
            .clone(),
    )
    .expect("payload");
    let unsigned = jwt::encode_unsecured(&p, &h).expect("unsecured");
    assert_error(
        &with_assertion(&server, &unsigned).await,
        401,
        "invalid_client",
    );
    // Garbage.
    assert_error(
        &with_assertion(&server, "not-a-jwt").await,
        401,
        "invalid_client",
    );

    // A wrong client_assertion_type is invalid_request.
    let a = sign_rs256(
        &key,
        Some("k1"),
        assertion_claims(&server, &id, &token_endpoint),
    );
    let r = token(
        &server,
        Auth::None,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:example:other"),
            ("client_assertion", &a),
        ],
    )
    .await;
    assert_error(&r, 400, "invalid_request");
    // A client_id that contradicts the assertion.
    let (svc, _) = service_client(&server, "api.read").await;
    let r = token(
        &server,
        Auth::None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &svc),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &a),
        ],
    )
    .await;
    assert_error(&r, 401, "invalid_client");
    // A secret-based client cannot authenticate with an assertion.
    let r = with_assertion(
        &server,
        &sign_rs256(
            &key,
            Some("k1"),
            assertion_claims(&server, &svc, &token_endpoint),
        ),
    )
    .await;
    assert_error(&r, 401, "invalid_client");
    // The private_key_jwt client cannot fall back to a secret.
    let r = token(
        &server,
        Auth::Basic(&id, "guess"),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_error(&r, 401, "invalid_client");
}

/// The same client authentication protects /introspect and /revoke (RFC 7662 §2.1,
/// RFC 7009 §2.1); aud is still the token endpoint or the issuer (OIDC Core §9).
async fn private_key_jwt_at_introspection_and_revocation(db: Db) {
    let server = TestServer::start(db).await;
    let key = client_key("rs-key");
    let (id, _) = server
        .client(json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "RS256",
            "jwks": {"keys": [Value::Object(key.public.as_ref().clone())]},
        }))
        .await;
    let a = sign_rs256(
        &key,
        Some("rs-key"),
        assertion_claims(&server, &id, &server.issuer()),
    );
    let t = with_assertion(&server, &a).await;
    assert_tokens(&t);
    let at = t.str("access_token");
    let by_assertion = |a: String, path: &'static str| {
        let server = &server;
        let at = at.to_string();
        async move {
            post(
                server,
                path,
                Auth::None,
                &[
                    ("token", &at),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", &a),
                ],
            )
            .await
        }
    };
    let fresh = || {
        sign_rs256(
            &key,
            Some("rs-key"),
            assertion_claims(&server, &id, &server.url("/token")),
        )
    };
    let r = by_assertion(fresh(), "/introspect").await;
    assert_eq!(r.body["active"], json!(true), "{r:?}");
    assert_eq!(r.body["client_id"], json!(id));
    // A replayed assertion is refused here too.
    let replay = fresh();
    assert_eq!(
        by_assertion(replay.clone(), "/introspect").await.status,
        200
    );
    assert_error(
        &by_assertion(replay, "/introspect").await,
        401,
        "invalid_client",
    );
    let r = by_assertion(fresh(), "/revoke").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_inactive(&by_assertion(fresh(), "/introspect").await);
    // A foreign key is refused at both.
    let stranger = client_key("rs-key");
    for path in ["/introspect", "/revoke"] {
        let a = sign_rs256(
            &stranger,
            Some("rs-key"),
            assertion_claims(&server, &id, &server.issuer()),
        );
        assert_error(&by_assertion(a, path).await, 401, "invalid_client");
    }
}

/// A tiny JWKS host: serves the current document and counts fetches.
struct JwksHost {
    url: String,
    doc: Arc<std::sync::Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

impl JwksHost {
    async fn start(doc: Value) -> JwksHost {
        let doc = Arc::new(std::sync::Mutex::new(doc));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (d, f) = (doc.clone(), fetches.clone());
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let (d, f) = (d.clone(), f.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    axum::Json(d.lock().expect("doc").clone())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        JwksHost {
            url: format!("http://{addr}/jwks"),
            doc,
            fetches,
            _task: task,
        }
    }
    fn set(&self, doc: Value) {
        *self.doc.lock().expect("doc") = doc;
    }
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn jwk_set(keys: &[&ClientKey]) -> Value {
    json!({"keys": keys.iter().map(|k| Value::Object(k.public.as_ref().clone())).collect::<Vec<_>>()})
}

async fn private_key_jwt_jwks_uri_rotation(db: Db) {
    let server = TestServer::start(db).await;
    let k1 = client_key("k1");
    let host = JwksHost::start(jwk_set(&[&k1])).await;
    let (id, _) = server
        .client(json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": host.url,
        }))
        .await;
    let aud = server.url("/token");

    let r = with_assertion(
        &server,
        &sign_rs256(&k1, Some("k1"), assertion_claims(&server, &id, &aud)),
    )
    .await;
    assert_tokens(&r);
    assert_eq!(host.fetches(), 1);
    // Cached: a second assertion does not fetch again.
    let r = with_assertion(
        &server,
        &sign_rs256(&k1, Some("k1"), assertion_claims(&server, &id, &aud)),
    )
    .await;
    assert_tokens(&r);
    assert_eq!(host.fetches(), 1);

    // The client rotates to k2 and drops k1.
    let k2 = client_key("k2");
    host.set(jwk_set(&[&k2]));
    // Refetches are rate-limited (at most every 5 s): right now the old set still rules.
    let r = with_assertion(
        &server,
        &sign_rs256(&k2, Some("k2"), assertion_claims(&server, &id, &aud)),
    )
    .await;
    assert_error(&r, 401, "invalid_client");
    assert_eq!(host.fetches(), 1);
    // After the interval an unknown kid triggers a refetch.
    server.state.clock.advance(6);
    let r = with_assertion(
        &server,
        &sign_rs256(&k2, Some("k2"), assertion_claims(&server, &id, &aud)),
    )
    .await;
    assert_tokens(&r);
    assert_eq!(host.fetches(), 2);
    // k1 is gone from the fetched set.
    let r = with_assertion(
        &server,
        &sign_rs256(&k1, Some("k1"), assertion_claims(&server, &id, &aud)),
    )
    .await;
    assert_error(&r, 401, "invalid_client");

    // A key the client drops without a new kid appearing (say it was compromised) stops
    // working once the cached set is old enough to be refetched.
    host.set(jwk_set(&[&k1]));
    server.state.clock.advance(301);
    let r = with_assertion(
        &server,
        &sign_rs256(&k2, Some("k2"), assertion_claims(&server, &id, &aud)),
    )
    .await;
    assert_error(&r, 401, "invalid_client");
    assert_eq!(host.fetches(), 3);
    // The jwks_uri answering an error: authentication fails, nothing else.
    host.set(json!("not a JWK Set"));
    server.state.clock.advance(301);
    let r = with_assertion(
        &server,
        &sign_rs256(&k1, Some("k1"), assertion_claims(&server, &id, &aud)),
    )
    .await;
    assert_error(&r, 401, "invalid_client");
}

// ---------------------------------------------------------------------------------------
// 6. Revocation (RFC 7009)
// ---------------------------------------------------------------------------------------

async fn revoke_access_token(db: Db) {
    let server = TestServer::start(db).await;
    let s = session(&server, "openid offline_access").await;
    let auth = || Auth::Basic(&s.id, &s.secret);
    assert_eq!(userinfo(&server, s.at()).await.status, 200);
    let r = revoke(
        &server,
        auth(),
        &[("token", s.at()), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_userinfo_refused(&userinfo(&server, s.at()).await);
    assert_inactive(&introspect(&server, auth(), s.at()).await);
    // Only that access token: the refresh token still works.
    assert_tokens(&refresh(&server, &s.id, &s.secret, s.rt()).await);
    // Revoking it again is fine (§2.2).
    assert_eq!(
        revoke(&server, auth(), &[("token", s.at())]).await.status,
        200
    );
}

async fn revoke_refresh_token_revokes_family(db: Db) {
    let server = TestServer::start(db).await;
    let s = session(&server, "openid offline_access").await;
    let r2 = refresh(&server, &s.id, &s.secret, s.rt()).await;
    assert_tokens(&r2);
    let (rt2, at2) = (r2.str("refresh_token"), r2.str("access_token"));
    // A wrong hint does not stop the server (§2.1: it extends its search).
    let r = revoke(
        &server,
        Auth::Basic(&s.id, &s.secret),
        &[("token", rt2), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_error(
        &refresh(&server, &s.id, &s.secret, rt2).await,
        400,
        "invalid_grant",
    );
    // §2.1: access tokens of the same grant SHOULD go too.
    assert_userinfo_refused(&userinfo(&server, at2).await);
    assert_userinfo_refused(&userinfo(&server, s.at()).await);
    assert_inactive(&introspect(&server, Auth::Basic(&s.id, &s.secret), rt2).await);
}

async fn revoke_edge_cases(db: Db) {
    let server = TestServer::start(db).await;
    let s = session(&server, "openid offline_access").await;
    let (other_id, other_secret) = web_client(&server).await;

    // A wrong hint on an access token, and an unknown hint value: still revoked.
    let s2 = {
        let mut b = Browser::new(EMAIL);
        code_flow(&server, &mut b, &s.id, &s.secret, "openid", &[]).await
    };
    let at_a = s.at();
    let at_b = s2["access_token"].as_str().expect("at");
    let r = revoke(
        &server,
        Auth::Basic(&s.id, &s.secret),
        &[("token", at_a), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_userinfo_refused(&userinfo(&server, at_a).await);
    let r = revoke(
        &server,
        Auth::Basic(&s.id, &s.secret),
        &[("token", at_b), ("token_type_hint", "something_else")],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_userinfo_refused(&userinfo(&server, at_b).await);

    // §2.2: an unknown or invalid token is 200 too.
    for t in ["garbage", "a.b.c", &"x".repeat(200)] {
        let r = revoke(&server, Auth::Basic(&s.id, &s.secret), &[("token", t)]).await;
        assert_eq!(r.status, 200, "{t}: {r:?}");
    }

    // §2.1: a token of another client is refused, and stays valid.
    let fresh = refresh(&server, &s.id, &s.secret, s.rt()).await;
    assert_tokens(&fresh);
    let (rt, at) = (fresh.str("refresh_token"), fresh.str("access_token"));
    for t in [rt, at] {
        let r = revoke(
            &server,
            Auth::Basic(&other_id, &other_secret),
            &[("token", t)],
        )
        .await;
        assert_error(&r, 400, "invalid_request");
    }
    assert_eq!(userinfo(&server, at).await.status, 200);
    assert_tokens(&refresh(&server, &s.id, &s.secret, rt).await);

    // Client authentication is required (§2.1), with the usual 401 answers.
    let r = revoke(&server, Auth::None, &[("token", at)]).await;
    assert_error(&r, 401, "invalid_client");
    let r = revoke(&server, Auth::Basic(&s.id, "wrong"), &[("token", at)]).await;
    assert_error(&r, 401, "invalid_client");
    assert!(r.header("www-authenticate").is_some());
    let r = revoke(&server, Auth::None, &[("token", at), ("client_id", &s.id)]).await;
    assert_error(&r, 401, "invalid_client");
    // Missing token parameter.
    let r = revoke(&server, Auth::Basic(&s.id, &s.secret), &[]).await;
    assert_error(&r, 400, "invalid_request");
    // Not a form.
    let r = send(
        server
            .http()
            .post(server.url("/revoke"))
            .basic_auth(&s.id, Some(&s.secret))
            .json(&json!({"token": at})),
    )
    .await;
    assert_error(&r, 400, "invalid_request");
    assert_eq!(userinfo(&server, at).await.status, 200);
}

/// A public client may revoke its own tokens with just its client_id (RFC 7009 §5).
async fn revoke_by_public_client(db: Db) {
    let server = TestServer::start(db).await;
    server.user(EMAIL).await;
    let id = public_client(&server).await;
    let mut browser = Browser::new(EMAIL);
    let (code, verifier) = get_code(&server, &mut browser, &id, "openid offline_access").await;
    let t = token(
        &server,
        Auth::None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &id),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_tokens(&t);
    let rt = t.str("refresh_token");
    let r = revoke(&server, Auth::None, &[("token", rt), ("client_id", &id)]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = token(
        &server,
        Auth::None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &id),
            ("refresh_token", rt),
        ],
    )
    .await;
    assert_error(&r, 400, "invalid_grant");
    assert_userinfo_refused(&userinfo(&server, t.str("access_token")).await);
}

// ---------------------------------------------------------------------------------------
// 7. Introspection (RFC 7662)
// ---------------------------------------------------------------------------------------

async fn introspection(db: Db) {
    let server = TestServer::start(db).await;
    let s = session(&server, "openid offline_access email").await;
    let user = klard_auth::store::users::by_email(&server.state.db, EMAIL)
        .await
        .expect("db")
        .expect("user");
    let auth = || Auth::Basic(&s.id, &s.secret);

    // §2.1: the caller must authenticate; a public client cannot.
    let public = public_client(&server).await;
    let r = post(
        &server,
        "/introspect",
        Auth::None,
        &[("token", s.at()), ("client_id", &public)],
    )
    .await;
    assert_error(&r, 401, "invalid_client");
    let r = introspect(&server, Auth::None, s.at()).await;
    assert_error(&r, 401, "invalid_client");
    let r = introspect(&server, Auth::Basic(&s.id, "wrong"), s.at()).await;
    assert_error(&r, 401, "invalid_client");
    assert!(r.header("www-authenticate").is_some());
    let r = post(&server, "/introspect", auth(), &[]).await;
    assert_error(&r, 400, "invalid_request");

    // An active access token.
    let r = introspect(&server, auth(), s.at()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{r:?}"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let (_, claims) = jwt_parts(s.at());
    assert_eq!(r.body["active"], json!(true));
    assert_eq!(r.body["sub"], json!(user.id));
    assert_eq!(r.body["client_id"], json!(s.id));
    assert_eq!(r.body["scope"], json!("openid offline_access email"));
    assert_eq!(r.body["exp"], claims["exp"]);
    assert_eq!(r.body["iss"], json!(server.issuer()));
    assert_eq!(r.body["token_type"], json!("Bearer"));
    // The hint does not change the answer.
    let r = post(
        &server,
        "/introspect",
        auth(),
        &[("token", s.at()), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(r.body["active"], json!(true));

    // A refresh token.
    let r = introspect(&server, auth(), s.rt()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["active"], json!(true), "{r:?}");
    assert_eq!(r.body["client_id"], json!(s.id));
    assert_eq!(r.body["sub"], json!(user.id));
    assert_eq!(r.body["scope"], json!("openid offline_access email"));
    assert!(
        r.body["exp"]
            .as_i64()
            .is_some_and(|e| e > server.state.clock.now())
    );

    // Another client learns nothing about it.
    let (other_id, other_secret) = web_client(&server).await;
    assert_inactive(&introspect(&server, Auth::Basic(&other_id, &other_secret), s.at()).await);
    assert_inactive(&introspect(&server, Auth::Basic(&other_id, &other_secret), s.rt()).await);

    // Garbage, ID tokens (not bearer tokens), and JWTs signed by somebody else.
    let id_token = s.tokens["id_token"].as_str().expect("id_token");
    assert_inactive(&introspect(&server, auth(), "garbage").await);
    assert_inactive(&introspect(&server, auth(), "a.b.c").await);
    assert_inactive(&introspect(&server, auth(), id_token).await);
    assert_userinfo_refused(&userinfo(&server, id_token).await);
    let our_kid = kid_of(s.at());
    let forger = client_key(&our_kid);
    let forged = sign_rs256(&forger, Some(&our_kid), claims.clone());
    assert_inactive(&introspect(&server, auth(), &forged).await);
    assert_userinfo_refused(&userinfo(&server, &forged).await);
    let forged = sign_rs256(&forger, Some("elsewhere"), claims.clone());
    assert_inactive(&introspect(&server, auth(), &forged).await);
    let mut h = JwsHeader::new();
    h.set_key_id(&our_kid);
    let unsigned = jwt::encode_unsecured(
        &JwtPayload::from_map(claims.as_object().expect("obj").clone()).expect("payload"),
        &h,
    )
    .expect("unsecured");
    assert_inactive(&introspect(&server, auth(), &unsigned).await);
    // Our own signature over a token with a tampered payload.
    let mut parts: Vec<&str> = s.at().split('.').collect();
    let mut tampered = claims.clone();
    tampered["scope"] = json!("openid admin");
    let payload = klard_auth::crypto::b64url(tampered.to_string().as_bytes());
    parts[1] = &payload;
    assert_inactive(&introspect(&server, auth(), &parts.join(".")).await);

    // Revoked.
    assert_eq!(
        revoke(&server, auth(), &[("token", s.at())]).await.status,
        200
    );
    assert_inactive(&introspect(&server, auth(), s.at()).await);
}

async fn introspection_of_expired_tokens(db: Db) {
    let server = TestServer::start(db).await;
    let s = session(&server, "openid offline_access").await;
    let auth = || Auth::Basic(&s.id, &s.secret);
    assert_eq!(
        introspect(&server, auth(), s.at()).await.body["active"],
        json!(true)
    );
    server
        .state
        .clock
        .advance(server.state.config.tokens.access_token_ttl + 1);
    assert_inactive(&introspect(&server, auth(), s.at()).await);
    assert_userinfo_refused(&userinfo(&server, s.at()).await);
    // The refresh token lives longer.
    assert_eq!(
        introspect(&server, auth(), s.rt()).await.body["active"],
        json!(true)
    );
    server
        .state
        .clock
        .advance(server.state.config.tokens.refresh_token_ttl);
    assert_inactive(&introspect(&server, auth(), s.rt()).await);
    assert_error(
        &refresh(&server, &s.id, &s.secret, s.rt()).await,
        400,
        "invalid_grant",
    );
}

/// A resource server in the token's `aud` may introspect it; others may not.
async fn introspection_by_resource_server(db: Db) {
    let server = TestServer::start(db).await;
    let (rs_id, rs_secret) = service_client(&server, "api.read").await;
    let (app_id, app_secret) = server
        .client(json!({
            "client_name": "App",
            "grant_types": ["client_credentials"],
            "first_party": true,
            "access_token_audience": [rs_id],
        }))
        .await;
    let app_secret = app_secret.expect("secret");
    let t = token(
        &server,
        Auth::Basic(&app_id, &app_secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_tokens(&t);
    let at = t.str("access_token");
    assert_eq!(jwt_parts(at).1["aud"], json!(rs_id));

    let r = introspect(&server, Auth::Basic(&rs_id, &rs_secret), at).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["active"], json!(true), "{r:?}");
    assert_eq!(r.body["aud"], json!(rs_id));
    assert_eq!(r.body["client_id"], json!(app_id));
    assert_eq!(r.body["sub"], json!(app_id));
    // The token's own client too.
    assert_eq!(
        introspect(&server, Auth::Basic(&app_id, &app_secret), at)
            .await
            .body["active"],
        json!(true)
    );
    // A third client that is neither.
    let (x_id, x_secret) = service_client(&server, "api.read").await;
    assert_inactive(&introspect(&server, Auth::Basic(&x_id, &x_secret), at).await);
    // Untrusted metadata (dynamic registration) cannot set an audience.
    let m = klard_auth::oauth::clients::validate_metadata(
        &json!({"grant_types": ["client_credentials"], "access_token_audience": [rs_id]}),
        false,
    )
    .expect("valid");
    assert!(m.access_token_audience.is_empty());
}

// ---------------------------------------------------------------------------------------
// 8. What a Spring Security resource server checks
// ---------------------------------------------------------------------------------------

/// Mirrors Spring Security's defaults for a resource server configured with
/// `spring.security.oauth2.resourceserver.jwt.issuer-uri`:
/// - `JwtDecoders.fromIssuerLocation(issuer)`: fetches
///   `<issuer>/.well-known/openid-configuration` and requires its `issuer` to equal the
///   configured issuer exactly (string comparison), then uses its `jwks_uri`;
/// - the JWS algorithm is taken from the JWKS keys' `alg` values (RS256 if none), the
///   key is chosen by `kid`, and the signature must verify;
/// - JOSE header `typ`: Spring's default JwtTypeValidator (`JwtTypeValidator.jwt()`,
///   formerly Nimbus' DefaultJOSEObjectTypeVerifier) accepts only `JWT` or no `typ`, so
///   `at+jwt` needs explicit configuration on the resource server;
/// - `JwtValidators.createDefaultWithIssuer(issuer)`: JwtIssuerValidator (`iss`
///   String-equals the issuer) and JwtTimestampValidator with 60 s clock skew (`exp` not
///   before now - 60 s, `nbf` not after now + 60 s); `iat` is checked the same way here.
fn spring_validate(
    issuer: &str,
    jwks: &Value,
    token: &str,
    expected_typ: Option<&str>,
) -> Map<String, Value> {
    let (header, _) = jwt_parts(token);
    match expected_typ {
        None => assert!(
            header.get("typ").is_none() || header["typ"] == json!("JWT"),
            "Spring's default typ validation: {header}"
        ),
        Some(t) => assert_eq!(header["typ"], json!(t)),
    }
    let algs: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["alg"].as_str())
        .collect();
    let alg = header["alg"].as_str().expect("alg");
    assert!(algs.contains(&alg), "{alg} not in {algs:?}");
    let kid = header["kid"].as_str().expect("kid");
    assert!(
        jwks_kids(jwks).iter().any(|k| k == kid),
        "kid {kid} not in the JWKS"
    );
    let claims = verify_with_jwks(jwks, token);
    assert_eq!(claims["iss"].as_str(), Some(issuer), "JwtIssuerValidator");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    let skew = 60;
    let exp = claims["exp"].as_i64().expect("exp");
    assert!(exp > now - skew, "JwtTimestampValidator: expired");
    for k in ["iat", "nbf"] {
        if let Some(v) = claims.get(k) {
            assert!(v.as_i64().expect(k) <= now + skew, "{k} in the future");
        }
    }
    claims
}

async fn spring_security_resource_server_validation(db: Db) {
    let api = "https://api.example.com/";
    let server = TestServer::start_with(db, |c| {
        c.resources.push(klard_auth::config::ResourceConfig {
            identifier: api.into(),
            access_token_typ: "at+jwt".into(),
            access_token_ttl: Some(300),
        });
    })
    .await;
    let issuer = server.state.config.issuer.clone();
    let http = server.http();
    let meta = send(http.get(format!("{issuer}/.well-known/openid-configuration"))).await;
    assert_eq!(meta.status, 200);
    assert_eq!(meta.str("issuer"), issuer, "exact string equality");
    let oauth_meta =
        send(http.get(format!("{issuer}/.well-known/oauth-authorization-server"))).await;
    assert_eq!(oauth_meta.str("issuer"), issuer);
    assert_eq!(meta.str("token_endpoint"), server.url("/token"));
    let jwks_resp = send(http.get(meta.str("jwks_uri"))).await;
    assert_eq!(jwks_resp.status, 200);
    assert!(
        jwks_resp
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    let set = jwks_resp.body;
    // Public keys only.
    for k in set["keys"].as_array().expect("keys") {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(k.get(private).is_none(), "{private} in {k}");
        }
        assert_eq!(k["use"], json!("sig"));
    }

    let (id, secret) = service_client(&server, "api.read").await;
    let t = token(
        &server,
        Auth::Basic(&id, &secret),
        &[("grant_type", "client_credentials"), ("scope", "api.read")],
    )
    .await;
    assert_tokens(&t);
    let at = t.str("access_token");
    assert_eq!(jwt_parts(at).0["alg"], json!("RS256"), "RS256 by default");
    let c = spring_validate(&issuer, &set, at, None);
    assert_eq!(c["aud"], json!(id));

    // With a configured resource (RFC 8707), the token is RFC 9068 `at+jwt` for it.
    let t = token(
        &server,
        Auth::Basic(&id, &secret),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "api.read"),
            ("resource", api),
        ],
    )
    .await;
    assert_tokens(&t);
    assert_eq!(t.body["expires_in"], json!(300));
    let c = spring_validate(&issuer, &set, t.str("access_token"), Some("at+jwt"));
    assert_eq!(c["aud"], json!(api));
}

// ---------------------------------------------------------------------------------------
// 9. Signing-key rotation and algorithms
// ---------------------------------------------------------------------------------------

async fn key_rotation_keeps_old_tokens_valid(db: Db) {
    let server = TestServer::start(db).await;
    let s = session(&server, "openid offline_access").await;
    let auth = || Auth::Basic(&s.id, &s.secret);
    let old_kid = kid_of(s.at());
    assert!(jwks_kids(&jwks(&server).await).contains(&old_kid));

    let new_kids = server.state.keys.rotate(0, 60).await.expect("rotate");
    assert!(!new_kids.contains(&old_kid));
    let set = jwks(&server).await;
    assert!(
        jwks_kids(&set).contains(&old_kid),
        "old key stays published"
    );
    assert_eq!(userinfo(&server, s.at()).await.status, 200);
    assert_eq!(
        introspect(&server, auth(), s.at()).await.body["active"],
        json!(true)
    );
    verify_with_jwks(&set, s.at());

    // New tokens are signed by the new key.
    let r = refresh(&server, &s.id, &s.secret, s.rt()).await;
    assert_tokens(&r);
    let at2 = r.str("access_token");
    let new_kid = kid_of(at2);
    assert_ne!(new_kid, old_kid);
    assert!(new_kids.contains(&new_kid));
    assert_eq!(kid_of(r.str("id_token")), new_kid);
    verify_with_jwks(&set, at2);
    assert_eq!(userinfo(&server, at2).await.status, 200);

    // After the grace the old key leaves the JWKS, and its tokens stop validating.
    server.state.clock.advance(61);
    let set = jwks(&server).await;
    assert!(!jwks_kids(&set).contains(&old_kid));
    assert!(jwks_kids(&set).contains(&new_kid));
    assert_inactive(&introspect(&server, auth(), s.at()).await);
    assert_eq!(
        introspect(&server, auth(), at2).await.body["active"],
        json!(true)
    );
}

async fn key_rotation_publish_ahead(db: Db) {
    let server = TestServer::start(db).await;
    let (id, secret) = service_client(&server, "api.read").await;
    let cc = || async {
        let r = token(
            &server,
            Auth::Basic(&id, &secret),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_tokens(&r);
        r.str("access_token").to_string()
    };
    let t1 = cc().await;
    let old_kid = kid_of(&t1);
    let new_kids = server.state.keys.rotate(300, 3600).await.expect("rotate");

    // Published ahead, not signing yet.
    let set = jwks(&server).await;
    let kids = jwks_kids(&set);
    assert!(kids.contains(&old_kid));
    assert!(
        new_kids.iter().all(|k| kids.contains(k)),
        "{kids:?} {new_kids:?}"
    );
    let t2 = cc().await;
    assert_eq!(kid_of(&t2), old_kid);

    server.state.clock.advance(301);
    let t3 = cc().await;
    let kid3 = kid_of(&t3);
    assert_ne!(kid3, old_kid);
    assert!(new_kids.contains(&kid3));
    let set = jwks(&server).await;
    assert!(jwks_kids(&set).contains(&old_kid), "old key in its grace");
    for t in [&t1, &t2, &t3] {
        verify_with_jwks(&set, t);
        assert_eq!(
            introspect(&server, Auth::Basic(&id, &secret), t).await.body["active"],
            json!(true)
        );
    }
}

async fn id_token_algorithms(db: Db) {
    let server = TestServer::start(db).await;
    server.user(EMAIL).await;
    let mut browser = Browser::new(EMAIL);
    for alg in ["ES256", "EdDSA", "RS256"] {
        let (id, secret) = server
            .client(json!({
                "redirect_uris": [CB],
                "grant_types": ["authorization_code"],
                "id_token_signed_response_alg": alg,
            }))
            .await;
        let secret = secret.expect("secret");
        let t = code_flow(&server, &mut browser, &id, &secret, "openid", &[]).await;
        let id_token = t["id_token"].as_str().expect("id_token");
        let at = t["access_token"].as_str().expect("access_token");
        let (h, _) = jwt_parts(id_token);
        assert_eq!(h["alg"], json!(alg));
        let set = jwks(&server).await;
        let c = verify_with_jwks(&set, id_token);
        assert_eq!(c["aud"], json!(id));
        assert_eq!(c["iss"], json!(server.issuer()));
        assert_eq!(c["nonce"], json!("n0nce"));
        // OIDC Core §3.1.3.6: at_hash with the hash of the alg (SHA-512 for Ed25519).
        let want = if alg == "EdDSA" {
            use sha2::Digest;
            let d = sha2::Sha512::digest(at.as_bytes());
            klard_auth::crypto::b64url(&d[..32])
        } else {
            klard_auth::crypto::left_half_hash_sha256(at)
        };
        assert_eq!(c["at_hash"], json!(want));
        // Access tokens stay RS256 unless asked otherwise.
        assert_eq!(jwt_parts(at).0["alg"], json!("RS256"));
        verify_with_jwks(&set, at);
    }
}

// ---------------------------------------------------------------------------------------

/// RFC 8707 §2: `resource` may repeat; the token's `aud` names every requested resource,
/// and an unknown one among them is `invalid_target`.
async fn client_credentials_multiple_resources(db: Db) {
    let (a, b) = (
        "https://orders.example.com/",
        "https://inventory.example.com/",
    );
    let server = TestServer::start_with(db, |c| {
        for r in [a, b] {
            c.resources.push(klard_auth::config::ResourceConfig {
                identifier: r.into(),
                access_token_typ: "JWT".into(),
                access_token_ttl: None,
            });
        }
    })
    .await;
    let (id, secret) = service_client(&server, "api.read").await;
    let t = token(
        &server,
        Auth::Basic(&id, &secret),
        &[
            ("grant_type", "client_credentials"),
            ("resource", a),
            ("resource", b),
        ],
    )
    .await;
    assert_eq!(t.status, 200, "{:?}", t.body);
    assert_eq!(jwt_parts(t.str("access_token")).1["aud"], json!([a, b]));
    let t = token(
        &server,
        Auth::Basic(&id, &secret),
        &[
            ("grant_type", "client_credentials"),
            ("resource", a),
            ("resource", "https://unknown.example.com/"),
        ],
    )
    .await;
    assert_error(&t, 400, "invalid_target");
}

db_tests!(
    client_credentials_multiple_resources,
    token_request_errors,
    client_authentication_errors,
    basic_credentials_are_form_decoded,
    code_reuse_revokes_tokens,
    code_exchange_errors,
    code_exchange_concurrent,
    public_client_code_exchange,
    refresh_rotates_and_detects_reuse,
    refresh_reuse_after_grace_revokes_family,
    refresh_retry_within_grace,
    refresh_concurrent_without_grace,
    refresh_concurrent_within_grace,
    refresh_binding_and_scope,
    no_refresh_token_without_offline_access,
    client_credentials_grant,
    private_key_jwt_inline_jwks,
    private_key_jwt_jwks_uri_rotation,
    private_key_jwt_at_introspection_and_revocation,
    revoke_access_token,
    revoke_refresh_token_revokes_family,
    revoke_edge_cases,
    revoke_by_public_client,
    introspection,
    introspection_of_expired_tokens,
    introspection_by_resource_server,
    spring_security_resource_server_validation,
    key_rotation_keeps_old_tokens_valid,
    key_rotation_publish_ahead,
    id_token_algorithms,
);
