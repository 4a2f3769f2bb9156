//! Password changes by every route (reset link, `/api/auth/change-password`, the hosted
//! reset page) go through [`set_password`]: the new hash, the end of every open reset
//! link (issue 3), the optional revocation of sessions and refresh tokens, and the
//! "your password was changed" mail. Also the reset-link flow itself (Better Auth
//! `routes/password.ts`: `requestPasswordReset`, `resetPassword`).

use axum::http::HeaderMap;
use serde_json::json;

use crate::app::State;
use crate::audit::{self, Event, kind};
use crate::crypto;
use crate::error::Error;
use crate::mail;
use crate::mail::templates::{self, Locale};
use crate::store::credentials::{self, Revoke};
use crate::store::users::{self, User};
use crate::store::verifications::{self, Purpose, Rejected, Verification};

/// Sets `new_hash` as the user's password (see the module doc). With `reset_token`,
/// that token is spent in the same transaction and must still be open: `false` (and
/// nothing written) otherwise. The mail is queued after the commit and never fails the
/// change.
pub async fn set_password(
    state: &State,
    headers: &HeaderMap,
    user: &User,
    new_hash: &str,
    reset_token: Option<&str>,
    revoke: Revoke<'_>,
) -> Result<bool, Error> {
    let now = state.clock.now();
    // A reset proves control of the mailbox, not knowledge of the old password: two kinds.
    let k = if reset_token.is_some() {
        kind::PASSWORD_RESET
    } else {
        kind::PASSWORD_CHANGED
    };
    let event = audit::pending(state, Event::here(k).user(&user.id));
    if !credentials::set_password(
        &state.db,
        &user.id,
        new_hash,
        reset_token,
        revoke,
        now,
        event,
    )
    .await?
    {
        return Ok(false);
    }
    if state.config.alerts.password_changed {
        notify_changed(state, headers, user, now).await;
    }
    Ok(true)
}

async fn notify_changed(state: &State, headers: &HeaderMap, user: &User, now: i64) {
    let locale = templates::locale_for(&user.claims, headers);
    let msg = match templates::password_changed(
        &state.config.mail.branding,
        &user.email,
        locale.as_str(),
        &state.config.url("/forgot-password"),
    ) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "password change: cannot render the notice");
            return;
        }
    };
    if let Err(e) = mail::enqueue(&state.db, &msg, now).await {
        tracing::error!(error = %e, "password change: cannot queue the notice");
    }
}

/// The link in a reset mail: Better Auth's `{baseURL}/reset-password/{token}` callback,
/// with `callbackURL` = the request's `redirectTo` (already checked by the caller);
/// without one it leads on to the hosted reset page.
pub fn reset_link(state: &State, token: &str, redirect_to: Option<&str>) -> String {
    let base = state
        .config
        .url(&format!("/api/auth/reset-password/{token}"));
    match redirect_to.filter(|r| !r.is_empty()) {
        Some(r) => {
            let q: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("callbackURL", r)
                .finish();
            format!("{base}?{q}")
        }
        None => base,
    }
}

/// Mails a reset link if `email` has an account; otherwise sends nothing. The caller
/// answers both alike (no user enumeration), and they cost the same: the request path
/// does one lookup and renders one mail in both cases, while for a real account the two
/// writes (token, outbox row) run in a task of their own. Failures to store or queue
/// are logged, never reported, for the same reason.
pub async fn request_reset(
    state: &State,
    headers: &HeaderMap,
    email: &str,
    redirect_to: Option<&str>,
) -> Result<(), Error> {
    let user = users::by_email(&state.db, email).await?;
    let (to, claims) = match &user {
        Some(u) => (u.email.clone(), u.claims.clone()),
        None => (users::normalize_email(email), serde_json::Map::new()),
    };
    let locale = templates::locale_for(&claims, headers);
    // The work of the real mail, with a token that is never stored.
    let _ = render_reset(state, &to, locale, &crypto::random_token(32), redirect_to);
    if let Some(u) = user {
        let state = state.clone();
        let redirect_to = redirect_to.map(str::to_string);
        tokio::spawn(async move {
            issue_and_queue(&state, &u, locale, redirect_to.as_deref()).await;
        });
    }
    Ok(())
}

fn render_reset(
    state: &State,
    to: &str,
    locale: Locale,
    token: &str,
    redirect_to: Option<&str>,
) -> Result<mail::Message, askama::Error> {
    templates::reset_password(
        &state.config.mail.branding,
        to,
        locale.as_str(),
        &reset_link(state, token, redirect_to),
        state.config.password_reset.token_ttl,
    )
}

async fn issue_and_queue(state: &State, user: &User, locale: Locale, redirect_to: Option<&str>) {
    let now = state.clock.now();
    let token = match verifications::issue(
        &state.db,
        Purpose::ResetPassword,
        &user.id,
        &json!({}),
        state.config.password_reset.token_ttl,
        now,
    )
    .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "password reset: cannot store the token");
            return;
        }
    };
    let msg = match render_reset(state, &user.email, locale, &token, redirect_to) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "password reset: cannot render the mail");
            return;
        }
    };
    if let Err(e) = mail::enqueue(&state.db, &msg, now).await {
        tracing::error!(error = %e, "password reset: cannot queue the mail");
    }
}

/// An open reset token, without spending it (to show the form, or to redirect with it).
pub async fn check_token(
    state: &State,
    token: &str,
) -> Result<Result<Verification, Rejected>, Error> {
    Ok(verifications::peek(&state.db, Purpose::ResetPassword, token, state.clock.now()).await?)
}

/// The address of the account an open reset token belongs to, for the password policy's
/// `forbid_email` (None for a dead token: `reset` refuses it anyway).
pub async fn reset_account_email(state: &State, token: &str) -> Result<Option<String>, Error> {
    let Ok(v) = check_token(state, token).await? else {
        return Ok(None);
    };
    Ok(crate::store::users::by_id(&state.db, &v.user_id)
        .await?
        .map(|u| u.email))
}

/// Sets a new password with a reset token. The caller has checked the password policy.
/// The token is spent and the password set in one transaction; with
/// `password_reset.revoke_sessions` every session and refresh-token family of the user
/// ends too.
pub async fn reset(
    state: &State,
    headers: &HeaderMap,
    token: &str,
    new_password: &str,
) -> Result<Result<(), Rejected>, Error> {
    let v = match check_token(state, token).await? {
        Ok(v) => v,
        Err(r) => return Ok(Err(r)),
    };
    let Some(user) = users::by_id(&state.db, &v.user_id).await? else {
        return Ok(Err(Rejected::Unknown));
    };
    let hash = state
        .hasher
        .hash(new_password)
        .await
        .map_err(Error::internal)?;
    let all = state.config.password_reset.revoke_sessions;
    let revoke = Revoke {
        sessions: all,
        keep_sid: None,
        refresh_tokens: all,
    };
    if set_password(state, headers, &user, &hash, Some(token), revoke).await? {
        Ok(Ok(()))
    } else {
        // Spent or expired between the check and the transaction.
        Ok(Err(Rejected::Used))
    }
}
