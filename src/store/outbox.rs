//! The mail outbox. A request inserts a `pending` row; the worker claims one due row at
//! a time with a conditional UPDATE (so two server instances never both claim it),
//! sends it, then records `sent`, or the error and the next attempt, or `failed`.
//!
//! A row stays `sending` while a worker holds it. If that worker dies, the claim is
//! taken over once it is older than the lease (so a crash can at worst send twice,
//! never lose a message).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::Db;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Sending,
    Sent,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Sending => "sending",
            Status::Sent => "sent",
            Status::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Status, sqlx::Error> {
        match s {
            "pending" => Ok(Status::Pending),
            "sending" => Ok(Status::Sending),
            "sent" => Ok(Status::Sent),
            "failed" => Ok(Status::Failed),
            other => Err(sqlx::Error::Decode(
                format!("unknown mail_outbox.status {other:?}").into(),
            )),
        }
    }
}

/// One outbox row.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    pub locale: String,
    pub status: Status,
    /// Attempts made so far (a claim counts once it has been tried).
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub claim_token: Option<String>,
    pub claimed_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

fn from_row(r: &AnyRow) -> Result<OutboxRow, sqlx::Error> {
    let status: String = r.try_get("status")?;
    Ok(OutboxRow {
        id: r.try_get("id")?,
        recipient: r.try_get("recipient")?,
        subject: r.try_get("subject")?,
        html: r.try_get("html")?,
        text: r.try_get("text")?,
        locale: r.try_get("locale")?,
        status: Status::parse(&status)?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        claim_token: r.try_get("claim_token")?,
        claimed_at: r.try_get("claimed_at")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        sent_at: r.try_get("sent_at")?,
    })
}

/// What `insert` stores.
pub struct NewMail<'a> {
    pub id: &'a str,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub html: &'a str,
    pub text: &'a str,
    pub locale: &'a str,
    pub now: i64,
}

pub async fn insert(db: &Db, m: &NewMail<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO mail_outbox (id, recipient, subject, html, text, locale, status, attempts,
            next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7)",
    )
    .bind(m.id)
    .bind(m.recipient)
    .bind(m.subject)
    .bind(m.html)
    .bind(m.text)
    .bind(m.locale)
    .bind(m.now)
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn get(db: &Db, id: &str) -> Result<Option<OutboxRow>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM mail_outbox WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// A row this worker holds: `claim_token` must accompany the outcome.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub row: OutboxRow,
    pub claim_token: String,
}

/// Claims the next due row: `pending` with `next_attempt_at <= now`, or `sending` with a
/// claim older than `lease` seconds. The UPDATE repeats the condition, so of concurrent
/// claimers (in this process or another server) exactly one wins each row; a loser
/// moves on to the next candidate.
pub async fn claim_next(db: &Db, now: i64, lease: i64) -> Result<Option<Claimed>, sqlx::Error> {
    let stale = now - lease;
    // A handful of candidates per round: losing a race means trying the next one.
    for _ in 0..8 {
        let candidates: Vec<String> = sqlx::query(
            "SELECT id FROM mail_outbox
             WHERE (status = 'pending' AND next_attempt_at <= $1)
                OR (status = 'sending' AND claimed_at <= $2)
             ORDER BY next_attempt_at, created_at
             LIMIT 8",
        )
        .bind(now)
        .bind(stale)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("id"))
        .collect::<Result<_, _>>()?;
        if candidates.is_empty() {
            return Ok(None);
        }
        for id in candidates {
            let token = uuid::Uuid::new_v4().simple().to_string();
            let n = sqlx::query(
                "UPDATE mail_outbox SET status = 'sending', claim_token = $2, claimed_at = $3
                 WHERE id = $1
                   AND ((status = 'pending' AND next_attempt_at <= $3)
                     OR (status = 'sending' AND claimed_at <= $4))",
            )
            .bind(&id)
            .bind(&token)
            .bind(now)
            .bind(stale)
            .execute(&db.pool)
            .await?
            .rows_affected();
            if n == 1
                && let Some(row) = get(db, &id).await?
            {
                return Ok(Some(Claimed {
                    row,
                    claim_token: token,
                }));
            }
        }
    }
    Ok(None)
}

/// Records a successful send. False if the claim was lost (taken over after the lease).
pub async fn mark_sent(db: &Db, c: &Claimed, now: i64) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE mail_outbox
         SET status = 'sent', sent_at = $3, attempts = attempts + 1, last_error = NULL,
             claim_token = NULL
         WHERE id = $1 AND claim_token = $2 AND status = 'sending'",
    )
    .bind(&c.row.id)
    .bind(&c.claim_token)
    .bind(now)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Records a failed attempt: back to `pending` at `next_attempt_at`, or `failed` when
/// `give_up`. `error` must not contain secrets.
pub async fn mark_attempt_failed(
    db: &Db,
    c: &Claimed,
    error: &str,
    next_attempt_at: i64,
    give_up: bool,
) -> Result<bool, sqlx::Error> {
    let status = if give_up {
        Status::Failed
    } else {
        Status::Pending
    };
    let n = sqlx::query(
        "UPDATE mail_outbox
         SET status = $3, attempts = attempts + 1, last_error = $4, next_attempt_at = $5,
             claim_token = NULL
         WHERE id = $1 AND claim_token = $2 AND status = 'sending'",
    )
    .bind(&c.row.id)
    .bind(&c.claim_token)
    .bind(status.as_str())
    .bind(error)
    .bind(next_attempt_at)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}
