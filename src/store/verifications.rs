//! Single-use, expiring tokens sent by mail: email verification, password reset, email
//! change (and its revert), account deletion. The row holds the token's SHA-256, never
//! the token; [`consume`] spends it with a conditional UPDATE, so a token works once
//! even when two requests race with it.

use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::Db;
use crate::crypto;

/// What a token is for. A token is only ever accepted for the purpose it was issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    ResetPassword,
    ChangeEmail,
    RevertEmail,
    DeleteAccount,
    UnlockAccount,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
            Purpose::ChangeEmail => "change_email",
            Purpose::RevertEmail => "revert_email",
            Purpose::DeleteAccount => "delete_account",
            Purpose::UnlockAccount => "unlock_account",
        }
    }
}

/// A token as stored.
#[derive(Debug, Clone)]
pub struct Verification {
    pub purpose: String,
    pub user_id: String,
    pub data: Value,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

fn from_row(r: &AnyRow) -> Result<Verification, sqlx::Error> {
    let data: String = r.try_get("data")?;
    Ok(Verification {
        purpose: r.try_get("purpose")?,
        user_id: r.try_get("user_id")?,
        data: serde_json::from_str(&data).unwrap_or(Value::Null),
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        used_at: r.try_get("used_at")?,
    })
}

/// Why a token was not accepted. Callers map all of them to one client-facing error
/// where telling them apart would help an attacker; they differ for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("unknown token")]
    Unknown,
    #[error("token expired")]
    Expired,
    #[error("token already used")]
    Used,
}

/// Issues a new token for `user_id` and returns it (the only time it exists in clear).
pub async fn issue(
    db: &Db,
    purpose: Purpose,
    user_id: &str,
    data: &Value,
    ttl: i64,
    now: i64,
) -> Result<String, sqlx::Error> {
    let token = crypto::random_token(32);
    sqlx::query(
        "INSERT INTO verification_tokens (token_hash, purpose, user_id, data, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(crypto::hash_secret(&token))
    .bind(purpose.as_str())
    .bind(user_id)
    .bind(data.to_string())
    .bind(now)
    .bind(now + ttl)
    .execute(&db.pool)
    .await?;
    Ok(token)
}

/// Looks a token up without spending it (e.g. to show a form before the POST).
pub async fn peek(
    db: &Db,
    purpose: Purpose,
    token: &str,
    now: i64,
) -> Result<Result<Verification, Rejected>, sqlx::Error> {
    let row =
        sqlx::query("SELECT * FROM verification_tokens WHERE token_hash = $1 AND purpose = $2")
            .bind(crypto::hash_secret(token))
            .bind(purpose.as_str())
            .fetch_optional(&db.pool)
            .await?;
    let Some(v) = row.as_ref().map(from_row).transpose()? else {
        return Ok(Err(Rejected::Unknown));
    };
    Ok(if v.used_at.is_some() {
        Err(Rejected::Used)
    } else if v.expires_at <= now {
        Err(Rejected::Expired)
    } else {
        Ok(v)
    })
}

/// Spends a token: succeeds once, for an unused and unexpired token of this purpose.
pub async fn consume(
    db: &Db,
    purpose: Purpose,
    token: &str,
    now: i64,
) -> Result<Result<Verification, Rejected>, sqlx::Error> {
    let v = match peek(db, purpose, token, now).await? {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    let n = sqlx::query(
        "UPDATE verification_tokens SET used_at = $3
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
    )
    .bind(crypto::hash_secret(token))
    .bind(purpose.as_str())
    .bind(now)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(if n == 1 {
        Ok(Verification {
            used_at: Some(now),
            ..v
        })
    } else {
        // Another request spent it between the read and the update.
        Err(Rejected::Used)
    })
}

/// Spends every open token of `purpose` for the user (e.g. reset links once the
/// password changed by any route); returns how many.
pub async fn invalidate_for_user(
    db: &Db,
    purpose: Purpose,
    user_id: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE verification_tokens SET used_at = $3
         WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
    )
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(now)
    .execute(&db.pool)
    .await?
    .rows_affected())
}

/// Deletes tokens that expired before `before`; returns how many.
pub async fn prune(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM verification_tokens WHERE expires_at < $1")
            .bind(before)
            .execute(&db.pool)
            .await?
            .rows_affected(),
    )
}
