//! The authorization endpoint over real HTTP: discovery and JWKS, error routing
//! (RFC 6749 §4.1.2.1, RFC 9207), sessions and prompts (OIDC Core §3.1.2), response modes,
//! native clients (RFC 8252) and the hosted login and consent pages.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::support::{
    Browser, CB, Db, Form, Landing, PASSWORD, TestServer, authorize_url, code_flow, pkce,
    token_basic, web_client,
};

// ---------------------------------------------------------------------------------------
// Local helpers
// ---------------------------------------------------------------------------------------

async fn get(server: &TestServer, url: &str) -> reqwest::Response {
    server.http().get(url).send().await.expect("GET")
}

fn location(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

fn query_params(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .expect("URL")
        .query_pairs()
        .into_owned()
        .collect()
}

fn fragment_params(url: &str) -> HashMap<String, String> {
    let u = url::Url::parse(url).expect("URL");
    url::form_urlencoded::parse(u.fragment().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&#x3a;", ":")
        .replace("&#58;", ":")
        .replace("&#x3d;", "=")
        .replace("&#61;", "=")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&amp;", "&")
}

/// The error page of RFC 6749 §4.1.2.1: 400, HTML, no Location, the error code and a
/// description.
async fn assert_error_page(resp: reqwest::Response, error: &str, what: &str) -> String {
    assert_eq!(resp.status().as_u16(), 400, "{what}: status");
    assert!(location(&resp).is_none(), "{what}: must not redirect");
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(ct.starts_with("text/html"), "{what}: content-type {ct}");
    let body = resp.text().await.expect("body");
    assert_page_error(&body, error, what);
    body
}

/// An error page body: `data-error` is the code and a non-empty description follows.
fn assert_page_error(body: &str, error: &str, what: &str) {
    assert!(
        body.contains(&format!("data-error=\"{error}\"")),
        "{what}: expected error page `{error}`, got {body}"
    );
    let after = body
        .split("</code></p>")
        .nth(1)
        .unwrap_or_else(|| panic!("{what}: no description in {body}"));
    let desc = after
        .trim_start()
        .strip_prefix("<p>")
        .and_then(|d| d.split("</p>").next())
        .unwrap_or("");
    assert!(!desc.trim().is_empty(), "{what}: empty description: {body}");
}

/// An error redirected to the verified redirect URI: 303, error, error_description,
/// the exact state, and iss (RFC 9207 §2).
fn assert_redirect_error(
    server: &TestServer,
    resp: &reqwest::Response,
    redirect_uri: &str,
    error: &str,
    state: Option<&str>,
    what: &str,
) -> HashMap<String, String> {
    assert_eq!(resp.status().as_u16(), 303, "{what}: status");
    let loc = location(resp).unwrap_or_else(|| panic!("{what}: no Location"));
    assert!(
        loc.starts_with(redirect_uri),
        "{what}: redirected to {loc}, expected {redirect_uri}"
    );
    let p = query_params(&loc);
    assert_redirect_params(server, &p, error, state, what);
    p
}

fn assert_redirect_params(
    server: &TestServer,
    p: &HashMap<String, String>,
    error: &str,
    state: Option<&str>,
    what: &str,
) {
    assert_eq!(
        p.get("error").map(String::as_str),
        Some(error),
        "{what}: {p:?}"
    );
    assert!(
        p.get("error_description").is_some_and(|d| !d.is_empty()),
        "{what}: error_description missing: {p:?}"
    );
    assert_eq!(p.get("state").map(String::as_str), state, "{what}: state");
    assert_eq!(p.get("iss"), Some(&server.issuer()), "{what}: iss");
    assert!(!p.contains_key("code"), "{what}: no code on error");
}

/// The claims of a JWT, unverified (the signature is checked by the RP tests).
fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("JWT payload");
    let bytes = klard_auth::crypto::b64url_decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON payload")
}

fn jwt_header(token: &str) -> Value {
    let h = token.split('.').next().expect("JWT header");
    serde_json::from_slice(&klard_auth::crypto::b64url_decode(h).expect("b64")).expect("JSON")
}

fn id_token(tokens: &Value) -> Value {
    jwt_claims(tokens["id_token"].as_str().expect("id_token"))
}

async fn userinfo(server: &TestServer, tokens: &Value) -> Value {
    let resp = server
        .http()
        .get(server.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().expect("access_token"))
        .send()
        .await
        .expect("userinfo");
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.expect("userinfo JSON")
}

/// A valid authorization request for a confidential client, as pairs to modify.
/// Query pairs of an authorization request.
type Pairs<'a> = Vec<(&'a str, &'a str)>;

fn base_pairs<'a>(id: &'a str, challenge: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", id),
        ("redirect_uri", CB),
        ("scope", "openid"),
        ("state", "st4te"),
        ("nonce", "n0nce"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
}

fn set<'a>(pairs: &[(&'a str, &'a str)], k: &'a str, v: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<_> = pairs.iter().filter(|(x, _)| *x != k).cloned().collect();
    out.push((k, v));
    out
}

fn without<'a>(pairs: &[(&'a str, &'a str)], k: &str) -> Vec<(&'a str, &'a str)> {
    pairs.iter().filter(|(x, _)| *x != k).cloned().collect()
}

/// Exchanges a code with Basic auth, expecting success.
async fn exchange(
    server: &TestServer,
    id: &str,
    secret: &str,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Value {
    let (status, body, _) = token_basic(
        server,
        id,
        secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// A public client's token request (client_id in the body, no secret).
async fn exchange_public(
    server: &TestServer,
    id: &str,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> (u16, Value) {
    let resp = server
        .http()
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", id),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .expect("token");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(String::from))
        .collect()
}

/// Starts an authorization request in `b` and returns the login page (URL, body).
async fn open_login_page(b: &Browser, url: &str) -> (String, String) {
    let resp = b.http.get(url).send().await.expect("authorize");
    assert_eq!(resp.status().as_u16(), 303);
    let loc = resp
        .url()
        .join(&location(&resp).expect("to login"))
        .unwrap();
    assert_eq!(loc.path().rsplit('/').next(), Some("login"), "{loc}");
    let page = b.http.get(loc.clone()).send().await.expect("login page");
    assert_eq!(page.status().as_u16(), 200);
    (loc.to_string(), page.text().await.expect("body"))
}

fn field<'a>(form: &'a Form, name: &str) -> &'a str {
    form.hidden
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("hidden field {name} in {form:?}"))
}

// ---------------------------------------------------------------------------------------
// 1. Discovery and JWKS
// ---------------------------------------------------------------------------------------

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("array expected, got {v}"))
        .iter()
        .map(|s| s.as_str().expect("string"))
        .collect()
}

