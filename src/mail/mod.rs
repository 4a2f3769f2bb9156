//! Outgoing mail through a persisted outbox.
//!
//! A request never talks to a mail server: it renders a [`Message`] (see [`templates`])
//! and calls [`enqueue`], which only inserts a row. The worker started by
//! [`spawn_worker`] claims due rows one at a time (`store::outbox::claim_next`, a
//! conditional UPDATE, so several server instances can share one database), sends them
//! through the configured [`transport`], and marks them sent, or records the error and
//! retries with exponential backoff until `mail.max_attempts`, then marks them failed.

pub mod account_templates;
pub mod templates;
pub mod transport;

use std::sync::Arc;
use std::time::Duration;

use crate::app::State;
use crate::store::Db;
use crate::store::outbox::{self, Claimed};

pub use transport::{MailError, Transport};

/// A rendered message, ready for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The recipient's address.
    pub to: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// The locale it was rendered in (`en`, `de`).
    pub locale: String,
}

/// First retry after this many seconds; doubled per attempt.
pub const BACKOFF_BASE: i64 = 30;
/// No retry waits longer than this.
pub const BACKOFF_MAX: i64 = 3600;
/// A `sending` claim older than this is presumed dead (its worker crashed) and taken
/// over. Far longer than any SMTP exchange (`mail.smtp.timeout` ≤ 600 s per command).
pub const CLAIM_LEASE: i64 = 3600;
/// Stored error texts are cut to this many characters.
const MAX_ERROR_LEN: usize = 500;

/// Stores `msg` for delivery and returns its outbox id. Only writes the row.
pub async fn enqueue(db: &Db, msg: &Message, now: i64) -> Result<String, sqlx::Error> {
    let id = uuid::Uuid::now_v7().to_string();
    outbox::insert(
        db,
        &outbox::NewMail {
            id: &id,
            recipient: &msg.to,
            subject: &msg.subject,
            html: &msg.html,
            text: &msg.text,
            locale: &msg.locale,
            now,
        },
    )
    .await?;
    Ok(id)
}

/// Seconds to wait after a failed attempt, given the attempts made before it:
/// 30 s × 2^attempts, at most an hour.
pub fn backoff(previous_attempts: i64) -> i64 {
    let exp = previous_attempts.clamp(0, 20) as u32;
    BACKOFF_BASE.saturating_mul(1i64 << exp).min(BACKOFF_MAX)
}

/// Starts the outbox worker. It holds the state weakly and stops when the state is gone.
pub fn spawn_worker(state: State) {
    let transport = match Transport::from_config(&state.config.mail) {
        Ok(t) => t,
        Err(e) => {
            // `Config::validate` makes this unreachable in practice.
            tracing::error!(error = %e, "mail: cannot set up the transport; mail will not be sent");
            return;
        }
    };
    let weak = Arc::downgrade(&state);
    drop(state);
    tokio::spawn(async move {
        loop {
            let Some(state) = weak.upgrade() else {
                return;
            };
            let worked = match run_once(&state, &transport).await {
                Ok(worked) => worked,
                Err(e) => {
                    tracing::warn!(error = %e, "mail: outbox unavailable");
                    false
                }
            };
            let wait = state.config.mail.poll_interval;
            drop(state);
            if !worked {
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
        }
    });
}

/// Claims and handles one due message. Returns whether there was one.
pub async fn run_once(state: &State, transport: &Transport) -> Result<bool, sqlx::Error> {
    let now = state.clock.now();
    let Some(claimed) = outbox::claim_next(&state.db, now, CLAIM_LEASE).await? else {
        return Ok(false);
    };
    let msg = Message {
        to: claimed.row.recipient.clone(),
        subject: claimed.row.subject.clone(),
        html: claimed.row.html.clone(),
        text: claimed.row.text.clone(),
        locale: claimed.row.locale.clone(),
    };
    match transport
        .send(&state.config.mail.from, &claimed.row.id, &msg)
        .await
    {
        Ok(()) => {
            if outbox::mark_sent(&state.db, &claimed, state.clock.now()).await? {
                tracing::info!(id = %claimed.row.id, "mail: sent");
            } else {
                tracing::warn!(id = %claimed.row.id, "mail: sent, but the claim had been taken over");
            }
        }
        Err(e) => record_failure(state, &claimed, &e, now).await?,
    }
    Ok(true)
}

async fn record_failure(
    state: &State,
    claimed: &Claimed,
    e: &MailError,
    now: i64,
) -> Result<(), sqlx::Error> {
    let attempts = claimed.row.attempts + 1;
    let give_up = e.is_permanent() || attempts >= state.config.mail.max_attempts;
    let next = now + backoff(claimed.row.attempts);
    // Errors carry server replies and addresses, never credentials or message bodies.
    let error: String = e.to_string().chars().take(MAX_ERROR_LEN).collect();
    outbox::mark_attempt_failed(&state.db, claimed, &error, next, give_up).await?;
    if give_up {
        tracing::error!(id = %claimed.row.id, attempts, error = %error, "mail: given up");
    } else {
        tracing::warn!(id = %claimed.row.id, attempts, retry_at = next, error = %error, "mail: attempt failed");
    }
    Ok(())
}
