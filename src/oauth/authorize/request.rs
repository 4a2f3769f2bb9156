//! The authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1), checked step by
//! step. Each check is a function named after its rule and returns the spec's error.
//! Checks before `check_redirect_uri` fail to an error page; the rest fail by redirect.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::State;
use crate::error::OAuthError;
use crate::http::params::Params;
use crate::oauth::{pkce, redirect_uri, scopes};
use crate::oidc::{claims, id_token};
use crate::store::clients::{self, Client};

/// A validated authorization request, stored in the interaction while paused.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthzRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_uri_sent: bool,
    pub response_mode: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// `sub` of a verified id_token_hint.
    pub hint_sub: Option<String>,
    pub acr_values: Vec<String>,
    pub ui_locales: Option<String>,
    pub claims: Option<Value>,
    pub resource: Vec<String>,
}

impl AuthzRequest {
    pub fn has_prompt(&self, p: &str) -> bool {
        self.prompt.iter().any(|x| x == p)
    }
    pub fn is_openid(&self) -> bool {
        self.scopes.iter().any(|s| s == "openid")
    }
}

/// Where an error must go.
pub enum Failure {
    /// Client or redirect URI not trustworthy: show an error page, do not redirect.
    Page(OAuthError),
    /// Redirect the error to the verified redirect URI (with state and iss).
    Redirect {
        err: OAuthError,
        redirect_uri: String,
        response_mode: String,
        state: Option<String>,
    },
}

/// RFC 6749 §4.1.2.1: an unknown client_id is never redirected to.
async fn check_client(state: &State, p: &Params) -> Result<Client, Failure> {
    let id = p.get("client_id").ok_or_else(|| {
        Failure::Page(OAuthError::invalid_request(
            "the client_id parameter is missing",
        ))
    })?;
    match clients::get(&state.db, id).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(Failure::Page(OAuthError::invalid_request(format!(
            "unknown client `{id}`"
        )))),
        Err(e) => {
            tracing::error!(error = %e, "client lookup failed");
            Err(Failure::Page(OAuthError::server_error(
                "the client could not be loaded",
            )))
        }
    }
}

/// RFC 6749 §3.1.2.3 and OIDC Core §3.1.2.1: redirect_uri must exactly match a registered
/// one. OIDC requests must send it; plain OAuth may omit it when exactly one is registered.
fn check_redirect_uri(client: &Client, p: &Params) -> Result<(String, bool), Failure> {
    let scope_has_openid = p
        .get("scope")
        .is_some_and(|s| s.split(' ').any(|x| x == "openid"));
    match p.get("redirect_uri") {
        Some(uri) if redirect_uri::is_registered(&client.metadata, uri) => {
            Ok((uri.to_string(), true))
        }
        Some(_) => Err(Failure::Page(OAuthError::invalid_request(
            "redirect_uri is not registered for this client",
        ))),
        None if !scope_has_openid && client.metadata.redirect_uris.len() == 1 => {
            Ok((client.metadata.redirect_uris[0].clone(), false))
        }
        None => Err(Failure::Page(OAuthError::invalid_request(
            "the redirect_uri parameter is required",
        ))),
    }
}

/// OAuth 2.0 Multiple Response Types §2.1: query, fragment, or form_post (OAuth 2.0 Form
/// Post Response Mode §2). The default for `code` is query.
fn check_response_mode(p: &Params) -> Result<String, OAuthError> {
    match p.get("response_mode") {
        None => Ok("query".into()),
        Some(m @ ("query" | "fragment" | "form_post")) => Ok(m.into()),
        Some(m) => Err(OAuthError::invalid_request(format!(
            "response_mode `{m}` is not supported"
        ))),
    }
}

/// OIDC Core §6.1-§6.2: request objects are not supported; say so precisely.
fn check_request_object(p: &Params) -> Result<(), OAuthError> {
    if p.has("request") {
        return Err(OAuthError::request_not_supported(
            "request objects are not supported",
        ));
    }
    if p.has("request_uri") {
        return Err(OAuthError::request_uri_not_supported(
            "request_uri is not supported",
        ));
    }
    Ok(())
}

/// RFC 6749 §3.1.1 / §4.1.2.1: response_type is required; only `code` is supported.
fn check_response_type(client: &Client, p: &Params) -> Result<(), OAuthError> {
    match p.get("response_type") {
        None => Err(OAuthError::invalid_request(
            "the response_type parameter is required",
        )),
        Some("code") if client.metadata.response_types.iter().any(|r| r == "code") => Ok(()),
        Some("code") => Err(OAuthError::unauthorized_client(
            "this client may not use response_type=code",
        )),
        Some(other) => Err(OAuthError::unsupported_response_type(format!(
            "response_type `{other}` is not supported; use `code`"
        ))),
    }
}

/// RFC 6749 §3.3 with the client's allowed scopes.
fn check_scope(client: &Client, p: &Params) -> Result<Vec<String>, OAuthError> {
    let requested = scopes::parse(p.get("scope").unwrap_or(""))?;
    scopes::check_allowed(&requested, &client.metadata)?;
    Ok(requested)
}

/// RFC 7636 §4.3; public clients must use PKCE (RFC 9700 §2.1.1).
fn check_pkce(
    state: &State,
    client: &Client,
    p: &Params,
) -> Result<(Option<String>, Option<String>), OAuthError> {
    match p.get("code_challenge") {
        Some(c) => {
            let m = pkce::check_challenge(
                c,
                p.get("code_challenge_method"),
                state.config.pkce.allow_plain,
            )?;
            Ok((Some(c.to_string()), Some(m)))
        }
        None if client.metadata.is_public() || state.config.pkce.require_for_confidential => Err(
            OAuthError::invalid_request("code_challenge is required (PKCE with S256, RFC 7636)"),
        ),
        None if p.has("code_challenge_method") => Err(OAuthError::invalid_request(
            "code_challenge_method sent without code_challenge",
        )),
        None => Ok((None, None)),
    }
}