/// Every field the provider must publish, checked against `issuer`.
fn check_metadata(m: &Value, issuer: &str) {
    assert_eq!(m["issuer"], json!(issuer));
    for (k, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
        ("registration_endpoint", "/register"),
        ("revocation_endpoint", "/revoke"),
        ("introspection_endpoint", "/introspect"),
        ("end_session_endpoint", "/end_session"),
    ] {
        assert_eq!(m[k], json!(format!("{issuer}{path}")), "{k}");
    }
    let scopes = strings(&m["scopes_supported"]);
    for s in [
        "openid",
        "profile",
        "email",
        "address",
        "phone",
        "offline_access",
    ] {
        assert!(
            scopes.contains(&s),
            "scopes_supported lacks {s}: {scopes:?}"
        );
    }
    let claims = strings(&m["claims_supported"]);
    for c in [
        "sub",
        "iss",
        "auth_time",
        "name",
        "email",
        "email_verified",
        "address",
        "phone_number",
        "locale",
    ] {
        assert!(
            claims.contains(&c),
            "claims_supported lacks {c}: {claims:?}"
        );
    }
    assert_eq!(m["response_types_supported"], json!(["code"]));
    let grants = strings(&m["grant_types_supported"]);
    for g in ["authorization_code", "refresh_token", "client_credentials"] {
        assert!(grants.contains(&g), "grant_types_supported lacks {g}");
    }
    assert!(!grants.contains(&"implicit") && !grants.contains(&"password"));
    let auth = strings(&m["token_endpoint_auth_methods_supported"]);
    for a in [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    ] {
        assert!(auth.contains(&a), "token_endpoint_auth_methods lacks {a}");
    }
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    let algs = strings(&m["id_token_signing_alg_values_supported"]);
    assert_eq!(algs.first(), Some(&"RS256"), "RS256 first: {algs:?}");
    assert!(!algs.contains(&"none"));
    assert_eq!(m["subject_types_supported"], json!(["public"]));
    assert_eq!(m["claims_parameter_supported"], json!(true));
    assert_eq!(
        m["authorization_response_iss_parameter_supported"],
        json!(true)
    );
    assert_eq!(m["request_parameter_supported"], json!(false));
    assert_eq!(m["request_uri_parameter_supported"], json!(false));
    let modes = strings(&m["response_modes_supported"]);
    for r in ["query", "fragment", "form_post"] {
        assert!(modes.contains(&r));
    }
}

async fn fetch_json(server: &TestServer, url: &str) -> Value {
    let resp = get(server, url).await;
    assert_eq!(resp.status().as_u16(), 200, "{url}");
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(ct.starts_with("application/json"), "{url}: {ct}");
    resp.json().await.expect("JSON")
}

async fn discovery_documents(db: Db) {
    let server = TestServer::start(db).await;
    let oidc = fetch_json(&server, &server.url("/.well-known/openid-configuration")).await;
    check_metadata(&oidc, &server.issuer());
    // RFC 8414 §3.2: the OAuth metadata names the same issuer and endpoints.
    let oauth = fetch_json(
        &server,
        &server.url("/.well-known/oauth-authorization-server"),
    )
    .await;
    check_metadata(&oauth, &server.issuer());
    assert_eq!(oidc, oauth);
}

/// Checks a JWKS document: public keys only, unique kid, use and alg on each.
fn check_jwks(jwks: &Value, algs: &[&str]) {
    let keys = jwks["keys"].as_array().expect("keys");
    assert!(!keys.is_empty());
    let mut kids = std::collections::HashSet::new();
    for k in keys {
        let o = k.as_object().expect("JWK object");
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(!o.contains_key(private), "private member {private} in {k}");
        }
        let kid = k["kid"].as_str().expect("kid");
        assert!(kids.insert(kid.to_string()), "duplicate kid {kid}");
        assert_eq!(k["use"], json!("sig"), "{k}");
        let alg = k["alg"].as_str().expect("alg");
        assert!(algs.contains(&alg), "alg {alg} not advertised");
        assert!(k["kty"].is_string());
    }
    assert_eq!(keys[0]["alg"], json!("RS256"), "RS256 key first");
}

