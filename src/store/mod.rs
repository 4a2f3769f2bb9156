//! Storage over sqlx's `Any` driver: one set of queries for SQLite (the embedded default)
//! and PostgreSQL. Queries use `$n` placeholders, which both accept; times are Unix
//! seconds and JSON documents are TEXT, so no type differs between the two.

pub mod audit;
pub mod clients;
pub mod credentials;
pub mod grants;
pub mod invites;
pub mod keys;
pub mod lifecycle;
pub mod lockout;
pub mod outbox;
pub mod sessions;
pub mod tokens;
pub mod users;
pub mod verifications;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub kind: DbKind,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the data directory {0}: {1}")]
    DataDir(String, std::io::Error),
}

impl Db {
    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        install_default_drivers();
        let kind = if url.starts_with("sqlite:") {
            DbKind::Sqlite
        } else {
            DbKind::Postgres
        };
        if kind == DbKind::Sqlite {
            create_sqlite_parent(url)?;
        }
        let max = if kind == DbKind::Sqlite { 8 } else { 16 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if kind == DbKind::Sqlite {
                        // WAL lets readers run beside the writer; the busy timeout makes a
                        // second writer wait instead of failing.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        Ok(Db { pool, kind })
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.kind {
            DbKind::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            DbKind::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }
}

fn create_sqlite_parent(url: &str) -> Result<(), StoreError> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| StoreError::DataDir(parent.display().to_string(), e))?;
    }
    Ok(())
}

/// Booleans are stored as 0/1 so that both databases decode them as BIGINT.
pub fn b2i(b: bool) -> i64 {
    i64::from(b)
}
