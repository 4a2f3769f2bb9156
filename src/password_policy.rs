//! The password policy (issue 3, `[password_policy]`): length 8–128 characters by
//! default, optional character-class rules, and no email local part inside the
//! password. Better Auth checks only the length (`minPasswordLength`,
//! `maxPasswordLength` in packages/better-auth/src/api/routes/sign-up.ts) and answers
//! `PASSWORD_TOO_SHORT` / `PASSWORD_TOO_LONG`; the extra rules map to its
//! `PASSWORD_TOO_WEAK` (see `api::sign::check_password`, the one entry point of the
//! API). Every route that sets a password goes through `check`.

use crate::config::PasswordPolicyConfig;

/// Why a password is refused. The message names the rule, never the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("Password too short: at least {0} characters")]
    TooShort(usize),
    #[error("Password too long: at most {0} characters")]
    TooLong(usize),
    #[error("Password too weak: {0}")]
    Weak(&'static str),
}

/// A character-class rule: whether it is on, the class, and the message naming it.
type Rule = (bool, fn(char) -> bool, &'static str);

/// The email local parts shorter than this are too common to forbid (`bob`, `me`).
const EMAIL_PART_MIN: usize = 4;

/// Checks `password` against the policy; `email` is the account's address when known
/// (`forbid_email`).
pub fn check(
    policy: &PasswordPolicyConfig,
    password: &str,
    email: Option<&str>,
) -> Result<(), PolicyViolation> {
    length(policy, password)?;
    let rules: [Rule; 4] = [
        (
            policy.require_lowercase,
            char::is_lowercase,
            "it must contain a lower-case letter",
        ),
        (
            policy.require_uppercase,
            char::is_uppercase,
            "it must contain an upper-case letter",
        ),
        (
            policy.require_digit,
            |c| c.is_ascii_digit() || c.is_numeric(),
            "it must contain a digit",
        ),
        (policy.require_symbol, is_symbol, "it must contain a symbol"),
    ];
    for (on, class, rule) in rules {
        if on && !password.chars().any(class) {
            return Err(PolicyViolation::Weak(rule));
        }
    }
    if policy.forbid_email
        && let Some(e) = email
    {
        no_email_part(password, e)?;
    }
    Ok(())
}

/// `min_length ≤ characters ≤ max_length`.
fn length(policy: &PasswordPolicyConfig, password: &str) -> Result<(), PolicyViolation> {
    let n = password.chars().count();
    if n < policy.min_length {
        return Err(PolicyViolation::TooShort(policy.min_length));
    }
    if n > policy.max_length {
        return Err(PolicyViolation::TooLong(policy.max_length));
    }
    Ok(())
}

/// A symbol is what is neither a letter, a digit nor white space (`!`, `€`, `_`).
fn is_symbol(c: char) -> bool {
    !c.is_alphanumeric() && !c.is_whitespace()
}

/// `forbid_email`: the local part of the address (before the last `@`), when it has at
/// least four characters, may not appear in the password, ignoring case.
fn no_email_part(password: &str, email: &str) -> Result<(), PolicyViolation> {
    let local = email.rsplit_once('@').map_or(email, |(l, _)| l).trim();
    if local.chars().count() < EMAIL_PART_MIN {
        return Ok(());
    }
    if password.to_lowercase().contains(&local.to_lowercase()) {
        return Err(PolicyViolation::Weak(
            "it must not contain your email address",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_apply_only_when_enabled() {
        let mut p = PasswordPolicyConfig::default();
        assert_eq!(check(&p, "short", None), Err(PolicyViolation::TooShort(8)));
        assert_eq!(
            check(&p, &"é".repeat(129), None),
            Err(PolicyViolation::TooLong(128))
        );
        assert_eq!(check(&p, &"é".repeat(128), None), Ok(()));
        assert_eq!(check(&p, "alllowercase", None), Ok(()));
        p.require_uppercase = true;
        p.require_digit = true;
        p.require_symbol = true;
        assert!(matches!(
            check(&p, "alllowercase", None),
            Err(PolicyViolation::Weak(r)) if r.contains("upper-case")
        ));
        assert!(matches!(
            check(&p, "Alllowercase", None),
            Err(PolicyViolation::Weak(r)) if r.contains("digit")
        ));
        assert!(matches!(
            check(&p, "Alllowercase1 ", None),
            Err(PolicyViolation::Weak(r)) if r.contains("symbol")
        ));
        assert_eq!(check(&p, "Alllowercase1!", None), Ok(()));
    }

    #[test]
    fn email_local_part_is_forbidden_from_four_characters() {
        let p = PasswordPolicyConfig::default();
        assert!(check(&p, "my-Willow-password", Some("willow@example.com")).is_err());
        assert!(check(&p, "my-bob-password", Some("bob@example.com")).is_ok());
        assert!(check(&p, "my-Willow-password", None).is_ok());
    }
}
