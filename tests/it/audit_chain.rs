//! The audit chain itself (audit/chain.rs): appends from concurrent writers form one
//! gapless chain; editing, removing or re-chaining a row without the key is caught and
//! the first broken link named; retention prunes behind an anchor and the rest still
//! verifies.

use klard_auth::audit::{self, Actor, Event, chain, kind};
use klard_auth::http::request_meta::RequestMeta;
use klard_auth::store::audit as store;

use crate::support::*;

fn event(n: usize) -> Event {
    Event::new(
        kind::SIGN_IN_FAILED,
        &RequestMeta::internal(&format!("req-{n}")),
    )
    .failed()
    .with("reason", "wrong_password")
    .with("n", n as i64)
}

async fn verify(srv: &TestServer) -> chain::Report {
    chain::verify(&srv.state.db, &chain::key(&srv.state.secret))
        .await
        .unwrap()
}

async fn exec(srv: &TestServer, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&srv.state.db.pool)
        .await
        .unwrap();
}

async fn concurrent_appends_form_one_chain(db: Db) {
    let srv = TestServer::start(db).await;
    let empty = verify(&srv).await;
    assert!(empty.ok(), "{empty:?}");
    let mut tasks = Vec::new();
    for n in 0..40 {
        let state = srv.state.clone();
        tasks.push(tokio::spawn(async move {
            audit::record(&state, event(n)).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let r = verify(&srv).await;
    assert!(r.ok(), "{r:?}");
    assert_eq!((r.checked, r.last_seq), (40, 40));
    // A rolled-back transaction leaves no number behind.
    let mut tx = srv.state.db.pool.begin().await.unwrap();
    audit::append(&mut tx, &srv.state, event(99)).await.unwrap();
    tx.rollback().await.unwrap();
    let seq = audit::record(&srv.state, event(41).actor(Actor::Cli))
        .await
        .unwrap();
    assert_eq!(seq, 41);
    assert!(verify(&srv).await.ok());
}

async fn tampering_is_found_at_the_first_broken_link(db: Db) {
    let srv = TestServer::start(db).await;
    for n in 0..5 {
        audit::record(&srv.state, event(n)).await.unwrap();
    }
    // An edited detail.
    exec(
        &srv,
        "UPDATE audit_events SET data = '{\"reason\":\"ok\"}' WHERE seq = 3",
    )
    .await;
    let r = verify(&srv).await;
    assert_eq!(r.broken, Some((3, chain::Break::HashMismatch)));
    assert_eq!(r.checked, 2);

    // Re-chaining without the key: the forger recomputes with the wrong key.
    let srv = TestServer::start(db).await;
    for n in 0..5 {
        audit::record(&srv.state, event(n)).await.unwrap();
    }
    let rows = store::after(&srv.state.db, 0, 10).await.unwrap();
    let mut forged = rows[1].clone();
    forged.ip = Some("203.0.113.66".into());
    forged.hash = chain::link_hash(b"guessed key", &forged);
    exec(
        &srv,
        &format!(
            "UPDATE audit_events SET ip = '203.0.113.66', hash = '{}' WHERE seq = 2",
            forged.hash
        ),
    )
    .await;
    let r = verify(&srv).await;
    assert_eq!(r.broken, Some((2, chain::Break::HashMismatch)));

    // A removed event in the middle, and the newest removed.
    let srv = TestServer::start(db).await;
    for n in 0..5 {
        audit::record(&srv.state, event(n)).await.unwrap();
    }
    exec(&srv, "DELETE FROM audit_events WHERE seq = 4").await;
    let r = verify(&srv).await;
    assert_eq!(r.broken, Some((4, chain::Break::Gap { expected: 4 })));
    exec(&srv, "DELETE FROM audit_events WHERE seq = 5").await;
    let r = verify(&srv).await;
    assert_eq!(
        r.broken,
        Some((4, chain::Break::HeadMismatch { head_seq: 5 }))
    );
}

async fn retention_prunes_behind_an_anchor(db: Db) {
    let srv = TestServer::start(db).await;
    for n in 0..3 {
        audit::record(&srv.state, event(n)).await.unwrap();
    }
    srv.state.clock.advance(100);
    for n in 3..6 {
        audit::record(&srv.state, event(n)).await.unwrap();
    }
    let cutoff = srv.state.clock.now() - 50;
    let gone = store::prune_before(&srv.state.db, cutoff, srv.state.clock.now())
        .await
        .unwrap();
    assert_eq!(gone, 3);
    let r = verify(&srv).await;
    assert!(r.ok(), "{r:?}");
    assert_eq!((r.from_seq, r.checked, r.last_seq), (3, 3, 6));
    // Everything old: the newest event stays, so the head is always backed by a row.
    srv.state.clock.advance(1000);
    let gone = store::prune_before(&srv.state.db, srv.state.clock.now(), srv.state.clock.now())
        .await
        .unwrap();
    assert_eq!(gone, 2);
    let r = verify(&srv).await;
    assert!(r.ok(), "{r:?}");
    assert_eq!((r.from_seq, r.checked), (5, 1));
    // Removing the anchored-to event's successor is still caught.
    exec(&srv, "DELETE FROM audit_events WHERE seq = 6").await;
    assert!(!verify(&srv).await.ok());
}

db_tests!(
    concurrent_appends_form_one_chain,
    tampering_is_found_at_the_first_broken_link,
    retention_prunes_behind_an_anchor,
);
