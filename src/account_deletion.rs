//! Deleting an account (issue 3), shared by `POST /api/auth/delete-user`, its mailed
//! callback and the hosted page `/account/delete`.
//!
//! A deletion is confirmed by the password, a fresh session, or a link mailed to the
//! account (`account_deletion.send_verification`: then only by the link). With
//! `account_deletion.grace_period` 0 the account is removed at once; otherwise it is
//! scheduled, every session and token is revoked, and a sign-in before the date
//! cancels it ([`cancel_on_sign_in`]). [`purge_due`], run periodically by
//! [`spawn_purger`], removes the accounts whose date has passed. Removal deletes the
//! personal data (GDPR art. 17) and keeps a record with the `sub` and two times only.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::app::State;
use crate::audit::{self, Actor, Event, kind};
use crate::email_change::link;
use crate::error::Error;
use crate::mail::{Message, account_templates};
use crate::store::lifecycle::{self, Purge, Purged, QueuedMail};
use crate::store::users::User;
use crate::store::verifications::{self, Purpose, Rejected};

/// What became of the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Removed now.
    Deleted,
    /// Removed at this time unless the user signs in before.
    Scheduled(i64),
}

/// Why a mailed deletion link did not work.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("invalid token")]
    InvalidToken,
    #[error("token expired")]
    Expired,
    #[error(transparent)]
    Internal(#[from] Error),
}

impl From<sqlx::Error> for LinkError {
    fn from(e: sqlx::Error) -> Self {
        LinkError::Internal(e.into())
    }
}

fn render_error(e: askama::Error) -> Error {
    Error::internal(format!("mail template: {e}"))
}

