//! ID tokens (OIDC Core §2, §3.1.3.6).

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

use crate::app::State;
use crate::crypto;
use crate::error::{Error, Result};
use crate::jose::jwt;
use crate::oidc::claims;
use crate::store::clients::Client;
use crate::store::tokens::TokenContext;
use crate::store::users::User;

/// `at_hash` (OIDC Core §3.1.3.6): the left half of the hash of the access token, with
/// the hash of the signing alg: SHA-256 for RS256/ES256, SHA-512 for EdDSA (Ed25519).
pub fn at_hash(alg: &str, access_token: &str) -> String {
    if alg == "EdDSA" {
        let d = Sha512::digest(access_token.as_bytes());
        crypto::b64url(&d[..32])
    } else {
        crypto::left_half_hash_sha256(access_token)
    }
}

/// Builds and signs an ID token. Scope claims are released at the userinfo endpoint
/// when an access token is issued (OIDC Core §5.4); only claims requested for the
/// `id_token` member of the `claims` parameter go into the ID token itself.
pub async fn issue(
    state: &State,
    client: &Client,
    user: &User,
    ctx: &TokenContext,
    access_token: Option<&str>,
    with_nonce: bool,
) -> Result<String> {
    let now = state.clock.now();
    let alg = client.metadata.id_token_signed_response_alg.as_str();
    let mut c = Map::new();
    c.insert("iss".into(), json!(state.config.issuer));
    c.insert("sub".into(), json!(user.id));
    c.insert("aud".into(), json!(client.client_id));
    c.insert("exp".into(), json!(now + state.config.tokens.id_token_ttl));
    c.insert("iat".into(), json!(now));
    // auth_time is always sent: REQUIRED when max_age was used, harmless otherwise.
    c.insert("auth_time".into(), json!(ctx.auth_time));
    if with_nonce && let Some(n) = &ctx.nonce {
        c.insert("nonce".into(), json!(n));
    }
    if !ctx.acr.is_empty() {
        c.insert("acr".into(), json!(ctx.acr));
    }
    if !ctx.amr.is_empty() {
        c.insert("amr".into(), json!(ctx.amr));
    }
    c.insert("azp".into(), json!(client.client_id));
    if let Some(sid) = &ctx.sid {
        c.insert("sid".into(), json!(sid));
    }
    if let Some(at) = access_token {
        c.insert("at_hash".into(), json!(at_hash(alg, at)));
    }
    let wanted = claims::requested(ctx.claims.as_ref(), "id_token");
    for (k, v) in claims::select(user, wanted.iter().map(String::as_str)) {
        c.entry(k).or_insert(v);
    }
    jwt::sign(&state.keys, alg, "JWT", c)
        .await
        .map_err(Error::internal)
}

/// Verifies an ID token we issued, used as `id_token_hint` (OIDC Core §3.1.2.1,
/// RP-Initiated Logout §2). Expiry is not checked: the spec allows expired hints.
pub async fn verify_hint(state: &State, token: &str) -> Option<Map<String, Value>> {
    let (claims, _) = jwt::verify_own(&state.keys, token).await.ok()?;
    let ours = claims.get("iss").and_then(Value::as_str) == Some(state.config.issuer.as_str());
    // Our access tokens carry `client_id` (RFC 9068 §2.2); ID tokens never do.
    let is_id_token = !claims.contains_key("client_id") && claims.contains_key("azp");
    (ours && is_id_token).then_some(claims)
}