async fn jwks_endpoints_publish_public_keys(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let meta = fetch_json(&server, &server.url("/.well-known/openid-configuration")).await;
    let algs = strings(&meta["id_token_signing_alg_values_supported"]);
    let main = fetch_json(&server, meta["jwks_uri"].as_str().unwrap()).await;
    check_jwks(&main, &algs);
    for path in ["/.well-known/jwks.json", "/api/auth/jwks"] {
        let other = fetch_json(&server, &server.url(path)).await;
        assert_eq!(other, main, "{path} serves the same JWKS");
    }
    // The ID token is signed with a published key (RS256 by default).
    let (id, secret) = web_client(&server).await;
    let mut b = Browser::new("buffy@example.com");
    let tokens = code_flow(&server, &mut b, &id, &secret, "openid", &[]).await;
    let header = jwt_header(tokens["id_token"].as_str().unwrap());
    assert_eq!(header["alg"], json!("RS256"));
    let kid = header["kid"].as_str().expect("kid");
    let key = main["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == json!(kid))
        .expect("the signing key is in the JWKS");
    assert_eq!(key["alg"], json!("RS256"));
}

async fn issuer_with_path(db: Db) {
    let server =
        TestServer::start_with(db, |cfg| cfg.issuer = format!("{}/tenant-a", cfg.issuer)).await;
    let issuer = server.issuer();
    assert_eq!(issuer, format!("{}/tenant-a", server.base));
    for url in [
        format!("{}/tenant-a/.well-known/openid-configuration", server.base),
        format!(
            "{}/.well-known/oauth-authorization-server/tenant-a",
            server.base
        ),
        format!("{}/.well-known/openid-configuration/tenant-a", server.base),
        format!(
            "{}/tenant-a/.well-known/oauth-authorization-server",
            server.base
        ),
    ] {
        let m = fetch_json(&server, &url).await;
        check_metadata(&m, &issuer);
    }
    let jwks = fetch_json(&server, &format!("{issuer}/jwks")).await;
    check_jwks(&jwks, &["RS256", "ES256", "EdDSA"]);

    // The endpoints under the path work end to end.
    server.user("buffy@example.com").await;
    let (id, secret) = web_client(&server).await;
    let mut b = Browser::new("buffy@example.com");
    let tokens = code_flow(&server, &mut b, &id, &secret, "openid email", &[]).await;
    assert_eq!(b.pages_seen, vec!["login", "consent"]);
    let claims = id_token(&tokens);
    assert_eq!(claims["iss"], json!(issuer));
    let info = userinfo(&server, &tokens).await;
    assert_eq!(info["email"], json!("buffy@example.com"));
    // The session cookie is scoped to the issuer path and is reused there.
    b.pages_seen.clear();
    code_flow(
        &server,
        &mut b,
        &id,
        &secret,
        "openid",
        &[("prompt", "none")],
    )
    .await;
    assert!(b.pages_seen.is_empty());
}

// ---------------------------------------------------------------------------------------
// 2. Error routing (RFC 6749 §4.1.2.1)
// ---------------------------------------------------------------------------------------

async fn errors_without_trusted_redirect_show_a_page(db: Db) {
    let server = TestServer::start(db).await;
    let (id, _) = web_client(&server).await;
    let (_, challenge) = pkce();
    let base = base_pairs(&id, &challenge);
    let cases: Vec<(&str, Pairs)> = vec![
        (
            "unknown client_id",
            set(&base, "client_id", "no-such-client"),
        ),
        ("missing client_id", without(&base, "client_id")),
        (
            "unregistered redirect_uri",
            set(&base, "redirect_uri", "https://evil.example.com/cb"),
        ),
        (
            "redirect_uri with an extra query",
            set(&base, "redirect_uri", "http://127.0.0.1:9/callback?x=1"),
        ),
        (
            "redirect_uri with another path",
            set(&base, "redirect_uri", "http://127.0.0.1:9/callback/x"),
        ),
        (
            "loopback redirect_uri on another port for a web client",
            set(&base, "redirect_uri", "http://127.0.0.1:10/callback"),
        ),
        (
            "missing redirect_uri with openid",
            without(&base, "redirect_uri"),
        ),
    ];
    for (what, pairs) in cases {
        let resp = get(&server, &authorize_url(&server, &pairs)).await;
        assert_error_page(resp, "invalid_request", what).await;
    }
    // A repeated client_id or redirect_uri cannot be trusted either.
    let dup = format!("{}&client_id={id}", authorize_url(&server, &base),);
    assert_error_page(
        get(&server, &dup).await,
        "invalid_request",
        "duplicate client_id",
    )
    .await;
    let dup = format!(
        "{}&redirect_uri=https%3A%2F%2Fevil.example.com%2F",
        authorize_url(&server, &base)
    );
    assert_error_page(
        get(&server, &dup).await,
        "invalid_request",
        "duplicate redirect_uri",
    )
    .await;
    // The same through POST.
    let resp = server
        .http()
        .post(server.url("/authorize"))
        .form(&set(&base, "client_id", "no-such-client"))
        .send()
        .await
        .unwrap();
    assert_error_page(resp, "invalid_request", "POST unknown client").await;
    // What the page reflects is escaped.
    let xss = set(&base, "client_id", "<script>alert(1)</script>");
    let body = assert_error_page(
        get(&server, &authorize_url(&server, &xss)).await,
        "invalid_request",
        "client_id with markup",
    )
    .await;
    assert!(!body.contains("<script>alert(1)"), "{body}");
}

/// Without openid, one registered redirect URI may be omitted (RFC 6749 §3.1.2.3).
async fn plain_oauth_may_omit_a_single_redirect_uri(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, secret) = web_client(&server).await;
    let (verifier, challenge) = pkce();
    let pairs = without(
        &set(&base_pairs(&id, &challenge), "scope", "profile"),
        "redirect_uri",
    );
    let mut b = Browser::new("buffy@example.com");
    let p = b.go(&authorize_url(&server, &pairs), CB).await.params();
    let code = p.get("code").expect("code");
    // The token request then omits redirect_uri too.
    let (status, body, _) = token_basic(
        &server,
        &id,
        &secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("id_token").is_none(), "no openid, no id_token");
}

