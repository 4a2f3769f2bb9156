//! Dynamic client registration (RFC 7591), its management protocol (RFC 7592) and
//! RP-Initiated Logout 1.0, over real HTTP.

use std::collections::HashMap;
use std::sync::Arc;

use klard_auth::config::RegistrationMode;
use reqwest::cookie::{CookieStore, Jar};
use serde_json::{Value, json};

use crate::support::{
    Browser, CB, Db, Form, PASSWORD, TestServer, authorize_url, code_flow, pkce, token_basic,
    web_client,
};

// ---------------------------------------------------------------------------------------
// Local helpers
// ---------------------------------------------------------------------------------------

/// POSTs a registration request; returns (status, body, headers).
async fn register_raw(
    server: &TestServer,
    content_type: &str,
    body: String,
    bearer: Option<&str>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = server
        .http()
        .post(server.url("/register"))
        .header("content-type", content_type)
        .body(body);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("register");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.json().await.unwrap_or(Value::Null), headers)
}

async fn register(server: &TestServer, doc: Value) -> (u16, Value) {
    let (s, v, _) = register_raw(server, "application/json", doc.to_string(), None).await;
    (s, v)
}

fn assert_oauth_error(status: u16, body: &Value, want_status: u16, error: &str, what: &str) {
    assert_eq!(status, want_status, "{what}: {body}");
    assert_eq!(body["error"], json!(error), "{what}: {body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{what}: error_description: {body}"
    );
}

/// A registration document for a confidential web client using the support `CB`.
fn web_doc() -> Value {
    json!({
        "client_name": "Dynamic RP",
        "redirect_uris": [CB],
        "post_logout_redirect_uris": ["http://127.0.0.1:9/logged-out"],
        "grant_types": ["authorization_code", "refresh_token"],
        "contacts": ["ops@rp.example.com"],
    })
}

fn with(mut doc: Value, k: &str, v: Value) -> Value {
    doc[k] = v;
    doc
}

async fn config_endpoint(
    server: &TestServer,
    method: reqwest::Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = server.http().request(method, uri);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("client configuration endpoint");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.json().await.unwrap_or(Value::Null), headers)
}

fn location(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(String::from))
        .collect()
}

/// An HTML error page: 400, no Location, the error code and a description.
async fn assert_error_page(resp: reqwest::Response, error: &str, what: &str) {
    assert_eq!(resp.status().as_u16(), 400, "{what}: status");
    assert!(location(&resp).is_none(), "{what}: must not redirect");
    let body = resp.text().await.expect("body");
    assert!(
        body.contains(&format!("data-error=\"{error}\"")),
        "{what}: {body}"
    );
    let desc = body
        .split("</code></p>")
        .nth(1)
        .and_then(|a| a.trim_start().strip_prefix("<p>"))
        .and_then(|d| d.split("</p>").next())
        .unwrap_or("");
    assert!(!desc.trim().is_empty(), "{what}: description: {body}");
}

/// A browser whose cookie jar the test can read (to replay a session cookie later).
fn browser_with_jar(email: &str) -> (Browser, Arc<Jar>) {
    let jar = Arc::new(Jar::default());
    let http = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let b = Browser {
        http,
        email: email.into(),
        password: PASSWORD.into(),
        consent: "allow",
        pages_seen: Vec::new(),
    };
    (b, jar)
}

/// The Cookie header the browser would send to the server.
fn cookie_header(server: &TestServer, jar: &Jar) -> String {
    let url = url::Url::parse(&server.url("/")).unwrap();
    let v = jar.cookies(&url).expect("cookies");
    let s = v.to_str().unwrap().to_string();
    assert!(s.contains("klard_session="), "{s}");
    s
}

