//! A user's own security history (`/api/auth/security-events`, the account page's
//! "Security activity"): only events whose subject is the user, without the chain's
//! hashes, each with a readable line.

use crate::app::State;
use crate::http::user_agent;
use crate::store::audit::{self as store, AuditRow, Filter};

use super::kind;

/// Events about `user_id`, newest first, `limit` of them before `before` (a seq).
pub async fn own(
    state: &State,
    user_id: &str,
    limit: i64,
    before: Option<i64>,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    let f = Filter {
        subject: Some(user_id.to_string()),
        before_seq: before,
        limit,
        ..Filter::default()
    };
    store::query(&state.db, &f).await
}

/// What happened, in words a user recognises.
pub fn title(r: &AuditRow) -> &'static str {
    let failed = r.outcome != "success";
    match r.event_type.as_str() {
        kind::SIGN_IN => "Signed in",
        kind::SIGN_IN_FAILED => "Failed sign-in attempt",
        kind::REGISTERED => "Account created",
        kind::EMAIL_VERIFIED => "Email address verified",
        kind::PASSWORD_CHANGED => "Password changed",
        kind::PASSWORD_RESET => "Password reset",
        kind::EMAIL_CHANGE_REQUESTED => "Email change requested",
        kind::EMAIL_CHANGED => "Email address changed",
        kind::EMAIL_CHANGE_REVERTED => "Email change reverted",
        kind::DELETION_SCHEDULED => "Account deletion scheduled",
        kind::DELETION_CANCELLED => "Account deletion cancelled",
        kind::DELETED => "Account deleted",
        kind::UPDATED => "Profile updated",
        kind::MFA_ENROLLED => "Two-factor method added",
        kind::MFA_REMOVED => "Two-factor method removed",
        kind::SESSION_CREATED => "Signed in on a device",
        kind::SESSION_REVOKED => "Signed out",
        kind::ACCOUNT_LOCKED => "Account locked",
        kind::ACCOUNT_UNLOCKED => "Account unlocked",
        kind::REFRESH_TOKEN_REUSED => "Suspicious token reuse: app signed out",
        kind::CODE_REUSED => "Suspicious code reuse: app signed out",
        _ if failed => "Security event (failed)",
        _ => "Security event",
    }
}

/// "Firefox on Linux", from the stored user agent.
pub fn device(r: &AuditRow) -> Option<String> {
    let d = user_agent::parse(r.user_agent.as_deref()?);
    match (d.browser, d.os) {
        (Some(b), Some(o)) => Some(format!("{} on {}", b.name, o.name)),
        (Some(b), None) => Some(b.name.to_string()),
        (None, Some(o)) => Some(o.name.to_string()),
        (None, None) => None,
    }
}

/// "2026-12-01 15:20 UTC".
pub fn when(at: i64) -> String {
    crate::mail::account_templates::when(at)
}

/// "Signed in — Firefox on Linux — 203.0.113.9 — 2026-12-01 15:20 UTC".
pub fn line(r: &AuditRow) -> String {
    let mut parts = vec![title(r).to_string()];
    parts.extend(device(r));
    parts.extend(r.ip.clone());
    parts.push(when(r.at));
    parts.join(" — ")
}