async fn errors_redirect_to_the_verified_uri(db: Db) {
    let server = TestServer::start(db).await;
    let (id, _) = web_client(&server).await;
    let (public_id, _) = server
        .client(json!({
            "client_name": "SPA",
            "redirect_uris": [CB],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    let (_, challenge) = pkce();
    let base = base_pairs(&id, &challenge);
    let cases: Vec<(&str, Pairs, &str)> = vec![
        (
            "missing response_type",
            without(&base, "response_type"),
            "invalid_request",
        ),
        (
            "response_type=token",
            set(&base, "response_type", "token"),
            "unsupported_response_type",
        ),
        (
            "response_type=id_token",
            set(&base, "response_type", "id_token"),
            "unsupported_response_type",
        ),
        (
            "unknown scope",
            set(&base, "scope", "openid admin"),
            "invalid_scope",
        ),
        (
            "malformed scope token",
            set(&base, "scope", "openid \"quoted\""),
            "invalid_scope",
        ),
        (
            "public client without PKCE",
            without(
                &without(&set(&base, "client_id", &public_id), "code_challenge"),
                "code_challenge_method",
            ),
            "invalid_request",
        ),
        (
            "code_challenge_method=plain",
            set(&base, "code_challenge_method", "plain"),
            "invalid_request",
        ),
        (
            "code_challenge without method (plain by default)",
            without(&base, "code_challenge_method"),
            "invalid_request",
        ),
        (
            "code_challenge too short",
            set(&base, "code_challenge", "short"),
            "invalid_request",
        ),
        (
            "code_challenge_method without code_challenge",
            without(&base, "code_challenge"),
            "invalid_request",
        ),
        (
            "request object",
            set(&base, "request", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."),
            "request_not_supported",
        ),
        (
            "request_uri",
            set(&base, "request_uri", "https://rp.example.com/req.jwt"),
            "request_uri_not_supported",
        ),
        (
            "max_age not a number",
            set(&base, "max_age", "abc"),
            "invalid_request",
        ),
        (
            "negative max_age",
            set(&base, "max_age", "-1"),
            "invalid_request",
        ),
        (
            "claims not JSON",
            set(&base, "claims", "{not json"),
            "invalid_request",
        ),
        (
            "claims member not an object",
            set(&base, "claims", r#"{"userinfo":["name"]}"#),
            "invalid_request",
        ),
        (
            "unknown prompt",
            set(&base, "prompt", "bogus"),
            "invalid_request",
        ),
        (
            "prompt=none with login",
            set(&base, "prompt", "none login"),
            "invalid_request",
        ),
        (
            "unsupported response_mode",
            set(&base, "response_mode", "web_message"),
            "invalid_request",
        ),
        (
            "id_token_hint that is not ours",
            set(
                &base,
                "id_token_hint",
                "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
            ),
            "invalid_request",
        ),
    ];
    for (what, pairs, error) in cases {
        let resp = get(&server, &authorize_url(&server, &pairs)).await;
        assert_redirect_error(&server, &resp, CB, error, Some("st4te"), what);
    }
    // Without state, none comes back.
    let resp = get(
        &server,
        &authorize_url(
            &server,
            &without(&set(&base, "response_type", "token"), "state"),
        ),
    )
    .await;
    assert_redirect_error(
        &server,
        &resp,
        CB,
        "unsupported_response_type",
        None,
        "no state",
    );
    // RFC 6749 §4.1.2.1: a repeated parameter other than client_id/redirect_uri is
    // invalid_request at the (verified) redirect URI.
    let dup = format!("{}&scope=openid+email", authorize_url(&server, &base));
    let resp = get(&server, &dup).await;
    assert_redirect_error(
        &server,
        &resp,
        CB,
        "invalid_request",
        Some("st4te"),
        "duplicate scope",
    );
}

async fn prompt_none_without_session_is_login_required(db: Db) {
    let server = TestServer::start(db).await;
    let (id, _) = web_client(&server).await;
    let (_, challenge) = pkce();
    // A long state with every unreserved punctuation character comes back exactly.
    let state = format!("{}-._~", "aZ09".repeat(31));
    assert_eq!(state.len(), 128);
    let pairs = set(
        &set(&base_pairs(&id, &challenge), "prompt", "none"),
        "state",
        &state,
    );
    let resp = get(&server, &authorize_url(&server, &pairs)).await;
    assert_redirect_error(
        &server,
        &resp,
        CB,
        "login_required",
        Some(&state),
        "prompt=none",
    );
}

async fn prompt_none_without_consent_is_consent_required(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, secret) = web_client(&server).await;
    let (other, _) = server
        .client(json!({"client_name": "Other RP", "redirect_uris": [CB]}))
        .await;
    let mut b = Browser::new("buffy@example.com");
    code_flow(&server, &mut b, &id, &secret, "openid", &[]).await;
    let (_, challenge) = pkce();
    // Another client the user never consented to.
    let pairs = set(&base_pairs(&other, &challenge), "prompt", "none");
    let resp = b
        .http
        .get(authorize_url(&server, &pairs))
        .send()
        .await
        .unwrap();
    assert_redirect_error(
        &server,
        &resp,
        CB,
        "consent_required",
        Some("st4te"),
        "other client",
    );
    // The same client asking for more than was consented to.
    let pairs = set(
        &set(&base_pairs(&id, &challenge), "prompt", "none"),
        "scope",
        "openid email",
    );
    let resp = b
        .http
        .get(authorize_url(&server, &pairs))
        .send()
        .await
        .unwrap();
    assert_redirect_error(
        &server,
        &resp,
        CB,
        "consent_required",
        Some("st4te"),
        "more scopes",
    );
}

async fn unknown_parameters_are_ignored(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, secret) = web_client(&server).await;
    let mut b = Browser::new("buffy@example.com");
    let tokens = code_flow(
        &server,
        &mut b,
        &id,
        &secret,
        "openid",
        &[
            ("x-unknown", "whatever"),
            ("display", "page"),
            ("ui_locales", "de en"),
        ],
    )
    .await;
    assert!(tokens["access_token"].is_string());
    assert_eq!(id_token(&tokens)["nonce"], json!("n0nce"));
}

// ---------------------------------------------------------------------------------------
// 3. Sessions, prompts and response modes
// ---------------------------------------------------------------------------------------

async fn prompt_none_after_login_is_silent(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, secret) = web_client(&server).await;
    let mut b = Browser::new("buffy@example.com");
    let first = code_flow(&server, &mut b, &id, &secret, "openid", &[]).await;
    assert_eq!(b.pages_seen, vec!["login", "consent"]);
    b.pages_seen.clear();
    let second = code_flow(
        &server,
        &mut b,
        &id,
        &secret,
        "openid",
        &[("prompt", "none")],
    )
    .await;
    assert!(b.pages_seen.is_empty(), "{:?}", b.pages_seen);
    assert_eq!(id_token(&first)["sub"], id_token(&second)["sub"]);
    assert_eq!(id_token(&first)["sid"], id_token(&second)["sid"]);
}

async fn prompt_login_forces_a_new_login(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, secret) = web_client(&server).await;
    let mut b = Browser::new("buffy@example.com");
    let first = id_token(&code_flow(&server, &mut b, &id, &secret, "openid", &[]).await);
    server.state.clock.advance(5);
    b.pages_seen.clear();
    let second = id_token(
        &code_flow(
            &server,
            &mut b,
            &id,
            &secret,
            "openid",
            &[("prompt", "login")],
        )
        .await,
    );
    assert_eq!(
        b.pages_seen,
        vec!["login"],
        "login again, consent remembered"
    );
    let (t1, t2) = (
        first["auth_time"].as_i64().unwrap(),
        second["auth_time"].as_i64().unwrap(),
    );
    assert!(t2 >= t1 + 5, "auth_time {t1} then {t2}");
    assert_ne!(first["sid"], second["sid"], "a new session");
}

async fn max_age_decides_whether_to_login_again(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, secret) = web_client(&server).await;
    let mut b = Browser::new("buffy@example.com");
    let first = id_token(&code_flow(&server, &mut b, &id, &secret, "openid", &[]).await);
    let t1 = first["auth_time"].as_i64().expect("auth_time");

    // Not exceeded: no login, auth_time present and unchanged (OIDC Core §3.1.2.1).
    server.state.clock.advance(30);
    b.pages_seen.clear();
    let fresh = id_token(
        &code_flow(
            &server,
            &mut b,
            &id,
            &secret,
            "openid",
            &[("max_age", "3600")],
        )
        .await,
    );
    assert!(b.pages_seen.is_empty(), "{:?}", b.pages_seen);
    assert_eq!(fresh["auth_time"].as_i64(), Some(t1));

    // Exceeded: the user logs in again and auth_time moves.
    server.state.clock.advance(100);
    b.pages_seen.clear();
    let stale = id_token(
        &code_flow(
            &server,
            &mut b,
            &id,
            &secret,
            "openid",
            &[("max_age", "60")],
        )
        .await,
    );
    assert_eq!(b.pages_seen, vec!["login"]);
    let t2 = stale["auth_time"].as_i64().expect("auth_time");
    assert!(t2 >= t1 + 130, "auth_time {t1} then {t2}");

    // Exceeded with prompt=none: login_required.
    server.state.clock.advance(100);
    let (_, challenge) = pkce();
    let pairs = set(
        &set(&base_pairs(&id, &challenge), "prompt", "none"),
        "max_age",
        "60",
    );
    let resp = b
        .http
        .get(authorize_url(&server, &pairs))
        .send()
        .await
        .unwrap();
    assert_redirect_error(&server, &resp, CB, "login_required", Some("st4te"), "stale");

    // max_age=0 is equivalent to prompt=login (OIDC Core §3.1.2.1), even right after a
    // login (same second, clock not moved).
    b.pages_seen.clear();
    code_flow(
        &server,
        &mut b,
        &id,
        &secret,
        "openid",
        &[("prompt", "login")],
    )
    .await;
    assert_eq!(b.pages_seen, vec!["login"]);
    b.pages_seen.clear();
    code_flow(&server, &mut b, &id, &secret, "openid", &[("max_age", "0")]).await;
    assert_eq!(b.pages_seen, vec!["login"], "max_age=0");
}

