//! Changing the account's email address (issue 3), shared by `POST
//! /api/auth/change-email` and the hosted page `/account/email`.
//!
//! The new address is proven before the switch: [`request`] mails it a single-use
//! `ChangeEmail` link; [`confirm`] spends that link and switches in one transaction,
//! and mails the OLD address a notice with a `RevertEmail` link, valid
//! `email_change.revert_window`; [`revert`] spends that link, restores the old address
//! and signs the account out everywhere, since whoever changed it may have taken the
//! account over. Better Auth's `change-email` (routes/update-user.ts) mails the
//! confirmation to the current address and reuses `verify-email`; our links only ever
//! arrive by mail, so their paths are ours (`/api/auth/change-email/confirm`,
//! `/api/auth/change-email/revert`) without any client noticing.

use axum::http::{HeaderMap, header};
use serde_json::{Value, json};

use crate::app::State;
use crate::audit::{self, Event, kind};
use crate::error::Error;
use crate::mail::{self, account_templates};
use crate::store::lifecycle::{self, NewToken, QueuedMail, Switch, SwitchRefused};
use crate::store::users::{self, User};
use crate::store::verifications::{self, Purpose, Rejected};

/// Why a change was not started.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("email change is disabled")]
    Disabled,
    #[error("the new address is the current one")]
    SameEmail,
    #[error(transparent)]
    Internal(#[from] Error),
}

/// Why a mailed link did not work.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Unknown, already used, or issued for another purpose.
    #[error("invalid token")]
    InvalidToken,
    #[error("token expired")]
    Expired,
    /// Another account has the address by now.
    #[error("the address belongs to another account")]
    AddressTaken,
    #[error(transparent)]
    Internal(#[from] Error),
}

impl From<sqlx::Error> for RequestError {
    fn from(e: sqlx::Error) -> Self {
        RequestError::Internal(e.into())
    }
}

impl From<sqlx::Error> for LinkError {
    fn from(e: sqlx::Error) -> Self {
        LinkError::Internal(e.into())
    }
}

fn render_error(e: askama::Error) -> Error {
    Error::internal(format!("mail template: {e}"))
}

/// The locale of mail to `user`: their `locale` claim, else the request's
/// Accept-Language.
pub fn mail_locale(user: &User, headers: &HeaderMap) -> String {
    user.claims
        .get("locale")
        .and_then(Value::as_str)
        .map(String::from)
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        })
        .unwrap_or_default()
}

/// `{issuer}{path}?k=v&...`, the values form-encoded.
pub fn link(state: &State, path: &str, pairs: &[(&str, &str)]) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().filter(|(_, v)| !v.is_empty()))
        .finish();
    state.config.url(&format!("{path}?{q}"))
}

/// Starts a change of `user`'s address to `new_email` (already checked to look like an
/// address). Earlier pending changes are cancelled: only the newest link works. If
/// the address already has an account, the caller gets the same `Ok` (no user
/// enumeration) and the address is mailed a notice that nothing changed instead of a
/// link, so only its owner learns that it is taken.
pub async fn request(
    state: &State,
    user: &User,
    new_email: &str,
    callback_url: Option<&str>,
    locale: &str,
) -> Result<(), RequestError> {
    if !state.config.email_change.enabled {
        return Err(RequestError::Disabled);
    }
    let new_email = users::normalize_email(new_email);
    if new_email == user.email {
        return Err(RequestError::SameEmail);
    }
    let now = state.clock.now();
    let b = &state.config.mail.branding;
    verifications::invalidate_for_user(&state.db, Purpose::ChangeEmail, &user.id, now).await?;
    let msg = if users::by_email(&state.db, &new_email).await?.is_some() {
        account_templates::change_email_taken(b, &new_email, locale).map_err(render_error)?
    } else {
        let data = json!({ "newEmail": new_email, "oldEmail": user.email, "locale": locale });
        let token = verifications::issue(
            &state.db,
            Purpose::ChangeEmail,
            &user.id,
            &data,
            state.config.email_change.token_ttl,
            now,
        )
        .await?;
        let url = link(
            state,
            "/api/auth/change-email/confirm",
            &[
                ("token", &token),
                ("callbackURL", callback_url.unwrap_or("")),
            ],
        );
        account_templates::change_email_verify(b, &new_email, locale, &url).map_err(render_error)?
    };
    mail::enqueue(&state.db, &msg, now).await?;
    let event = Event::here(kind::EMAIL_CHANGE_REQUESTED)
        .user(&user.id)
        .with("new_email", new_email);
    audit::record(state, event).await.map_err(Error::internal)?;
    Ok(())
}

