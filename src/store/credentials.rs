//! The multi-row writes of a password change and of an email verification, each in one
//! transaction, so a failure leaves neither a spent token with the old password nor a
//! new password with a live reset link.

use super::Db;
use super::verifications::Purpose;
use crate::audit::{self, Pending};
use crate::crypto;

/// What else a password change ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Revoke<'a> {
    /// Revoke the user's sessions, except the one with this sid if given.
    pub sessions: bool,
    pub keep_sid: Option<&'a str>,
    /// Revoke every refresh-token family of the user and the access tokens they issued.
    pub refresh_tokens: bool,
}

/// Spends `token` inside `tx` if it is an open token of `purpose` for `user_id`.
async fn spend(
    tx: &mut sqlx::AnyConnection,
    purpose: Purpose,
    token: &str,
    user_id: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE verification_tokens SET used_at = $4
         WHERE token_hash = $1 AND purpose = $2 AND user_id = $3
           AND used_at IS NULL AND expires_at > $4",
    )
    .bind(crypto::hash_secret(token))
    .bind(purpose.as_str())
    .bind(user_id)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Sets the password hash (and `updated_at`), spends every open reset token of the user
/// (issue 3: a reset link dies when the password changes by any route) and revokes what
/// `revoke` names, all in one transaction. With `reset_token`, that token must still be
/// open for this user, or nothing is written and the answer is `false`. `event` (the
/// password change) is written last in the same transaction, with the counts of what
/// was revoked.
pub async fn set_password(
    db: &Db,
    user_id: &str,
    password_hash: &str,
    reset_token: Option<&str>,
    revoke: Revoke<'_>,
    now: i64,
    event: Pending,
) -> Result<bool, sqlx::Error> {
    let mut event = event;
    let mut tx = db.pool.begin().await?;
    if let Some(t) = reset_token
        && !spend(&mut tx, Purpose::ResetPassword, t, user_id, now).await?
    {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .bind(user_id)
        .bind(password_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE verification_tokens SET used_at = $3
         WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
    )
    .bind(user_id)
    .bind(Purpose::ResetPassword.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if revoke.sessions {
        let n = sqlx::query(
            "UPDATE sessions SET revoked_at = $2
             WHERE user_id = $1 AND revoked_at IS NULL AND sid <> $3",
        )
        .bind(user_id)
        .bind(now)
        .bind(revoke.keep_sid.unwrap_or(""))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        event = event.with("sessions_revoked", n);
    }
    if revoke.refresh_tokens {
        sqlx::query(
            "UPDATE access_tokens SET revoked_at = $2
             WHERE revoked_at IS NULL AND family_id IN
               (SELECT id FROM token_families WHERE user_id = $1 AND revoked_at IS NULL)",
        )
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE token_families SET revoked_at = $2, revoked_reason = $3
             WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(now)
        .bind("password_reset")
        .execute(&mut *tx)
        .await?;
        event = event.with("refresh_tokens_revoked", true);
    }
    audit::write(&mut tx, event).await?;
    tx.commit().await?;
    Ok(true)
}

/// Spends a verification token of `user_id` and marks the address verified (the OIDC
/// `email_verified` claim reads this column), in one transaction; `false` if the token
/// was no longer open. `event` is written last in the same transaction.
pub async fn verify_email(
    db: &Db,
    user_id: &str,
    token: &str,
    now: i64,
    event: Pending,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    if !spend(&mut tx, Purpose::VerifyEmail, token, user_id, now).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query("UPDATE users SET email_verified = 1, updated_at = $2 WHERE id = $1")
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    audit::write(&mut tx, event).await?;
    tx.commit().await?;
    Ok(true)
}
