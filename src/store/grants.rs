//! Grants: a user's consent that a client may act for them with a set of scopes.
//! Tokens hang off a grant (through their family); revoking the grant revokes them.

use sqlx::Row;

use super::Db;

#[derive(Debug, Clone)]
pub struct Grant {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
    pub revoked_at: Option<i64>,
}

impl Grant {
    /// True if every scope of `requested` was consented to.
    pub fn covers(&self, requested: &[String]) -> bool {
        self.revoked_at.is_none() && {
            let have: Vec<&str> = self.scope.split(' ').collect();
            requested.iter().all(|s| have.contains(&s.as_str()))
        }
    }
}

pub async fn find(db: &Db, user_id: &str, client_id: &str) -> Result<Option<Grant>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, user_id, client_id, scope, revoked_at FROM grants
         WHERE user_id = $1 AND client_id = $2",
    )
    .bind(user_id)
    .bind(client_id)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| {
        Ok(Grant {
            id: r.try_get("id")?,
            user_id: r.try_get("user_id")?,
            client_id: r.try_get("client_id")?,
            scope: r.try_get("scope")?,
            revoked_at: r.try_get("revoked_at")?,
        })
    })
    .transpose()
}

pub async fn is_active(db: &Db, grant_id: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT revoked_at FROM grants WHERE id = $1")
        .bind(grant_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(match row {
        Some(r) => r.try_get::<Option<i64>, _>("revoked_at")?.is_none(),
        None => false,
    })
}

/// Records consent to `scopes`, widening an existing grant (consent is remembered per
/// grant and asked again only when the scopes grow). Returns the grant id.
pub async fn upsert(
    db: &Db,
    user_id: &str,
    client_id: &str,
    scopes: &[String],
    now: i64,
) -> Result<String, sqlx::Error> {
    // Optimistic concurrency: every write is conditional on the row read, so two
    // consents of one user at once (two devices, two tabs) cannot lose each other's
    // scopes; the loser reads again and merges.
    for _ in 0..10 {
        match find(db, user_id, client_id).await? {
            Some(g) => {
                let active = g.revoked_at.is_none();
                let mut all: Vec<String> = if active {
                    g.scope
                        .split(' ')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                } else {
                    Vec::new()
                };
                let before = all.len();
                for s in scopes {
                    if !all.contains(s) {
                        all.push(s.clone());
                    }
                }
                if active && all.len() == before {
                    return Ok(g.id);
                }
                let n = sqlx::query(
                    "UPDATE grants SET scope = $2, updated_at = $3, revoked_at = NULL
                     WHERE id = $1 AND scope = $4 AND COALESCE(revoked_at, -1) = $5",
                )
                .bind(&g.id)
                .bind(all.join(" "))
                .bind(now)
                .bind(&g.scope)
                .bind(g.revoked_at.unwrap_or(-1))
                .execute(&db.pool)
                .await?
                .rows_affected();
                if n == 1 {
                    return Ok(g.id);
                }
            }
            None => {
                let id = uuid::Uuid::now_v7().to_string();
                let n = sqlx::query(
                    "INSERT INTO grants (id, user_id, client_id, scope, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $5)
                     ON CONFLICT (user_id, client_id) DO NOTHING",
                )
                .bind(&id)
                .bind(user_id)
                .bind(client_id)
                .bind(scopes.join(" "))
                .bind(now)
                .execute(&db.pool)
                .await?
                .rows_affected();
                if n == 1 {
                    return Ok(id);
                }
            }
        }
    }
    Err(sqlx::Error::Protocol(
        "the grant kept changing under concurrent updates".into(),
    ))
}
