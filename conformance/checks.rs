//! The common checks of the plans (§2 and §3 of shared/conformance-plans.md):
//! JWT/id_token, userinfo, JWKS, error responses, token responses, entropy and
//! discovery metadata. Each check returns `Err` for a FAILURE and records
//! WARNINGs in a [`Report`].

use std::collections::{BTreeSet, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
use josekit::jws::JwsVerifier;
use reqwest::header::{self, HeaderMap};
use serde_json::{Map, Value};
use sha2::Digest as _;
use url::Url;

/// Allowed clock skew, as in the suite.
pub const SKEW: f64 = 300.0;

/// Warnings and notes gathered while a module runs.
#[derive(Debug, Default)]
pub struct Report {
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn warn(&mut self, s: impl Into<String>) {
        let s = s.into();
        if !self.warnings.contains(&s) {
            self.warnings.push(s);
        }
    }
    pub fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }
}

/// Returned (as an error) by a module that skips itself, like the suite's
/// `fireTestSkipped`.
#[derive(Debug)]
pub struct Skip(pub String);

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Skip {}

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------
// HTTP responses

/// A fully read HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl HttpResp {
    pub async fn read(resp: reqwest::Response) -> Result<HttpResp> {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await.context("reading response body")?;
        Ok(HttpResp {
            status,
            headers,
            body,
        })
    }

    pub fn header(&self, name: header::HeaderName) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// The media type without parameters, lower-cased.
    pub fn mime(&self) -> String {
        mime_of(&self.header(header::CONTENT_TYPE).unwrap_or_default())
    }

    pub fn snippet(&self) -> String {
        let s: String = self.body.chars().take(300).collect();
        s.replace(['\n', '\r'], " ")
    }

    pub fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.body)
            .map_err(|e| anyhow!("body is not JSON ({e}): {}", self.snippet()))
    }

    pub fn json_object(&self) -> Result<Map<String, Value>> {
        match self.json()? {
            Value::Object(m) => Ok(m),
            _ => bail!("body is not a JSON object: {}", self.snippet()),
        }
    }
}

