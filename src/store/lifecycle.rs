//! Storage of the account lifecycle (issue 3): switching and restoring the email
//! address, revoking everything a user holds, scheduling, cancelling and carrying out
//! the deletion of an account, and the deletion records kept without personal data.
//!
//! Each change that spans rows is one transaction, so a failure leaves nothing
//! half-written: the token that authorises it is spent, the mail announcing it is
//! queued and the rows change together, or none of it happens.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::Db;
use super::verifications::Purpose;
use crate::audit::{self, Pending};
use crate::crypto;
use crate::mail::Message;

/// A mail to queue in the same transaction as the change it announces.
pub struct QueuedMail<'a> {
    pub id: &'a str,
    pub msg: &'a Message,
}

/// A token to issue in the same transaction as the change it belongs to.
pub struct NewToken<'a> {
    pub token: &'a str,
    pub purpose: Purpose,
    pub data: &'a Value,
    pub expires_at: i64,
}

/// Why an email switch did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SwitchRefused {
    /// The authorising token was spent by a concurrent request.
    #[error("the token was already used")]
    TokenUsed,
    /// Another account has the address now.
    #[error("the address belongs to another account")]
    AddressTaken,
    /// The user is gone.
    #[error("unknown user")]
    NoUser,
}

/// An email switch: which token authorises it, the address to set, what else to do.
pub struct Switch<'a> {
    /// Token and purpose of the mailed link being spent.
    pub spend: (&'a str, Purpose),
    pub user_id: &'a str,
    pub email: &'a str,
    pub email_verified: bool,
    /// Also revoke the user's sessions (all but `keep_sid`) and token families.
    pub revoke: bool,
    pub keep_sid: Option<&'a str>,
    /// Open tokens of these purposes are spent too (e.g. pending changes on a revert).
    pub invalidate: &'a [Purpose],
    pub issue: Option<NewToken<'a>>,
    pub mail: Option<QueuedMail<'a>>,
    /// The audit event of the change, written last in its transaction.
    pub event: Option<Pending>,
}

async fn insert_token(
    tx: &mut Transaction<'_, Any>,
    user_id: &str,
    t: &NewToken<'_>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO verification_tokens (token_hash, purpose, user_id, data, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(crypto::hash_secret(t.token))
    .bind(t.purpose.as_str())
    .bind(user_id)
    .bind(t.data.to_string())
    .bind(now)
    .bind(t.expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_mail(
    tx: &mut Transaction<'_, Any>,
    m: &QueuedMail<'_>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO mail_outbox (id, recipient, subject, html, text, locale, status, attempts,
            next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7)",
    )
    .bind(m.id)
    .bind(&m.msg.to)
    .bind(&m.msg.subject)
    .bind(&m.msg.html)
    .bind(&m.msg.text)
    .bind(&m.msg.locale)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Revokes every session of the user (but `keep_sid`), every token family and every
/// access token issued to the user, inside `tx`.
async fn revoke_in(
    tx: &mut Transaction<'_, Any>,
    user_id: &str,
    keep_sid: Option<&str>,
    reason: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sessions SET revoked_at = $2
         WHERE user_id = $1 AND revoked_at IS NULL AND sid <> $3",
    )
    .bind(user_id)
    .bind(now)
    .bind(keep_sid.unwrap_or(""))
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE token_families SET revoked_at = $2, revoked_reason = $3
         WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .bind(now)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE access_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Spends an unused, unexpired token of `purpose` inside `tx`; false if it was not.
async fn spend_in(
    tx: &mut Transaction<'_, Any>,
    token: &str,
    purpose: Purpose,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE verification_tokens SET used_at = $3
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
    )
    .bind(crypto::hash_secret(token))
    .bind(purpose.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation() || d.message().contains("UNIQUE"))
}