/// Runs prompt=none for `id`; returns the callback parameters.
async fn silent_authorize(
    server: &TestServer,
    http: &reqwest::Client,
    id: &str,
    cookie: Option<&str>,
) -> HashMap<String, String> {
    let (_, challenge) = pkce();
    let url = authorize_url(
        server,
        &[
            ("response_type", "code"),
            ("client_id", id),
            ("redirect_uri", CB),
            ("scope", "openid"),
            ("state", "s1"),
            ("prompt", "none"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let mut req = http.get(url);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = req.send().await.expect("authorize");
    assert_eq!(resp.status().as_u16(), 303);
    let loc = location(&resp).expect("Location");
    assert!(loc.starts_with(CB), "{loc}");
    url::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn assert_logged_out(p: &HashMap<String, String>, what: &str) {
    assert_eq!(
        p.get("error").map(String::as_str),
        Some("login_required"),
        "{what}: {p:?}"
    );
}

fn assert_logged_in(p: &HashMap<String, String>, what: &str) {
    assert!(p.contains_key("code"), "{what}: still signed in: {p:?}");
}

fn assert_session_cleared(cookies: &[String], what: &str) {
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("klard_session=;") && c.contains("Max-Age=0")),
        "{what}: session cookie cleared: {cookies:?}"
    );
}

/// A logged-in browser (cookie jar readable) and the id_token of its login.
async fn logged_in(server: &TestServer, id: &str, secret: &str) -> (Browser, Arc<Jar>, String) {
    let (mut b, jar) = browser_with_jar("buffy@example.com");
    let tokens = code_flow(server, &mut b, id, secret, "openid", &[]).await;
    let idt = tokens["id_token"].as_str().expect("id_token").to_string();
    (b, jar, idt)
}

fn end_session_url(server: &TestServer, pairs: &[(&str, &str)]) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{}?{}", server.url("/end_session"), q)
}

const POST_LOGOUT: &str = "http://127.0.0.1:9/logged-out";

// ---------------------------------------------------------------------------------------
// 5. RFC 7591 registration
// ---------------------------------------------------------------------------------------

async fn registered_client_completes_a_code_flow(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (status, reg, headers) =
        register_raw(&server, "application/json", web_doc().to_string(), None).await;
    assert_eq!(status, 201, "{reg}");
    assert_eq!(
        headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let id = reg["client_id"].as_str().expect("client_id").to_string();
    let secret = reg["client_secret"]
        .as_str()
        .expect("client_secret")
        .to_string();
    assert!(secret.len() >= 32);
    assert_eq!(reg["client_secret_expires_at"], json!(0));
    assert!(reg["client_id_issued_at"].is_i64());
    assert!(
        reg["registration_access_token"]
            .as_str()
            .is_some_and(|t| t.len() >= 32)
    );
    assert_eq!(
        reg["registration_client_uri"],
        json!(server.url(&format!("/register/{id}")))
    );
    // RFC 7591 §3.2.1: the registered metadata, with defaults filled in, comes back.
    assert_eq!(reg["client_name"], json!("Dynamic RP"));
    assert_eq!(reg["redirect_uris"], json!([CB]));
    assert_eq!(
        reg["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(reg["response_types"], json!(["code"]));
    assert_eq!(
        reg["token_endpoint_auth_method"],
        json!("client_secret_basic")
    );
    assert_eq!(reg["contacts"], json!(["ops@rp.example.com"]));

    let mut b = Browser::new("buffy@example.com");
    let tokens = code_flow(&server, &mut b, &id, &secret, "openid email", &[]).await;
    assert_eq!(b.pages_seen, vec!["login", "consent"]);
    assert!(tokens["access_token"].is_string());
    assert!(tokens["id_token"].is_string());
}

/// Dynamically registered clients cannot make themselves first-party.
async fn registration_cannot_claim_first_party(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let doc = with(web_doc(), "first_party", json!(true));
    let doc = with(
        doc,
        "access_token_audience",
        json!(["https://api.example.com"]),
    );
    let (status, reg) = register(&server, doc).await;
    assert_eq!(status, 201, "{reg}");
    assert!(reg.get("first_party").is_none(), "{reg}");
    assert!(reg.get("access_token_audience").is_none(), "{reg}");
    let id = reg["client_id"].as_str().unwrap();
    let secret = reg["client_secret"].as_str().unwrap();
    let mut b = Browser::new("buffy@example.com");
    code_flow(&server, &mut b, id, secret, "openid", &[]).await;
    assert_eq!(
        b.pages_seen,
        vec!["login", "consent"],
        "consent is still asked"
    );
}

async fn registration_rejects_invalid_metadata(db: Db) {
    let server = TestServer::start(db).await;
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "kid": "k1"}]});
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "fragment in redirect_uri",
            with(
                web_doc(),
                "redirect_uris",
                json!(["https://rp.example.com/cb#frag"]),
            ),
            "invalid_redirect_uri",
        ),
        (
            "http redirect_uri on a public host",
            with(
                web_doc(),
                "redirect_uris",
                json!(["http://rp.example.com/cb"]),
            ),
            "invalid_redirect_uri",
        ),
        (
            "custom scheme for a web client",
            with(web_doc(), "redirect_uris", json!(["com.example.app:/cb"])),
            "invalid_redirect_uri",
        ),
        (
            "relative redirect_uri",
            with(web_doc(), "redirect_uris", json!(["/cb"])),
            "invalid_redirect_uri",
        ),
        (
            "javascript: redirect_uri for a native client",
            with(
                with(web_doc(), "application_type", json!("native")),
                "redirect_uris",
                json!(["javascript:alert(1)"]),
            ),
            "invalid_redirect_uri",
        ),
        (
            "no redirect_uris for the code grant",
            with(web_doc(), "redirect_uris", json!([])),
            "invalid_redirect_uri",
        ),
        (
            "http post_logout_redirect_uri on a public host",
            with(
                web_doc(),
                "post_logout_redirect_uris",
                json!(["http://rp.example.com/bye"]),
            ),
            "invalid_redirect_uri",
        ),
        (
            "jwks and jwks_uri both",
            with(
                with(web_doc(), "jwks", jwks.clone()),
                "jwks_uri",
                json!("https://rp.example.com/jwks"),
            ),
            "invalid_client_metadata",
        ),
        (
            "private key in jwks",
            with(
                web_doc(),
                "jwks",
                json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
            ),
            "invalid_client_metadata",
        ),
        (
            "response_types code without the authorization_code grant",
            with(
                with(web_doc(), "grant_types", json!(["client_credentials"])),
                "response_types",
                json!(["code"]),
            ),
            "invalid_client_metadata",
        ),
        (
            "authorization_code grant with no response type",
            with(web_doc(), "response_types", json!([])),
            "invalid_client_metadata",
        ),
        (
            "response_types token",
            with(web_doc(), "response_types", json!(["token"])),
            "invalid_client_metadata",
        ),
        (
            "unknown grant type",
            with(
                web_doc(),
                "grant_types",
                json!(["authorization_code", "password"]),
            ),
            "invalid_client_metadata",
        ),
        (
            "implicit grant",
            with(web_doc(), "grant_types", json!(["implicit"])),
            "invalid_client_metadata",
        ),
        (
            "unsupported token_endpoint_auth_method",
            with(
                web_doc(),
                "token_endpoint_auth_method",
                json!("client_secret_jwt"),
            ),
            "invalid_client_metadata",
        ),
        (
            "bogus token_endpoint_auth_method",
            with(web_doc(), "token_endpoint_auth_method", json!("trust-me")),
            "invalid_client_metadata",
        ),
        (
            "public client with client_credentials",
            with(
                with(web_doc(), "token_endpoint_auth_method", json!("none")),
                "grant_types",
                json!(["authorization_code", "client_credentials"]),
            ),
            "invalid_client_metadata",
        ),
        (
            "private_key_jwt without keys",
            with(
                web_doc(),
                "token_endpoint_auth_method",
                json!("private_key_jwt"),
            ),
            "invalid_client_metadata",
        ),
        (
            "non-https initiate_login_uri",
            with(
                web_doc(),
                "initiate_login_uri",
                json!("http://rp.example.com/login"),
            ),
            "invalid_client_metadata",
        ),
        (
            "logo_uri not a URL",
            with(web_doc(), "logo_uri", json!("not a url")),
            "invalid_client_metadata",
        ),
        (
            "javascript: policy_uri",
            with(web_doc(), "policy_uri", json!("javascript:alert(1)")),
            "invalid_client_metadata",
        ),
        (
            "subject_type pairwise",
            with(web_doc(), "subject_type", json!("pairwise")),
            "invalid_client_metadata",
        ),
        (
            "unsupported id_token alg",
            with(web_doc(), "id_token_signed_response_alg", json!("none")),
            "invalid_client_metadata",
        ),
        (
            "application_type other",
            with(web_doc(), "application_type", json!("desktop")),
            "invalid_client_metadata",
        ),
        (
            "redirect_uris not an array",
            with(web_doc(), "redirect_uris", json!(CB)),
            "invalid_client_metadata",
        ),
        (
            "client_name not a string",
            with(web_doc(), "client_name", json!(42)),
            "invalid_client_metadata",
        ),
        ("not an object", json!([CB]), "invalid_client_metadata"),
    ];
    for (what, doc, error) in cases {
        let (status, body) = register(&server, doc).await;
        assert_oauth_error(status, &body, 400, error, what);
    }
    // Not JSON at all, or not sent as JSON.
    for (what, ct, body) in [
        ("non-JSON body", "application/json", "client_name=x"),
        (
            "truncated JSON",
            "application/json",
            "{\"redirect_uris\": [",
        ),
        (
            "form content type",
            "application/x-www-form-urlencoded",
            "redirect_uris=https%3A%2F%2Frp.example.com%2Fcb",
        ),
    ] {
        let (status, v, _) = register_raw(&server, ct, body.into(), None).await;
        assert_oauth_error(status, &v, 400, "invalid_client_metadata", what);
    }
    // Nothing of the above was stored: the token endpoint knows no client at all.
    let (status, v, _) = token_basic(
        &server,
        "anything",
        "anything",
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_oauth_error(status, &v, 401, "invalid_client", "no client stored");
}

