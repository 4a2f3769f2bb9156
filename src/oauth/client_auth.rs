//! Client authentication at the token, revocation and introspection endpoints:
//! client_secret_basic and client_secret_post (RFC 6749 §2.3.1), private_key_jwt
//! (RFC 7523 §2.2 and §3, OIDC Core §9), and `none` for public clients.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use josekit::jwk::Jwk;
use josekit::jws::{self, JwsVerifier};
use serde_json::Value;

use crate::app::State;
use crate::crypto;
use crate::error::{Error, OAuthError};
use crate::http::params::Params;
use crate::jose::jwt::{unverified_claims, unverified_header};
use crate::store::clients::{self, Client};
use crate::store::tokens;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Allowed clock skew for assertion times.
const SKEW: i64 = 60;
/// Refetch a client's jwks_uri at most this often (unknown kid or failed signature).
const JWKS_REFETCH_AFTER: i64 = 5;
/// A fetched client JWKS is trusted at most this long, so a key the client removed from
/// its set (rotated out or compromised) stops authenticating it (RFC 7517 §5, OIDC Core
/// §10.1.1: keys no longer in the set are no longer to be used).
const JWKS_MAX_AGE: i64 = 300;

pub struct Authenticated {
    pub client: Client,
    pub method: &'static str,
}

fn invalid_client(desc: impl Into<String>, basic: bool) -> OAuthError {
    let e = OAuthError::invalid_client(desc);
    if basic {
        // RFC 6749 §5.2: 401 with WWW-Authenticate matching the scheme the client used.
        e.with_www_authenticate("Basic realm=\"klard-auth\", charset=\"UTF-8\"")
    } else {
        e
    }
}