async fn id_token_hint_of_the_logged_in_user(db: Db) {
    let server = TestServer::start(db).await;
    let buffy = server.user("buffy@example.com").await;
    let willow = server.user("willow@example.com").await;
    let (id, secret) = web_client(&server).await;
    let mut b = Browser::new("buffy@example.com");
    let first = code_flow(&server, &mut b, &id, &secret, "openid", &[]).await;
    let hint = first["id_token"].as_str().unwrap().to_string();
    b.pages_seen.clear();
    let again = code_flow(
        &server,
        &mut b,
        &id,
        &secret,
        "openid",
        &[("prompt", "none"), ("id_token_hint", &hint)],
    )
    .await;
    assert!(b.pages_seen.is_empty());
    assert_eq!(id_token(&again)["sub"], json!(buffy.id));

    // A hint for another user with prompt=none cannot be satisfied silently.
    let mut w = Browser::new("willow@example.com");
    let willow_tokens = code_flow(&server, &mut w, &id, &secret, "openid", &[]).await;
    assert_eq!(id_token(&willow_tokens)["sub"], json!(willow.id));
    let other_hint = willow_tokens["id_token"].as_str().unwrap();
    let (_, challenge) = pkce();
    let pairs = set(
        &set(&base_pairs(&id, &challenge), "prompt", "none"),
        "id_token_hint",
        other_hint,
    );
    let resp = b
        .http
        .get(authorize_url(&server, &pairs))
        .send()
        .await
        .unwrap();
    assert_redirect_error(
        &server,
        &resp,
        CB,
        "login_required",
        Some("st4te"),
        "other sub",
    );
}

async fn consent_is_remembered_per_scope(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, secret) = web_client(&server).await;
    let mut b = Browser::new("buffy@example.com");
    let steps: [(&str, Pairs, &[&str]); 5] = [
        ("openid", vec![], &["login", "consent"]),
        ("openid", vec![], &[]),
        ("openid email", vec![], &["consent"]),
        ("email openid", vec![], &[]),
        ("openid", vec![("prompt", "consent")], &["consent"]),
    ];
    for (scope, extra, pages) in steps {
        b.pages_seen.clear();
        let tokens = code_flow(&server, &mut b, &id, &secret, scope, &extra).await;
        assert_eq!(b.pages_seen, pages, "scope {scope} {extra:?}");
        assert!(tokens["access_token"].is_string());
    }
}

async fn first_party_clients_skip_consent(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, secret) = server
        .client(json!({
            "client_name": "Klard Web",
            "redirect_uris": [CB],
            "first_party": true,
        }))
        .await;
    let secret = secret.unwrap();
    let mut b = Browser::new("buffy@example.com");
    code_flow(&server, &mut b, &id, &secret, "openid profile email", &[]).await;
    assert_eq!(b.pages_seen, vec!["login"]);
    b.pages_seen.clear();
    code_flow(
        &server,
        &mut b,
        &id,
        &secret,
        "openid",
        &[("prompt", "consent")],
    )
    .await;
    assert!(b.pages_seen.is_empty(), "{:?}", b.pages_seen);
}

async fn deny_returns_access_denied(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, _) = web_client(&server).await;
    let (_, challenge) = pkce();
    let mut b = Browser::new("buffy@example.com");
    b.consent = "deny";
    let url = authorize_url(&server, &base_pairs(&id, &challenge));
    let p = b.go(&url, CB).await.params();
    assert_eq!(b.pages_seen, vec!["login", "consent"]);
    assert_redirect_params(&server, &p, "access_denied", Some("st4te"), "deny");
    // Nothing was granted: prompt=none now asks for consent.
    let pairs = set(&base_pairs(&id, &challenge), "prompt", "none");
    let resp = b
        .http
        .get(authorize_url(&server, &pairs))
        .send()
        .await
        .unwrap();
    assert_redirect_error(
        &server,
        &resp,
        CB,
        "consent_required",
        Some("st4te"),
        "after deny",
    );
}

async fn response_mode_form_post(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, secret) = web_client(&server).await;
    let mut b = Browser::new("buffy@example.com");
    code_flow(&server, &mut b, &id, &secret, "openid", &[]).await;
    let (verifier, challenge) = pkce();
    let pairs = set(&base_pairs(&id, &challenge), "response_mode", "form_post");
    let resp = b
        .http
        .get(authorize_url(&server, &pairs))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(location(&resp).is_none());
    let csp = resp
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .expect("CSP")
        .to_string();
    let body = resp.text().await.unwrap();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .unwrap_or_else(|| panic!("CSP without nonce: {csp}"));
    assert!(nonce.len() >= 16, "{csp}");
    assert!(
        body.contains(&format!("<script nonce=\"{nonce}\">")),
        "{body}"
    );
    let form = Form::parse(&body).expect("form");
    assert_eq!(unescape(&form.action), CB);
    assert!(body.contains("method=\"post\""));
    assert_eq!(field(&form, "state"), "st4te");
    assert_eq!(field(&form, "iss"), server.issuer());
    let code = field(&form, "code").to_string();
    exchange(&server, &id, &secret, &code, CB, &verifier).await;

    // Errors use the same mode.
    let fresh = Browser::new("nobody@example.com");
    let pairs = set(&pairs, "prompt", "none");
    let resp = fresh
        .http
        .get(authorize_url(&server, &pairs))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.text().await.unwrap();
    let form = Form::parse(&body).expect("form");
    let p: HashMap<String, String> = form.hidden.iter().cloned().collect();
    assert_redirect_params(
        &server,
        &p,
        "login_required",
        Some("st4te"),
        "form_post error",
    );
}

