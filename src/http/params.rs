//! Request parameters from a query string or an `application/x-www-form-urlencoded`
//! body. RFC 6749 §3.1 and §3.2: parameters sent without a value are treated as omitted,
//! and a parameter MUST NOT be included more than once.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};

use crate::error::OAuthError;

#[derive(Debug, Default, Clone)]
pub struct Params {
    map: HashMap<String, String>,
    /// Every repeated name, first repeat first.
    duplicated: Vec<String>,
    /// Every value of the parameters that may repeat.
    multi: HashMap<String, Vec<String>>,
}

/// Parameters a request may repeat: RFC 8707 §2 `resource`.
const REPEATABLE: [&str; 1] = ["resource"];

impl Params {
    pub fn parse(input: &[u8]) -> Params {
        let mut map = HashMap::new();
        let mut duplicated: Vec<String> = Vec::new();
        let mut multi: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(input) {
            if v.is_empty() {
                continue;
            }
            if REPEATABLE.contains(&k.as_ref()) {
                multi.entry(k.to_string()).or_default().push(v.to_string());
                map.insert(k.to_string(), v.to_string());
                continue;
            }
            if map.insert(k.to_string(), v.to_string()).is_some()
                && !duplicated.iter().any(|d| *d == k)
            {
                duplicated.push(k.to_string());
            }
        }
        Params {
            map,
            duplicated,
            multi,
        }
    }

    /// All values of a repeatable parameter, in order.
    pub fn all(&self, k: &str) -> Vec<&str> {
        self.multi
            .get(k)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.map.get(k).map(String::as_str)
    }

    pub fn has(&self, k: &str) -> bool {
        self.map.contains_key(k)
    }

    pub fn require(&self, k: &str) -> Result<&str, OAuthError> {
        self.get(k)
            .ok_or_else(|| OAuthError::invalid_request(format!("the `{k}` parameter is required")))
    }

    /// RFC 6749 §3.1: fail on a repeated parameter.
    pub fn reject_duplicates(&self) -> Result<(), OAuthError> {
        match self.duplicated.first() {
            Some(k) => Err(OAuthError::invalid_request(format!(
                "the `{k}` parameter is included more than once"
            ))),
            None => Ok(()),
        }
    }

    /// True if `k` was sent more than once.
    pub fn is_duplicated(&self, k: &str) -> bool {
        self.duplicated.iter().any(|d| d == k)
    }

    pub fn insert(&mut self, k: &str, v: &str) {
        self.map.insert(k.into(), v.into());
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.map.iter()
    }
}

/// Accepts only a form-encoded body (RFC 6749 §4.1.3, RFC 7009 §2.1, RFC 7662 §2.1).
pub fn form_body(headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "the request body must be application/x-www-form-urlencoded",
        ));
    }
    Ok(Params::parse(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_omitted_and_repeats_detected() {
        let p = Params::parse(b"a=1&b=&c=x+y&a=2");
        assert!(!p.has("b"));
        assert_eq!(p.get("c"), Some("x y"));
        assert!(p.is_duplicated("a"));
        assert_eq!(p.reject_duplicates().unwrap_err().error, "invalid_request");
    }

    #[test]
    fn resource_may_repeat() {
        let p = Params::parse(b"resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb");
        assert!(p.reject_duplicates().is_ok());
        assert_eq!(p.all("resource"), vec!["https://a", "https://b"]);
    }
}
