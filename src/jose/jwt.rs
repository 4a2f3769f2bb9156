//! Signing and verifying JWTs (RFC 7519) with our key ring.

use josekit::jws::JwsHeader;
use josekit::jwt::{self, JwtPayload};
use serde_json::{Map, Value};

use super::keys::{KeyError, KeyRing};

/// Signs `claims` with the active key for `alg`, with `kid` and `typ` in the header.
pub async fn sign(
    ring: &KeyRing,
    alg: &str,
    typ: &str,
    claims: Map<String, Value>,
) -> Result<String, KeyError> {
    let key = ring.signing_key(alg).await?;
    let mut header = JwsHeader::new();
    header.set_token_type(typ);
    header.set_key_id(&key.kid);
    header.set_algorithm(&key.alg);
    let payload = JwtPayload::from_map(claims)?;
    Ok(jwt::encode_with_signer(&payload, &header, key.signer())?)
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the token is not a well-formed JWS")]
    Malformed,
    #[error("the token was not signed by a key of this server")]
    UnknownKey,
    #[error("the signature is invalid")]
    BadSignature,
}

/// Verifies a token we issued: its header names one of our published keys by `kid`, its
/// `alg` is that key's (never `none`), and the signature holds. Claims are not checked
/// here; callers check iss/exp for their purpose.
pub async fn verify_own(
    ring: &KeyRing,
    token: &str,
) -> Result<(Map<String, Value>, JwsHeader), VerifyError> {
    if token.split('.').count() != 3 {
        return Err(VerifyError::Malformed);
    }
    let header = jwt::decode_header(token).map_err(|_| VerifyError::Malformed)?;
    let kid = header
        .claim("kid")
        .and_then(Value::as_str)
        .ok_or(VerifyError::UnknownKey)?
        .to_string();
    let alg = header.claim("alg").and_then(Value::as_str).unwrap_or("");
    let key = ring.by_kid(&kid).await.ok_or(VerifyError::UnknownKey)?;
    if key.alg != alg {
        return Err(VerifyError::BadSignature);
    }
    let (payload, header) =
        jwt::decode_with_verifier(token, key.verifier()).map_err(|_| VerifyError::BadSignature)?;
    Ok((payload.claims_set().clone(), header))
}

/// Reads the payload of a compact JWS without verifying it (to find the client that
/// signed an assertion before choosing its keys).
pub fn unverified_claims(token: &str) -> Option<Map<String, Value>> {
    let mut parts = token.split('.');
    let (_h, p, _s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = crate::crypto::b64url_decode(p)?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

pub fn unverified_header(token: &str) -> Option<Map<String, Value>> {
    let h = token.split('.').next()?;
    let bytes = crate::crypto::b64url_decode(h)?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}