async fn response_mode_fragment(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, secret) = web_client(&server).await;
    let mut b = Browser::new("buffy@example.com");
    code_flow(&server, &mut b, &id, &secret, "openid", &[]).await;
    let (verifier, challenge) = pkce();
    let pairs = set(&base_pairs(&id, &challenge), "response_mode", "fragment");
    let resp = b
        .http
        .get(authorize_url(&server, &pairs))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let loc = location(&resp).expect("Location");
    assert!(loc.starts_with(&format!("{CB}#")), "{loc}");
    assert!(query_params(&loc).is_empty(), "nothing in the query: {loc}");
    let p = fragment_params(&loc);
    assert_eq!(p.get("state").map(String::as_str), Some("st4te"));
    assert_eq!(p.get("iss"), Some(&server.issuer()));
    exchange(&server, &id, &secret, &p["code"], CB, &verifier).await;
}

async fn authorize_by_post(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, secret) = web_client(&server).await;
    let (verifier, challenge) = pkce();
    let mut b = Browser::new("buffy@example.com");
    let resp = b
        .http
        .post(server.url("/authorize"))
        .form(&base_pairs(&id, &challenge))
        .send()
        .await
        .unwrap();
    let p = b.follow(resp, CB).await.params();
    assert_eq!(b.pages_seen, vec!["login", "consent"]);
    assert_eq!(p.get("state").map(String::as_str), Some("st4te"));
    assert_eq!(p.get("iss"), Some(&server.issuer()));
    let tokens = exchange(&server, &id, &secret, &p["code"], CB, &verifier).await;
    assert_eq!(id_token(&tokens)["nonce"], json!("n0nce"));
    // A POST that is not a form is refused on a page.
    let resp = server
        .http()
        .post(server.url("/authorize"))
        .json(&json!({"client_id": id}))
        .send()
        .await
        .unwrap();
    assert_error_page(resp, "invalid_request", "JSON body").await;
}

async fn native_clients_custom_scheme_and_loopback(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (native, _) = server
        .client(json!({
            "client_name": "Klard iOS",
            "application_type": "native",
            "token_endpoint_auth_method": "none",
            "redirect_uris": ["klard://callback", "http://127.0.0.1:4000/cb"],
        }))
        .await;
    let mut b = Browser::new("buffy@example.com");

    // Private-use scheme (RFC 8252 §7.1).
    let (verifier, challenge) = pkce();
    let pairs = set(
        &base_pairs(&native, &challenge),
        "redirect_uri",
        "klard://callback",
    );
    let landing = b
        .go(&authorize_url(&server, &pairs), "klard://callback")
        .await;
    let cb = landing.callback();
    assert_eq!(cb.scheme(), "klard");
    let p: HashMap<String, String> = cb.query_pairs().into_owned().collect();
    assert_eq!(p.get("iss"), Some(&server.issuer()));
    assert_eq!(p.get("state").map(String::as_str), Some("st4te"));
    let (status, body) =
        exchange_public(&server, &native, &p["code"], "klard://callback", &verifier).await;
    assert_eq!(status, 200, "{body}");

    // Loopback on any port (RFC 8252 §7.3).
    let (verifier, challenge) = pkce();
    let other_port = "http://127.0.0.1:5555/cb";
    let pairs = set(&base_pairs(&native, &challenge), "redirect_uri", other_port);
    let p = b
        .go(&authorize_url(&server, &pairs), other_port)
        .await
        .params();
    assert_eq!(p.get("iss"), Some(&server.issuer()));
    let (status, body) = exchange_public(&server, &native, &p["code"], other_port, &verifier).await;
    assert_eq!(status, 200, "{body}");
    // ...but only the port may vary.
    for bad in [
        "http://127.0.0.1:5555/other",
        "http://127.0.0.1:5555/cb?x=1",
        "http://localhost:5555/cb",
        "https://127.0.0.1:5555/cb",
    ] {
        let pairs = set(&base_pairs(&native, &challenge), "redirect_uri", bad);
        let resp = get(&server, &authorize_url(&server, &pairs)).await;
        assert_error_page(resp, "invalid_request", bad).await;
    }

    // A web client registered with the same loopback URI gets no port leeway.
    let (web, _) = server
        .client(json!({"redirect_uris": ["http://127.0.0.1:4000/cb"]}))
        .await;
    let pairs = set(&base_pairs(&web, &challenge), "redirect_uri", other_port);
    let resp = get(&server, &authorize_url(&server, &pairs)).await;
    assert_error_page(resp, "invalid_request", "web loopback other port").await;
    let pairs = set(
        &base_pairs(&web, &challenge),
        "redirect_uri",
        "http://127.0.0.1:4000/cb",
    );
    let resp = b
        .http
        .get(authorize_url(&server, &pairs))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303, "exact match works");
}

// ---------------------------------------------------------------------------------------
// 4. Login and consent pages
// ---------------------------------------------------------------------------------------

async fn branded_client(server: &TestServer) -> (String, String) {
    let (id, secret) = server
        .client(json!({
            "client_name": "Sunnydale Library",
            "redirect_uris": [CB],
            "logo_uri": "https://library.example.com/logo.png",
            "policy_uri": "https://library.example.com/privacy",
            "tos_uri": "https://library.example.com/terms",
        }))
        .await;
    (id, secret.unwrap())
}

fn assert_page_basics(body: &str, what: &str) {
    assert!(body.contains("<html lang=\"en\">"), "{what}: lang: {body}");
    assert!(
        body.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"),
        "{what}: viewport"
    );
}

fn assert_client_branding(body: &str, what: &str) {
    let body = unescape(body);
    assert!(body.contains("Sunnydale Library"), "{what}: name");
    assert!(
        body.contains("src=\"https://library.example.com/logo.png\""),
        "{what}: logo: {body}"
    );
    assert!(
        body.contains("href=\"https://library.example.com/privacy\""),
        "{what}: policy"
    );
    assert!(
        body.contains("href=\"https://library.example.com/terms\""),
        "{what}: tos"
    );
}

