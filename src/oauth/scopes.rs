//! Scopes (RFC 6749 §3.3): space-delimited, order-insensitive, case-sensitive.

use crate::error::OAuthError;
use crate::store::clients::ClientMetadata;

/// The scopes this server defines (OIDC Core §5.4 and §11).
pub const SUPPORTED: [&str; 6] = [
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
];

/// Splits a scope string; `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn parse(scope: &str) -> Result<Vec<String>, OAuthError> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        if !s
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
        {
            return Err(OAuthError::invalid_scope(format!(
                "`{s}` is not a valid scope token"
            )));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    Ok(out)
}

/// Scopes a client may ask for: its registered `scope`, or every scope we define.
pub fn allowed_for(meta: &ClientMetadata) -> Vec<String> {
    match &meta.scope {
        Some(s) => s
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        None => SUPPORTED.iter().map(|s| s.to_string()).collect(),
    }
}

/// RFC 6749 §3.3: a scope outside what the client may request is `invalid_scope`.
pub fn check_allowed(requested: &[String], meta: &ClientMetadata) -> Result<(), OAuthError> {
    let allowed = allowed_for(meta);
    match requested.iter().find(|s| !allowed.contains(s)) {
        Some(s) => Err(OAuthError::invalid_scope(format!(
            "the scope `{s}` is not allowed for this client"
        ))),
        None => Ok(()),
    }
}

/// What the consent page says a scope means.
pub fn describe(scope: &str) -> &'static str {
    match scope {
        "openid" => "Know who you are (your account identifier)",
        "profile" => "See your name and profile details",
        "email" => "See your email address",
        "address" => "See your postal address",
        "phone" => "See your phone number",
        "offline_access" => "Stay signed in and access your data while you are away",
        _ => "Access an API on your behalf",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_order_insensitive_and_dedups() {
        assert_eq!(
            parse("email  openid email").unwrap(),
            vec!["email", "openid"]
        );
        assert_eq!(parse("a\"b").unwrap_err().error, "invalid_scope");
        assert_eq!(parse("a\\b").unwrap_err().error, "invalid_scope");
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn client_scope_limits_requests() {
        let m = ClientMetadata {
            scope: Some("orders.read".into()),
            ..Default::default()
        };
        assert!(check_allowed(&["orders.read".into()], &m).is_ok());
        assert_eq!(
            check_allowed(&["orders.write".into()], &m)
                .unwrap_err()
                .error,
            "invalid_scope"
        );
        let open = ClientMetadata::default();
        assert!(check_allowed(&["openid".into(), "offline_access".into()], &open).is_ok());
    }
}
