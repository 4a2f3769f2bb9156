//! Invite codes for `sign_up.mode = "invite_only"`. The row holds the code's SHA-256,
//! never the code; `id` is a public handle for `invite list`. A code is spent by a
//! conditional UPDATE inside the transaction that creates the account (`spend`), so it
//! works once even when two sign-ups race with it, and is not spent if the account is
//! not created.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::Db;
use crate::crypto;

#[derive(Debug, Clone)]
pub struct Invite {
    pub id: String,
    /// The only address that may use it, lower-cased; `None` = anyone.
    pub email: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// The account it created (`None` while unused, or once that account is deleted).
    pub used_by: Option<String>,
}

impl Invite {
    /// `unused`, `used` or `expired`, for listings.
    pub fn status(&self, now: i64) -> &'static str {
        if self.used_at.is_some() {
            "used"
        } else if self.expires_at <= now {
            "expired"
        } else {
            "unused"
        }
    }
}

fn from_row(r: &AnyRow) -> Result<Invite, sqlx::Error> {
    Ok(Invite {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        used_at: r.try_get("used_at")?,
        used_by: r.try_get("used_by")?,
    })
}

/// Creates an invite valid for `ttl` seconds and returns it with its code (the only
/// time the code exists in clear).
pub async fn create(
    db: &Db,
    email: Option<&str>,
    ttl: i64,
    now: i64,
) -> Result<(Invite, String), sqlx::Error> {
    create_recorded(db, email, ttl, now, None).await
}

/// [`create`] with the audit event (given the invite's id), in one transaction.
pub async fn create_recorded(
    db: &Db,
    email: Option<&str>,
    ttl: i64,
    now: i64,
    event: Option<&(dyn Fn(&str) -> crate::audit::Pending + Sync)>,
) -> Result<(Invite, String), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let code = crypto::random_token(18);
    let invite = Invite {
        id: uuid::Uuid::new_v4().to_string(),
        email: email.map(crate::store::users::normalize_email),
        created_at: now,
        expires_at: now + ttl,
        used_at: None,
        used_by: None,
    };
    sqlx::query(
        "INSERT INTO invites (id, code_hash, email, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&invite.id)
    .bind(crypto::hash_secret(&code))
    .bind(&invite.email)
    .bind(invite.created_at)
    .bind(invite.expires_at)
    .execute(&mut *tx)
    .await?;
    if let Some(e) = event {
        crate::audit::write(&mut tx, e(&invite.id)).await?;
    }
    tx.commit().await?;
    Ok((invite, code))
}

/// The invite a code stands for, used or not.
pub async fn by_code(db: &Db, code: &str) -> Result<Option<Invite>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM invites WHERE code_hash = $1")
        .bind(crypto::hash_secret(code))
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(db: &Db) -> Result<Vec<Invite>, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM invites ORDER BY created_at, id")
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Spends an unused, unexpired code on any executor (the sign-up transaction);
/// `used_by` is the new account, or `None` when the address already had one (the code
/// is spent all the same, so that it reveals nothing). False if it was not spendable.
pub async fn spend<'e, E>(
    ex: E,
    code: &str,
    used_by: Option<&str>,
    now: i64,
) -> Result<bool, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let n = sqlx::query(
        "UPDATE invites SET used_at = $2, used_by = $3
         WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(crypto::hash_secret(code))
    .bind(now)
    .bind(used_by)
    .execute(ex)
    .await?
    .rows_affected();
    Ok(n == 1)
}