async fn login_and_consent_pages(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, _) = branded_client(&server).await;
    let (_, challenge) = pkce();
    let b = Browser::new("buffy@example.com");
    let url = authorize_url(&server, &base_pairs(&id, &challenge));
    let (login_url, body) = open_login_page(&b, &url).await;
    assert_page_basics(&body, "login");
    assert_client_branding(&body, "login");
    assert!(body.contains("autocomplete=\"username\""));
    assert!(body.contains("autocomplete=\"current-password\""));
    assert!(body.contains("<label for=\"username\">"));
    assert!(body.contains("id=\"username\""));
    assert!(body.contains("<label for=\"password\">"));
    assert!(body.contains("id=\"password\""));
    assert!(body.contains("type=\"password\""));

    let form = Form::parse(&body).expect("login form");
    assert!(form.has_password);
    let action = url::Url::parse(&login_url)
        .unwrap()
        .join(&form.action)
        .unwrap();
    let mut fields = form.hidden.clone();
    fields.push(("username".into(), "buffy@example.com".into()));
    fields.push(("password".into(), PASSWORD.into()));
    let resp = b.http.post(action).form(&fields).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let next = resp.url().join(&location(&resp).unwrap()).unwrap();
    let resp = b.http.get(next).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303, "resume goes on to consent");
    let consent = resp.url().join(&location(&resp).unwrap()).unwrap();
    assert_eq!(consent.path(), "/consent");
    let body = b
        .http
        .get(consent)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_page_basics(&body, "consent");
    assert_client_branding(&body, "consent");
    assert!(body.contains("<button type=\"submit\" name=\"decision\" value=\"allow\""));
    assert!(body.contains("<button type=\"submit\" name=\"decision\" value=\"deny\""));
    assert!(body.contains("buffy@example.com"), "who consents");
}

fn assert_cookie_attributes(cookies: &[String], what: &str) {
    assert!(!cookies.is_empty(), "{what}: no Set-Cookie");
    for c in cookies {
        assert!(c.contains("; HttpOnly"), "{what}: {c}");
        assert!(c.contains("; Secure"), "{what}: {c}");
        assert!(c.contains("; SameSite=Lax"), "{what}: {c}");
        assert!(c.contains("; Path=/"), "{what}: {c}");
    }
}

async fn cookies_are_httponly_secure_lax(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, _) = web_client(&server).await;
    let (_, challenge) = pkce();
    let b = Browser::new("buffy@example.com");
    let resp = b
        .http
        .get(authorize_url(&server, &base_pairs(&id, &challenge)))
        .send()
        .await
        .unwrap();
    let cookies = set_cookies(&resp);
    assert!(cookies.iter().any(|c| c.starts_with("klard_browser=")));
    assert_cookie_attributes(&cookies, "browser cookie");
    let login = resp.url().join(&location(&resp).unwrap()).unwrap();
    let body = b
        .http
        .get(login.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = Form::parse(&body).unwrap();
    let mut fields = form.hidden.clone();
    fields.push(("username".into(), "buffy@example.com".into()));
    fields.push(("password".into(), PASSWORD.into()));
    let resp = b
        .http
        .post(login.join(&form.action).unwrap())
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let cookies = set_cookies(&resp);
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("klard_session=") && c.contains("Max-Age=")),
        "{cookies:?}"
    );
    assert_cookie_attributes(&cookies, "session cookie");
}

async fn wrong_password_and_unknown_email(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, _) = web_client(&server).await;
    let (_, challenge) = pkce();
    let b = Browser::new("buffy@example.com");
    let url = authorize_url(&server, &base_pairs(&id, &challenge));
    let (login_url, body) = open_login_page(&b, &url).await;
    let form = Form::parse(&body).unwrap();
    let action = url::Url::parse(&login_url)
        .unwrap()
        .join(&form.action)
        .unwrap();
    let attempt = |email: &str, password: &str| {
        let mut f = form.hidden.clone();
        f.push(("username".into(), email.into()));
        f.push(("password".into(), password.into()));
        b.http.post(action.clone()).form(&f).send()
    };

    let wrong = attempt("buffy@example.com", "not the password")
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 400);
    assert!(location(&wrong).is_none());
    let cookies = set_cookies(&wrong);
    assert!(
        !cookies.iter().any(|c| c.starts_with("klard_session=")),
        "no session on failure: {cookies:?}"
    );
    let wrong_body = wrong.text().await.unwrap();
    assert!(
        wrong_body.contains("The email or password is incorrect."),
        "{wrong_body}"
    );
    assert!(
        Form::parse(&wrong_body).unwrap().has_password,
        "the login form again"
    );

    let unknown = attempt("nobody@example.com", "not the password")
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 400);
    let unknown_body = unknown.text().await.unwrap();
    // The same answer, apart from the echoed email.
    assert_eq!(
        wrong_body.replace("buffy@example.com", "EMAIL"),
        unknown_body.replace("nobody@example.com", "EMAIL"),
        "an unknown account must be indistinguishable from a wrong password"
    );

    // No session was created.
    let pairs = set(&base_pairs(&id, &challenge), "prompt", "none");
    let resp = b
        .http
        .get(authorize_url(&server, &pairs))
        .send()
        .await
        .unwrap();
    assert_redirect_error(
        &server,
        &resp,
        CB,
        "login_required",
        Some("st4te"),
        "no session",
    );

    // The same interaction can still succeed.
    let ok = attempt("buffy@example.com", PASSWORD).await.unwrap();
    assert_eq!(ok.status().as_u16(), 303);
    let mut b = b;
    let p = b.follow(ok, CB).await.params();
    assert!(p.contains_key("code"));
}