/// RFC 6749 §2.3.1: client_id and secret are form-urlencoded before Basic encoding.
fn form_decode(s: &str) -> Option<String> {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

fn parse_basic(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| invalid_client("malformed Authorization header", true))?;
    let Some((scheme, rest)) = v.split_once(' ') else {
        return Err(invalid_client("malformed Authorization header", true));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let raw = STANDARD
        .decode(rest.trim())
        .map_err(|_| invalid_client("the Basic credentials are not valid base64", true))?;
    let text = String::from_utf8(raw)
        .map_err(|_| invalid_client("the Basic credentials are not UTF-8", true))?;
    let (id, secret) = text
        .split_once(':')
        .ok_or_else(|| invalid_client("the Basic credentials lack a `:`", true))?;
    let id = form_decode(id)
        .ok_or_else(|| invalid_client("the client_id is not valid form-encoding", true))?;
    let secret = form_decode(secret)
        .ok_or_else(|| invalid_client("the client_secret is not valid form-encoding", true))?;
    Ok(Some((id, secret)))
}

/// Authenticates the client of a back-channel request by whichever single method it used.
pub async fn authenticate(
    state: &State,
    headers: &HeaderMap,
    p: &Params,
) -> Result<Authenticated, Error> {
    let basic = parse_basic(headers)?;
    let presented = usize::from(basic.is_some())
        + usize::from(p.has("client_secret"))
        + usize::from(p.has("client_assertion"));
    if presented > 1 {
        return Err(OAuthError::invalid_request(
            "use exactly one client authentication method (RFC 6749 §2.3)",
        )
        .into());
    }
    let now = state.clock.now();
    if let Some((id, secret)) = basic {
        if let Some(body_id) = p.get("client_id")
            && body_id != id
        {
            return Err(OAuthError::invalid_request(
                "client_id does not match the Basic credentials",
            )
            .into());
        }
        let client = check_secret(state, &id, &secret, "client_secret_basic", now, true).await?;
        return Ok(Authenticated {
            client,
            method: "client_secret_basic",
        });
    }
    if let Some(secret) = p.get("client_secret") {
        let id = p
            .get("client_id")
            .ok_or_else(|| invalid_client("client_secret sent without client_id", false))?;
        let client = check_secret(state, id, secret, "client_secret_post", now, false).await?;
        return Ok(Authenticated {
            client,
            method: "client_secret_post",
        });
    }
    if let Some(assertion) = p.get("client_assertion") {
        if p.get("client_assertion_type") != Some(JWT_BEARER) {
            return Err(OAuthError::invalid_request(format!(
                "client_assertion_type must be `{JWT_BEARER}`"
            ))
            .into());
        }
        let client = check_assertion(state, assertion, p.get("client_id"), now).await?;
        return Ok(Authenticated {
            client,
            method: "private_key_jwt",
        });
    }
    let Some(id) = p.get("client_id") else {
        return Err(invalid_client("client authentication is required", false).into());
    };
    let client = clients::get(&state.db, id)
        .await?
        .ok_or_else(|| invalid_client("unknown client", false))?;
    if !client.metadata.is_public() {
        return Err(invalid_client("this client must authenticate", false).into());
    }
    Ok(Authenticated {
        client,
        method: "none",
    })
}

async fn check_secret(
    state: &State,
    id: &str,
    secret: &str,
    method: &str,
    now: i64,
    basic: bool,
) -> Result<Client, Error> {
    let client = clients::get(&state.db, id).await?;
    // Hash and compare even for an unknown client, so timing does not tell which ids exist.
    let presented = crypto::hash_secret(secret);
    let stored = client
        .as_ref()
        .and_then(|c| c.secret_hash.clone())
        .unwrap_or_default();
    let ok = crypto::ct_eq(presented.as_bytes(), stored.as_bytes());
    let Some(client) = client else {
        return Err(invalid_client("client authentication failed", basic).into());
    };
    if !ok {
        return Err(invalid_client("client authentication failed", basic).into());
    }
    if client.metadata.token_endpoint_auth_method != method {
        return Err(invalid_client(
            format!(
                "this client is registered for `{}`, not `{method}`",
                client.metadata.token_endpoint_auth_method
            ),
            basic,
        )
        .into());
    }
    if client.secret_expires_at != 0 && client.secret_expires_at <= now {
        return Err(invalid_client("the client secret has expired", basic).into());
    }
    Ok(client)
}

fn verifier_for(alg: &str, jwk: &Jwk) -> Option<Box<dyn JwsVerifier>> {
    if let Some(a) = jwk.algorithm()
        && a != alg
    {
        return None;
    }
    Some(match alg {
        "RS256" => Box::new(jws::RS256.verifier_from_jwk(jwk).ok()?),
        "PS256" => Box::new(jws::PS256.verifier_from_jwk(jwk).ok()?),
        "ES256" => Box::new(jws::ES256.verifier_from_jwk(jwk).ok()?),
        "EdDSA" => Box::new(jws::EdDSA.verifier_from_jwk(jwk).ok()?),
        _ => return None,
    })
}

/// The client's keys: inline `jwks`, or `jwks_uri` (cached; refetched when `refresh`).
async fn client_keys(
    state: &State,
    client: &Client,
    refresh: bool,
) -> Result<Vec<Jwk>, OAuthError> {
    let doc = if let Some(j) = &client.metadata.jwks {
        j.clone()
    } else if let Some(uri) = &client.metadata.jwks_uri {
        let now = state.clock.now();
        let cached = state.client_jwks.lock().await.get(uri).cloned();
        match cached {
            Some((doc, at))
                if now - at < JWKS_REFETCH_AFTER || (!refresh && now - at < JWKS_MAX_AGE) =>
            {
                doc
            }
            _ => {
                let resp = state.http.get(uri).send().await.map_err(|_| {
                    OAuthError::invalid_client("the client's jwks_uri could not be fetched")
                })?;
                if !resp.status().is_success() {
                    return Err(OAuthError::invalid_client(
                        "the client's jwks_uri did not answer 200",
                    ));
                }
                let doc: Value = resp.json().await.map_err(|_| {
                    OAuthError::invalid_client("the client's jwks_uri is not a JWK Set")
                })?;
                state
                    .client_jwks
                    .lock()
                    .await
                    .insert(uri.clone(), (doc.clone(), now));
                doc
            }
        }
    } else {
        return Err(OAuthError::invalid_client(
            "the client has no registered keys",
        ));
    };
    Ok(doc
        .get("keys")
        .and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k.as_object().and_then(|m| Jwk::from_map(m.clone()).ok()))
                .filter(|k| k.key_use().is_none_or(|u| u == "sig"))
                .collect()
        })
        .unwrap_or_default())
}