pub fn mime_of(ct: &str) -> String {
    ct.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

// ---------------------------------------------------------------------------
// Small helpers

pub fn str_of<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

fn is_b64url(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// Shannon entropy of the string's characters times its length, in bits.
pub fn entropy_bits(s: &str) -> f64 {
    let mut counts: HashMap<char, usize> = HashMap::new();
    let mut n = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_default() += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let nf = n as f64;
    let h: f64 = counts
        .values()
        .map(|&c| {
            let p = c as f64 / nf;
            -p * p.log2()
        })
        .sum();
    h * nf
}

/// `EnsureMinimumAuthorizationCodeLength` + `...Entropy` (and the same rules
/// for refresh and access tokens).
pub fn check_secret_strength(value: &str, what: &str, check_length: bool) -> Result<()> {
    if check_length && value.len() * 8 < 128 {
        bail!(
            "{what} is only {} bits long (at least 128 required)",
            value.len() * 8
        );
    }
    let e = entropy_bits(value);
    if e <= 96.0 {
        bail!("{what} has only {e:.1} bits of entropy (more than 96 required)");
    }
    Ok(())
}

pub fn check_printable(value: &str, what: &str) -> Result<()> {
    if let Some(c) = value.chars().find(|c| !(' '..='~').contains(c)) {
        bail!("{what} contains the character {c:?}, outside 0x20-0x7E");
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// JWTs

#[derive(Debug, Clone)]
pub struct Jwt {
    pub raw: String,
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

impl Jwt {
    pub fn alg(&self) -> &str {
        str_of(&self.header, "alg").unwrap_or("")
    }
    pub fn num(&self, k: &str) -> Option<f64> {
        self.claims.get(k).and_then(Value::as_f64)
    }
    pub fn str(&self, k: &str) -> Option<&str> {
        str_of(&self.claims, k)
    }
}

fn b64_json(part: &str, what: &str) -> Result<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| anyhow!("JWT {what} is not unpadded base64url: {e}"))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => bail!("JWT {what} is not a JSON object"),
        Err(e) => bail!("JWT {what} is not JSON: {e}"),
    }
}

pub fn parse_jwt(raw: &str) -> Result<Jwt> {
    let parts: Vec<&str> = raw.split('.').collect();
    if parts.len() == 5 {
        bail!("the JWT is encrypted (JWE), which no client here asked for");
    }
    if parts.len() != 3 {
        bail!("not a compact JWS ({} parts)", parts.len());
    }
    let header = b64_json(parts[0], "header")?;
    let claims = b64_json(parts[1], "payload")?;
    let signature = URL_SAFE_NO_PAD
        .decode(parts[2])
        .map_err(|e| anyhow!("JWT signature is not unpadded base64url: {e}"))?;
    Ok(Jwt {
        raw: raw.to_string(),
        header,
        claims,
        signing_input: format!("{}.{}", parts[0], parts[1]),
        signature,
    })
}

fn kty_for_alg(alg: &str) -> Option<&'static str> {
    match alg {
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => Some("RSA"),
        "ES256" | "ES384" | "ES512" | "ES256K" => Some("EC"),
        "EdDSA" | "Ed25519" => Some("OKP"),
        _ => None,
    }
}

fn verifier_for(alg: &str, jwk: &Jwk) -> Result<Box<dyn JwsVerifier>> {
    use josekit::jws;
    Ok(match alg {
        "RS256" => Box::new(jws::RS256.verifier_from_jwk(jwk)?),
        "RS384" => Box::new(jws::RS384.verifier_from_jwk(jwk)?),
        "RS512" => Box::new(jws::RS512.verifier_from_jwk(jwk)?),
        "PS256" => Box::new(jws::PS256.verifier_from_jwk(jwk)?),
        "PS384" => Box::new(jws::PS384.verifier_from_jwk(jwk)?),
        "PS512" => Box::new(jws::PS512.verifier_from_jwk(jwk)?),
        "ES256" => Box::new(jws::ES256.verifier_from_jwk(jwk)?),
        "ES384" => Box::new(jws::ES384.verifier_from_jwk(jwk)?),
        "ES512" => Box::new(jws::ES512.verifier_from_jwk(jwk)?),
        "ES256K" => Box::new(jws::ES256K.verifier_from_jwk(jwk)?),
        "EdDSA" | "Ed25519" => Box::new(jws::EdDSA.verifier_from_jwk(jwk)?),
        other => bail!("unsupported JWS alg {other:?}"),
    })
}

fn jwks_keys(jwks: &Value) -> Vec<&Map<String, Value>> {
    jwks.get("keys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default()
}

/// `ValidateIdTokenSignature`: selects the key by kid/kty/alg/use and verifies.
pub fn verify_signature(jwt: &Jwt, jwks: &Value, what: &str) -> Result<()> {
    let alg = jwt.alg();
    if alg.is_empty() {
        bail!("{what} header has no alg");
    }
    if alg == "none" {
        bail!("{what} is unsigned (alg none)");
    }
    let kty = kty_for_alg(alg).ok_or_else(|| anyhow!("{what} uses unsupported alg {alg:?}"))?;
    let kid = str_of(&jwt.header, "kid");
    let candidates: Vec<&Map<String, Value>> = jwks_keys(jwks)
        .into_iter()
        .filter(|k| str_of(k, "kty") == Some(kty))
        .filter(|k| kid.is_none() || str_of(k, "kid") == kid)
        .filter(|k| str_of(k, "alg").is_none_or(|a| a == alg))
        .filter(|k| str_of(k, "use").is_none_or(|u| u == "sig"))
        .collect();
    let try_key = |k: &Map<String, Value>| -> Result<()> {
        // Key/alg compatibility was checked above; josekit would otherwise
        // reject e.g. the fully-specified "Ed25519" name (RFC 9864).
        let mut k = k.clone();
        k.remove("alg");
        let jwk = Jwk::from_map(k).context("JWKS key cannot be parsed")?;
        let v = verifier_for(alg, &jwk)?;
        v.verify(jwt.signing_input.as_bytes(), &jwt.signature)
            .map_err(|e| anyhow!("{e}"))
    };
    match kid {
        Some(kid) => match candidates.as_slice() {
            [] => bail!("{what} kid {kid:?} ({alg}) matches no signing key in the OP's JWKS"),
            [k] => try_key(k).with_context(|| format!("{what} signature does not verify")),
            _ => bail!("{what} kid {kid:?} matches more than one key of the JWKS"),
        },
        None => {
            if candidates.iter().any(|k| try_key(k).is_ok()) {
                Ok(())
            } else {
                bail!("{what} (no kid) verifies with no {kty} key of the OP's JWKS")
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Standard claims (AbstractValidateOpenIdStandardClaims and friends)

const STRING_CLAIMS: &[&str] = &[
    "sub",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "gender",
    "zoneinfo",
    "locale",
    "phone_number",
];

pub const PROFILE_CLAIMS: &[&str] = &[
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "updated_at",
    "preferred_username",
];

pub fn scope_claims(scope: &str) -> &'static [&'static str] {
    match scope {
        "profile" => PROFILE_CLAIMS,
        "email" => &["email", "email_verified"],
        "address" => &["address"],
        "phone" => &["phone_number", "phone_number_verified"],
        _ => &[],
    }
}

fn current_year() -> i64 {
    // Days since epoch to a civil year (good enough for a range check).
    1970 + (now() / (365.2425 * 86400.0)) as i64
}

fn valid_birthdate(s: &str) -> bool {
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|c| c.is_ascii_digit());
    let year_ok = |y: &str| {
        y == "0000"
            || y.parse::<i64>()
                .map(|y| (1850..=current_year()).contains(&y))
                .unwrap_or(false)
    };
    let parts: Vec<&str> = s.split('-').collect();
    match parts.as_slice() {
        [y] => digits(y, 4) && *y != "0000" && year_ok(y),
        [y, m, d] => {
            digits(y, 4)
                && digits(m, 2)
                && digits(d, 2)
                && year_ok(y)
                && m.parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
                && d.parse::<u32>().is_ok_and(|d| (1..=31).contains(&d))
        }
        _ => false,
    }
}

/// Types of the standard claims (FAILURE on a wrong type).
pub fn check_standard_claims(obj: &Map<String, Value>, what: &str) -> Result<()> {
    for &c in STRING_CLAIMS {
        if let Some(v) = obj.get(c) {
            match v.as_str() {
                Some(s) if !s.trim().is_empty() && s != "null" => {}
                _ => bail!("{what} claim {c} must be a non-blank string, got {v}"),
            }
        }
    }
    for c in ["email_verified", "phone_number_verified"] {
        if let Some(v) = obj.get(c)
            && !v.is_boolean()
        {
            bail!("{what} claim {c} must be a JSON boolean, got {v}");
        }
    }
    if let Some(v) = obj.get("updated_at") {
        let Some(t) = v.as_f64() else {
            bail!("{what} claim updated_at must be a number, got {v}");
        };
        if t > now() + SKEW {
            bail!("{what} claim updated_at {t} is in the future");
        }
        if t < 631_152_000.0 {
            bail!("{what} claim updated_at {t} is before 1990");
        }
    }
    if let Some(v) = obj.get("address") {
        let Some(a) = v.as_object() else {
            bail!("{what} claim address must be an object, got {v}");
        };
        for (k, m) in a {
            if !m.is_string() {
                bail!("{what} address member {k} must be a string, got {m}");
            }
        }
    }
    if let Some(v) = obj.get("birthdate") {
        match v.as_str() {
            Some(s) if valid_birthdate(s) => {}
            _ => bail!("{what} claim birthdate must be YYYY-MM-DD, 0000-MM-DD or YYYY, got {v}"),
        }
    }
    for c in ["_claim_names", "_claim_sources"] {
        if let Some(v) = obj.get(c)
            && !v.is_object()
        {
            bail!("{what} member {c} must be an object");
        }
    }
    if let Some(names) = obj.get("_claim_names").and_then(Value::as_object) {
        let sources = obj.get("_claim_sources").and_then(Value::as_object);
        for (claim, src) in names {
            let ok = src
                .as_str()
                .is_some_and(|s| sources.is_some_and(|m| m.contains_key(s)));
            if !ok {
                bail!("{what} _claim_names.{claim} refers to no member of _claim_sources");
            }
        }
    }
    Ok(())
}

pub fn check_sub(sub: Option<&Value>, what: &str) -> Result<String> {
    let s = match sub {
        Some(Value::String(s)) => s,
        Some(v) => bail!("{what} sub must be a string, got {v}"),
        None => bail!("{what} has no sub"),
    };
    if s.is_empty() {
        bail!("{what} sub is empty");
    }
    if s.len() > 255 {
        bail!("{what} sub is longer than 255 characters");
    }
    check_printable(s, &format!("{what} sub"))?;
    Ok(s.clone())
}

// ---------------------------------------------------------------------------
// ID token (§2.A)

#[derive(Debug, Clone, Copy)]
pub enum NonceRule<'a> {
    Exact(&'a str),
    Absent,
    /// Refreshed id_tokens: not checked.
    Any,
}

pub struct IdExpect<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: NonceRule<'a>,
    pub access_token: Option<&'a str>,
    pub code: Option<&'a str>,
    /// Requested scopes, for the non-requested-claims warning.
    pub scopes: &'a [String],
}

const ID_TOKEN_PROTOCOL_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
    "nbf",
    "jti",
    "sid",
    "s_hash",
    "openbanking_intent_id",
    "txn",
];

/// `AbstractValidateHash`: base64url of the left half of the alg's SHA-2 digest.
pub fn half_hash(alg: &str, value: &str) -> Result<String> {
    let d: Vec<u8> = if alg.ends_with("256") {
        sha2::Sha256::digest(value.as_bytes()).to_vec()
    } else if alg.ends_with("384") {
        sha2::Sha384::digest(value.as_bytes()).to_vec()
    } else if alg.ends_with("512") || alg == "EdDSA" || alg == "Ed25519" {
        sha2::Sha512::digest(value.as_bytes()).to_vec()
    } else {
        bail!("cannot pick a hash for alg {alg:?}")
    };
    Ok(b64url(&d[..d.len() / 2]))
}

fn check_num_claim(jwt: &Jwt, k: &str, what: &str) -> Result<Option<f64>> {
    match jwt.claims.get(k) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| anyhow!("{what} {k} must be a number, got {v}")),
    }
}

