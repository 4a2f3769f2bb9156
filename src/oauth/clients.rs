//! Client metadata validation (RFC 7591 §2, OIDC Registration §2) shared by dynamic
//! registration, the CLI and config-declared clients, so every client obeys one set of rules.

use serde_json::{Map, Value};
use url::Url;

use crate::app::State;
use crate::config::ClientConfig;
use crate::crypto;
use crate::error::OAuthError;
use crate::jose::keys::SIGNING_ALGS;
use crate::oauth::redirect_uri::check_registrable;
use crate::oauth::scopes;
use crate::store::clients::{self as store, Client, ClientMetadata};

pub const GRANT_TYPES: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];
pub const AUTH_METHODS: [&str; 4] = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];
pub const ASSERTION_ALGS: [&str; 4] = ["RS256", "PS256", "ES256", "EdDSA"];

fn meta_err(msg: impl Into<String>) -> OAuthError {
    OAuthError::invalid_client_metadata(msg)
}

fn opt_string(m: &Map<String, Value>, k: &str) -> Result<Option<String>, OAuthError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(meta_err(format!("`{k}` must be a string"))),
    }
}

fn string_list(m: &Map<String, Value>, k: &str) -> Result<Option<Vec<String>>, OAuthError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(String::from)
                    .ok_or_else(|| meta_err(format!("`{k}` must be an array of strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(meta_err(format!("`{k}` must be an array of strings"))),
    }
}

/// A web URL shown to users (logo, policy, terms, homepage): absolute http(s).
fn check_web_uri(k: &str, v: &str) -> Result<(), OAuthError> {
    match Url::parse(v) {
        Ok(u) if u.scheme() == "https" => Ok(()),
        Ok(u) if u.scheme() == "http" && crate::config::is_loopback_url(&u) => Ok(()),
        _ => Err(meta_err(format!("`{k}` must be an absolute https URL"))),
    }
}

/// Validates a registration request document and fills in the defaults of RFC 7591 §2.
/// `trusted` (config and CLI) may set `first_party` and `access_token_audience`.
pub fn validate_metadata(doc: &Value, trusted: bool) -> Result<ClientMetadata, OAuthError> {
    let m = doc
        .as_object()
        .ok_or_else(|| meta_err("the registration request must be a JSON object"))?;

    let application_type = opt_string(m, "application_type")?.unwrap_or_else(|| "web".into());
    if application_type != "web" && application_type != "native" {
        return Err(meta_err("`application_type` must be `web` or `native`"));
    }
    let native = application_type == "native";

    let grant_types =
        string_list(m, "grant_types")?.unwrap_or_else(|| vec!["authorization_code".into()]);
    if grant_types.is_empty() {
        return Err(meta_err("`grant_types` must not be empty"));
    }
    if let Some(g) = grant_types
        .iter()
        .find(|g| !GRANT_TYPES.contains(&g.as_str()))
    {
        return Err(meta_err(format!("grant type `{g}` is not supported")));
    }
    let has_code = grant_types.iter().any(|g| g == "authorization_code");
    let response_types = string_list(m, "response_types")?.unwrap_or_else(|| {
        if has_code {
            vec!["code".into()]
        } else {
            vec![]
        }
    });
    if let Some(r) = response_types.iter().find(|r| r.as_str() != "code") {
        return Err(meta_err(format!(
            "response type `{r}` is not supported (only `code`)"
        )));
    }
    // RFC 7591 §2.1: response_types and grant_types must agree.
    if response_types.is_empty() == has_code {
        return Err(meta_err(
            "`response_types` [\"code\"] and the `authorization_code` grant type go together (RFC 7591 §2.1)",
        ));
    }

    let redirect_uris = string_list(m, "redirect_uris")?.unwrap_or_default();
    if has_code && redirect_uris.is_empty() {
        return Err(OAuthError::invalid_redirect_uri(
            "`redirect_uris` is required for the authorization_code grant",
        ));
    }
    for u in &redirect_uris {
        check_registrable(u, native)
            .map_err(|p| OAuthError::invalid_redirect_uri(p.describe(u)))?;
    }
    let post_logout_redirect_uris =
        string_list(m, "post_logout_redirect_uris")?.unwrap_or_default();
    for u in &post_logout_redirect_uris {
        check_registrable(u, native)
            .map_err(|p| OAuthError::invalid_redirect_uri(p.describe(u)))?;
    }

    let token_endpoint_auth_method = opt_string(m, "token_endpoint_auth_method")?
        .unwrap_or_else(|| "client_secret_basic".into());
    if !AUTH_METHODS.contains(&token_endpoint_auth_method.as_str()) {
        return Err(meta_err(format!(
            "token_endpoint_auth_method `{token_endpoint_auth_method}` is not supported"
        )));
    }
    if token_endpoint_auth_method == "none" && grant_types.iter().any(|g| g == "client_credentials")
    {
        return Err(meta_err(
            "a public client (auth method `none`) cannot use client_credentials",
        ));
    }

    let jwks_uri = opt_string(m, "jwks_uri")?;
    let jwks = match m.get("jwks") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.clone()),
    };
    // RFC 7591 §2: jwks and jwks_uri MUST NOT both be present.
    if jwks_uri.is_some() && jwks.is_some() {
        return Err(meta_err(
            "`jwks` and `jwks_uri` must not both be present (RFC 7591 §2)",
        ));
    }
    if let Some(u) = &jwks_uri {
        check_web_uri("jwks_uri", u)?;
    }
    if let Some(j) = &jwks {
        check_jwks(j)?;
    }
    if token_endpoint_auth_method == "private_key_jwt" && jwks.is_none() && jwks_uri.is_none() {
        return Err(meta_err("private_key_jwt needs `jwks` or `jwks_uri`"));
    }
    let token_endpoint_auth_signing_alg = opt_string(m, "token_endpoint_auth_signing_alg")?;
    if let Some(a) = &token_endpoint_auth_signing_alg
        && !ASSERTION_ALGS.contains(&a.as_str())
    {
        return Err(meta_err(format!(
            "token_endpoint_auth_signing_alg `{a}` is not supported"
        )));
    }

    for k in ["logo_uri", "policy_uri", "tos_uri", "client_uri"] {
        if let Some(v) = opt_string(m, k)? {
            check_web_uri(k, &v)?;
        }
    }
    let initiate_login_uri = opt_string(m, "initiate_login_uri")?;
    if let Some(u) = &initiate_login_uri
        && !u.starts_with("https://")
    {
        return Err(meta_err(
            "`initiate_login_uri` must use https (OIDC Registration §2)",
        ));
    }

    let id_token_signed_response_alg =
        opt_string(m, "id_token_signed_response_alg")?.unwrap_or_else(|| "RS256".into());
    if !SIGNING_ALGS.contains(&id_token_signed_response_alg.as_str()) {
        return Err(meta_err(format!(
            "id_token_signed_response_alg `{id_token_signed_response_alg}` is not supported"
        )));
    }
    let access_token_signed_response_alg =
        opt_string(m, "access_token_signed_response_alg")?.unwrap_or_else(|| "RS256".into());
    if !SIGNING_ALGS.contains(&access_token_signed_response_alg.as_str()) {
        return Err(meta_err(format!(
            "access_token_signed_response_alg `{access_token_signed_response_alg}` is not supported"
        )));
    }
    if let Some(st) = opt_string(m, "subject_type")?
        && st != "public"
    {
        return Err(meta_err(format!(
            "subject_type `{st}` is not supported (only `public`)"
        )));
    }
    for (k, supported) in [
        ("userinfo_signed_response_alg", false),
        ("request_object_signing_alg", false),
        ("id_token_encrypted_response_alg", false),
        ("userinfo_encrypted_response_alg", false),
    ] {
        if m.get(k).is_some_and(|v| !v.is_null()) && !supported {
            return Err(meta_err(format!("`{k}` is not supported by this server")));
        }
    }

    let scope = opt_string(m, "scope")?;
    if let Some(s) = &scope {
        scopes::parse(s).map_err(|e| meta_err(e.description))?;
        // The admin API's scope is granted by an operator (CLI, config), never by
        // self-service registration (RFC 7591 §2: the server may refuse any value).
        if !trusted && s.split(' ').any(|x| x == crate::admin::ADMIN_SCOPE) {
            return Err(meta_err(format!(
                "the `{}` scope is only for clients an operator creates (CLI or config)",
                crate::admin::ADMIN_SCOPE
            )));
        }
    }
    let contacts = string_list(m, "contacts")?.unwrap_or_default();

    let (first_party, access_token_audience) = if trusted {
        (
            m.get("first_party")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            string_list(m, "access_token_audience")?.unwrap_or_default(),
        )
    } else {
        (false, Vec::new())
    };

    Ok(ClientMetadata {
        redirect_uris,
        post_logout_redirect_uris,
        grant_types,
        response_types,
        token_endpoint_auth_method,
        application_type,
        client_name: opt_string(m, "client_name")?,
        scope,
        client_uri: opt_string(m, "client_uri")?,
        logo_uri: opt_string(m, "logo_uri")?,
        policy_uri: opt_string(m, "policy_uri")?,
        tos_uri: opt_string(m, "tos_uri")?,
        contacts,
        jwks_uri,
        jwks,
        software_id: opt_string(m, "software_id")?,
        software_version: opt_string(m, "software_version")?,
        initiate_login_uri,
        id_token_signed_response_alg,
        access_token_signed_response_alg,
        token_endpoint_auth_signing_alg,
        access_token_audience,
        first_party,
    })
}