/// Sets the user's email address, in one transaction with spending the token that
/// authorises it and everything `s` asks for. The address must be free: checked
/// inside the transaction, and the UNIQUE constraint catches a concurrent taker.
pub async fn switch_email(
    db: &Db,
    s: &Switch<'_>,
    now: i64,
) -> Result<Result<(), SwitchRefused>, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    if !spend_in(&mut tx, s.spend.0, s.spend.1, now).await? {
        tx.rollback().await?;
        return Ok(Err(SwitchRefused::TokenUsed));
    }
    let taken = sqlx::query("SELECT id FROM users WHERE email = $1 AND id <> $2")
        .bind(s.email)
        .bind(s.user_id)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if taken {
        tx.rollback().await?;
        return Ok(Err(SwitchRefused::AddressTaken));
    }
    let updated = sqlx::query(
        "UPDATE users SET email = $2, email_verified = $3, updated_at = $4 WHERE id = $1",
    )
    .bind(s.user_id)
    .bind(s.email)
    .bind(super::b2i(s.email_verified))
    .bind(now)
    .execute(&mut *tx)
    .await;
    match updated {
        Ok(r) if r.rows_affected() == 1 => {}
        Ok(_) => {
            tx.rollback().await?;
            return Ok(Err(SwitchRefused::NoUser));
        }
        Err(e) if is_unique_violation(&e) => {
            tx.rollback().await?;
            return Ok(Err(SwitchRefused::AddressTaken));
        }
        Err(e) => return Err(e),
    }
    if s.revoke {
        revoke_in(&mut tx, s.user_id, s.keep_sid, "email changed", now).await?;
    }
    for p in s.invalidate {
        sqlx::query(
            "UPDATE verification_tokens SET used_at = $3
             WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
        )
        .bind(s.user_id)
        .bind(p.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    if let Some(t) = &s.issue {
        insert_token(&mut tx, s.user_id, t, now).await?;
    }
    if let Some(m) = &s.mail {
        insert_mail(&mut tx, m, now).await?;
    }
    if let Some(e) = &s.event {
        audit::write(&mut tx, e.clone()).await?;
    }
    tx.commit().await?;
    Ok(Ok(()))
}

/// When a user's deletion is due, if it is scheduled: (requested_at, due_at).
pub async fn deletion_schedule(db: &Db, user_id: &str) -> Result<Option<(i64, i64)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT deletion_requested_at, deletion_due_at FROM users
         WHERE id = $1 AND deletion_due_at IS NOT NULL",
    )
    .bind(user_id)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| {
        Ok((
            r.try_get("deletion_requested_at")?,
            r.try_get("deletion_due_at")?,
        ))
    })
    .transpose()
}

/// Schedules the deletion of the user for `due_at`, revokes their sessions and tokens
/// and queues the notice, in one transaction. A deletion already scheduled keeps its
/// earlier date.
/// With `spend`, the mailed deletion token that authorises it is spent in the same
/// transaction; false if it already was (nothing is changed then).
pub async fn schedule_deletion(
    db: &Db,
    user_id: &str,
    due_at: i64,
    spend: Option<&str>,
    mail: Option<QueuedMail<'_>>,
    now: i64,
    event: Pending,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    if let Some(t) = spend
        && !spend_in(&mut tx, t, Purpose::DeleteAccount, now).await?
    {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query(
        "UPDATE users SET deletion_requested_at = $2, deletion_due_at = $3
         WHERE id = $1 AND deletion_due_at IS NULL",
    )
    .bind(user_id)
    .bind(now)
    .bind(due_at)
    .execute(&mut *tx)
    .await?;
    revoke_in(&mut tx, user_id, None, "account deletion requested", now).await?;
    if let Some(m) = &mail {
        insert_mail(&mut tx, m, now).await?;
    }
    audit::write(&mut tx, event).await?;
    tx.commit().await?;
    Ok(true)
}

/// Cancels a scheduled deletion; true if there was one (and then `event` is written in
/// the same transaction).
pub async fn cancel_deletion(db: &Db, user_id: &str, event: Pending) -> Result<bool, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let n = sqlx::query(
        "UPDATE users SET deletion_requested_at = NULL, deletion_due_at = NULL
         WHERE id = $1 AND deletion_due_at IS NOT NULL",
    )
    .bind(user_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 1 {
        audit::write(&mut tx, event).await?;
    }
    tx.commit().await?;
    Ok(n == 1)
}

/// Users whose deletion is due at `now`.
pub async fn due_deletions(db: &Db, now: i64) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query("SELECT id FROM users WHERE deletion_due_at IS NOT NULL AND deletion_due_at <= $1")
        .bind(now)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("id"))
        .collect()
}

/// Every address the user's open or spent tokens mention (old and new addresses of
/// email changes): mail to them is personal data of this account too.
async fn addresses_in_tokens(
    tx: &mut Transaction<'_, Any>,
    user_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<AnyRow> = sqlx::query("SELECT data FROM verification_tokens WHERE user_id = $1")
        .bind(user_id)
        .fetch_all(&mut **tx)
        .await?;
    let mut out = Vec::new();
    for r in rows {
        let data: String = r.try_get("data")?;
        let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&data) else {
            continue;
        };
        for k in ["newEmail", "oldEmail"] {
            if let Some(a) = m.get(k).and_then(Value::as_str) {
                out.push(a.to_string());
            }
        }
    }
    Ok(out)
}