/// Every check of `PerformStandardIdTokenChecks` plus kid, at_hash, c_hash and
/// the claim-list warnings.
pub fn check_id_token(
    raw: &str,
    jwks: &Value,
    exp: &IdExpect<'_>,
    rep: &mut Report,
) -> Result<Jwt> {
    let what = "id_token";
    let jwt = parse_jwt(raw).context("id_token")?;
    if str_of(&jwt.header, "kid").is_none_or(|k| k.trim().is_empty()) {
        bail!("id_token header has no kid");
    }
    verify_signature(&jwt, jwks, what)?;
    let t = now();
    // iss
    match jwt.str("iss") {
        Some(i) if i == exp.issuer => {}
        Some(i) => bail!("id_token iss {i:?} is not the issuer {:?}", exp.issuer),
        None => bail!("id_token has no iss"),
    }
    // aud / azp
    let auds: Vec<String> = match jwt.claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| anyhow!("id_token aud array holds a non-string"))
            })
            .collect::<Result<_>>()?,
        Some(v) => bail!("id_token aud must be a string or an array, got {v}"),
        None => bail!("id_token has no aud"),
    };
    if !auds.iter().any(|a| a == exp.client_id) {
        bail!(
            "id_token aud {auds:?} does not contain the client_id {:?}",
            exp.client_id
        );
    }
    if let Some(azp) = jwt.claims.get("azp") {
        if azp.as_str() != Some(exp.client_id) {
            bail!(
                "id_token azp {azp} is not the client_id {:?}",
                exp.client_id
            );
        }
    } else if auds.len() > 1 {
        rep.warn("id_token has several audiences but no azp (OIDC Core 2)");
    }
    // exp
    let e = check_num_claim(&jwt, "exp", what)?.ok_or_else(|| anyhow!("id_token has no exp"))?;
    if e < t - SKEW {
        bail!("id_token has expired (exp {e}, now {t:.0})");
    }
    if e > t + 50.0 * 365.25 * 86400.0 {
        bail!("id_token exp {e} is more than 50 years ahead (milliseconds?)");
    }
    // iat
    let i = check_num_claim(&jwt, "iat", what)?.ok_or_else(|| anyhow!("id_token has no iat"))?;
    if i > t + SKEW {
        bail!("id_token iat {i} is in the future (now {t:.0})");
    }
    if i < t - SKEW {
        bail!("id_token iat {i} is more than 5 minutes in the past (now {t:.0})");
    }
    if let Some(nbf) = check_num_claim(&jwt, "nbf", what)?
        && nbf > t + SKEW
    {
        rep.note(format!("id_token nbf {nbf} is in the future"));
    }
    // auth_time
    if let Some(at) = check_num_claim(&jwt, "auth_time", what)? {
        if at > t + SKEW {
            bail!("id_token auth_time {at} is in the future");
        }
        if at < t - 365.25 * 86400.0 {
            bail!("id_token auth_time {at} is more than a year old");
        }
    }
    // acr
    if let Some(acr) = jwt.claims.get("acr") {
        match acr.as_str() {
            Some(s) if !s.is_empty() => {}
            _ => bail!("id_token acr must be a non-empty string, got {acr}"),
        }
    }
    // nonce
    match (exp.nonce, jwt.claims.get("nonce")) {
        (NonceRule::Exact(n), Some(v)) if v.as_str() == Some(n) => {}
        (NonceRule::Exact(n), Some(v)) => bail!("id_token nonce {v} is not the request's {n:?}"),
        (NonceRule::Exact(_), None) => bail!("id_token has no nonce although one was sent"),
        (NonceRule::Absent, Some(v)) => bail!("id_token has a nonce {v} although none was sent"),
        (NonceRule::Absent, None) | (NonceRule::Any, _) => {}
    }
    // sub and standard claims (protocol claims removed first)
    check_sub(jwt.claims.get("sub"), what)?;
    let mut std_claims = jwt.claims.clone();
    for c in [
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "azp",
        "c_hash",
        "at_hash",
        "s_hash",
        "jti",
        "nbf",
        "verified_claims",
    ] {
        std_claims.remove(c);
    }
    check_standard_claims(&std_claims, what)?;
    // at_hash / c_hash: optional at the token endpoint, but correct if present.
    for (claim, value) in [("at_hash", exp.access_token), ("c_hash", exp.code)] {
        if let Some(h) = jwt.claims.get(claim) {
            let h = h
                .as_str()
                .ok_or_else(|| anyhow!("id_token {claim} must be a string"))?;
            if let Some(v) = value {
                let want = half_hash(jwt.alg(), v)?;
                if h != want {
                    bail!("id_token {claim} {h:?} does not match (expected {want:?})");
                }
            }
        }
    }
    // EnsureIdTokenDoesNotContainNonRequestedClaims (WARNING)
    let mut allowed: BTreeSet<&str> = ID_TOKEN_PROTOCOL_CLAIMS.iter().copied().collect();
    for s in exp.scopes {
        allowed.extend(scope_claims(s).iter().copied());
    }
    let extra: Vec<&str> = jwt
        .claims
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .collect();
    if !extra.is_empty() {
        rep.warn(format!(
            "id_token contains claims that were not requested: {}",
            extra.join(", ")
        ));
    }
    Ok(jwt)
}