fn rejected(r: Rejected) -> LinkError {
    match r {
        Rejected::Expired => LinkError::Expired,
        Rejected::Unknown | Rejected::Used => LinkError::InvalidToken,
    }
}

fn refused(r: SwitchRefused) -> LinkError {
    match r {
        SwitchRefused::AddressTaken => LinkError::AddressTaken,
        SwitchRefused::TokenUsed | SwitchRefused::NoUser => LinkError::InvalidToken,
    }
}

/// Spends a `ChangeEmail` link: the account takes the new address (verified: the link
/// reached it), `updated_at` moves, with `email_change.revoke_sessions` every other
/// session (all but `keep_sid`, the browser that opened the link) and every token
/// family is revoked, and the old address is mailed the revert link. All in one
/// transaction; a taken address leaves everything as it was.
pub async fn confirm(
    state: &State,
    token: &str,
    keep_sid: Option<&str>,
) -> Result<User, LinkError> {
    let now = state.clock.now();
    let v = verifications::peek(&state.db, Purpose::ChangeEmail, token, now)
        .await?
        .map_err(rejected)?;
    let Some(user) = users::by_id(&state.db, &v.user_id).await? else {
        return Err(LinkError::InvalidToken);
    };
    let Some(new_email) = v.data.get("newEmail").and_then(Value::as_str) else {
        return Err(LinkError::InvalidToken);
    };
    let locale = v.data.get("locale").and_then(Value::as_str).unwrap_or("");
    let cfg = &state.config.email_change;
    let revert_token = crate::crypto::random_token(32);
    let revert_until = now + cfg.revert_window;
    let revert_url = link(
        state,
        "/api/auth/change-email/revert",
        &[("token", &revert_token)],
    );
    let msg = account_templates::email_changed(
        &state.config.mail.branding,
        &user.email,
        locale,
        new_email,
        &revert_url,
        revert_until,
    )
    .map_err(render_error)?;
    let mail_id = uuid::Uuid::now_v7().to_string();
    let revert_data = json!({
        "oldEmail": user.email,
        "oldEmailVerified": user.email_verified,
        "newEmail": new_email,
    });
    lifecycle::switch_email(
        &state.db,
        &Switch {
            spend: (token, Purpose::ChangeEmail),
            user_id: &user.id,
            email: new_email,
            email_verified: true,
            revoke: cfg.revoke_sessions,
            keep_sid,
            invalidate: &[],
            issue: Some(NewToken {
                token: &revert_token,
                purpose: Purpose::RevertEmail,
                data: &revert_data,
                expires_at: revert_until,
            }),
            // The notice carries the revert link; `alerts.email_changed` can turn it off.
            mail: state.config.alerts.email_changed.then_some(QueuedMail {
                id: &mail_id,
                msg: &msg,
            }),
            event: Some(audit::pending(
                state,
                Event::here(kind::EMAIL_CHANGED)
                    .user(&user.id)
                    .with("old_email", user.email.clone())
                    .with("new_email", new_email)
                    .with("sessions_revoked", cfg.revoke_sessions),
            )),
        },
        now,
    )
    .await?
    .map_err(refused)?;
    tracing::info!(user = %user.id, "email address changed");
    users::by_id(&state.db, &user.id)
        .await?
        .ok_or(LinkError::InvalidToken)
}

/// Spends a `RevertEmail` link: the old address comes back (if no other account took
/// it meanwhile), every session, token family and access token of the account is
/// revoked, and pending changes and other revert links die with it (a revert link
/// mailed to an intruder's address must not undo this one).
pub async fn revert(state: &State, token: &str) -> Result<User, LinkError> {
    let now = state.clock.now();
    let v = verifications::peek(&state.db, Purpose::RevertEmail, token, now)
        .await?
        .map_err(rejected)?;
    let Some(old) = v.data.get("oldEmail").and_then(Value::as_str) else {
        return Err(LinkError::InvalidToken);
    };
    let verified = v
        .data
        .get("oldEmailVerified")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    lifecycle::switch_email(
        &state.db,
        &Switch {
            spend: (token, Purpose::RevertEmail),
            user_id: &v.user_id,
            email: old,
            email_verified: verified,
            revoke: true,
            keep_sid: None,
            invalidate: &[Purpose::ChangeEmail, Purpose::RevertEmail],
            issue: None,
            mail: None,
            event: Some(audit::pending(
                state,
                Event::here(kind::EMAIL_CHANGE_REVERTED)
                    .user(&v.user_id)
                    .with("email", old),
            )),
        },
        now,
    )
    .await?
    .map_err(refused)?;
    tracing::warn!(user = %v.user_id, "email change reverted; all sessions revoked");
    users::by_id(&state.db, &v.user_id)
        .await?
        .ok_or(LinkError::InvalidToken)
}