fn user_locale(user: &User) -> &str {
    user.claims
        .get("locale")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Mails the deletion link (`DeleteAccount` token, `account_deletion.token_ttl`).
/// `callback_url` (already checked) is where the link's callback redirects after.
pub async fn send_confirmation(
    state: &State,
    user: &User,
    callback_url: Option<&str>,
    locale: &str,
) -> Result<(), Error> {
    let now = state.clock.now();
    let token = verifications::issue(
        &state.db,
        Purpose::DeleteAccount,
        &user.id,
        &json!({}),
        state.config.account_deletion.token_ttl,
        now,
    )
    .await?;
    let url = link(
        state,
        "/api/auth/delete-user/callback",
        &[
            ("token", &token),
            ("callbackURL", callback_url.unwrap_or("")),
        ],
    );
    let msg = account_templates::delete_account_confirm(
        &state.config.mail.branding,
        &user.email,
        locale,
        &url,
    )
    .map_err(render_error)?;
    crate::mail::enqueue(&state.db, &msg, now).await?;
    Ok(())
}

/// Deletes or schedules the deletion of `user`, as `account_deletion.grace_period`
/// says. `spend` is the mailed token that authorises it, spent in the same transaction
/// (`Ok(None)` when it already was).
pub async fn delete_or_schedule(
    state: &State,
    user: &User,
    locale: &str,
    spend: Option<&str>,
) -> Result<Option<Outcome>, Error> {
    let now = state.clock.now();
    let grace = state.config.account_deletion.grace_period;
    let b = &state.config.mail.branding;
    let locale = if locale.is_empty() {
        user_locale(user)
    } else {
        locale
    };
    if grace > 0 {
        let due = lifecycle::deletion_schedule(&state.db, &user.id)
            .await?
            .map_or(now + grace, |(_, due)| due);
        let msg = account_templates::account_deletion_scheduled(b, &user.email, locale, due)
            .map_err(render_error)?;
        let id = uuid::Uuid::now_v7().to_string();
        let mail = QueuedMail { id: &id, msg: &msg };
        let event = audit::pending(
            state,
            Event::here(kind::DELETION_SCHEDULED)
                .user(&user.id)
                .with("due_at", due)
                .with("by_link", spend.is_some()),
        );
        if !lifecycle::schedule_deletion(&state.db, &user.id, due, spend, Some(mail), now, event)
            .await?
        {
            return Ok(None);
        }
        tracing::info!(user = %user.id, due, "account deletion scheduled");
        return Ok(Some(Outcome::Scheduled(due)));
    }
    let msg = account_templates::account_deleted(b, &user.email, locale).map_err(render_error)?;
    let event = Event::here(kind::DELETED).user(&user.id);
    match remove(state, user, now, &msg, spend, event).await? {
        Purged::TokenUsed => Ok(None),
        Purged::Done | Purged::NoUser => Ok(Some(Outcome::Deleted)),
    }
}

async fn remove(
    state: &State,
    user: &User,
    requested_at: i64,
    notice: &Message,
    spend: Option<&str>,
    event: Event,
) -> Result<Purged, Error> {
    let id = uuid::Uuid::now_v7().to_string();
    let r = lifecycle::purge(
        &state.db,
        &Purge {
            user_id: &user.id,
            requested_at,
            notice: Some(QueuedMail {
                id: &id,
                msg: notice,
            }),
            spend,
            event: Some(audit::pending(state, event)),
        },
        state.clock.now(),
    )
    .await?;
    if r == Purged::Done {
        tracing::info!(user = %user.id, "account deleted");
    }
    Ok(r)
}

/// Spends a mailed deletion link and deletes or schedules. `session_user` is the
/// user of the session the request came with, if any: a link of another account is
/// refused then. Unlike Better Auth's `delete-user/callback` a session is not
/// required: the link was issued to a signed-in user and proves the mailbox, and a
/// link opened on another device must still work.
pub async fn confirm_by_token(
    state: &State,
    token: &str,
    session_user: Option<&str>,
) -> Result<Outcome, LinkError> {
    let now = state.clock.now();
    let v = verifications::peek(&state.db, Purpose::DeleteAccount, token, now)
        .await?
        .map_err(|r| match r {
            Rejected::Expired => LinkError::Expired,
            Rejected::Unknown | Rejected::Used => LinkError::InvalidToken,
        })?;
    if session_user.is_some_and(|u| u != v.user_id) {
        return Err(LinkError::InvalidToken);
    }
    let Some(user) = crate::store::users::by_id(&state.db, &v.user_id).await? else {
        return Err(LinkError::InvalidToken);
    };
    delete_or_schedule(state, &user, "", Some(token))
        .await?
        .ok_or(LinkError::InvalidToken)
}

/// A successful sign-in during the grace period cancels the scheduled deletion.
/// Called by every sign-in path right after the password check; true if there was a
/// deletion to cancel.
pub async fn cancel_on_sign_in(state: &State, user: &User) -> Result<bool, sqlx::Error> {
    let event = audit::pending(
        state,
        Event::here(kind::DELETION_CANCELLED)
            .user(&user.id)
            .with("by", "sign_in"),
    );
    let cancelled = lifecycle::cancel_deletion(&state.db, &user.id, event).await?;
    if cancelled {
        tracing::info!(user = %user.id, "account deletion cancelled by sign-in");
    }
    Ok(cancelled)
}

/// Removes every account whose grace period is over, and forgets the "account
/// deleted" notices that have been sent. Returns how many accounts were removed.
pub async fn purge_due(state: &State) -> Result<u64, Error> {
    let now = state.clock.now();
    let mut n = 0;
    for id in lifecycle::due_deletions(&state.db, now).await? {
        let Some(user) = crate::store::users::by_id(&state.db, &id).await? else {
            continue;
        };
        let requested = lifecycle::deletion_schedule(&state.db, &id)
            .await?
            .map_or(now, |(r, _)| r);
        let msg = account_templates::account_deleted(
            &state.config.mail.branding,
            &user.email,
            user_locale(&user),
        )
        .map_err(render_error)?;
        // The grace period ran out: the server does it, not the user.
        let event = Event::here(kind::DELETED)
            .actor(Actor::System)
            .user(&id)
            .with("requested_at", requested);
        if remove(state, &user, requested, &msg, None, event).await? == Purged::Done {
            n += 1;
        }
    }
    lifecycle::forget_sent_notices(&state.db).await?;
    Ok(n)
}

/// Starts the periodic purge (every `account_deletion.purge_interval` seconds). Like
/// the mail worker it holds the state weakly and stops when the state is gone.
pub fn spawn_purger(state: State) {
    let weak = Arc::downgrade(&state);
    drop(state);
    tokio::spawn(async move {
        loop {
            let Some(state) = weak.upgrade() else {
                return;
            };
            if let Err(e) = purge_due(&state).await {
                tracing::warn!(error = %e, "account purge failed; retrying later");
            }
            let wait = state.config.account_deletion.purge_interval;
            drop(state);
            tokio::time::sleep(Duration::from_secs(wait)).await;
        }
    });
}
