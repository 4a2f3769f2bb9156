//! Email verification (issue 3; Better Auth `routes/email-verification.ts`): a mailed,
//! single-use, expiring link that sets `users.email_verified`, which is what the OIDC
//! `email_verified` claim reads. The API (`api::verify`) and the hosted pages
//! (`ui::recovery`, `ui::login`) both come here.

use axum::http::HeaderMap;
use serde_json::json;

use crate::app::State;
use crate::audit::{self, Event, kind};
use crate::error::Error;
use crate::mail;
use crate::mail::templates::{self, Locale};
use crate::store::credentials;
use crate::store::users::{self, User};
use crate::store::verifications::{self, Purpose, Rejected};

/// The link in the mail. With a `callbackURL` (already checked by the caller) it goes
/// through `GET /api/auth/verify-email`, which redirects there, as Better Auth's does;
/// without one, to the hosted result page `/verify-email`.
pub fn link(state: &State, token: &str, callback: Option<&str>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("token", token);
    match callback.filter(|c| !c.is_empty()) {
        Some(c) => {
            q.append_pair("callbackURL", c);
            format!(
                "{}?{}",
                state.config.url("/api/auth/verify-email"),
                q.finish()
            )
        }
        None => format!("{}?{}", state.config.url("/verify-email"), q.finish()),
    }
}

/// Mails the user a verification link for their current address. The request itself
/// only renders a mail, exactly the work of [`same_work_as_send`]; storing the token and
/// queueing the mail (two database writes, several milliseconds on PostgreSQL) run in a
/// task of their own, so the answers that must not tell whether an address has an
/// unverified account also take the same time. Never fails the caller: what cannot be
/// stored or queued is logged (the user can ask for another link).
pub fn send(state: &State, headers: &HeaderMap, user: &User, callback: Option<&str>) {
    let locale = templates::locale_for(&user.claims, headers);
    render_throwaway(state, &user.email, locale);
    let state = state.clone();
    let user = user.clone();
    let callback = callback.map(str::to_string);
    tokio::spawn(async move {
        issue_and_queue(&state, &user, locale, callback.as_deref()).await;
    });
}

async fn issue_and_queue(state: &State, user: &User, locale: Locale, callback: Option<&str>) {
    let cfg = &state.config.email_verification;
    let now = state.clock.now();
    let data = json!({ "email": user.email });
    let token = match verifications::issue(
        &state.db,
        Purpose::VerifyEmail,
        &user.id,
        &data,
        cfg.token_ttl,
        now,
    )
    .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "email verification: cannot store the token");
            return;
        }
    };
    let msg = match templates::verify_email(
        &state.config.mail.branding,
        &user.email,
        locale.as_str(),
        &link(state, &token, callback),
    ) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "email verification: cannot render the mail");
            return;
        }
    };
    if let Err(e) = mail::enqueue(&state.db, &msg, now).await {
        tracing::error!(error = %e, "email verification: cannot queue the mail");
    }
}

fn render_throwaway(state: &State, email: &str, locale: Locale) {
    let token = crate::crypto::random_token(32);
    let _ = templates::verify_email(
        &state.config.mail.branding,
        email,
        locale.as_str(),
        &link(state, &token, None),
    );
}

/// What [`send`] does on the request path, for an address that gets no mail.
pub fn same_work_as_send(state: &State, headers: &HeaderMap, email: &str) {
    let locale = templates::locale_for(&serde_json::Map::new(), headers);
    render_throwaway(state, email, locale);
}

/// After a new account was created (`sendOnSignUp`).
pub async fn after_sign_up(
    state: &State,
    headers: &HeaderMap,
    user: &User,
    callback: Option<&str>,
) {
    if state.config.email_verification.send_on_sign_up && !user.email_verified {
        send(state, headers, user, callback);
    }
}

/// Whether a user whose password was just checked may sign in: with
/// `email_verification.require`, only with a verified address. A refused user gets a
/// fresh link when `send_on_sign_in` is set (Better Auth's `sendOnSignIn`).
pub async fn sign_in_allowed(
    state: &State,
    headers: &HeaderMap,
    user: &User,
    callback: Option<&str>,
) -> bool {
    let cfg = &state.config.email_verification;
    if !cfg.require || user.email_verified {
        return true;
    }
    if cfg.send_on_sign_in {
        send(state, headers, user, callback);
    }
    false
}

/// What the hosted login page says to a user refused by [`sign_in_allowed`].
pub fn not_verified_message(state: &State) -> &'static str {
    if state.config.email_verification.send_on_sign_in {
        "Please confirm your email address first. We have sent you a new link."
    } else {
        "Please confirm your email address first, with the link we sent you."
    }
}

/// Spends a verification token and marks the address verified; returns the updated
/// user. A token issued for an address the account no longer has is refused
/// (`Unknown`): it proves nothing about the current one.
pub async fn verify(state: &State, token: &str) -> Result<Result<User, Rejected>, Error> {
    let now = state.clock.now();
    let v = match verifications::peek(&state.db, Purpose::VerifyEmail, token, now).await? {
        Ok(v) => v,
        Err(r) => return Ok(Err(r)),
    };
    let Some(user) = users::by_id(&state.db, &v.user_id).await? else {
        return Ok(Err(Rejected::Unknown));
    };
    if v.data.get("email").and_then(|e| e.as_str()) != Some(user.email.as_str()) {
        return Ok(Err(Rejected::Unknown));
    }
    let event = audit::pending(
        state,
        Event::here(kind::EMAIL_VERIFIED)
            .user(&user.id)
            .with("email", user.email.clone()),
    );
    if !credentials::verify_email(&state.db, &user.id, token, now, event).await? {
        return Ok(Err(Rejected::Used));
    }
    Ok(Ok(User {
        email_verified: true,
        updated_at: now,
        ..user
    }))
}
