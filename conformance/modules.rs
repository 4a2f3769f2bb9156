//! The test modules, under the official OpenID Foundation names, and the
//! shared flow steps (the §0 skeleton of shared/conformance-plans.md).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngExt as _;
use reqwest::{Method, header};
use serde_json::{Map, Value, json};
use sha2::Digest as _;
use url::Url;

use crate::browser::{Browser, NavOpts, NavResult, Outcome, Page, origin, params_of};
use crate::checks::{
    self, HttpResp, IdExpect, Jwt, NonceRule, Report, Skip, check_secret_strength, str_of,
};

// ---------------------------------------------------------------------------
// Configuration shared by all modules

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AuthMethod {
    Basic,
    Post,
}

#[derive(Clone, Debug)]
pub struct Client {
    pub id: String,
    pub secret: String,
    pub method: AuthMethod,
}

pub struct Global {
    pub http: reqwest::Client,
    pub issuer: String,
    pub username: String,
    pub password: String,
    pub redirect_uri: String,
    pub client: Client,
    pub client2: Client,
    pub post_client: Client,
    pub rotate_keys_cmd: Option<String>,
}

pub struct ModuleDef {
    pub name: &'static str,
    /// Has long waits: runs outside the concurrency limit.
    pub long: bool,
    /// Runs alone, after all the others (key rotation).
    pub exclusive: bool,
}

const fn m(name: &'static str) -> ModuleDef {
    ModuleDef {
        name,
        long: false,
        exclusive: false,
    }
}

pub const DISCOVERY: &str = "oidcc-discovery-endpoint-verification";
pub const ROTATE: &str = "oidcc-server-rotate-keys";

/// How long the JWKS may take to publish a rotated-in key.
const ROTATION_WAIT: Duration = Duration::from_secs(20);

pub const MODULES: &[ModuleDef] = &[
    m(DISCOVERY),
    m("oidcc-server"),
    m("oidcc-response-type-missing"),
    m("oidcc-userinfo-get"),
    m("oidcc-userinfo-post-header"),
    m("oidcc-userinfo-post-body"),
    m("oidcc-ensure-request-without-nonce-succeeds-for-code-flow"),
    m("oidcc-scope-profile"),
    m("oidcc-scope-email"),
    m("oidcc-scope-address"),
    m("oidcc-scope-phone"),
    m("oidcc-scope-all"),
    m("oidcc-alternate-happy-flow"),
    m("oidcc-display-page"),
    m("oidcc-display-popup"),
    m("oidcc-prompt-login"),
    m("oidcc-prompt-none-not-logged-in"),
    m("oidcc-prompt-none-logged-in"),
    m("oidcc-max-age-1"),
    m("oidcc-max-age-10000"),
    m("oidcc-ensure-request-with-unknown-parameter-succeeds"),
    m("oidcc-id-token-hint"),
    m("oidcc-login-hint"),
    m("oidcc-ui-locales"),
    m("oidcc-claims-locales"),
    m("oidcc-ensure-request-with-acr-values-succeeds"),
    m("oidcc-codereuse"),
    ModuleDef {
        name: "oidcc-codereuse-30seconds",
        long: true,
        exclusive: false,
    },
    m("oidcc-ensure-registered-redirect-uri"),
    m("oidcc-ensure-post-request-succeeds"),
    m("oidcc-server-client-secret-post"),
    m("oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported"),
    m("oidcc-claims-essential"),
    m("oidcc-ensure-request-object-with-redirect-uri"),
    m("oidcc-refresh-token"),
    m("oidcc-ensure-request-with-valid-pkce-succeeds"),
    ModuleDef {
        name: ROTATE,
        long: false,
        exclusive: true,
    },
];

// ---------------------------------------------------------------------------
// Random values

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

pub fn random_alnum(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char)
        .collect()
}

fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.strip_suffix('/').unwrap_or(issuer)
    )
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ---------------------------------------------------------------------------
// One module instance: its discovery/JWKS snapshot, its browser, its report

pub struct Run {
    g: Arc<Global>,
    pub disc: Map<String, Value>,
    pub issuer: String,
    pub jwks: Value,
    iss_required: bool,
    pub browser: Browser,
    pub rep: Report,
}

/// An authorization request under construction.
#[derive(Clone, Debug)]
pub struct AuthReq {
    pub client: Client,
    pub params: Vec<(String, String)>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub redirect_uri: String,
    pub post: bool,
    pub opts: NavOpts,
    pub code_verifier: Option<String>,
}

impl AuthReq {
    pub fn set(&mut self, k: &str, v: &str) {
        match self.params.iter_mut().find(|(n, _)| n == k) {
            Some(p) => p.1 = v.to_string(),
            None => self.params.push((k.to_string(), v.to_string())),
        }
        match k {
            "state" => self.state = Some(v.to_string()),
            "nonce" => self.nonce = Some(v.to_string()),
            _ => {}
        }
    }