// ---------------------------------------------------------------------------
// UserInfo (§2.C)

/// 200 + application/json + claim types + sub equal to the id_token's.
pub fn check_userinfo(
    resp: &HttpResp,
    id_sub: &str,
    scopes: &[String],
    rep: &mut Report,
) -> Result<Map<String, Value>> {
    if resp.status != 200 {
        bail!(
            "userinfo returned HTTP {} (expected 200): {}",
            resp.status,
            resp.snippet()
        );
    }
    if resp.mime() != "application/json" {
        bail!(
            "userinfo content-type is {:?}, expected application/json",
            resp.header(header::CONTENT_TYPE).unwrap_or_default()
        );
    }
    let obj = resp.json_object().context("userinfo")?;
    let sub = check_sub(obj.get("sub"), "userinfo")?;
    check_standard_claims(&obj, "userinfo")?;
    if sub != id_sub {
        bail!("userinfo sub {sub:?} differs from the id_token sub {id_sub:?}");
    }
    for s in scopes {
        let missing: Vec<&str> = scope_claims(s)
            .iter()
            .copied()
            .filter(|c| !obj.contains_key(*c))
            .collect();
        if !missing.is_empty() {
            rep.warn(format!(
                "userinfo lacks claims of scope {s}: {}",
                missing.join(", ")
            ));
        }
    }
    Ok(obj)
}

// ---------------------------------------------------------------------------
// JWKS (§2.D)

const REGISTERED_ALGS: &[&str] = &[
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS384",
    "RS512",
    "ES256",
    "ES384",
    "ES512",
    "ES256K",
    "PS256",
    "PS384",
    "PS512",
    "EdDSA",
    "Ed25519",
    "Ed448",
    "ML-DSA-44",
    "ML-DSA-65",
    "ML-DSA-87",
    "none",
    "RSA1_5",
    "RSA-OAEP",
    "RSA-OAEP-256",
    "RSA-OAEP-384",
    "RSA-OAEP-512",
    "A128KW",
    "A192KW",
    "A256KW",
    "dir",
    "ECDH-ES",
    "ECDH-ES+A128KW",
    "ECDH-ES+A192KW",
    "ECDH-ES+A256KW",
    "A128GCMKW",
    "A192GCMKW",
    "A256GCMKW",
    "PBES2-HS256+A128KW",
    "PBES2-HS384+A192KW",
    "PBES2-HS512+A256KW",
];

const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// `ValidateJwksSequence` + `CheckForKeyIdInServerJWKs` +
/// `CheckDistinctKeyIdValueInServerJWKs`.
pub fn check_jwks(jwks: &Value, rep: &mut Report) -> Result<()> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("JWKS has no keys array"))?;
    if keys.is_empty() {
        bail!("JWKS keys array is empty");
    }
    let mut kids = BTreeSet::new();
    for (n, key) in keys.iter().enumerate() {
        let k = key
            .as_object()
            .ok_or_else(|| anyhow!("JWKS key #{n} is not an object"))?;
        let kty = str_of(k, "kty").ok_or_else(|| anyhow!("JWKS key #{n} has no kty"))?;
        if kty == "oct" {
            bail!("JWKS key #{n} is a symmetric (oct) key");
        }
        if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| k.contains_key(**m)) {
            bail!("JWKS key #{n} publishes private key material ({m})");
        }
        let required: &[&str] = match kty {
            "RSA" => &["n", "e"],
            "EC" => &["crv", "x", "y"],
            "OKP" => &["crv", "x"],
            other => bail!("JWKS key #{n} has unsupported kty {other:?}"),
        };
        for m in required {
            let v = str_of(k, m).ok_or_else(|| anyhow!("JWKS key #{n} ({kty}) lacks {m}"))?;
            if *m != "crv" && !is_b64url(v) {
                bail!("JWKS key #{n} member {m} is not unpadded base64url");
            }
        }
        if let Some(crv) = str_of(k, "crv") {
            let ok = match kty {
                "EC" => ["P-256", "P-384", "P-521", "secp256k1"].contains(&crv),
                _ => ["Ed25519", "Ed448", "X25519", "X448"].contains(&crv),
            };
            if !ok {
                bail!("JWKS key #{n} has unsupported curve {crv:?}");
            }
        }
        if let Some(alg) = k.get("alg") {
            match alg.as_str() {
                Some(a) if REGISTERED_ALGS.contains(&a) => {}
                _ => bail!("JWKS key #{n} alg {alg} is not a registered algorithm name"),
            }
        }
        match str_of(k, "kid") {
            Some(kid) if !kid.trim().is_empty() => {
                if !kids.insert(kid.to_string()) {
                    bail!("JWKS kid {kid:?} is used by more than one key");
                }
            }
            _ => bail!("JWKS key #{n} has no (or a blank) kid"),
        }
        if Jwk::from_map(k.clone()).is_err() {
            rep.warn(format!("JWKS key #{n} cannot be parsed as a usable key"));
        }
    }
    Ok(())
}