async fn login_csrf_is_checked(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, _) = web_client(&server).await;
    let (_, challenge) = pkce();
    let b = Browser::new("buffy@example.com");
    let url = authorize_url(&server, &base_pairs(&id, &challenge));
    let (login_url, body) = open_login_page(&b, &url).await;
    let form = Form::parse(&body).unwrap();
    let action = url::Url::parse(&login_url)
        .unwrap()
        .join(&form.action)
        .unwrap();
    let interaction = field(&form, "interaction").to_string();
    let real = field(&form, "csrf_token").to_string();
    for (what, csrf) in [
        ("wrong csrf_token", Some("forged")),
        ("missing csrf_token", None),
    ] {
        let mut f = vec![
            ("interaction".to_string(), interaction.clone()),
            ("username".into(), "buffy@example.com".into()),
            ("password".into(), PASSWORD.into()),
        ];
        if let Some(c) = csrf {
            f.push(("csrf_token".into(), c.into()));
        }
        let resp = b.http.post(action.clone()).form(&f).send().await.unwrap();
        let cookies = set_cookies(&resp);
        assert!(
            !cookies.iter().any(|c| c.starts_with("klard_session=")),
            "{what}"
        );
        assert_error_page(resp, "invalid_request", what).await;
    }
    // A token for another interaction does not work either.
    let b2 = Browser::new("buffy@example.com");
    let (_, other) = open_login_page(&b2, &url).await;
    let other_csrf = field(&Form::parse(&other).unwrap(), "csrf_token").to_string();
    assert_ne!(other_csrf, real);
    let f = [
        ("interaction", interaction.as_str()),
        ("csrf_token", other_csrf.as_str()),
        ("username", "buffy@example.com"),
        ("password", PASSWORD),
    ];
    let resp = b.http.post(action).form(&f).send().await.unwrap();
    assert_error_page(resp, "invalid_request", "csrf of another browser").await;
}

async fn interaction_is_bound_to_its_browser(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, _) = web_client(&server).await;
    let (_, challenge) = pkce();
    let a = Browser::new("buffy@example.com");
    let url = authorize_url(&server, &base_pairs(&id, &challenge));
    let (login_url, body) = open_login_page(&a, &url).await;
    let form = Form::parse(&body).unwrap();

    // Another browser (its own cookie jar) opens the same link: refused.
    let b = Browser::new("buffy@example.com");
    let resp = b.http.get(&login_url).send().await.unwrap();
    assert_error_page(resp, "invalid_request", "GET login elsewhere").await;
    // ...and cannot submit the form either, even with the right password.
    let mut f = form.hidden.clone();
    f.push(("username".into(), "buffy@example.com".into()));
    f.push(("password".into(), PASSWORD.into()));
    let action = url::Url::parse(&login_url)
        .unwrap()
        .join(&form.action)
        .unwrap();
    let resp = b.http.post(action.clone()).form(&f).send().await.unwrap();
    assert!(
        !set_cookies(&resp)
            .iter()
            .any(|c| c.starts_with("klard_session="))
    );
    assert_error_page(resp, "invalid_request", "POST login elsewhere").await;
    // Nor resume it.
    let interaction = field(&form, "interaction");
    let resume = server.url(&format!("/authorize/resume?interaction={interaction}"));
    let resp = b.http.get(&resume).send().await.unwrap();
    assert_error_page(resp, "invalid_request", "resume elsewhere").await;
    // An unknown interaction is an error page too.
    let resp = a
        .http
        .get(server.url("/login?interaction=nope"))
        .send()
        .await
        .unwrap();
    assert_error_page(resp, "invalid_request", "unknown interaction").await;

    // The original browser still completes it.
    let resp = a.http.post(action).form(&f).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let mut a = a;
    let p = a.follow(resp, CB).await.params();
    assert!(p.contains_key("code"));
}

async fn claims_parameter_and_scope_claims(db: Db) {
    let server = TestServer::start(db).await;
    server.user("buffy@example.com").await;
    let (id, secret) = web_client(&server).await;
    let mut b = Browser::new("buffy@example.com");

    // OIDC Core §5.5: name requested for userinfo, email for the ID token.
    let claims = r#"{"userinfo":{"name":null},"id_token":{"email":{"essential":true}}}"#;
    let tokens = code_flow(
        &server,
        &mut b,
        &id,
        &secret,
        "openid",
        &[("claims", claims)],
    )
    .await;
    let idt = id_token(&tokens);
    assert_eq!(idt["email"], json!("buffy@example.com"), "{idt}");
    assert!(idt.get("name").is_none(), "{idt}");
    let info = userinfo(&server, &tokens).await;
    assert_eq!(info["name"], json!("Buffy Summers"), "{info}");
    assert!(info.get("email").is_none(), "{info}");
    assert!(info["sub"].is_string());

    // OIDC Core §5.4: with an access token, scope claims come from userinfo only.
    let tokens = code_flow(&server, &mut b, &id, &secret, "openid email profile", &[]).await;
    let idt = id_token(&tokens);
    assert!(idt.get("email").is_none(), "{idt}");
    assert!(idt.get("name").is_none(), "{idt}");
    let info = userinfo(&server, &tokens).await;
    assert_eq!(info["email"], json!("buffy@example.com"));
    assert_eq!(info["email_verified"], json!(true));
    assert_eq!(info["name"], json!("Buffy Summers"));
    assert!(info.get("address").is_none(), "no address scope: {info}");
    assert_eq!(info["sub"], idt["sub"]);
}

async fn landing_pages_are_not_callbacks(db: Db) {
    // The Browser returns error pages as pages: an unknown client never reaches CB.
    let server = TestServer::start(db).await;
    let (_, challenge) = pkce();
    let mut b = Browser::new("buffy@example.com");
    let url = authorize_url(&server, &base_pairs("ghost", &challenge));
    match b.go(&url, CB).await {
        Landing::Page(status, body) => {
            assert_eq!(status, 400);
            assert_page_error(&body, "invalid_request", "ghost client");
        }
        Landing::Callback(u) => panic!("redirected to {u}"),
    }
}

db_tests!(
    discovery_documents,
    jwks_endpoints_publish_public_keys,
    issuer_with_path,
    errors_without_trusted_redirect_show_a_page,
    plain_oauth_may_omit_a_single_redirect_uri,
    errors_redirect_to_the_verified_uri,
    prompt_none_without_session_is_login_required,
    prompt_none_without_consent_is_consent_required,
    unknown_parameters_are_ignored,
    prompt_none_after_login_is_silent,
    prompt_login_forces_a_new_login,
    max_age_decides_whether_to_login_again,
    id_token_hint_of_the_logged_in_user,
    consent_is_remembered_per_scope,
    first_party_clients_skip_consent,
    deny_returns_access_denied,
    response_mode_form_post,
    response_mode_fragment,
    authorize_by_post,
    native_clients_custom_scheme_and_loopback,
    login_and_consent_pages,
    cookies_are_httponly_secure_lax,
    wrong_password_and_unknown_email,
    login_csrf_is_checked,
    interaction_is_bound_to_its_browser,
    claims_parameter_and_scope_claims,
    landing_pages_are_not_callbacks,
);