/// A JWK Set with public keys only.
fn check_jwks(j: &Value) -> Result<(), OAuthError> {
    let keys = j
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| meta_err("`jwks` must be a JWK Set with a `keys` array"))?;
    for k in keys {
        let obj = k
            .as_object()
            .ok_or_else(|| meta_err("every JWK must be an object"))?;
        if obj.contains_key("d") || obj.contains_key("k") {
            return Err(meta_err("`jwks` must hold public keys only"));
        }
        josekit::jwk::Jwk::from_map(obj.clone())
            .map_err(|e| meta_err(format!("invalid JWK: {e}")))?;
    }
    Ok(())
}

/// A new client with a generated id, and a secret unless it is public. Returns the
/// client and the plaintext secret (shown once).
pub fn new_client(
    meta: ClientMetadata,
    client_id: Option<String>,
    secret: Option<String>,
    source: &str,
    now: i64,
    secret_ttl: i64,
) -> (Client, Option<String>) {
    let client_id = client_id.unwrap_or_else(|| crypto::random_token(18));
    let secret = if meta.is_public() || meta.token_endpoint_auth_method == "private_key_jwt" {
        None
    } else {
        Some(secret.unwrap_or_else(|| crypto::random_token(32)))
    };
    let client = Client {
        client_id,
        secret_hash: secret.as_deref().map(crypto::hash_secret),
        secret_expires_at: if secret.is_some() && secret_ttl > 0 {
            now + secret_ttl
        } else {
            0
        },
        metadata: meta,
        registration_token_hash: None,
        source: source.into(),
        created_at: now,
        updated_at: now,
    };
    (client, secret)
}