/// Keys usable for signature verification, as (kid, canonical key JSON).
pub fn signing_keys(jwks: &Value) -> Vec<(String, String)> {
    jwks_keys(jwks)
        .into_iter()
        .filter(|k| str_of(k, "use").is_none_or(|u| u == "sig"))
        .filter(|k| matches!(str_of(k, "kty"), Some("RSA" | "EC" | "OKP")))
        .map(|k| {
            let material: Vec<String> = ["kty", "crv", "n", "e", "x", "y"]
                .iter()
                .filter_map(|m| str_of(k, m).map(|v| format!("{m}={v}")))
                .collect();
            (
                str_of(k, "kid").unwrap_or("").to_string(),
                material.join("&"),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Error responses (§2.E)

fn check_error_code(e: &str, what: &str) -> Result<()> {
    if e.is_empty() {
        bail!("{what} error is empty");
    }
    if e.chars()
        .any(|c| !(c == ' ' || c == '!' || ('#'..='[').contains(&c) || (']'..='~').contains(&c)))
    {
        bail!("{what} error {e:?} has characters outside the RFC 6749 set");
    }
    Ok(())
}

fn check_description_and_uri(
    desc: Option<&str>,
    uri: Option<&str>,
    what: &str,
    rep: &mut Report,
) -> Result<()> {
    if let Some(d) = desc {
        if d.contains(['\r', '\n', '\t']) {
            rep.warn(format!("{what} error_description contains CR, LF or TAB"));
        }
        let ok = |c: char| {
            matches!(c, '\t' | '\n' | '\r' | ' ' | '!')
                || ('#'..='[').contains(&c)
                || (']'..='~').contains(&c)
        };
        if d.is_empty() || !d.chars().all(ok) {
            bail!(
                "{what} error_description {d:?} has characters outside the RFC 6749 set (no \" or \\ or non-ASCII)"
            );
        }
    }
    if let Some(u) = uri {
        let ok = |c: char| c == '!' || ('#'..='[').contains(&c) || (']'..='~').contains(&c);
        if !u.chars().all(ok) || Url::parse(u).is_err() {
            bail!("{what} error_uri {u:?} is not a valid URI of RFC 6749 characters");
        }
    }
    Ok(())
}

fn get<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
    p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

/// The authorization response's `iss` (RFC 9207).
pub fn check_iss_param(
    params: &[(String, String)],
    issuer: &str,
    iss_required: bool,
) -> Result<()> {
    match get(params, "iss") {
        Some(i) if i == issuer => Ok(()),
        Some(i) => bail!("authorization response iss {i:?} is not the issuer {issuer:?}"),
        None if iss_required => bail!(
            "authorization response has no iss although discovery sets authorization_response_iss_parameter_supported"
        ),
        None => Ok(()),
    }
}

/// `performGenericAuthorizationEndpointErrorResponseValidation` for the code
/// flow (query). Returns the error code.
pub fn check_auth_error(
    query: &[(String, String)],
    fragment: &[(String, String)],
    state: Option<&str>,
    issuer: &str,
    iss_required: bool,
    rep: &mut Report,
) -> Result<String> {
    if get(query, "error").is_none() && get(fragment, "error").is_some() {
        bail!("the error came back in the fragment; the code flow returns it in the query");
    }
    let error = get(query, "error")
        .ok_or_else(|| anyhow!("the redirect carries no error"))?
        .to_string();
    check_error_code(&error, "authorization")?;
    if get(query, "code").is_some() || get(fragment, "code").is_some() {
        bail!("the error response ({error}) also carries a code");
    }
    let state_optional = matches!(
        error.as_str(),
        "invalid_request_object" | "invalid_request_uri" | "request_not_supported"
    );
    match (state, get(query, "state")) {
        (Some(s), Some(got)) if got == s => {}
        (Some(s), Some(got)) => bail!("error response state {got:?} is not the request's {s:?}"),
        (Some(_), None) if state_optional => {}
        (Some(_), None) => bail!("error response ({error}) does not echo the state"),
        (None, Some(got)) => rep.warn(format!(
            "error response has a state {got:?} though none was sent"
        )),
        (None, None) => {}
    }
    check_iss_param(query, issuer, iss_required)?;
    let allowed = [
        "error",
        "error_description",
        "error_uri",
        "state",
        "session_state",
        "iss",
    ];
    let extra: Vec<&str> = query
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !allowed.contains(k))
        .collect();
    if !extra.is_empty() {
        rep.warn(format!(
            "error response has unexpected parameters: {}",
            extra.join(", ")
        ));
    }
    check_description_and_uri(
        get(query, "error_description"),
        get(query, "error_uri"),
        "authorization",
        rep,
    )?;
    Ok(error)
}

/// Token endpoint error: exactly 400, JSON, the expected error code.
pub fn check_token_error(resp: &HttpResp, expected: &str, rep: &mut Report) -> Result<()> {
    if resp.status == 200 {
        bail!("token endpoint returned HTTP 200 (expected 400 {expected})");
    }
    if resp.status != 400 {
        bail!(
            "token endpoint returned HTTP {} (expected 400 {expected}): {}",
            resp.status,
            resp.snippet()
        );
    }
    if resp.mime() != "application/json" {
        bail!(
            "token error content-type is {:?}, expected application/json",
            resp.header(header::CONTENT_TYPE).unwrap_or_default()
        );
    }
    let obj = resp.json_object().context("token error")?;
    let err = str_of(&obj, "error").ok_or_else(|| anyhow!("token error response has no error"))?;
    check_error_code(err, "token")?;
    if err != expected {
        bail!("token endpoint error is {err:?}, expected {expected:?}");
    }
    check_description_and_uri(
        str_of(&obj, "error_description"),
        str_of(&obj, "error_uri"),
        "token",
        rep,
    )
}

// ---------------------------------------------------------------------------
// Token endpoint success (§0 step 4, §2.B)

/// 200, no error, access_token + token_type, expires_in rules, id_token present.
pub fn check_token_success(
    resp: &HttpResp,
    rep: &mut Report,
    warn_missing_expires: bool,
) -> Result<Map<String, Value>> {
    if resp.status != 200 {
        bail!(
            "token endpoint returned HTTP {} (expected 200): {}",
            resp.status,
            resp.snippet()
        );
    }
    let obj = resp.json_object().context("token response")?;
    if let Some(e) = obj.get("error") {
        bail!("token response carries error {e}");
    }
    match obj.get("access_token").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => {}
        _ => bail!("token response has no access_token"),
    }
    match obj.get("token_type").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => {}
        _ => bail!("token response has no token_type"),
    }
    check_expires_in(&obj, rep, warn_missing_expires)?;
    if obj.get("id_token").and_then(Value::as_str).is_none() {
        bail!("token response has no id_token");
    }
    if !resp
        .header(header::CACHE_CONTROL)
        .unwrap_or_default()
        .to_ascii_lowercase()
        .contains("no-store")
    {
        rep.warn("token response lacks Cache-Control: no-store (RFC 6749 5.1)");
    }
    Ok(obj)
}

pub fn check_expires_in(
    obj: &Map<String, Value>,
    rep: &mut Report,
    warn_missing: bool,
) -> Result<()> {
    match obj.get("expires_in") {
        None => {
            if warn_missing {
                rep.warn("token response has no expires_in");
            }
        }
        Some(v) => {
            let n = v
                .as_f64()
                .ok_or_else(|| anyhow!("expires_in must be a number, got {v}"))?;
            if n <= 0.0 || n > 31_536_000.0 {
                bail!("expires_in {n} is not a positive number of at most one year");
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Discovery (§3)

#[derive(Clone, Copy, PartialEq)]
enum Ty {
    Str,
    StrArr,
    Bool,
    Obj,
}

/// Metadata names known from the IANA OAuth Authorization Server Metadata
/// registry, OIDC Discovery and the logout/session specs, with their types.
const KNOWN_METADATA: &[(&str, Ty)] = &[
    ("issuer", Ty::Str),
    ("authorization_endpoint", Ty::Str),
    ("token_endpoint", Ty::Str),
    ("jwks_uri", Ty::Str),
    ("registration_endpoint", Ty::Str),
    ("userinfo_endpoint", Ty::Str),
    ("scopes_supported", Ty::StrArr),
    ("response_types_supported", Ty::StrArr),
    ("response_modes_supported", Ty::StrArr),
    ("grant_types_supported", Ty::StrArr),
    ("acr_values_supported", Ty::StrArr),
    ("subject_types_supported", Ty::StrArr),
    ("id_token_signing_alg_values_supported", Ty::StrArr),
    ("id_token_encryption_alg_values_supported", Ty::StrArr),
    ("id_token_encryption_enc_values_supported", Ty::StrArr),
    ("userinfo_signing_alg_values_supported", Ty::StrArr),
    ("userinfo_encryption_alg_values_supported", Ty::StrArr),
    ("userinfo_encryption_enc_values_supported", Ty::StrArr),
    ("request_object_signing_alg_values_supported", Ty::StrArr),
    ("request_object_encryption_alg_values_supported", Ty::StrArr),
    ("request_object_encryption_enc_values_supported", Ty::StrArr),
    ("token_endpoint_auth_methods_supported", Ty::StrArr),
    (
        "token_endpoint_auth_signing_alg_values_supported",
        Ty::StrArr,
    ),
    ("display_values_supported", Ty::StrArr),
    ("claim_types_supported", Ty::StrArr),
    ("claims_supported", Ty::StrArr),
    ("service_documentation", Ty::Str),
    ("claims_locales_supported", Ty::StrArr),
    ("ui_locales_supported", Ty::StrArr),
    ("claims_parameter_supported", Ty::Bool),
    ("request_parameter_supported", Ty::Bool),
    ("request_uri_parameter_supported", Ty::Bool),
    ("require_request_uri_registration", Ty::Bool),
    ("op_policy_uri", Ty::Str),
    ("op_tos_uri", Ty::Str),
    ("revocation_endpoint", Ty::Str),
    ("revocation_endpoint_auth_methods_supported", Ty::StrArr),
    (
        "revocation_endpoint_auth_signing_alg_values_supported",
        Ty::StrArr,
    ),
    ("introspection_endpoint", Ty::Str),
    ("introspection_endpoint_auth_methods_supported", Ty::StrArr),
    (
        "introspection_endpoint_auth_signing_alg_values_supported",
        Ty::StrArr,
    ),
    ("introspection_signing_alg_values_supported", Ty::StrArr),
    ("introspection_encryption_alg_values_supported", Ty::StrArr),
    ("introspection_encryption_enc_values_supported", Ty::StrArr),
    ("code_challenge_methods_supported", Ty::StrArr),
    ("signed_metadata", Ty::Str),
    ("device_authorization_endpoint", Ty::Str),
    ("tls_client_certificate_bound_access_tokens", Ty::Bool),
    ("mtls_endpoint_aliases", Ty::Obj),
    ("nfv_token_signing_alg_values_supported", Ty::StrArr),
    ("nfv_token_encryption_alg_values_supported", Ty::StrArr),
    ("nfv_token_encryption_enc_values_supported", Ty::StrArr),
    ("check_session_iframe", Ty::Str),
    ("end_session_endpoint", Ty::Str),
    ("frontchannel_logout_supported", Ty::Bool),
    ("frontchannel_logout_session_supported", Ty::Bool),
    ("backchannel_logout_supported", Ty::Bool),
    ("backchannel_logout_session_supported", Ty::Bool),
    ("backchannel_token_delivery_modes_supported", Ty::StrArr),
    ("backchannel_authentication_endpoint", Ty::Str),
    (
        "backchannel_authentication_request_signing_alg_values_supported",
        Ty::StrArr,
    ),
    ("backchannel_user_code_parameter_supported", Ty::Bool),
    ("pushed_authorization_request_endpoint", Ty::Str),
    ("require_pushed_authorization_requests", Ty::Bool),
    ("authorization_response_iss_parameter_supported", Ty::Bool),
    ("authorization_signing_alg_values_supported", Ty::StrArr),
    ("authorization_encryption_alg_values_supported", Ty::StrArr),
    ("authorization_encryption_enc_values_supported", Ty::StrArr),
    ("authorization_details_types_supported", Ty::StrArr),
    ("dpop_signing_alg_values_supported", Ty::StrArr),
    ("require_signed_request_object", Ty::Bool),
    ("prompt_values_supported", Ty::StrArr),
    ("client_registration_types_supported", Ty::StrArr),
    ("organization_name", Ty::Str),
    ("federation_registration_endpoint", Ty::Str),
    ("request_authentication_methods_supported", Ty::Obj),
    (
        "request_authentication_signing_alg_values_supported",
        Ty::StrArr,
    ),
    ("verified_claims_supported", Ty::Bool),
    ("trust_frameworks_supported", Ty::StrArr),
    ("evidence_supported", Ty::StrArr),
    ("documents_supported", Ty::StrArr),
    ("documents_methods_supported", Ty::StrArr),
    ("documents_validation_methods_supported", Ty::StrArr),
    ("documents_verification_methods_supported", Ty::StrArr),
    ("id_documents_supported", Ty::StrArr),
    ("id_documents_verification_methods_supported", Ty::StrArr),
    ("electronic_records_supported", Ty::StrArr),
    ("claims_in_verified_claims_supported", Ty::StrArr),
    ("attachments_supported", Ty::StrArr),
    ("digest_algorithms_supported", Ty::StrArr),
    ("authorization_challenge_endpoint", Ty::Str),
    ("protected_resources", Ty::StrArr),
    ("native_authorization_endpoint", Ty::Str),
];

/// RFC 6749 §3.3 scope-token.
fn valid_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c == '!' || ('#'..='[').contains(&c) || (']'..='~').contains(&c))
}

/// BCP 47 syntax (RFC 5646 §2.1, without the registry lookup). Returns
/// Some(canonical casing) if well-formed.
pub fn bcp47(tag: &str) -> Option<String> {
    let parts: Vec<&str> = tag.split('-').collect();
    let alpha = |s: &str, lo: usize, hi: usize| {
        (lo..=hi).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_alphabetic())
    };
    let alnum = |s: &str, lo: usize, hi: usize| {
        (lo..=hi).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_alphanumeric())
    };
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    let first = parts.first()?;
    if first.eq_ignore_ascii_case("x") {
        // Private use only.
        if parts.len() < 2 || !parts[1..].iter().all(|p| alnum(p, 1, 8)) {
            return None;
        }
        return Some(tag.to_ascii_lowercase());
    }
    if !alpha(first, 2, 8) {
        return None;
    }
    out.push(first.to_ascii_lowercase());
    i += 1;
    // extlang (up to three 3-letter subtags after a 2-3 letter language)
    let mut ext = 0;
    while first.len() <= 3 && ext < 3 && i < parts.len() && alpha(parts[i], 3, 3) {
        out.push(parts[i].to_ascii_lowercase());
        i += 1;
        ext += 1;
    }
    if i < parts.len() && alpha(parts[i], 4, 4) {
        let s = parts[i].to_ascii_lowercase();
        let mut c = s.chars();
        let title: String = c
            .next()
            .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
            .unwrap_or_default();
        out.push(title);
        i += 1;
    }
    if i < parts.len()
        && (alpha(parts[i], 2, 2)
            || (parts[i].len() == 3 && parts[i].bytes().all(|c| c.is_ascii_digit())))
    {
        out.push(parts[i].to_ascii_uppercase());
        i += 1;
    }
    while i < parts.len() {
        let p = parts[i];
        let variant =
            alnum(p, 5, 8) || (p.len() == 4 && p.as_bytes()[0].is_ascii_digit() && alnum(p, 4, 4));
        if variant {
            out.push(p.to_ascii_lowercase());
            i += 1;
            continue;
        }
        if p.len() == 1 && p.as_bytes()[0].is_ascii_alphanumeric() {
            let private = p.eq_ignore_ascii_case("x");
            out.push(p.to_ascii_lowercase());
            i += 1;
            let (lo, hi) = if private { (1, 8) } else { (2, 8) };
            let start = i;
            while i < parts.len() && alnum(parts[i], lo, hi) && (private || parts[i].len() > 1) {
                out.push(parts[i].to_ascii_lowercase());
                i += 1;
            }
            if i == start {
                return None;
            }
            continue;
        }
        return None;
    }
    Some(out.join("-"))
}

fn https_url(v: &str) -> Result<Url> {
    let u = Url::parse(v).map_err(|e| anyhow!("{v:?} is not a URL ({e})"))?;
    if u.scheme() != "https" {
        bail!("{v:?} is not https");
    }
    if u.host_str().is_none_or(str::is_empty) {
        bail!("{v:?} has no host");
    }
    Ok(u)
}

/// All the §3 metadata rules. Collects every failure before returning.
pub fn check_discovery(
    discovery_url: &str,
    disc: &Map<String, Value>,
    rep: &mut Report,
) -> Result<()> {
    let mut fails: Vec<String> = Vec::new();
    let mut fail = |s: String| fails.push(s);

    // CheckDiscEndpointDiscoveryUrl
    match https_url(discovery_url) {
        Ok(u) if u.path().ends_with("/.well-known/openid-configuration") => {}
        Ok(_) => fail(format!(
            "discovery URL {discovery_url} does not end with /.well-known/openid-configuration"
        )),
        Err(e) => fail(format!("discovery URL: {e}")),
    }
    // Schema types and unknown members.
    let mut unknown = Vec::new();
    for (k, v) in disc {
        match KNOWN_METADATA.iter().find(|(n, _)| n == k) {
            None => unknown.push(k.as_str()),
            Some((_, ty)) => {
                let ok = match ty {
                    Ty::Str => v.is_string(),
                    Ty::Bool => v.is_boolean(),
                    Ty::Obj => v.is_object(),
                    Ty::StrArr => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
                };
                if !ok {
                    let want = match ty {
                        Ty::Str => "a string",
                        Ty::Bool => "a boolean",
                        Ty::Obj => "an object",
                        Ty::StrArr => "an array of strings",
                    };
                    fail(format!("metadata {k} must be {want}, got {v}"));
                }
            }
        }
    }
    if !unknown.is_empty() {
        rep.warn(format!(
            "discovery has metadata not in the known registries: {}",
            unknown.join(", ")
        ));
    }
    let arr = |k: &str| -> Option<Vec<String>> {
        disc.get(k).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
    };
    // issuer
    match str_of(disc, "issuer") {
        None => fail("discovery has no issuer".into()),
        Some(iss) => {
            let base = discovery_url
                .strip_suffix(".well-known/openid-configuration")
                .unwrap_or(discovery_url);
            if iss.trim_end_matches('/') != base.trim_end_matches('/') {
                fail(format!(
                    "issuer {iss:?} does not match the discovery URL {discovery_url:?}"
                ));
            }
            match https_url(iss) {
                Err(e) => fail(format!("issuer: {e}")),
                Ok(u) => {
                    if u.query().is_some() || u.fragment().is_some() {
                        fail(format!("issuer {iss:?} has a query or fragment"));
                    }
                    if !u.username().is_empty() || u.password().is_some() {
                        fail(format!("issuer {iss:?} has userinfo"));
                    }
                }
            }
        }
    }
    // response_types_supported
    match arr("response_types_supported") {
        None => fail("response_types_supported is missing".into()),
        Some(rts) => {
            let norm = |s: &str| {
                let mut v: Vec<&str> = s.split(' ').filter(|x| !x.is_empty()).collect();
                v.sort_unstable();
                v.join(" ")
            };
            let wanted = [
                "code",
                "code id_token",
                "id_token",
                "id_token token",
                "code id_token token",
                "code token",
            ];
            if !rts.iter().any(|r| wanted.contains(&norm(r).as_str())) {
                fail(format!(
                    "response_types_supported {rts:?} has no OIDC response type"
                ));
            }
        }
    }
    match arr("subject_types_supported") {
        Some(s) if s.iter().any(|x| x == "public" || x == "pairwise") => {}
        _ => fail("subject_types_supported must contain public or pairwise".into()),
    }
    match arr("id_token_signing_alg_values_supported") {
        Some(a) if a.iter().any(|x| x == "RS256") => {}
        _ => fail("id_token_signing_alg_values_supported must contain RS256".into()),
    }
    for k in ["authorization_endpoint", "token_endpoint", "jwks_uri"] {
        if str_of(disc, k).is_none() {
            fail(format!("{k} is missing"));
        }
    }
    if !disc.contains_key("userinfo_endpoint") {
        rep.warn("discovery has no userinfo_endpoint");
    }
    // Every *_endpoint (and the other URLs) must be https.
    for (k, v) in disc {
        if k.ends_with("_endpoint") || k == "jwks_uri" || k == "check_session_iframe" {
            match v.as_str() {
                Some(s) => {
                    if let Err(e) = https_url(s) {
                        fail(format!("{k}: {e}"));
                    }
                }
                None => fail(format!("{k} is not a string")),
            }
        }
    }
    if let Some(a) = arr("request_object_signing_alg_values_supported")
        && !a.iter().any(|x| x == "RS256")
    {
        rep.warn("request_object_signing_alg_values_supported does not contain RS256");
    }
    if arr("claims_supported").is_none() {
        rep.warn("discovery has no claims_supported");
    }
    if let Some(g) = disc.get("grant_types_supported")
        && g.as_array().is_none_or(Vec::is_empty)
    {
        fail("grant_types_supported must be a non-empty array".into());
    }
    match arr("scopes_supported") {
        None => rep.warn("discovery has no scopes_supported"),
        Some(s) => {
            if !s.iter().any(|x| x == "openid") {
                fail("scopes_supported does not contain openid".into());
            }
            if let Some(bad) = s.iter().find(|x| !valid_scope_token(x)) {
                fail(format!(
                    "scopes_supported entry {bad:?} is not a valid scope-token"
                ));
            }
        }
    }
    for k in ["ui_locales_supported", "claims_locales_supported"] {
        for tag in arr(k).unwrap_or_default() {
            match bcp47(&tag) {
                None => fail(format!("{k} entry {tag:?} is not a BCP 47 language tag")),
                Some(c) if c != tag => rep.warn(format!(
                    "{k} entry {tag:?} is not in canonical case ({c:?})"
                )),
                Some(_) => {}
            }
        }
    }
    if let Some(m) = arr("code_challenge_methods_supported")
        && !m.is_empty()
        && !m.iter().any(|x| x == "S256" || x == "plain")
    {
        fail("code_challenge_methods_supported contains neither S256 nor plain".into());
    }
    if fails.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(fails.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_and_tags() {
        assert!(entropy_bits("aaaaaaaaaaaaaaaaaaaaaa") < 1.0);
        assert!(check_secret_strength("abcdefghijklmnopqrstuvwxyz012345", "x", true).is_ok());
        assert!(check_secret_strength("abc", "x", true).is_err());
        assert_eq!(bcp47("se").as_deref(), Some("se"));
        assert_eq!(bcp47("en-us").as_deref(), Some("en-US"));
        assert_eq!(bcp47("zh-hant-TW").as_deref(), Some("zh-Hant-TW"));
        assert!(bcp47("e").is_none());
        assert!(bcp47("en_US").is_none());
        assert!(valid_birthdate("1990-05-01"));
        assert!(valid_birthdate("0000-05-01"));
        assert!(!valid_birthdate("90-05-01"));
        // RFC 7636 / OIDC example: at_hash of the OIDC Core A.4 access token.
        assert_eq!(
            half_hash("RS256", "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y").ok(),
            Some("77QmUPtjPfzWtF2AnpK9RQ".to_string())
        );
    }
}
