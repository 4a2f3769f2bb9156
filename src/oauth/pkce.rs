//! PKCE (RFC 7636).

use crate::crypto;
use crate::error::OAuthError;

/// RFC 7636 §4.1/§4.2: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
fn is_pkce_string(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Validates the challenge at the authorization endpoint. `plain` is refused unless
/// allowed (RFC 9700 §2.1.1); a missing method means `plain` (RFC 7636 §4.3).
pub fn check_challenge(
    challenge: &str,
    method: Option<&str>,
    allow_plain: bool,
) -> Result<String, OAuthError> {
    let method = method.unwrap_or("plain");
    match method {
        "S256" => {}
        "plain" if allow_plain => {}
        "plain" => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method `plain` is not allowed; use S256",
            ));
        }
        other => {
            return Err(OAuthError::invalid_request(format!(
                "code_challenge_method `{other}` is not supported; use S256"
            )));
        }
    }
    if !is_pkce_string(challenge) {
        return Err(OAuthError::invalid_request(
            "code_challenge must be 43 to 128 characters of the RFC 7636 alphabet",
        ));
    }
    Ok(method.to_string())
}

/// RFC 7636 §4.6 at the token endpoint. Without a stored challenge a verifier is refused
/// (RFC 9700 §2.1.1 downgrade protection).
pub fn verify(
    challenge: Option<&str>,
    method: Option<&str>,
    verifier: Option<&str>,
) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "code_verifier sent but the authorization request had no code_challenge",
        )),
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier is required")),
        (Some(c), Some(v)) => {
            if !is_pkce_string(v) {
                return Err(OAuthError::invalid_grant(
                    "code_verifier is malformed (RFC 7636 §4.1)",
                ));
            }
            let computed = match method.unwrap_or("plain") {
                "S256" => crypto::s256(v),
                _ => v.to_string(),
            };
            if crypto::ct_eq(computed.as_bytes(), c.as_bytes()) {
                Ok(())
            } else {
                Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b_example() {
        assert_eq!(crypto::s256(VERIFIER), CHALLENGE);
        assert!(verify(Some(CHALLENGE), Some("S256"), Some(VERIFIER)).is_ok());
    }

    #[test]
    fn wrong_or_missing_verifier_is_invalid_grant() {
        let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx";
        assert_eq!(
            verify(Some(CHALLENGE), Some("S256"), Some(wrong))
                .unwrap_err()
                .error,
            "invalid_grant"
        );
        assert_eq!(
            verify(Some(CHALLENGE), Some("S256"), None)
                .unwrap_err()
                .error,
            "invalid_grant"
        );
        assert_eq!(
            verify(None, None, Some(VERIFIER)).unwrap_err().error,
            "invalid_grant"
        );
        assert_eq!(
            verify(Some(CHALLENGE), Some("S256"), Some("short"))
                .unwrap_err()
                .error,
            "invalid_grant"
        );
    }

    #[test]
    fn plain_refused_unless_allowed() {
        assert_eq!(
            check_challenge(CHALLENGE, Some("plain"), false)
                .unwrap_err()
                .error,
            "invalid_request"
        );
        assert_eq!(
            check_challenge(CHALLENGE, None, false).unwrap_err().error,
            "invalid_request"
        );
        assert!(check_challenge(CHALLENGE, None, true).is_ok());
        assert!(check_challenge(CHALLENGE, Some("S512"), true).is_err());
        assert!(check_challenge("abc", Some("S256"), false).is_err());
    }
}