/// How a deletion was asked for and done.
pub struct Purge<'a> {
    pub user_id: &'a str,
    /// When the user asked for the deletion.
    pub requested_at: i64,
    /// The "account deleted" notice, queued after the user's other mail is removed.
    pub notice: Option<QueuedMail<'a>>,
    /// The mailed deletion token that authorises it, spent in the same transaction.
    pub spend: Option<&'a str>,
    /// The `user.deleted` event, written last in the transaction.
    pub event: Option<Pending>,
}

/// What [`purge`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purged {
    Done,
    /// The user was already gone (a concurrent purge).
    NoUser,
    /// `spend` named a token that was already used.
    TokenUsed,
}

/// Removes the account and its personal data in one transaction (GDPR art. 17): the
/// user row, sessions and their paused authorization requests, grants, authorization codes, token families with their refresh
/// tokens, access-token records, mailed tokens and every outbox message to the
/// account's addresses; then records the deletion by `sub` and times only.
pub async fn purge(db: &Db, p: &Purge<'_>, now: i64) -> Result<Purged, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    if let Some(t) = p.spend
        && !spend_in(&mut tx, t, Purpose::DeleteAccount, now).await?
    {
        tx.rollback().await?;
        return Ok(Purged::TokenUsed);
    }
    let Some(row) = sqlx::query("SELECT email FROM users WHERE id = $1")
        .bind(p.user_id)
        .fetch_optional(&mut *tx)
        .await?
    else {
        tx.rollback().await?;
        return Ok(Purged::NoUser);
    };
    let email: String = row.try_get("email")?;
    let mut addresses = addresses_in_tokens(&mut tx, p.user_id).await?;
    addresses.push(email);
    for a in &addresses {
        sqlx::query("DELETE FROM mail_outbox WHERE LOWER(recipient) = $1")
            .bind(a.to_lowercase())
            .execute(&mut *tx)
            .await?;
    }
    for sql in [
        // Paused authorization requests of its sessions carry login hints.
        "DELETE FROM interactions WHERE session_sid IN (SELECT sid FROM sessions WHERE user_id = $1)",
        "DELETE FROM auth_codes WHERE user_id = $1",
        "DELETE FROM refresh_tokens WHERE family_id IN (SELECT id FROM token_families WHERE user_id = $1)",
        "DELETE FROM token_families WHERE user_id = $1",
        "DELETE FROM access_tokens WHERE user_id = $1",
        "DELETE FROM verification_tokens WHERE user_id = $1",
        "DELETE FROM sessions WHERE user_id = $1",
        "DELETE FROM grants WHERE user_id = $1",
        "DELETE FROM users WHERE id = $1",
    ] {
        sqlx::query(sql).bind(p.user_id).execute(&mut *tx).await?;
    }
    sqlx::query(
        "INSERT INTO account_deletions (sub, requested_at, deleted_at, notice_mail_id)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(p.user_id)
    .bind(p.requested_at)
    .bind(now)
    .bind(p.notice.as_ref().map(|m| m.id))
    .execute(&mut *tx)
    .await?;
    if let Some(m) = &p.notice {
        insert_mail(&mut tx, m, now).await?;
    }
    if let Some(e) = &p.event {
        audit::write(&mut tx, e.clone()).await?;
    }
    tx.commit().await?;
    Ok(Purged::Done)
}

/// Removes the "account deleted" notices that have left the outbox (sent, or given
/// up), so the address they carried is gone too; returns how many.
pub async fn forget_sent_notices(db: &Db) -> Result<u64, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let n = sqlx::query(
        "DELETE FROM mail_outbox WHERE status IN ('sent', 'failed')
         AND id IN (SELECT notice_mail_id FROM account_deletions WHERE notice_mail_id IS NOT NULL)",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query(
        "UPDATE account_deletions SET notice_mail_id = NULL
         WHERE notice_mail_id IS NOT NULL
           AND notice_mail_id NOT IN (SELECT id FROM mail_outbox)",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(n)
}

/// A deletion record: the `sub` and the times, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionRecord {
    pub sub: String,
    pub requested_at: i64,
    pub deleted_at: i64,
}

pub async fn deletion_record(db: &Db, sub: &str) -> Result<Option<DeletionRecord>, sqlx::Error> {
    let row =
        sqlx::query("SELECT sub, requested_at, deleted_at FROM account_deletions WHERE sub = $1")
            .bind(sub)
            .fetch_optional(&db.pool)
            .await?;
    row.map(|r| {
        Ok(DeletionRecord {
            sub: r.try_get("sub")?,
            requested_at: r.try_get("requested_at")?,
            deleted_at: r.try_get("deleted_at")?,
        })
    })
    .transpose()
}