/// The config `[[clients]]` entry as a registration document.
fn config_doc(c: &ClientConfig) -> Value {
    let mut doc = serde_json::to_value(c).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut doc {
        m.remove("client_id");
        m.remove("client_secret");
        m.retain(|_, v| !v.is_null());
        if c.token_endpoint_auth_method.is_none()
            && c.client_secret.is_none()
            && c.jwks.is_none()
            && c.jwks_uri.is_none()
        {
            // A declared client without a secret is public.
            m.insert(
                "token_endpoint_auth_method".into(),
                Value::String("none".into()),
            );
        }
    }
    doc
}

/// Creates or updates the clients declared in the configuration.
pub async fn apply_config_clients(state: &State) -> Result<(), (String, String)> {
    let now = state.clock.now();
    for c in &state.config.clients {
        let meta = validate_metadata(&config_doc(c), true)
            .map_err(|e| (c.client_id.clone(), e.description))?;
        if !meta.is_public()
            && meta.token_endpoint_auth_method != "private_key_jwt"
            && c.client_secret.is_none()
        {
            return Err((
                c.client_id.clone(),
                "a confidential client needs `client_secret`".into(),
            ));
        }
        let (client, _) = new_client(
            meta,
            Some(c.client_id.clone()),
            c.client_secret.clone(),
            "config",
            now,
            0,
        );
        store::upsert(&state.db, &client)
            .await
            .map_err(|e| (c.client_id.clone(), e.to_string()))?;
    }
    Ok(())
}