    pub fn remove(&mut self, k: &str) {
        self.params.retain(|(n, _)| n != k);
        match k {
            "state" => self.state = None,
            "nonce" => self.nonce = None,
            _ => {}
        }
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    pub fn scopes(&self) -> Vec<String> {
        self.get("scope")
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// The result of a complete code flow (authorization + token exchange).
#[derive(Debug, Clone)]
pub struct Flow {
    pub code: String,
    pub access_token: String,
    pub id_token: Jwt,
    pub refresh_token: Option<String>,
    pub consents: u32,
}

impl Flow {
    fn sub(&self) -> String {
        self.id_token.str("sub").unwrap_or_default().to_string()
    }
}

#[derive(Clone, Copy)]
pub enum UserinfoCall {
    Get,
    PostHeader,
    PostBody,
}

/// Same scheme, host, port and path as the registered redirect URI.
fn is_redirect_uri(u: &Url, redirect_uri: &str) -> bool {
    match Url::parse(redirect_uri) {
        Ok(r) => {
            u.scheme() == r.scheme()
                && u.host_str() == r.host_str()
                && u.port_or_known_default() == r.port_or_known_default()
                && u.path() == r.path()
        }
        Err(_) => false,
    }
}

fn get<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
    p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn describe_error(q: &[(String, String)]) -> String {
    let mut s = format!("error={}", get(q, "error").unwrap_or(""));
    if let Some(d) = get(q, "error_description") {
        s.push_str(&format!(" ({d})"));
    }
    s
}

/// An error page instead of a redirect: HTML, 4xx, some error text.
fn assert_error_page(p: &Page) -> Result<()> {
    if !(400..500).contains(&p.status) {
        bail!(
            "expected an HTML error page with a 4xx status, got {}",
            p.summary()
        );
    }
    if !p.is_html() {
        bail!("the error page is not text/html: {}", p.summary());
    }
    let text = crate::html::text(&p.body).to_ascii_lowercase();
    let words = [
        "error",
        "invalid",
        "not registered",
        "unregistered",
        "unsupported",
        "missing",
        "mismatch",
        "not allowed",
    ];
    if !words.iter().any(|w| text.contains(w)) {
        bail!("the error page shows no error text: {}", p.summary());
    }
    Ok(())
}

impl Run {
    fn bare(g: Arc<Global>) -> Run {
        let browser = Browser::new(g.http.clone(), Vec::new(), &g.username, &g.password);
        Run {
            g,
            disc: Map::new(),
            issuer: String::new(),
            jwks: Value::Null,
            iss_required: false,
            browser,
            rep: Report::default(),
        }
    }

    fn log(&mut self, s: String) {
        self.browser.trace.push(s);
    }

    /// GET without cookies, returning the whole response.
    async fn fetch(&mut self, url: &str) -> Result<HttpResp> {
        let resp = self
            .g
            .http
            .get(url)
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .with_context(|| format!("GET {url} failed"))?;
        let r = HttpResp::read(resp).await?;
        self.log(format!("GET {url} -> {}", r.status));
        Ok(r)
    }

    async fn fetch_jwks(&mut self) -> Result<Value> {
        let uri = self.endpoint("jwks_uri")?;
        let r = self.fetch(&uri).await?;
        if r.status != 200 {
            bail!("jwks_uri returned HTTP {}: {}", r.status, r.snippet());
        }
        let jwks = r.json().context("jwks_uri")?;
        checks::check_jwks(&jwks, &mut self.rep)?;
        Ok(jwks)
    }

    /// configure(): discovery, CheckServerConfiguration, JWKS and its checks.
    async fn configure(&mut self) -> Result<()> {
        let url = discovery_url(&self.g.issuer);
        let r = self.fetch(&url).await?;
        if r.status != 200 {
            bail!("discovery returned HTTP {}: {}", r.status, r.snippet());
        }
        self.disc = r.json_object().context("discovery")?;
        for k in ["issuer", "authorization_endpoint", "token_endpoint"] {
            let v = str_of(&self.disc, k)
                .ok_or_else(|| anyhow!("discovery has no {k}"))?
                .to_string();
            Url::parse(&v).with_context(|| format!("discovery {k} {v:?} is not a URL"))?;
        }
        self.issuer = str_of(&self.disc, "issuer").unwrap_or_default().to_string();
        self.iss_required = self
            .disc
            .get("authorization_response_iss_parameter_supported")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut origins = Vec::new();
        for k in ["issuer", "authorization_endpoint"] {
            if let Some(u) = str_of(&self.disc, k).and_then(|s| Url::parse(s).ok()) {
                origins.push(origin(&u));
            }
        }
        if let Ok(u) = Url::parse(&self.g.issuer) {
            origins.push(origin(&u));
        }
        let trace = std::mem::take(&mut self.browser.trace);
        self.browser = Browser::new(
            self.g.http.clone(),
            origins,
            &self.g.username,
            &self.g.password,
        );
        self.browser.trace = trace;
        self.jwks = self.fetch_jwks().await?;
        Ok(())
    }

    fn endpoint(&self, k: &str) -> Result<String> {
        str_of(&self.disc, k)
            .map(str::to_string)
            .ok_or_else(|| anyhow!("discovery has no {k}"))
    }

    fn disc_list(&self, k: &str) -> Option<Vec<String>> {
        self.disc.get(k).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
    }

    /// EnsureServerConfigurationSupportsClientSecret{Basic,Post}.
    fn require_auth_method(&self, c: &Client) -> Result<()> {
        let name = match c.method {
            AuthMethod::Basic => "client_secret_basic",
            AuthMethod::Post => "client_secret_post",
        };
        match self.disc_list("token_endpoint_auth_methods_supported") {
            None if c.method == AuthMethod::Basic => Ok(()),
            None => bail!(
                "discovery has no token_endpoint_auth_methods_supported (default is client_secret_basic only), so {name} is not supported"
            ),
            Some(l) if l.iter().any(|x| x == name) => Ok(()),
            Some(l) => bail!("token_endpoint_auth_methods_supported {l:?} does not list {name}"),
        }
    }

    fn req(&self, c: &Client, scope: &str) -> AuthReq {
        let state = random_alnum(10);
        let nonce = random_alnum(10);
        let ru = self.g.redirect_uri.clone();
        AuthReq {
            client: c.clone(),
            params: vec![
                ("response_type".into(), "code".into()),
                ("client_id".into(), c.id.clone()),
                ("scope".into(), scope.into()),
                ("redirect_uri".into(), ru.clone()),
                ("state".into(), state.clone()),
                ("nonce".into(), nonce.clone()),
            ],
            state: Some(state),
            nonce: Some(nonce),
            redirect_uri: ru,
            post: false,
            opts: NavOpts::default(),
            code_verifier: None,
        }
    }

    fn basic_req(&self) -> AuthReq {
        let c = self.g.client.clone();
        self.req(&c, "openid")
    }

    async fn authorize(&mut self, req: &AuthReq) -> Result<NavResult> {
        let ep = self.endpoint("authorization_endpoint")?;
        let mut url = Url::parse(&ep).context("authorization_endpoint")?;
        if req.post {
            self.browser
                .navigate(Method::POST, url, Some(req.params.clone()), req.opts)
                .await
        } else {
            url.query_pairs_mut().extend_pairs(req.params.iter());
            self.browser
                .navigate(Method::GET, url, None, req.opts)
                .await
        }
    }

    /// The success path of the callback: redirect URI, no error, matching
    /// parameters, iss, state, code.
    fn expect_code(&mut self, req: &AuthReq, nav: &NavResult) -> Result<String> {
        let u = match &nav.outcome {
            Outcome::Page(p) => bail!(
                "expected a redirect to the client, but the OP stopped at a page: {}",
                p.summary()
            ),
            Outcome::Redirect(u) => u,
        };
        if !is_redirect_uri(u, &req.redirect_uri) {
            bail!("the OP redirected to {u}, not to the redirect URI");
        }
        let q = params_of(u.query());
        let f = params_of(u.fragment());
        if get(&q, "error").is_some() {
            bail!("authorization failed: {}", describe_error(&q));
        }
        if get(&f, "code").is_some() || get(&f, "error").is_some() {
            bail!("the code flow response came back in the fragment");
        }
        // CheckMatchingCallbackParameters
        if let Ok(r) = Url::parse(&req.redirect_uri) {
            for (k, v) in r.query_pairs() {
                if get(&q, &k) != Some(v.as_ref()) {
                    bail!("the redirect URI's own query parameter {k}={v} did not come back");
                }
            }
        }
        checks::check_iss_param(&q, &self.issuer, self.iss_required)?;
        match (&req.state, get(&q, "state")) {
            (Some(s), Some(got)) if got == s => {}
            (Some(s), Some(got)) => bail!("state {got:?} is not the request's {s:?}"),
            (Some(_), None) => bail!("the authorization response does not echo the state"),
            (None, Some(got)) => self.rep.warn(format!(
                "the response has a state {got:?} though none was sent"
            )),
            (None, None) => {}
        }
        match get(&q, "code") {
            Some(c) if !c.is_empty() => Ok(c.to_string()),
            _ => bail!("the authorization response has no code: {u}"),
        }
    }

    /// POST to the token endpoint with the client's authentication.
    async fn token_req(&mut self, c: &Client, mut form: Vec<(String, String)>) -> Result<HttpResp> {
        let ep = self.endpoint("token_endpoint")?;
        let mut rb = self
            .g
            .http
            .post(&ep)
            .header(header::ACCEPT, "application/json");
        match c.method {
            AuthMethod::Basic => {
                let cred = format!("{}:{}", form_encode(&c.id), form_encode(&c.secret));
                rb = rb.header(
                    header::AUTHORIZATION,
                    format!("Basic {}", STANDARD.encode(cred)),
                );
            }
            AuthMethod::Post => {
                form.push(("client_id".into(), c.id.clone()));
                form.push(("client_secret".into(), c.secret.clone()));
            }
        }
        let grant = get(&form, "grant_type").unwrap_or("").to_string();
        let resp = rb
            .form(&form)
            .send()
            .await
            .with_context(|| format!("POST {ep} failed"))?;
        let r = HttpResp::read(resp).await?;
        // Successful responses are logged by member names only (no token values).
        let shown = match r.json_object() {
            Ok(o) if r.status == 200 => {
                format!("{{{}}}", o.keys().cloned().collect::<Vec<_>>().join(", "))
            }
            _ => r.snippet(),
        };
        self.log(format!(
            "POST {ep} ({grant}, {}) -> {} {shown}",
            c.id, r.status
        ));
        Ok(r)
    }

    async fn exchange(&mut self, req: &AuthReq, code: &str) -> Result<HttpResp> {
        let mut form = vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("code".to_string(), code.to_string()),
            ("redirect_uri".to_string(), req.redirect_uri.clone()),
        ];
        if let Some(v) = &req.code_verifier {
            form.push(("code_verifier".into(), v.clone()));
        }
        let c = req.client.clone();
        self.token_req(&c, form).await
    }

    fn id_token(
        &mut self,
        raw: &str,
        client_id: &str,
        nonce: NonceRule<'_>,
        access_token: Option<&str>,
        code: Option<&str>,
        scopes: &[String],
    ) -> Result<Jwt> {
        let exp = IdExpect {
            issuer: &self.issuer,
            client_id,
            nonce,
            access_token,
            code,
            scopes,
        };
        checks::check_id_token(raw, &self.jwks, &exp, &mut self.rep)
    }

    /// Token exchange + token response checks + id_token checks.
    async fn finish(
        &mut self,
        req: &AuthReq,
        code: String,
        nav: &NavResult,
        warn_expires: bool,
    ) -> Result<Flow> {
        let r = self.exchange(req, &code).await?;
        let token = checks::check_token_success(&r, &mut self.rep, warn_expires)?;
        let access_token = str_of(&token, "access_token")
            .unwrap_or_default()
            .to_string();
        let raw = str_of(&token, "id_token").unwrap_or_default().to_string();
        let nonce = match &req.nonce {
            Some(n) => NonceRule::Exact(n),
            None => NonceRule::Absent,
        };
        let scopes = req.scopes();
        let id_token = self.id_token(
            &raw,
            &req.client.id,
            nonce,
            Some(&access_token),
            Some(&code),
            &scopes,
        )?;
        let refresh_token = str_of(&token, "refresh_token").map(str::to_string);
        Ok(Flow {
            code,
            access_token,
            id_token,
            refresh_token,
            consents: nav.consents,
        })
    }

    async fn code_flow(&mut self, req: &AuthReq) -> Result<Flow> {
        let nav = self.authorize(req).await?;
        let code = self.expect_code(req, &nav)?;
        self.finish(req, code, &nav, false).await
    }

    async fn userinfo_call(&mut self, at: &str, how: UserinfoCall) -> Result<HttpResp> {
        let ep = self.endpoint("userinfo_endpoint")?;
        let rb = match how {
            UserinfoCall::Get => self.g.http.get(&ep).bearer_auth(at),
            UserinfoCall::PostHeader => self
                .g
                .http
                .post(&ep)
                .bearer_auth(at)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(""),
            UserinfoCall::PostBody => self.g.http.post(&ep).form(&[("access_token", at)]),
        };
        let resp = rb
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .with_context(|| format!("userinfo request to {ep} failed"))?;
        let r = HttpResp::read(resp).await?;
        self.log(format!("userinfo {ep} -> {}", r.status));
        Ok(r)
    }

    /// CallProtectedResource (GET) + the §2.C checks.
    async fn userinfo(&mut self, f: &Flow, scopes: &[String]) -> Result<Map<String, Value>> {
        let r = self
            .userinfo_call(&f.access_token, UserinfoCall::Get)
            .await?;
        checks::check_userinfo(&r, &f.sub(), scopes, &mut self.rep)
    }

    /// Full happy flow + userinfo GET.
    async fn happy(&mut self, req: &AuthReq) -> Result<(Flow, Map<String, Value>)> {
        let f = self.code_flow(req).await?;
        let ui = self.userinfo(&f, &req.scopes()).await?;
        Ok((f, ui))
    }

    fn skip_unless_scopes(&self, scopes: &[&str]) -> Result<()> {
        let Some(list) = self.disc_list("scopes_supported") else {
            return Err(Skip("discovery has no scopes_supported".into()).into());
        };
        for s in scopes {
            if !list.iter().any(|x| x == s) {
                return Err(Skip(format!("scopes_supported does not list {s}")).into());
            }
        }
        Ok(())
    }

    /// The error branch of a redirect back to the client.
    fn auth_error(&mut self, req: &AuthReq, u: &Url) -> Result<String> {
        let q = params_of(u.query());
        let f = params_of(u.fragment());
        checks::check_auth_error(
            &q,
            &f,
            req.state.as_deref(),
            &self.issuer,
            self.iss_required,
            &mut self.rep,
        )
    }
}

fn same_auth_time(a: &Flow, b: &Flow) -> Result<()> {
    if let (Some(x), Some(y)) = (a.id_token.num("auth_time"), b.id_token.num("auth_time"))
        && x != y
    {
        bail!("auth_time changed from {x} to {y} although no re-authentication should happen");
    }
    Ok(())
}

fn same_sub(a: &Flow, b: &Flow) -> Result<()> {
    if a.sub() != b.sub() {
        bail!(
            "sub changed between the two id_tokens ({:?} vs {:?})",
            a.sub(),
            b.sub()
        );
    }
    Ok(())
}

fn pkce_pair() -> (String, String) {
    let verifier = random_alnum(64);
    let challenge = checks::b64url(&sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// An unsigned (alg none) request object holding every authorization parameter.
fn unsigned_request_object(issuer: &str, params: &[(String, String)], client_id: &str) -> String {
    let mut claims = Map::new();
    for (k, v) in params {
        claims.insert(k.clone(), Value::String(v.clone()));
    }
    claims.insert("iss".into(), Value::String(client_id.to_string()));
    claims.insert("aud".into(), Value::String(issuer.to_string()));
    let header = checks::b64url(br#"{"alg":"none"}"#);
    let payload = checks::b64url(Value::Object(claims).to_string().as_bytes());
    format!("{header}.{payload}.")
}

// ---------------------------------------------------------------------------
// Dispatch

pub async fn run(g: Arc<Global>, name: &str, slot: &mut Option<Run>) -> Result<()> {
    let rotate_cmd = g.rotate_keys_cmd.clone();
    let r = slot.insert(Run::bare(g));
    match name {
        DISCOVERY => return discovery_endpoint_verification(r).await,
        ROTATE => {
            let Some(cmd) = rotate_cmd else {
                return Err(Skip("no rotate hook".into()).into());
            };
            r.configure().await?;
            return rotate_keys(r, &cmd).await;
        }
        _ => {}
    }
    r.configure().await?;
    match name {
        "oidcc-server" => server(r).await,
        "oidcc-response-type-missing" => response_type_missing(r).await,
        "oidcc-userinfo-get" => userinfo_variant(r, UserinfoCall::Get).await,
        "oidcc-userinfo-post-header" => userinfo_variant(r, UserinfoCall::PostHeader).await,
        "oidcc-userinfo-post-body" => userinfo_variant(r, UserinfoCall::PostBody).await,
        "oidcc-ensure-request-without-nonce-succeeds-for-code-flow" => without_nonce(r).await,
        "oidcc-scope-profile" => scope(r, &["profile"]).await,
        "oidcc-scope-email" => scope(r, &["email"]).await,
        "oidcc-scope-address" => scope(r, &["address"]).await,
        "oidcc-scope-phone" => scope(r, &["phone"]).await,
        "oidcc-scope-all" => scope(r, &["email", "phone", "address", "profile"]).await,
        "oidcc-alternate-happy-flow" => alternate_happy_flow(r).await,
        "oidcc-display-page" => with_param(r, "display", "page").await,
        "oidcc-display-popup" => with_param(r, "display", "popup").await,
        "oidcc-prompt-login" => prompt_login(r).await,
        "oidcc-prompt-none-not-logged-in" => prompt_none_not_logged_in(r).await,
        "oidcc-prompt-none-logged-in" => prompt_none_logged_in(r).await,
        "oidcc-max-age-1" => max_age_1(r).await,
        "oidcc-max-age-10000" => max_age_10000(r).await,
        "oidcc-ensure-request-with-unknown-parameter-succeeds" => {
            with_param(r, "extra", "foobar").await
        }
        "oidcc-id-token-hint" => id_token_hint(r).await,
        "oidcc-login-hint" => {
            let host = Url::parse(&r.issuer)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| "localhost".into());
            with_param(r, "login_hint", &format!("buffy@{host}")).await
        }
        "oidcc-ui-locales" => with_param(r, "ui_locales", "se").await,
        "oidcc-claims-locales" => with_param(r, "claims_locales", "se").await,
        "oidcc-ensure-request-with-acr-values-succeeds" => acr_values(r).await,
        "oidcc-codereuse" => codereuse(r).await,
        "oidcc-codereuse-30seconds" => codereuse_30seconds(r).await,
        "oidcc-ensure-registered-redirect-uri" => registered_redirect_uri(r).await,
        "oidcc-ensure-post-request-succeeds" => post_request(r).await,
        "oidcc-server-client-secret-post" => client_secret_post(r).await,
        "oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported" => {
            unsigned_request_object_module(r).await
        }
        "oidcc-claims-essential" => claims_essential(r).await,
        "oidcc-ensure-request-object-with-redirect-uri" => request_object_redirect_uri(r).await,
        "oidcc-refresh-token" => refresh_token(r).await,
        "oidcc-ensure-request-with-valid-pkce-succeeds" => pkce(r).await,
        other => bail!("no such module {other}"),
    }
}

// ---------------------------------------------------------------------------
// The modules

async fn server(r: &mut Run) -> Result<()> {
    let c = r.g.client.clone();
    r.require_auth_method(&c)?;
    let req = r.basic_req();
    let nav = r.authorize(&req).await?;
    let code = r.expect_code(&req, &nav)?;
    check_secret_strength(&code, "authorization code", true)?;
    let f = r.finish(&req, code, &nav, true).await?;
    if f.id_token.claims.contains_key("name") {
        r.rep
            .warn("id_token contains name although only openid was requested");
    }
    r.userinfo(&f, &req.scopes()).await?;
    Ok(())
}

async fn response_type_missing(r: &mut Run) -> Result<()> {
    let mut req = r.basic_req();
    req.remove("response_type");
    let nav = r.authorize(&req).await?;
    match &nav.outcome {
        Outcome::Redirect(u) if is_redirect_uri(u, &req.redirect_uri) => {
            let e = r.auth_error(&req, u)?;
            if e != "unsupported_response_type" && e != "invalid_request" {
                bail!("error is {e:?}, expected unsupported_response_type or invalid_request");
            }
            Ok(())
        }
        Outcome::Redirect(u) => bail!("the OP redirected to {u}"),
        Outcome::Page(p) => assert_error_page(p),
    }
}

async fn userinfo_variant(r: &mut Run, how: UserinfoCall) -> Result<()> {
    let req = r.basic_req();
    let f = r.code_flow(&req).await?;
    let resp = r.userinfo_call(&f.access_token, how).await?;
    if matches!(how, UserinfoCall::PostBody) && !(200..300).contains(&resp.status) {
        r.rep.warn(format!(
            "userinfo with the access token in the POST body returned HTTP {} (RFC 6750 2.2 is optional)",
            resp.status
        ));
        return Ok(());
    }
    checks::check_userinfo(&resp, &f.sub(), &req.scopes(), &mut r.rep)?;
    Ok(())
}

async fn without_nonce(r: &mut Run) -> Result<()> {
    let mut req = r.basic_req();
    req.remove("nonce");
    let nav = r.authorize(&req).await?;
    r.expect_code(&req, &nav)?;
    Ok(())
}

async fn scope(r: &mut Run, scopes: &[&str]) -> Result<()> {
    r.skip_unless_scopes(scopes)?;
    let c = r.g.client.clone();
    let scope = std::iter::once("openid")
        .chain(scopes.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let req = r.req(&c, &scope);
    let (f, ui) = r.happy(&req).await?;
    if scopes.contains(&"email") {
        if f.id_token.claims.contains_key("email") {
            r.rep.warn(
                "id_token contains email although an access token was issued (the claim belongs in userinfo)",
            );
        }
        if !scopes.contains(&"profile")
            && (f.id_token.claims.contains_key("name") || ui.contains_key("name"))
        {
            r.rep
                .warn("name returned although the profile scope was not requested");
        }
    }
    Ok(())
}

async fn alternate_happy_flow(r: &mut Run) -> Result<()> {
    let c = r.g.client.clone();
    let base = r.req(&c, "email openid");
    let mut req = base.clone();
    // A different parameter order (RFC 6749 3.3: order does not matter).
    let order = [
        "nonce",
        "state",
        "redirect_uri",
        "scope",
        "client_id",
        "response_type",
    ];
    req.params = order
        .iter()
        .filter_map(|k| base.get(k).map(|v| (k.to_string(), v.to_string())))
        .collect();
    r.happy(&req).await?;
    Ok(())
}

async fn with_param(r: &mut Run, k: &str, v: &str) -> Result<()> {
    let mut req = r.basic_req();
    req.set(k, v);
    r.happy(&req).await?;
    Ok(())
}

async fn prompt_login(r: &mut Run) -> Result<()> {
    let req = r.basic_req();
    let f1 = r.code_flow(&req).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut req2 = r.basic_req();
    req2.set("prompt", "login");
    let nav = r.authorize(&req2).await?;
    let code = r.expect_code(&req2, &nav)?;
    if nav.logins == 0 {
        bail!("prompt=login did not show the login page again (no re-authentication)");
    }
    let f2 = r.finish(&req2, code, &nav, false).await?;
    same_sub(&f1, &f2)?;
    if let (Some(a), Some(b)) = (f1.id_token.num("auth_time"), f2.id_token.num("auth_time"))
        && b <= a
    {
        bail!("after prompt=login, auth_time {b} is not later than the first {a}");
    }
    Ok(())
}

async fn prompt_none_not_logged_in(r: &mut Run) -> Result<()> {
    let mut req = r.basic_req();
    req.set("prompt", "none");
    let state = format!("{}-._~", random_alnum(124));
    req.set("state", &state);
    req.opts = NavOpts::no_ui();
    let nav = r.authorize(&req).await?;
    let u = match &nav.outcome {
        Outcome::Redirect(u) if is_redirect_uri(u, &req.redirect_uri) => u.clone(),
        Outcome::Redirect(u) => bail!("the OP redirected to {u}"),
        Outcome::Page(p) => bail!(
            "prompt=none must redirect back with an error, but the OP showed a page: {}",
            p.summary()
        ),
    };
    if get(&params_of(u.query()), "code").is_some() {
        bail!("prompt=none without a session returned a code");
    }
    let e = r.auth_error(&req, &u)?;
    let ok = [
        "login_required",
        "interaction_required",
        "account_selection_required",
        "consent_required",
    ];
    if !ok.contains(&e.as_str()) {
        bail!("error is {e:?}, expected one of {}", ok.join(", "));
    }
    Ok(())
}

async fn prompt_none_logged_in(r: &mut Run) -> Result<()> {
    let req = r.basic_req();
    let f1 = r.code_flow(&req).await?;
    let mut req2 = r.basic_req();
    req2.set("prompt", "none");
    req2.opts = NavOpts::no_ui();
    let f2 = r
        .code_flow(&req2)
        .await
        .context("second authorization (prompt=none)")?;
    same_sub(&f1, &f2)?;
    same_auth_time(&f1, &f2)
}

async fn max_age_1(r: &mut Run) -> Result<()> {
    let req = r.basic_req();
    let f1 = r.code_flow(&req).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut req2 = r.basic_req();
    req2.set("max_age", "1");
    let nav = r.authorize(&req2).await?;
    let code = r.expect_code(&req2, &nav)?;
    if nav.logins == 0 {
        bail!("max_age=1 after 2 s did not show the login page again (no re-authentication)");
    }
    let f2 = r.finish(&req2, code, &nav, false).await?;
    same_sub(&f1, &f2)?;
    let at2 = f2.id_token.num("auth_time").ok_or_else(|| {
        anyhow!("the id_token after max_age=1 has no auth_time (required with max_age)")
    })?;
    if let Some(at1) = f1.id_token.num("auth_time")
        && at2 <= at1
    {
        bail!("after max_age=1, auth_time {at2} is not later than the first {at1}");
    }
    let age = checks::now() - at2;
    if age > 1.0 + checks::SKEW + 30.0 {
        bail!("auth_time {at2} is {age:.0}s old although max_age=1 forced a new login");
    }
    Ok(())
}

async fn max_age_10000(r: &mut Run) -> Result<()> {
    let mut req = r.basic_req();
    req.set("max_age", "15000");
    let f1 = r.code_flow(&req).await?;
    let mut req2 = r.basic_req();
    req2.set("max_age", "10000");
    req2.opts.allow_login = false;
    let f2 = r
        .code_flow(&req2)
        .await
        .context("second authorization (max_age=10000)")?;
    same_sub(&f1, &f2)?;
    let a1 = f1
        .id_token
        .num("auth_time")
        .ok_or_else(|| anyhow!("first id_token (max_age=15000) has no auth_time"))?;
    let a2 = f2
        .id_token
        .num("auth_time")
        .ok_or_else(|| anyhow!("second id_token (max_age=10000) has no auth_time"))?;
    if a1 != a2 {
        bail!("auth_time changed from {a1} to {a2} without a new login");
    }
    Ok(())
}

async fn id_token_hint(r: &mut Run) -> Result<()> {
    let req = r.basic_req();
    let f1 = r.code_flow(&req).await?;
    let mut req2 = r.basic_req();
    req2.set("prompt", "none");
    req2.set("id_token_hint", &f1.id_token.raw);
    req2.opts = NavOpts::no_ui();
    let f2 = r
        .code_flow(&req2)
        .await
        .context("second authorization (prompt=none + id_token_hint)")?;
    same_sub(&f1, &f2)?;
    same_auth_time(&f1, &f2)
}

async fn acr_values(r: &mut Run) -> Result<()> {
    let values = r
        .disc_list("acr_values_supported")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| vec!["1".into(), "2".into()]);
    let mut req = r.basic_req();
    req.set("acr_values", &values.join(" "));
    let (f, _) = r.happy(&req).await?;
    match f.id_token.str("acr") {
        Some(a) if values.iter().any(|v| v == a) => {}
        Some(a) => r
            .rep
            .warn(format!("acr {a:?} is none of the requested {values:?}")),
        None => r
            .rep
            .warn("id_token has no acr although acr_values was sent"),
    }
    Ok(())
}

async fn codereuse(r: &mut Run) -> Result<()> {
    let req = r.basic_req();
    let f = r.code_flow(&req).await?;
    let second = r.exchange(&req, &f.code).await?;
    if second.status == 200 {
        r.rep
            .warn("the OP accepted the same authorization code twice");
        return Ok(());
    }
    checks::check_token_error(&second, "invalid_grant", &mut r.rep).context("second exchange")
}

async fn codereuse_30seconds(r: &mut Run) -> Result<()> {
    let req = r.basic_req();
    let (f, _) = r.happy(&req).await?;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let second = r.exchange(&req, &f.code).await?;
    if second.status == 200 {
        bail!("second exchange of the code after 30 s returned 200");
    }
    checks::check_token_error(&second, "invalid_grant", &mut r.rep).context("second exchange")?;
    let ui = r.userinfo_call(&f.access_token, UserinfoCall::Get).await?;
    if !(400..500).contains(&ui.status) {
        r.rep.warn(format!(
            "the access token from the reused code still works at userinfo (HTTP {}); it should be revoked",
            ui.status
        ));
    } else if ui.status == 401 && ui.header(header::WWW_AUTHENTICATE).is_none() {
        r.rep
            .warn("userinfo 401 without WWW-Authenticate (RFC 6750 3)");
    }
    Ok(())
}

async fn registered_redirect_uri(r: &mut Run) -> Result<()> {
    let mut req = r.basic_req();
    let bad = format!("{}/{}", r.g.redirect_uri, random_alnum(10));
    req.set("redirect_uri", &bad);
    let nav = r.authorize(&req).await?;
    match &nav.outcome {
        Outcome::Redirect(u) => bail!("the OP redirected to {u} for an unregistered redirect_uri"),
        Outcome::Page(p) => assert_error_page(p),
    }
}

async fn post_request(r: &mut Run) -> Result<()> {
    let mut req = r.basic_req();
    req.post = true;
    r.happy(&req).await?;
    Ok(())
}

async fn client_secret_post(r: &mut Run) -> Result<()> {
    let c = r.g.post_client.clone();
    r.require_auth_method(&c)?;
    let req = r.req(&c, "openid");
    let (f, _) = r.happy(&req).await?;
    if f.id_token.claims.contains_key("name") {
        r.rep
            .warn("id_token contains name although only openid was requested");
    }
    Ok(())
}

fn skip_unless_unsigned_request_objects(r: &Run) -> Result<()> {
    if let Some(algs) = r.disc_list("request_object_signing_alg_values_supported")
        && !algs.iter().any(|a| a == "none")
    {
        return Err(
            Skip("request_object_signing_alg_values_supported does not list none".into()).into(),
        );
    }
    Ok(())
}

async fn unsigned_request_object_module(r: &mut Run) -> Result<()> {
    skip_unless_unsigned_request_objects(r)?;
    let full = r.basic_req();
    let ro = unsigned_request_object(&r.issuer, &full.params, &full.client.id);
    let mut req = full.clone();
    req.params = ["response_type", "client_id", "scope", "redirect_uri"]
        .iter()
        .filter_map(|k| full.get(k).map(|v| (k.to_string(), v.to_string())))
        .collect();
    req.params.push(("request".into(), ro));
    let nav = r.authorize(&req).await?;
    let u = match &nav.outcome {
        Outcome::Redirect(u) if is_redirect_uri(u, &req.redirect_uri) => u.clone(),
        Outcome::Redirect(u) => bail!("the OP redirected to {u}"),
        Outcome::Page(p) => bail!(
            "the OP neither processed the request object nor returned request_not_supported: {}",
            p.summary()
        ),
    };
    let q = params_of(u.query());
    if get(&q, "error").is_some() {
        let e = r.auth_error(&req, &u)?;
        if e == "request_not_supported" {
            r.rep
                .note("request object rejected as unsupported (request_not_supported)");
            return Ok(());
        }
        bail!("authorization failed: {}", describe_error(&q));
    }
    // Processed: the state and nonce lived only in the request object.
    let code = r.expect_code(&req, &nav)?;
    r.finish(&req, code, &nav, false).await?;
    Ok(())
}

async fn claims_essential(r: &mut Run) -> Result<()> {
    let mut req = r.basic_req();
    req.set(
        "claims",
        &json!({"userinfo": {"name": {"essential": true}}}).to_string(),
    );
    let (f, ui) = r.happy(&req).await?;
    if !ui.contains_key("name") {
        r.rep.warn("userinfo lacks the essential claim name");
    }
    if f.id_token.claims.contains_key("name") {
        r.rep
            .warn("id_token contains name although it was requested for userinfo only");
    }
    Ok(())
}

async fn request_object_redirect_uri(r: &mut Run) -> Result<()> {
    let full = r.basic_req();
    let ro = unsigned_request_object(&r.issuer, &full.params, &full.client.id);
    let mut req = full.clone();
    let bad = format!("{}/_invalid", full.redirect_uri);
    req.params = ["response_type", "client_id", "scope"]
        .iter()
        .filter_map(|k| full.get(k).map(|v| (k.to_string(), v.to_string())))
        .collect();
    req.params.push(("redirect_uri".into(), bad));
    req.params.push(("request".into(), ro));
    let nav = r.authorize(&req).await?;
    match &nav.outcome {
        Outcome::Page(p) => {
            assert_error_page(p)?;
            r.rep
                .note("the OP showed an error page for the invalid outer redirect_uri");
            Ok(())
        }
        Outcome::Redirect(u) if is_redirect_uri(u, &req.redirect_uri) => {
            let q = params_of(u.query());
            if get(&q, "error").is_some() {
                bail!(
                    "the OP redirected an error ({}) to the registered redirect URI although the request's redirect_uri was invalid",
                    describe_error(&q)
                );
            }
            let code = r.expect_code(&req, &nav)?;
            r.finish(&req, code, &nav, false).await?;
            Ok(())
        }
        Outcome::Redirect(u) => bail!("the OP redirected to {u}"),
    }
}

/// RefreshTokenRequestSteps: returns the (possibly rotated) refresh token.
async fn refresh_and_check(
    r: &mut Run,
    c: &Client,
    orig: &Flow,
    rt: &str,
    scope: Option<&str>,
) -> Result<String> {
    let mut form = vec![
        ("grant_type".to_string(), "refresh_token".to_string()),
        ("refresh_token".to_string(), rt.to_string()),
    ];
    if let Some(s) = scope {
        form.push(("scope".into(), s.into()));
    }
    let resp = r.token_req(c, form).await?;
    if resp.status != 200 {
        bail!("refresh returned HTTP {}: {}", resp.status, resp.snippet());
    }
    if resp.mime() != "application/json" {
        bail!("refresh response content-type is not application/json");
    }
    if !resp
        .header(header::CACHE_CONTROL)
        .unwrap_or_default()
        .to_ascii_lowercase()
        .contains("no-store")
    {
        bail!("refresh response lacks Cache-Control: no-store");
    }
    let obj = resp.json_object().context("refresh response")?;
    let at = match str_of(&obj, "access_token") {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => bail!("refresh response has no access_token"),
    };
    match str_of(&obj, "token_type") {
        Some(t) if t.eq_ignore_ascii_case("bearer") => {}
        other => bail!("refresh token_type is {other:?}, expected Bearer"),
    }
    check_secret_strength(&at, "refreshed access token", false)?;
    checks::check_printable(&at, "refreshed access token")?;
    checks::check_expires_in(&obj, &mut r.rep, true)?;
    if let Some(raw) = str_of(&obj, "id_token") {
        let raw = raw.to_string();
        let new = r.id_token(&raw, &c.id, NonceRule::Any, Some(&at), None, &[])?;
        compare_refreshed_id_token(&orig.id_token, &new)?;
    }
    match str_of(&obj, "refresh_token") {
        Some(n) => {
            check_secret_strength(n, "new refresh token", true)?;
            checks::check_printable(n, "new refresh token")?;
            Ok(n.to_string())
        }
        None => Ok(rt.to_string()),
    }
}

/// CompareIdTokenClaims (OIDC Core 12.2).
fn compare_refreshed_id_token(old: &Jwt, new: &Jwt) -> Result<()> {
    for k in ["iss", "sub"] {
        if old.claims.get(k) != new.claims.get(k) {
            bail!("refreshed id_token {k} differs from the original");
        }
    }
    if old.num("iat") == new.num("iat") {
        bail!("refreshed id_token has the same iat as the original");
    }
    let aud_set = |j: &Jwt| -> BTreeSet<String> {
        match j.claims.get("aud") {
            Some(Value::String(s)) => [s.clone()].into(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => BTreeSet::new(),
        }
    };
    if aud_set(old) != aud_set(new) {
        bail!("refreshed id_token aud differs from the original");
    }
    if let Some(at) = new.num("auth_time")
        && old.num("auth_time") != Some(at)
    {
        bail!("refreshed id_token auth_time differs from the original");
    }
    match (old.claims.get("azp"), new.claims.get("azp")) {
        (None, Some(_)) => bail!("refreshed id_token has an azp the original lacked"),
        (Some(a), Some(b)) if a != b => bail!("refreshed id_token azp differs"),
        _ => {}
    }
    Ok(())
}

async fn refresh_token(r: &mut Run) -> Result<()> {
    let offline = r
        .disc_list("scopes_supported")
        .is_some_and(|l| l.iter().any(|s| s == "offline_access"));
    let advertises_refresh = r
        .disc_list("grant_types_supported")
        .is_some_and(|l| l.iter().any(|s| s == "refresh_token"));
    let scope = if offline {
        "openid offline_access"
    } else {
        "openid"
    };
    let c1 = r.g.client.clone();
    let c2 = r.g.client2.clone();

    let mut req1 = r.req(&c1, scope);
    req1.set("prompt", "consent");
    let f1 = r.code_flow(&req1).await.context("client 1")?;
    if f1.consents == 0 {
        bail!("prompt=consent (client 1) did not show the consent page");
    }
    let Some(rt1) = f1.refresh_token.clone() else {
        if offline || advertises_refresh {
            bail!(
                "no refresh_token issued for scope {scope:?} although discovery advertises refresh tokens"
            );
        }
        return Err(Skip("no refresh_token issued".into()).into());
    };
    checks::check_printable(&rt1, "refresh token")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    refresh_and_check(r, &c1, &f1, &rt1, Some(scope))
        .await
        .context("client 1 refresh")?;

    let mut req2 = r.req(&c2, scope);
    req2.set("prompt", "consent");
    req2.set("nonce", &random_alnum(43));
    let f2 = r.code_flow(&req2).await.context("client 2")?;
    if f2.consents == 0 {
        bail!("prompt=consent (client 2) did not show the consent page");
    }
    let rt2 = f2
        .refresh_token
        .clone()
        .ok_or_else(|| anyhow!("no refresh_token issued to client 2"))?;
    checks::check_printable(&rt2, "refresh token")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rt2 = refresh_and_check(r, &c2, &f2, &rt2, None)
        .await
        .context("client 2 refresh")?;

    // Client 2's refresh token presented by client 1.
    let form = vec![
        ("grant_type".to_string(), "refresh_token".to_string()),
        ("refresh_token".to_string(), rt2),
    ];
    let resp = r.token_req(&c1, form).await?;
    checks::check_token_error(&resp, "invalid_grant", &mut r.rep)
        .context("client 2's refresh token used by client 1")
}

async fn pkce(r: &mut Run) -> Result<()> {
    let mut req = r.basic_req();
    let (verifier, challenge) = pkce_pair();
    req.set("code_challenge", &challenge);
    req.set("code_challenge_method", "S256");
    req.code_verifier = Some(verifier);
    r.happy(&req).await?;
    Ok(())
}

async fn discovery_endpoint_verification(r: &mut Run) -> Result<()> {
    let url = discovery_url(&r.g.issuer);
    let resp = r.fetch(&url).await?;
    if resp.status != 200 {
        bail!(
            "discovery returned HTTP {}: {}",
            resp.status,
            resp.snippet()
        );
    }
    if resp.mime() != "application/json" {
        bail!(
            "discovery content-type is {:?}, expected application/json",
            resp.header(header::CONTENT_TYPE).unwrap_or_default()
        );
    }
    r.disc = resp.json_object().context("discovery")?;
    let mut fails = Vec::new();
    if let Err(e) = checks::check_discovery(&url, &r.disc, &mut r.rep) {
        fails.push(format!("{e:#}"));
    }
    if str_of(&r.disc, "jwks_uri").is_some()
        && let Err(e) = r.fetch_jwks().await
    {
        fails.push(format!("{e:#}"));
    }
    if fails.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(fails.join("; ")))
    }
}

async fn rotate_keys(r: &mut Run, cmd: &str) -> Result<()> {
    let before = checks::signing_keys(&r.jwks);
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .output(),
    )
    .await
    .map_err(|_| anyhow!("the rotate hook did not finish within 60 s"))?
    .context("running the rotate hook")?;
    r.log(format!("rotate hook exit {}", out.status));
    if !out.status.success() {
        bail!(
            "the rotate hook failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let material =
        |v: &[(String, String)]| -> BTreeSet<String> { v.iter().map(|(_, m)| m.clone()).collect() };
    let mb = material(&before);
    // In the suite a human presses Start some time after rotating; an OP that
    // reloads its key ring periodically gets the same grace here.
    let started = std::time::Instant::now();
    let (jwks, ma) = loop {
        let jwks = r.fetch_jwks().await.context("JWKS after rotation")?;
        let ma = material(&checks::signing_keys(&jwks));
        if ma.difference(&mb).next().is_some() {
            break (jwks, ma);
        }
        if started.elapsed() >= ROTATION_WAIT {
            bail!(
                "the JWKS has no signing key that was not there before, {} s after the rotate hook",
                ROTATION_WAIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let waited = started.elapsed().as_secs();
    if waited > 0 {
        r.rep.note(format!(
            "the new key appeared in the JWKS about {waited} s after the rotate hook"
        ));
    }
    let gone: Vec<&str> = before
        .iter()
        .filter(|(_, m)| !ma.contains(m))
        .map(|(k, _)| k.as_str())
        .collect();
    if !gone.is_empty() {
        r.rep.warn(format!(
            "the old signing key(s) {} are no longer published (tokens signed before rotation cannot be verified)",
            gone.join(", ")
        ));
    }
    r.jwks = jwks;
    // A happy flow after the rotation: its id_token must verify against the new JWKS.
    let req = r.basic_req();
    r.happy(&req).await.context("happy flow after rotation")?;
    Ok(())
}