fn try_verify(token: &str, alg: &str, kid: Option<&str>, keys: &[Jwk]) -> bool {
    keys.iter()
        .filter(|k| kid.is_none() || k.key_id() == kid)
        .filter_map(|k| verifier_for(alg, k))
        .any(|v| josekit::jwt::decode_with_verifier(token, v.as_ref()).is_ok())
}

/// RFC 7523 §3 checks on a client assertion.
async fn check_assertion(
    state: &State,
    token: &str,
    client_id: Option<&str>,
    now: i64,
) -> Result<Client, Error> {
    let claims = unverified_claims(token)
        .ok_or_else(|| invalid_client("client_assertion is not a JWT", false))?;
    let header = unverified_header(token)
        .ok_or_else(|| invalid_client("client_assertion is not a JWT", false))?;
    let iss = claims.get("iss").and_then(Value::as_str);
    let sub = claims.get("sub").and_then(Value::as_str);
    let (Some(iss), Some(sub)) = (iss, sub) else {
        return Err(invalid_client("client_assertion needs `iss` and `sub`", false).into());
    };
    // RFC 7523 §3 items 1-2 and OIDC Core §9: iss and sub are the client_id.
    if iss != sub || client_id.is_some_and(|c| c != iss) {
        return Err(invalid_client(
            "client_assertion `iss` and `sub` must both be the client_id",
            false,
        )
        .into());
    }
    let client = clients::get(&state.db, iss)
        .await?
        .ok_or_else(|| invalid_client("unknown client", false))?;
    if client.metadata.token_endpoint_auth_method != "private_key_jwt" {
        return Err(
            invalid_client("this client is not registered for private_key_jwt", false).into(),
        );
    }
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if !crate::oauth::clients::ASSERTION_ALGS.contains(&alg) {
        return Err(invalid_client(
            format!("client_assertion alg `{alg}` is not accepted"),
            false,
        )
        .into());
    }
    if let Some(want) = &client.metadata.token_endpoint_auth_signing_alg
        && want != alg
    {
        return Err(invalid_client(
            "client_assertion alg differs from the registered one",
            false,
        )
        .into());
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let keys = client_keys(state, &client, false).await?;
    let mut ok = try_verify(token, alg, kid, &keys);
    if !ok && client.metadata.jwks_uri.is_some() {
        // The client may have rotated its keys: fetch its JWKS again (unknown kid).
        let keys = client_keys(state, &client, true).await?;
        ok = try_verify(token, alg, kid, &keys);
    }
    if !ok {
        return Err(invalid_client("client_assertion signature is invalid", false).into());
    }
    // RFC 7523 §3 item 3: aud identifies us: the token endpoint URL or the issuer.
    let token_endpoint = state.config.url("/token");
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => *a == token_endpoint || *a == state.config.issuer,
        Some(Value::Array(a)) => a.iter().any(|v| {
            v.as_str()
                .is_some_and(|a| a == token_endpoint || a == state.config.issuer)
        }),
        _ => false,
    };
    if !aud_ok {
        return Err(invalid_client(
            "client_assertion `aud` must be the token endpoint or the issuer",
            false,
        )
        .into());
    }
    // Item 4: exp required and in the future.
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid_client("client_assertion needs `exp`", false))?;
    if exp + SKEW < now {
        return Err(invalid_client("client_assertion has expired", false).into());
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64)
        && nbf > now + SKEW
    {
        return Err(invalid_client("client_assertion is not yet valid", false).into());
    }
    if let Some(iat) = claims.get("iat").and_then(Value::as_i64)
        && iat > now + SKEW
    {
        return Err(invalid_client("client_assertion `iat` is in the future", false).into());
    }
    // Item 7: jti, and no replay while the assertion could still be accepted.
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_client("client_assertion needs `jti`", false))?;
    if !tokens::remember_assertion_jti(&state.db, &client.client_id, jti, exp + SKEW, now).await? {
        return Err(invalid_client("client_assertion `jti` was already used", false).into());
    }
    Ok(client)
}