/// OIDC Core §3.1.2.1: prompt is a space-separated list; `none` stands alone.
fn check_prompt(p: &Params) -> Result<Vec<String>, OAuthError> {
    let prompt: Vec<String> = p
        .get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if let Some(bad) = prompt
        .iter()
        .find(|v| !matches!(v.as_str(), "none" | "login" | "consent" | "select_account"))
    {
        return Err(OAuthError::invalid_request(format!(
            "prompt value `{bad}` is not supported"
        )));
    }
    if prompt.len() > 1 && prompt.iter().any(|v| v == "none") {
        return Err(OAuthError::invalid_request(
            "prompt=none must not be combined with other values",
        ));
    }
    Ok(prompt)
}

/// OIDC Core §3.1.2.1: max_age is a non-negative integer of seconds.
fn check_max_age(p: &Params) -> Result<Option<i64>, OAuthError> {
    match p.get("max_age") {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| OAuthError::invalid_request("max_age must be a non-negative integer")),
    }
}

/// OIDC Core §5.5: the claims parameter is a JSON object.
fn check_claims(p: &Params) -> Result<Option<Value>, OAuthError> {
    match p.get("claims") {
        None => Ok(None),
        Some(s) => {
            let v: Value = serde_json::from_str(s).map_err(|_| {
                OAuthError::invalid_request("the claims parameter is not valid JSON")
            })?;
            claims::check_claims_param(&v).map_err(OAuthError::invalid_request)?;
            Ok(Some(v))
        }
    }
}

/// RFC 8707 §2: each resource is an absolute URI without a fragment, and must be one we
/// know (otherwise `invalid_target`, reported as invalid_request here).
pub fn check_resource(state: &State, values: &[&str]) -> Result<Vec<String>, OAuthError> {
    let mut out = Vec::new();
    for r in values {
        let ok = url::Url::parse(r).is_ok_and(|u| u.fragment().is_none());
        if !ok {
            return Err(OAuthError::invalid_request(format!(
                "resource `{r}` must be an absolute URI without a fragment"
            )));
        }
        if !state.config.resources.iter().any(|x| x.identifier == *r) {
            let mut e =
                OAuthError::invalid_request(format!("resource `{r}` is not known to this server"));
            e.error = "invalid_target";
            return Err(e);
        }
        if !out.iter().any(|o| o == r) {
            out.push(r.to_string());
        }
    }
    Ok(out)
}

/// OIDC Core §3.1.2.2: an id_token_hint must be an ID token we issued (expired is fine).
async fn check_id_token_hint(state: &State, p: &Params) -> Result<Option<String>, OAuthError> {
    match p.get("id_token_hint") {
        None => Ok(None),
        Some(t) => match id_token::verify_hint(state, t).await {
            Some(c) => Ok(c.get("sub").and_then(Value::as_str).map(String::from)),
            None => Err(OAuthError::invalid_request(
                "id_token_hint is not a valid ID token of this server",
            )),
        },
    }
}

/// Runs every check in the order the specs imply.
pub async fn validate(state: &State, p: &Params) -> Result<(Client, AuthzRequest), Failure> {
    // RFC 6749 §4.1.2.1: a repeated client_id or redirect_uri leaves no trustworthy
    // redirection target (error page); any other repeated parameter is invalid_request
    // sent to the verified redirect URI (below).
    if let Some(k) = ["client_id", "redirect_uri"]
        .into_iter()
        .find(|k| p.is_duplicated(k))
    {
        return Err(Failure::Page(OAuthError::invalid_request(format!(
            "the `{k}` parameter is included more than once"
        ))));
    }
    let client = check_client(state, p).await?;
    let (redirect_uri, redirect_uri_sent) = check_redirect_uri(&client, p)?;
    let st = p.get("state").map(String::from);
    let redirect = |err: OAuthError, mode: &str| Failure::Redirect {
        err,
        redirect_uri: redirect_uri.clone(),
        response_mode: mode.to_string(),
        state: st.clone(),
    };
    let response_mode = check_response_mode(p).map_err(|e| redirect(e, "query"))?;
    let r = |e: OAuthError| redirect(e, &response_mode);
    p.reject_duplicates().map_err(r)?;
    check_request_object(p).map_err(r)?;
    check_response_type(&client, p).map_err(r)?;
    let scopes = check_scope(&client, p).map_err(r)?;
    let (code_challenge, code_challenge_method) = check_pkce(state, &client, p).map_err(r)?;
    let prompt = check_prompt(p).map_err(r)?;
    let max_age = check_max_age(p).map_err(r)?;
    let claims = check_claims(p).map_err(r)?;
    let resource = check_resource(state, &p.all("resource")).map_err(r)?;
    let hint_sub = check_id_token_hint(state, p).await.map_err(r)?;
    let req = AuthzRequest {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        redirect_uri_sent,
        response_mode: response_mode.clone(),
        scopes,
        state: st.clone(),
        nonce: p.get("nonce").map(String::from),
        code_challenge,
        code_challenge_method,
        prompt,
        max_age,
        login_hint: p.get("login_hint").map(String::from),
        hint_sub,
        acr_values: p
            .get("acr_values")
            .map(|a| {
                a.split(' ')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
        ui_locales: p.get("ui_locales").map(String::from),
        claims,
        resource,
    };
    Ok((client, req))
}
