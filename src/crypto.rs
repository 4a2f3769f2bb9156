//! Randomness, hashing and constant-time comparison: the small primitives every
//! secret-handling path uses, so that none of them rolls its own.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A URL-safe random token with `bytes * 8` bits of entropy.
/// Codes and tokens use 32 bytes (256 bits), above the 128 bits RFC 6749 §10.10 asks for.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Raw random bytes.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    rand::fill(&mut buf[..]);
    buf
}

/// SHA-256 of a secret, base64url. Opaque tokens, codes, session ids, client secrets and
/// registration access tokens are stored only in this form (DESIGN.md principle 4).
pub fn hash_secret(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// HMAC-SHA256(key, parts joined by NUL), base64url.
pub fn hmac_b64(key: &[u8], parts: &[&str]) -> String {
    URL_SAFE_NO_PAD.encode(hmac_raw(key, parts))
}

/// HMAC-SHA256(key, parts joined by NUL).
pub fn hmac_raw(key: &[u8], parts: &[&str]) -> Vec<u8> {
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        // HMAC accepts keys of any length; this arm is unreachable in practice.
        Err(_) => return Vec::new(),
    };
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            mac.update(&[0]);
        }
        mac.update(p.as_bytes());
    }
    mac.finalize().into_bytes().to_vec()
}

/// base64url(SHA-256(input)), as used by PKCE S256 (RFC 7636 §4.2).
pub fn s256(input: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(input.as_bytes()))
}

/// The left-most half of the SHA-256 hash, base64url: `at_hash` (OIDC Core §3.1.3.6)
/// for the SHA-256 family of algorithms.
pub fn left_half_hash_sha256(input: &str) -> String {
    let d = Sha256::digest(input.as_bytes());
    URL_SAFE_NO_PAD.encode(&d[..16])
}

pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

pub fn b64url_decode(data: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(data.trim_end_matches('=')).ok()
}
