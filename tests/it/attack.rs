//! The attack script of issue 4, bounded and on loopback only: 200 wrong passwords
//! against one account, 100 from rotating addresses (IPv4 and IPv6 in different /64s,
//! sent as `X-Forwarded-For` by the trusted proxy 127.0.0.1) and 100 from one address.
//! Then: the account is locked (even the right password fails, generically), the one
//! address is blocked (429 with `Retry-After`), the owner on their known device still
//! signs in, unknown / locked / wrong-password attempts answer alike after exactly one
//! argon2 run each (counted by the hasher, not timed), and every attempt is in the
//! audit trail with a valid chain.
//!
//! Rate limiting (`[rate_limit]`, a separate middleware, tests/it/rate_limit.rs) is not
//! part of this scenario: this server's config turns it off so only the lockout answers
//! and every attempt reaches the audit trail.

use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{Value, json};

use crate::support::*;

const SIGN_IN: &str = "/api/auth/sign-in/email";
const VICTIM: &str = "victim@example.com";

async fn attack_server(db: Db) -> TestServer {
    TestServer::start_with(db, |c| {
        c.proxy.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        c.rate_limit.enabled = false;
        c.lockout.delay_base_ms = 1;
        c.lockout.delay_max_ms = 5;
    })
    .await
}

/// POSTs a sign-in as if relayed by the proxy for `ip`; returns (status, body, headers).
async fn sign_in(
    server: &TestServer,
    ip: &str,
    email: &str,
    password: &str,
    cookie: Option<&str>,
) -> (u16, Value, HeaderMap) {
    let mut rb = server
        .http()
        .post(server.url(SIGN_IN))
        .header("x-forwarded-for", ip)
        .json(&json!({ "email": email, "password": password }));
    if let Some(c) = cookie {
        rb = rb.header("cookie", c).header("origin", server.issuer());
    }
    let r = rb.send().await.expect("sign-in");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.json().await.unwrap_or(Value::Null), headers)
}

/// The `klard_device=...` pair of a response, as a Cookie header value.
fn device_cookie(h: &HeaderMap) -> Option<String> {
    h.get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("klard_device="))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
}

async fn events(server: &TestServer, kind: &str) -> i64 {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE event_type = $1")
        .bind(kind)
        .fetch_one(&server.state.db.pool)
        .await
        .expect("count");
    sqlx::Row::try_get::<i64, _>(&row, "n").expect("n")
}

/// The i-th rotating address: IPv4 and IPv6 (each in its own /64) alternately.
fn rotating(i: usize) -> String {
    if i.is_multiple_of(2) {
        format!("10.{}.{}.1", i / 200, i % 200)
    } else {
        format!("2001:db8:{:x}:{:x}::1", i, i + 1)
    }
}

async fn two_hundred_wrong_passwords(db: Db) {
    let server = attack_server(db).await;
    server.user(VICTIM).await;
    server.user("bystander@example.com").await;

    // The owner signs in once from home and keeps the device cookie.
    let (s, _, h) = sign_in(&server, "192.0.2.10", VICTIM, PASSWORD, None).await;
    assert_eq!(s, 200);
    let device = device_cookie(&h).expect("device cookie on sign-in");

    // 100 wrong passwords from rotating addresses: each address fails once, so none is
    // blocked, but the account's counter crosses `lock_after`.
    for i in 0..100 {
        let (s, b, _) = sign_in(&server, &rotating(i), VICTIM, "wrong-guess", None).await;
        assert_eq!(
            (s, b["code"].as_str()),
            (401, Some("INVALID_EMAIL_OR_PASSWORD")),
            "attempt {i}: {b}"
        );
    }
    // 100 from one address: blocked after `ip_block_after` (30) failures.
    let mut answers = Vec::new();
    for _ in 0..100 {
        answers.push(sign_in(&server, "198.51.100.7", VICTIM, "wrong-guess", None).await);
    }
    let rejected = answers.iter().filter(|a| a.0 == 401).count();
    let blocked: Vec<_> = answers.iter().filter(|a| a.0 == 429).collect();
    assert_eq!((rejected, blocked.len()), (30, 70));
    let (_, body, headers) = blocked[blocked.len() - 1];
    assert_eq!(body["code"], "TOO_MANY_REQUESTS", "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    let retry: i64 = headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("Retry-After seconds");
    assert!((1..=900).contains(&retry), "{retry}");

    // Locked: the right password from a new address fails like a wrong one.
    let (s, b, _) = sign_in(&server, "203.0.113.9", VICTIM, PASSWORD, None).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (401, Some("INVALID_EMAIL_OR_PASSWORD"))
    );

    // The owner on their known device signs in, even from the blocked address.
    let (s, b, _) = sign_in(&server, "198.51.100.7", VICTIM, PASSWORD, Some(&device)).await;
    assert_eq!(s, 200, "{b}");
    // ... which does not reopen the account to everyone else.
    let (s, _, _) = sign_in(&server, "203.0.113.10", VICTIM, PASSWORD, None).await;
    assert_eq!(s, 401);

    // Unknown, locked and wrong-password attempts from fresh addresses: the same answer
    // after exactly one argon2 run each.
    let mut seen = Vec::new();
    for (n, (ip, email)) in [
        ("203.0.113.20", "nobody@example.com"),
        ("203.0.113.21", VICTIM),
        ("203.0.113.22", "bystander@example.com"),
    ]
    .into_iter()
    .enumerate()
    {
        let before = server.state.hasher.calls();
        let (s, b, _) = sign_in(&server, ip, email, "wrong-guess", None).await;
        let work = server.state.hasher.calls() - before;
        assert_eq!(work, 1, "probe {n} ({email}) ran {work} argon2 operations");
        seen.push((s, b));
    }
    assert!(seen.iter().all(|x| *x == seen[0]), "{seen:?}");
    assert_eq!(seen[0].0, 401);
    // A blocked address costs no hash at all.
    let before = server.state.hasher.calls();
    let (s, _, _) = sign_in(&server, "198.51.100.7", VICTIM, "wrong-guess", None).await;
    assert_eq!((s, server.state.hasher.calls() - before), (429, 0));

    // Every attempt is in the trail: 200 + the locked right password + the one after
    // the owner's sign-in + 3 probes + the last blocked one; and the chain holds.
    assert_eq!(
        events(&server, "user.sign_in_failed").await,
        200 + 1 + 1 + 3 + 1
    );
    assert_eq!(events(&server, "user.sign_in").await, 2);
    assert_eq!(events(&server, "account.locked").await, 1);
    assert_eq!(events(&server, "ip.blocked").await, 1);
    let key = klard_auth::audit::chain::key(&server.state.secret);
    let report = klard_auth::audit::chain::verify(&server.state.db, &key)
        .await
        .expect("verify");
    assert!(report.ok(), "{report:?}");
}

db_tests!(two_hundred_wrong_passwords);