async fn native_clients_may_use_custom_schemes(db: Db) {
    let server = TestServer::start(db).await;
    let (status, reg) = register(
        &server,
        json!({
            "client_name": "Klard Android",
            "application_type": "native",
            "token_endpoint_auth_method": "none",
            "redirect_uris": ["com.example.app:/oauth2redirect", "http://127.0.0.1/cb"],
        }),
    )
    .await;
    assert_eq!(status, 201, "{reg}");
    assert_eq!(reg["application_type"], json!("native"));
    assert!(
        reg.get("client_secret").is_none(),
        "public: no secret: {reg}"
    );
    assert!(reg.get("client_secret_expires_at").is_none(), "{reg}");
    assert!(reg["registration_access_token"].is_string());
}

async fn registration_with_initial_access_token(db: Db) {
    let server = TestServer::start_with(db, |cfg| {
        cfg.registration.mode = RegistrationMode::InitialAccessToken;
        cfg.registration.initial_access_tokens = vec!["iat-0123456789abcdef".into()];
    })
    .await;
    let doc = web_doc().to_string();
    for (what, token) in [("missing token", None), ("wrong token", Some("iat-wrong"))] {
        let (status, v, headers) =
            register_raw(&server, "application/json", doc.clone(), token).await;
        assert_oauth_error(status, &v, 401, "invalid_token", what);
        let www = headers
            .get("www-authenticate")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        assert!(www.starts_with("Bearer"), "{what}: {www}");
    }
    let (status, v, _) = register_raw(
        &server,
        "application/json",
        doc,
        Some("iat-0123456789abcdef"),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert!(v["client_id"].is_string());
}

async fn registration_closed(db: Db) {
    let server =
        TestServer::start_with(db, |cfg| cfg.registration.mode = RegistrationMode::Closed).await;
    let (status, v) = register(&server, web_doc()).await;
    assert_eq!(status, 403, "{v}");
    assert!(v["error"].is_string(), "{v}");
    assert!(v["error_description"].is_string(), "{v}");
}

// ---------------------------------------------------------------------------------------
// RFC 7592 client configuration endpoint
// ---------------------------------------------------------------------------------------

async fn read_update_delete_registration(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (_, reg) = register(&server, web_doc()).await;
    let id = reg["client_id"].as_str().unwrap().to_string();
    let secret = reg["client_secret"].as_str().unwrap().to_string();
    let token = reg["registration_access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let uri = reg["registration_client_uri"].as_str().unwrap().to_string();
    let (_, other) = register(&server, web_doc()).await;
    let other_uri = other["registration_client_uri"].as_str().unwrap();

    // Read (RFC 7592 §2.1).
    let (status, v, headers) =
        config_endpoint(&server, reqwest::Method::GET, &uri, Some(&token), None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        headers.get("cache-control").and_then(|h| h.to_str().ok()),
        Some("no-store")
    );
    assert_eq!(v["client_id"], json!(id));
    assert_eq!(v["client_name"], json!("Dynamic RP"));
    assert_eq!(v["redirect_uris"], json!([CB]));
    assert_eq!(v["client_id_issued_at"], reg["client_id_issued_at"]);
    // RFC 7592 §3: registration_access_token and registration_client_uri are REQUIRED.
    assert_eq!(v["registration_client_uri"], json!(uri));
    assert_eq!(v["registration_access_token"], json!(token), "{v}");

    // Wrong, missing or another client's token: 401 invalid_token.
    for (what, u, t) in [
        ("wrong token", uri.as_str(), Some("not-the-token")),
        ("no token", uri.as_str(), None),
        ("another client's token", other_uri, Some(token.as_str())),
        (
            "unknown client",
            &*server.url("/register/no-such-client"),
            Some(token.as_str()),
        ),
    ] {
        let (status, v, headers) = config_endpoint(&server, reqwest::Method::GET, u, t, None).await;
        assert_oauth_error(status, &v, 401, "invalid_token", what);
        assert!(headers.contains_key("www-authenticate"), "{what}");
    }

    // Update (RFC 7592 §2.2): client_id must be present and match.
    let new_cb = "http://127.0.0.1:9/callback2";
    let mut doc = with(web_doc(), "client_name", json!("Renamed RP"));
    doc["redirect_uris"] = json!([CB, new_cb]);
    for (what, body) in [
        ("without client_id", doc.clone()),
        (
            "another client_id",
            with(doc.clone(), "client_id", other["client_id"].clone()),
        ),
    ] {
        let (status, v, _) = config_endpoint(
            &server,
            reqwest::Method::PUT,
            &uri,
            Some(&token),
            Some(body),
        )
        .await;
        assert_oauth_error(status, &v, 400, "invalid_request", what);
    }
    let bad = with(
        with(doc.clone(), "client_id", json!(id)),
        "redirect_uris",
        json!(["http://rp.example.com/cb"]),
    );
    let (status, v, _) =
        config_endpoint(&server, reqwest::Method::PUT, &uri, Some(&token), Some(bad)).await;
    assert_oauth_error(status, &v, 400, "invalid_redirect_uri", "invalid update");
    let (status, v, _) = config_endpoint(
        &server,
        reqwest::Method::PUT,
        &uri,
        Some("not-the-token"),
        Some(with(doc.clone(), "client_id", json!(id))),
    )
    .await;
    assert_oauth_error(
        status,
        &v,
        401,
        "invalid_token",
        "update with a wrong token",
    );

    let good = with(
        with(doc.clone(), "client_id", json!(id)),
        "client_secret",
        json!(secret),
    );
    let (status, v, _) = config_endpoint(
        &server,
        reqwest::Method::PUT,
        &uri,
        Some(&token),
        Some(good),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["client_id"], json!(id));
    assert_eq!(v["client_name"], json!("Renamed RP"));
    assert_eq!(v["redirect_uris"], json!([CB, new_cb]));
    assert_eq!(v["registration_access_token"], json!(token), "RFC 7592 §3");
    assert!(
        v.get("client_secret").is_none(),
        "the secret is not re-issued"
    );
    let (_, v, _) = config_endpoint(&server, reqwest::Method::GET, &uri, Some(&token), None).await;
    assert_eq!(v["client_name"], json!("Renamed RP"));
    // The secret still works after the update.
    let mut b = Browser::new("buffy@example.com");
    code_flow(&server, &mut b, &id, &secret, "openid", &[]).await;

    // Delete (RFC 7592 §2.3).
    let (status, _, _) = config_endpoint(
        &server,
        reqwest::Method::DELETE,
        &uri,
        Some("not-the-token"),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let resp = server
        .http()
        .delete(&uri)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let (status, v, _) =
        config_endpoint(&server, reqwest::Method::GET, &uri, Some(&token), None).await;
    assert_oauth_error(status, &v, 401, "invalid_token", "read after delete");
    // The client can no longer get tokens, nor start an authorization.
    let (status, v, _) = token_basic(
        &server,
        &id,
        &secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", "whatever"),
            ("redirect_uri", CB),
        ],
    )
    .await;
    assert_oauth_error(status, &v, 401, "invalid_client", "token after delete");
    let (_, challenge) = pkce();
    let resp = b
        .http
        .get(authorize_url(
            &server,
            &[
                ("response_type", "code"),
                ("client_id", &id),
                ("redirect_uri", CB),
                ("scope", "openid"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_error_page(resp, "invalid_request", "authorize after delete").await;
    // The other registration is untouched.
    let other_token = other["registration_access_token"].as_str().unwrap();
    let (status, _, _) = config_endpoint(
        &server,
        reqwest::Method::GET,
        other_uri,
        Some(other_token),
        None,
    )
    .await;
    assert_eq!(status, 200);
}

// ---------------------------------------------------------------------------------------
// 6. RP-Initiated Logout 1.0
// ---------------------------------------------------------------------------------------

async fn logout_with_hint_redirects_with_state(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, secret) = web_client(&server).await;
    let (b, jar, hint) = logged_in(&server, &id, &secret).await;
    let old_cookie = cookie_header(&server, &jar);
    let state = "st4te with spaces & = ~";
    let url = end_session_url(
        &server,
        &[
            ("id_token_hint", &hint),
            ("post_logout_redirect_uri", POST_LOGOUT),
            ("state", state),
        ],
    );
    let resp = b.http.get(url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let loc = location(&resp).expect("Location");
    let u = url::Url::parse(&loc).unwrap();
    assert_eq!(
        format!("{}://{}{}", u.scheme(), u.authority(), u.path()),
        POST_LOGOUT
    );
    let q: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    assert_eq!(q, vec![("state".to_string(), state.to_string())], "{loc}");
    assert_session_cleared(&set_cookies(&resp), "hint logout");

    // Signed out in this browser...
    assert_logged_out(
        &silent_authorize(&server, &b.http, &id, None).await,
        "after",
    );
    // ...and the session is revoked on the server, not just forgotten by the browser.
    let replay = silent_authorize(&server, &server.http(), &id, Some(&old_cookie)).await;
    assert_logged_out(&replay, "old cookie replayed");
}

async fn logout_without_state_and_without_redirect(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, secret) = web_client(&server).await;

    // With a post_logout_redirect_uri but no state: redirect without state.
    let (b, _, hint) = logged_in(&server, &id, &secret).await;
    let url = end_session_url(
        &server,
        &[
            ("id_token_hint", &hint),
            ("post_logout_redirect_uri", POST_LOGOUT),
        ],
    );
    let resp = b.http.get(url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(location(&resp).as_deref(), Some(POST_LOGOUT));
    assert_logged_out(
        &silent_authorize(&server, &b.http, &id, None).await,
        "no state",
    );

    // No post_logout_redirect_uri: the logged-out page.
    let (b, jar, hint) = logged_in(&server, &id, &secret).await;
    let old_cookie = cookie_header(&server, &jar);
    let url = end_session_url(&server, &[("id_token_hint", &hint)]);
    let resp = b.http.get(url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(location(&resp).is_none());
    assert_session_cleared(&set_cookies(&resp), "logged-out page");
    let body = resp.text().await.unwrap();
    assert!(body.contains("You are signed out"), "{body}");
    assert!(body.contains("<html lang=\"en\">"));
    let replay = silent_authorize(&server, &server.http(), &id, Some(&old_cookie)).await;
    assert_logged_out(&replay, "old cookie replayed");

    // POST works the same way (RP-Initiated Logout §2).
    let (b, _, hint) = logged_in(&server, &id, &secret).await;
    let resp = b
        .http
        .post(server.url("/end_session"))
        .form(&[
            ("id_token_hint", hint.as_str()),
            ("post_logout_redirect_uri", POST_LOGOUT),
            ("state", "p"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(location(&resp), Some(format!("{POST_LOGOUT}?state=p")));
    assert_logged_out(&silent_authorize(&server, &b.http, &id, None).await, "POST");
}

/// Requests the OP must refuse without redirecting, leaving the session alone.
async fn logout_refusals_do_not_redirect(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, secret) = web_client(&server).await;
    let (other, _) = server
        .client(json!({
            "redirect_uris": [CB],
            "post_logout_redirect_uris": ["https://other.example.com/bye"],
        }))
        .await;
    let (b, _, hint) = logged_in(&server, &id, &secret).await;

    // alg=none header on the original payload (RFC 7519 §6 unsecured JWT).
    let mut parts = hint.split('.');
    let (header, payload) = (parts.next().unwrap(), parts.next().unwrap());
    let mut h: Value =
        serde_json::from_slice(&klard_auth::crypto::b64url_decode(header).unwrap()).unwrap();
    h["alg"] = json!("none");
    let forged_none = format!(
        "{}.{payload}.",
        klard_auth::crypto::b64url(h.to_string().as_bytes())
    );
    // Same header, payload changed, signature kept.
    let mut claims: Value =
        serde_json::from_slice(&klard_auth::crypto::b64url_decode(payload).unwrap()).unwrap();
    claims["sub"] = json!("someone-else");
    let forged_sub = format!(
        "{header}.{}.{}",
        klard_auth::crypto::b64url(claims.to_string().as_bytes()),
        hint.split('.').nth(2).unwrap()
    );

    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "unregistered post_logout_redirect_uri",
            vec![
                ("id_token_hint", &hint),
                ("post_logout_redirect_uri", "https://evil.example.com/"),
                ("state", "x"),
            ],
        ),
        (
            "post_logout_redirect_uri of another client",
            vec![
                ("id_token_hint", &hint),
                ("post_logout_redirect_uri", "https://other.example.com/bye"),
            ],
        ),
        (
            "alg none hint",
            vec![
                ("id_token_hint", &forged_none),
                ("post_logout_redirect_uri", POST_LOGOUT),
            ],
        ),
        (
            "hint with a modified payload",
            vec![
                ("id_token_hint", &forged_sub),
                ("post_logout_redirect_uri", POST_LOGOUT),
            ],
        ),
        ("garbage hint", vec![("id_token_hint", "not.a.jwt")]),
        (
            "no hint, only post_logout_redirect_uri",
            vec![("post_logout_redirect_uri", POST_LOGOUT), ("state", "x")],
        ),
        (
            "client_id not the hint's audience",
            vec![
                ("id_token_hint", &hint),
                ("client_id", &other),
                ("post_logout_redirect_uri", POST_LOGOUT),
            ],
        ),
        (
            "unknown client_id",
            vec![
                ("client_id", "ghost"),
                ("post_logout_redirect_uri", POST_LOGOUT),
            ],
        ),
    ];
    for (what, pairs) in cases {
        let resp = b
            .http
            .get(end_session_url(&server, &pairs))
            .send()
            .await
            .unwrap();
        assert!(
            !set_cookies(&resp)
                .iter()
                .any(|c| c.starts_with("klard_session=")),
            "{what}: session cookie untouched"
        );
        assert_error_page(resp, "invalid_request", what).await;
        assert_logged_in(&silent_authorize(&server, &b.http, &id, None).await, what);
    }
}

/// Without a hint the OP must ask (RP-Initiated Logout §2): a CSRF-protected page.
async fn logout_confirmation_page(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, secret) = web_client(&server).await;
    let (b, jar, _) = logged_in(&server, &id, &secret).await;
    let old_cookie = cookie_header(&server, &jar);

    let resp = b.http.get(server.url("/end_session")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(location(&resp).is_none());
    assert!(
        !set_cookies(&resp)
            .iter()
            .any(|c| c.starts_with("klard_session=")),
        "nothing happens before the user confirms"
    );
    let body = resp.text().await.unwrap();
    let form = Form::parse(&body).expect("confirmation form");
    assert!(form.action.ends_with("/end_session/confirm"), "{form:?}");
    let csrf = form
        .hidden
        .iter()
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v.clone())
        .expect("csrf_token");
    assert!(!csrf.is_empty());
    assert!(body.contains("value=\"logout\""));
    // Still signed in while the page is shown.
    assert_logged_in(
        &silent_authorize(&server, &b.http, &id, None).await,
        "page shown",
    );

    let action = server.url("/end_session/confirm");
    let post = |fields: Vec<(String, String)>| b.http.post(&action).form(&fields).send();

    // A forged or missing CSRF token does nothing.
    let mut forged = form.hidden.clone();
    forged.retain(|(k, _)| k != "csrf_token");
    forged.push(("csrf_token".into(), "forged".into()));
    forged.push(("decision".into(), "logout".into()));
    let resp = post(forged).await.unwrap();
    assert_error_page(resp, "invalid_request", "forged csrf").await;
    let mut missing = form.hidden.clone();
    missing.retain(|(k, _)| k != "csrf_token");
    missing.push(("decision".into(), "logout".into()));
    assert_error_page(post(missing).await.unwrap(), "invalid_request", "no csrf").await;
    // Another browser cannot submit this browser's form.
    let mut stolen = form.hidden.clone();
    stolen.push(("decision".into(), "logout".into()));
    let resp = server
        .http()
        .post(&action)
        .header(
            "cookie",
            &old_cookie.replace("klard_browser=", "klard_browser=x"),
        )
        .form(&stolen)
        .send()
        .await
        .unwrap();
    assert_error_page(resp, "invalid_request", "other browser").await;
    assert_logged_in(
        &silent_authorize(&server, &b.http, &id, None).await,
        "refused",
    );

    // "Stay signed in" keeps the session.
    let mut stay = form.hidden.clone();
    stay.push(("decision".into(), "stay".into()));
    let resp = post(stay).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_logged_in(&silent_authorize(&server, &b.http, &id, None).await, "stay");

    // Confirming logs out.
    let mut yes = form.hidden.clone();
    yes.push(("decision".into(), "logout".into()));
    let resp = post(yes).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_session_cleared(&set_cookies(&resp), "confirmed");
    assert!(resp.text().await.unwrap().contains("You are signed out"));
    assert_logged_out(
        &silent_authorize(&server, &b.http, &id, None).await,
        "confirmed",
    );
    let replay = silent_authorize(&server, &server.http(), &id, Some(&old_cookie)).await;
    assert_logged_out(&replay, "old cookie replayed");
}

/// client_id + post_logout_redirect_uri without a hint: confirm, then redirect.
async fn logout_with_client_id_confirms_then_redirects(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, secret) = web_client(&server).await;
    let (b, _, _) = logged_in(&server, &id, &secret).await;
    let url = end_session_url(
        &server,
        &[
            ("client_id", &id),
            ("post_logout_redirect_uri", POST_LOGOUT),
            ("state", "c1"),
        ],
    );
    let resp = b.http.get(url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "asks first");
    let body = resp.text().await.unwrap();
    assert!(body.contains("Test RP"), "names the client: {body}");
    let form = Form::parse(&body).unwrap();
    let mut fields = form.hidden.clone();
    fields.push(("decision".into(), "logout".into()));
    let resp = b
        .http
        .post(server.url("/end_session/confirm"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(location(&resp), Some(format!("{POST_LOGOUT}?state=c1")));
    assert_session_cleared(&set_cookies(&resp), "client_id logout");
    assert_logged_out(
        &silent_authorize(&server, &b.http, &id, None).await,
        "after",
    );
}

/// With no session the outcome the RP wants already holds: redirect straight back.
async fn logout_without_session(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, secret) = web_client(&server).await;
    let (_, _, hint) = logged_in(&server, &id, &secret).await;
    let fresh = Browser::new("buffy@example.com");
    let url = end_session_url(
        &server,
        &[
            ("id_token_hint", &hint),
            ("post_logout_redirect_uri", POST_LOGOUT),
            ("state", "z"),
        ],
    );
    let resp = fresh.http.get(url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(location(&resp), Some(format!("{POST_LOGOUT}?state=z")));
}

db_tests!(
    registered_client_completes_a_code_flow,
    registration_cannot_claim_first_party,
    registration_rejects_invalid_metadata,
    native_clients_may_use_custom_schemes,
    registration_with_initial_access_token,
    registration_closed,
    read_update_delete_registration,
    logout_with_hint_redirects_with_state,
    logout_without_state_and_without_redirect,
    logout_refusals_do_not_redirect,
    logout_confirmation_page,
    logout_with_client_id_confirms_then_redirects,
    logout_without_session,
);
