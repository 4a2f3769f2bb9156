//! The breached-password check (issue 4, `[breach]`): Have I Been Pwned's k-anonymity
//! range API (<https://haveibeenpwned.com/API/v3#PwnedPasswords>). Only the first five
//! hex digits of the password's SHA-1 leave the server; the answer lists every known
//! suffix under that prefix as `SUFFIX:COUNT` lines, and the match is made here. With
//! `Add-Padding: true` the service pads the answer with fake suffixes of count 0, so
//! that its size tells an observer nothing; those never count as a match. Better
//! Auth's `haveIBeenPwned` plugin (packages/better-auth/src/plugins/haveibeenpwned)
//! answers a match with `PASSWORD_COMPROMISED`, as `api::sign::breach_error` does.
//!
//! Every route that sets a password calls [`check`] right after the password policy.
//! Neither the password nor its full hash is ever logged.

use std::time::Duration;

use sha1::{Digest, Sha1};

use crate::app::State;
use crate::config::BreachConfig;

/// The most a range answer may weigh (real ones are about 30 KiB with padding).
const MAX_BODY: usize = 1 << 20;

/// Why a password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreachError {
    /// Seen in at least `breach.min_count` breaches.
    #[error("The password has appeared in a data breach; choose another")]
    Compromised,
    /// The service could not answer and `breach.fail_open` is off.
    #[error("The breached-password check is unavailable; try again later")]
    Unavailable,
}

/// Why the service gave no usable answer (logged, never shown).
#[derive(Debug, thiserror::Error)]
enum LookupError {
    #[error("request failed: {0}")]
    Transport(reqwest::Error),
    #[error("status {0}")]
    Status(u16),
    #[error("answer larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("answer has no `SUFFIX:COUNT` line")]
    Malformed,
}

/// Refuses `password` if the range API knows it (see the module doc). Disabled: no
/// request, always `Ok`. Unreachable, slow (`timeout_ms`) or failing service: `Ok` with
/// a warning when `fail_open`, `Unavailable` otherwise.
pub async fn check(state: &State, password: &str) -> Result<(), BreachError> {
    let cfg = &state.config.breach;
    if !cfg.enabled {
        return Ok(());
    }
    let (prefix, suffix) = sha1_split(password);
    match times_seen(&state.http, cfg, &prefix, &suffix).await {
        Ok(n) if n >= cfg.min_count => Err(BreachError::Compromised),
        Ok(_) => Ok(()),
        Err(e) if cfg.fail_open => {
            tracing::warn!(error = %e, "breached-password check unavailable; password allowed (breach.fail_open)");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(error = %e, "breached-password check unavailable; password refused");
            Err(BreachError::Unavailable)
        }
    }
}

/// The upper-case hex SHA-1 of `password`, split into the 5-digit prefix that is sent
/// and the 35-digit suffix that is not.
pub fn sha1_split(password: &str) -> (String, String) {
    let digest = Sha1::digest(password.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02X}")).collect();
    let (p, s) = hex.split_at(5);
    (p.to_string(), s.to_string())
}

/// How often the range API has seen `suffix` under `prefix` (0: never).
async fn times_seen(
    http: &reqwest::Client,
    cfg: &BreachConfig,
    prefix: &str,
    suffix: &str,
) -> Result<u64, LookupError> {
    let url = format!("{}/range/{prefix}", cfg.base_url.trim_end_matches('/'));
    let transport = |e: reqwest::Error| LookupError::Transport(e.without_url());
    let mut resp = http
        .get(url)
        .header("Add-Padding", "true")
        .timeout(Duration::from_millis(cfg.timeout_ms))
        .send()
        .await
        .map_err(transport)?;
    if !resp.status().is_success() {
        return Err(LookupError::Status(resp.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(LookupError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    count_in_range(&String::from_utf8_lossy(&body), suffix)
}

/// The count of `suffix` in a range answer; padding lines (count 0) count as absent.
/// An answer without a single well-formed line is not an answer.
fn count_in_range(body: &str, suffix: &str) -> Result<u64, LookupError> {
    let mut well_formed = false;
    let mut seen = 0;
    for line in body.lines() {
        let Some((s, n)) = line.trim().split_once(':') else {
            continue;
        };
        let Ok(n) = n.trim().parse::<u64>() else {
            continue;
        };
        well_formed = true;
        if s.trim().eq_ignore_ascii_case(suffix) {
            seen = seen.max(n);
        }
    }
    if well_formed {
        Ok(seen)
    } else {
        Err(LookupError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_upper_case_sha1() {
        // SHA-1("password") = 5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8.
        let (p, s) = sha1_split("password");
        assert_eq!(p, "5BAA6");
        assert_eq!(s, "1E4C9B93F3F0682250B6CF8331B7EE68FD8");
    }

    #[test]
    fn counts_matches_and_ignores_padding() {
        let s = "1E4C9B93F3F0682250B6CF8331B7EE68FD8";
        let body = format!("0018A45C4D1DEF81644B54AB7F969B88D65:3\r\n{s}:9545824\r\n");
        assert_eq!(count_in_range(&body, s).ok(), Some(9545824));
        let lower = format!("{}:2\n", s.to_lowercase());
        assert_eq!(count_in_range(&lower, s).ok(), Some(2));
        let padded = format!("0018A45C4D1DEF81644B54AB7F969B88D65:3\r\n{s}:0\r\n");
        assert_eq!(count_in_range(&padded, s).ok(), Some(0));
        assert!(matches!(
            count_in_range("<html>oops</html>", s),
            Err(LookupError::Malformed)
        ));
    }

    #[test]
    fn config_defaults_and_validation() {
        use crate::config::Config;
        let d = Config::from_toml("").expect("defaults");
        assert!(!d.breach.enabled);
        assert_eq!(d.breach.base_url, "https://api.pwnedpasswords.com");
        assert_eq!(d.breach.timeout_ms, 1500);
        assert!(d.breach.fail_open);
        assert_eq!(d.breach.min_count, 1);
        for (toml, field) in [
            ("base_url = \"ftp://x\"", "breach.base_url"),
            ("base_url = \"not a url\"", "breach.base_url"),
            ("timeout_ms = 0", "breach.timeout_ms"),
            ("timeout_ms = 60001", "breach.timeout_ms"),
            ("min_count = 0", "breach.min_count"),
        ] {
            let e = Config::from_toml(&format!("[breach]\n{toml}"))
                .expect_err(toml)
                .to_string();
            assert!(e.contains(field), "{toml}: {e}");
        }
    }
}
