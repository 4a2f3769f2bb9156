//! The README's restricted PostgreSQL role for the app: migrated by the owner
//! (postgres), the server runs as a role with only the documented grants. Sign-up and a
//! password change write their events; the role's UPDATE, DELETE and TRUNCATE on
//! `audit_events` are refused. PostgreSQL only (SQLite has no roles).

use klard_auth::app;
use klard_auth::audit::chain;
use serde_json::{Value, json};

use crate::support::*;

/// The grants of README "Audit trail" for role `r`, as one script.
fn grants(r: &str, db: &str) -> String {
    format!(
        r#"CREATE ROLE {r} LOGIN;
GRANT CONNECT ON DATABASE "{db}" TO {r};
GRANT USAGE ON SCHEMA public TO {r};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r};
REVOKE ALL ON audit_events, audit_anchors, audit_head, _sqlx_migrations FROM {r};
GRANT SELECT, INSERT ON audit_events, audit_anchors TO {r};
GRANT SELECT, UPDATE ON audit_head TO {r};
GRANT SELECT ON _sqlx_migrations TO {r};"#
    )
}

async fn run_as(url: &str, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await?;
    let r = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&pool)
        .await
        .map(|_| ());
    pool.close().await;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_app_role_writes_events_but_cannot_rewrite_them() {
    // The owner migrates (the first server, as postgres).
    let owner = TestServer::start(Db::Postgres).await;
    let owner_url = owner.state.config.database_url.clone();
    let db = owner_url.rsplit('/').next().unwrap().to_string();
    let role = format!(
        "klard_app_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    run_as(&owner_url, &grants(&role, &db)).await.unwrap();
    let app_url = format!("postgres://{role}@127.0.0.1:5432/{db}");

    // The app, as the restricted role: starts (migrations already applied) and serves.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut cfg = owner.state.config.clone();
    cfg.database_url = app_url.clone();
    cfg.issuer = format!("http://127.0.0.1:{port}");
    cfg.bind = format!("127.0.0.1:{port}");
    cfg.api_auth.auto_sign_in = true;
    cfg.migrate_on_start = false;
    let state = app::build_state(cfg)
        .await
        .expect("the app starts as the restricted role");
    let running = app::serve(state.clone(), listener).await.unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/api/auth/sign-up/email"))
        .header("origin", &base)
        .json(&json!({"name": "Anya", "email": "anya@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let token = v["token"].as_str().unwrap().to_string();
    let r = http
        .post(format!("{base}/api/auth/change-password"))
        .bearer_auth(&token)
        .json(&json!({"currentPassword": PASSWORD, "newPassword": "another long passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let types: Vec<String> = sqlx::query_scalar("SELECT event_type FROM audit_events ORDER BY seq")
        .fetch_all(&state.db.pool)
        .await
        .unwrap();
    assert_eq!(
        types,
        [
            "user.registered",
            "session.created",
            "user.password_changed"
        ]
    );
    let report = chain::verify(&state.db, &chain::key(&state.secret))
        .await
        .unwrap();
    assert!(report.ok(), "{report:?}");

    // The role cannot rewrite history.
    for sql in [
        "UPDATE audit_events SET data = '{}' WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 1",
        "TRUNCATE audit_events",
        "DELETE FROM audit_anchors",
    ] {
        let e = run_as(&app_url, sql).await.expect_err(sql);
        let code = e
            .as_database_error()
            .and_then(|d| d.code().map(|c| c.to_string()));
        assert_eq!(code.as_deref(), Some("42501"), "{sql}: {e}");
    }
    // Retention by the restricted role is refused too (the owner runs `audit prune`).
    let e = klard_auth::store::audit::prune_before(&state.db, i64::MAX, 0)
        .await
        .expect_err("prune as the app role");
    assert!(e.to_string().contains("permission denied"), "{e}");
    running.shutdown();
    state.db.pool.close().await;
    let _ = run_as(&owner_url, &format!("DROP OWNED BY {role}")).await;
    let _ = run_as(&owner_url, &format!("DROP ROLE {role}")).await;
}
