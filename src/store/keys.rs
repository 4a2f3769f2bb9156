//! Signing keys. A key's life is told by its times: published from `created_at`, signing
//! from `activates_at` until `retires_at`, gone from the JWKS at `drop_at`.

use sqlx::Row;

use super::Db;

#[derive(Debug, Clone)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    /// The private JWK, encrypted (JWE, dir + A256GCM) under a key derived from the
    /// server secret.
    pub private_jwe: String,
    pub public_jwk: String,
    pub created_at: i64,
    pub activates_at: i64,
    pub retires_at: Option<i64>,
    pub drop_at: Option<i64>,
}

pub async fn all(db: &Db) -> Result<Vec<KeyRow>, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY activates_at, created_at")
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(KeyRow {
                kid: r.try_get("kid")?,
                alg: r.try_get("alg")?,
                private_jwe: r.try_get("private_jwe")?,
                public_jwk: r.try_get("public_jwk")?,
                created_at: r.try_get("created_at")?,
                activates_at: r.try_get("activates_at")?,
                retires_at: r.try_get("retires_at")?,
                drop_at: r.try_get("drop_at")?,
            })
        })
        .collect()
}

/// Adds a key for `alg` and schedules the retirement of the keys it replaces, in one
/// transaction: the old key signs until the new one activates, then stays published for
/// `grace` seconds.
pub async fn rotate_in(
    db: &Db,
    k: &KeyRow,
    grace: i64,
    event: Option<crate::audit::Pending>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "UPDATE signing_keys SET retires_at = $2, drop_at = $3
         WHERE alg = $1 AND retires_at IS NULL",
    )
    .bind(&k.alg)
    .bind(k.activates_at)
    .bind(k.activates_at + grace)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, private_jwe, public_jwk, created_at, activates_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&k.kid)
    .bind(&k.alg)
    .bind(&k.private_jwe)
    .bind(&k.public_jwk)
    .bind(k.created_at)
    .bind(k.activates_at)
    .execute(&mut *tx)
    .await?;
    if let Some(e) = event {
        crate::audit::write(&mut tx, e).await?;
    }
    tx.commit().await
}

/// Removes keys whose grace period ended.
pub async fn purge(db: &Db, now: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM signing_keys WHERE drop_at IS NOT NULL AND drop_at < $1")
            .bind(now)
            .execute(&db.pool)
            .await?
            .rows_affected(),
    )
}
