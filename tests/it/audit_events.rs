//! The audit trail as the doors write it (issue 4): each instrumented action leaves
//! exactly its event, with actor, subject, client, the client address from a trusted
//! proxy, the user agent and the response's request id; no secret in any row; a change
//! whose audit write fails is undone; the admin API (auth, filters, paging, bad
//! filters); a user's own history (API and account page); retention keeps the chain
//! verifiable; the refresh-reuse alert mail and its toggle.

use std::time::Duration;

use klard_auth::audit::{chain, kind};
use klard_auth::store::audit::{self as store, AuditRow, Filter};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::smtp::{SmtpServer, free_port, smtp_to};
use crate::support::*;

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const CLIENT_IP: &str = "203.0.113.9";
const NEW_PASSWORD: &str = "a completely different passphrase";

fn proxied(c: &mut klard_auth::config::Config) {
    c.proxy.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    c.api_auth.auto_sign_in = true;
}

async fn events(srv: &TestServer, f: Filter) -> Vec<AuditRow> {
    store::query(&srv.state.db, &Filter { limit: 500, ..f })
        .await
        .unwrap()
}

async fn of_type(srv: &TestServer, t: &str) -> Vec<AuditRow> {
    events(
        srv,
        Filter {
            event_types: vec![t.into()],
            ..Filter::default()
        },
    )
    .await
}

/// POST as a browser behind the trusted proxy; (status, x-request-id, set-cookie, body).
async fn post(
    srv: &TestServer,
    path: &str,
    body: Value,
    bearer: Option<&str>,
) -> (StatusCode, String, Option<String>, Value) {
    let mut rb = srv
        .http()
        .post(srv.url(path))
        .header("x-forwarded-for", CLIENT_IP)
        .header("user-agent", UA)
        .header("origin", srv.issuer())
        .json(&body);
    if let Some(t) = bearer {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.unwrap();
    let s = r.status();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let cookie = r
        .headers()
        .get("set-cookie")
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_string());
    (s, id, cookie, r.json().await.unwrap_or(Value::Null))
}

/// Signs up `email` through the API; (user id, session token, cookie, request id).
async fn sign_up(srv: &TestServer, email: &str) -> (String, String, String, String) {
    let (s, rid, cookie, v) = post(
        srv,
        "/api/auth/sign-up/email",
        json!({"name": "Willow", "email": email, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    (
        v["user"]["id"].as_str().unwrap().to_string(),
        v["token"].as_str().unwrap().to_string(),
        cookie.unwrap(),
        rid,
    )
}

fn assert_meta(e: &AuditRow, user: &str, rid: &str) {
    assert_eq!(e.subject.as_deref(), Some(user), "{e:?}");
    assert_eq!(e.actor, format!("user:{user}"), "{e:?}");
    assert_eq!(e.ip.as_deref(), Some(CLIENT_IP), "{e:?}");
    assert_eq!(e.user_agent.as_deref(), Some(UA), "{e:?}");
    assert_eq!(e.request_id.as_deref(), Some(rid), "{e:?}");
    assert_eq!(e.outcome, "success");
}

async fn no_secret_anywhere(srv: &TestServer, secrets: &[&str]) {
    let all = events(srv, Filter::default()).await;
    for e in &all {
        let row = format!("{e:?}");
        for s in secrets {
            assert!(!row.contains(s), "a secret in the trail: {row}");
        }
    }
}

async fn sign_up_and_password_change_are_recorded(db: Db) {
    let srv = TestServer::start_with(db, proxied).await;
    let (user, token, _, rid) = sign_up(&srv, "willow@example.com").await;
    let reg = of_type(&srv, kind::REGISTERED).await;
    assert_eq!(reg.len(), 1);
    assert_meta(&reg[0], &user, &rid);
    let created = of_type(&srv, kind::SESSION_CREATED).await;
    assert_eq!(created.len(), 1);
    assert_meta(&created[0], &user, &rid);
    // A wrong current password changes nothing and records nothing.
    let (s, _, _, _) = post(
        &srv,
        "/api/auth/change-password",
        json!({"currentPassword": "wrong wrong wrong", "newPassword": NEW_PASSWORD}),
        Some(&token),
    )
    .await;
    assert_eq!(s, 400);
    assert!(of_type(&srv, kind::PASSWORD_CHANGED).await.is_empty());
    let (s, rid2, _, v) = post(
        &srv,
        "/api/auth/change-password",
        json!({"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD,
               "revokeOtherSessions": true}),
        Some(&token),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let changed = of_type(&srv, kind::PASSWORD_CHANGED).await;
    assert_eq!(changed.len(), 1);
    assert_meta(&changed[0], &user, &rid2);
    assert!(of_type(&srv, kind::PASSWORD_RESET).await.is_empty());
    // Update-user and sign-out.
    let new_token = v["token"].as_str().unwrap_or(&token).to_string();
    let (s, rid3, _, v) = post(
        &srv,
        "/api/auth/update-user",
        json!({"name": "Willow R."}),
        Some(&new_token),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let upd = of_type(&srv, kind::UPDATED).await;
    assert_eq!(upd.len(), 1);
    assert_meta(&upd[0], &user, &rid3);
    assert!(upd[0].data.contains("name"), "{:?}", upd[0]);
    let (s, rid4, _, v) = post(&srv, "/api/auth/sign-out", json!({}), Some(&new_token)).await;
    assert_eq!(s, 200, "{v}");
    let revoked = of_type(&srv, kind::SESSION_REVOKED).await;
    let last = revoked.first().expect("sign-out recorded");
    assert_meta(last, &user, &rid4);
    assert!(last.data.contains("sign_out"), "{last:?}");
    no_secret_anywhere(&srv, &[PASSWORD, NEW_PASSWORD, &token, &new_token]).await;
    let r = chain::verify(&srv.state.db, &chain::key(&srv.state.secret))
        .await
        .unwrap();
    assert!(r.ok(), "{r:?}");
}

/// The audit insert fails (its seq is taken by a row put there first): the password
/// change it belongs to is rolled back with it.
async fn failed_audit_write_undoes_the_change(db: Db) {
    let srv = TestServer::start_with(db, proxied).await;
    let (user, token, _, _) = sign_up(&srv, "xander@example.com").await;
    let before = klard_auth::store::users::by_id(&srv.state.db, &user)
        .await
        .unwrap()
        .unwrap();
    let (head, _) = store::head(&srv.state.db).await.unwrap();
    sqlx::query(
        "INSERT INTO audit_events (seq, at, event_type, outcome, actor, data, prev_hash, hash)
         VALUES ($1, 0, 'x', 'success', 'cli', '{}', '', '')",
    )
    .bind(head + 1)
    .execute(&srv.state.db.pool)
    .await
    .unwrap();
    let (s, _, _, _) = post(
        &srv,
        "/api/auth/change-password",
        json!({"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}),
        Some(&token),
    )
    .await;
    assert!(s.is_server_error(), "{s}");
    let after = klard_auth::store::users::by_id(&srv.state.db, &user)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.password_hash, before.password_hash);
    assert!(of_type(&srv, kind::PASSWORD_CHANGED).await.is_empty());
    assert_eq!(store::head(&srv.state.db).await.unwrap().0, head);
}

/// An admin client's token (client_credentials, `klard:admin`).
async fn admin_token(srv: &TestServer, scope: &str) -> String {
    let (id, secret) = srv
        .client(json!({
            "client_name": "ops",
            "grant_types": ["client_credentials"],
            "scope": scope,
        }))
        .await;
    let (s, v, _) = token_basic(
        srv,
        &id,
        secret.as_deref().unwrap(),
        &[("grant_type", "client_credentials"), ("scope", scope)],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["access_token"].as_str().unwrap().to_string()
}

async fn admin_get(srv: &TestServer, q: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut rb = srv.http().get(srv.url(&format!("/admin/audit-events{q}")));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

async fn admin_api_filters_and_pages(db: Db) {
    let srv = TestServer::start_with(db, proxied).await;
    let (willow, _, _, _) = sign_up(&srv, "willow@example.com").await;
    let (tara, _, _, _) = sign_up(&srv, "tara@example.com").await;
    assert_eq!(admin_get(&srv, "", None).await.0, 401);
    let weak = admin_token(&srv, "email").await;
    assert_eq!(admin_get(&srv, "", Some(&weak)).await.0, 403);
    let admin = admin_token(&srv, "klard:admin").await;
    let (s, v) = admin_get(&srv, "", Some(&admin)).await;
    assert_eq!(s, 200, "{v}");
    let all = v["events"].as_array().unwrap();
    assert_eq!(all.len(), 4, "{v}");
    assert_eq!(v["next"], Value::Null);
    for k in [
        "seq",
        "time",
        "time_unix",
        "type",
        "outcome",
        "actor",
        "subject",
        "client_id",
        "ip",
        "user_agent",
        "request_id",
        "data",
        "hash",
        "prev_hash",
    ] {
        assert!(all[0].get(k).is_some(), "{k} missing: {}", all[0]);
    }
    let (_, v) = admin_get(
        &srv,
        &format!("?user={tara}&type=user.registered,session.created"),
        Some(&admin),
    )
    .await;
    let evs = v["events"].as_array().unwrap();
    assert_eq!(evs.len(), 2, "{v}");
    assert!(evs.iter().all(|e| e["subject"] == tara.as_str()));
    let (_, v) = admin_get(
        &srv,
        "?type=user.registered&type=session.created&ip=203.0.113.9",
        Some(&admin),
    )
    .await;
    assert_eq!(v["events"].as_array().unwrap().len(), 4, "{v}");
    let (_, v) = admin_get(&srv, "?ip=198.51.100.1", Some(&admin)).await;
    assert_eq!(v["events"].as_array().unwrap().len(), 0, "{v}");
    // Paging: two pages of two, newest first.
    let (_, p1) = admin_get(&srv, "?limit=2", Some(&admin)).await;
    let next = p1["next"].as_i64().expect("a next cursor");
    let (_, p2) = admin_get(&srv, &format!("?limit=2&before={next}"), Some(&admin)).await;
    let seqs: Vec<i64> = p1["events"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2["events"].as_array().unwrap())
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [4, 3, 2, 1]);
    let (_, p3) = admin_get(
        &srv,
        "?limit=2&before=3&until=2999999999&since=2000-01-01T00:00:00Z",
        Some(&admin),
    )
    .await;
    assert_eq!(p3["events"].as_array().unwrap().len(), 2, "{p3}");
    let _ = willow;
    for bad in [
        "?limit=0",
        "?limit=501",
        "?since=yesterday",
        "?ip=nope",
        "?before=-1",
        "?colour=red",
    ] {
        let (s, v) = admin_get(&srv, bad, Some(&admin)).await;
        assert_eq!(s, 400, "{bad}: {v}");
        assert_eq!(v["error"], "invalid_request", "{bad}: {v}");
        assert!(v["error_description"].as_str().is_some(), "{v}");
    }
    let r = srv
        .http()
        .get(srv.url("/admin/audit-events/verify"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["checked"], 4, "{v}");
}

async fn own_history_only(db: Db) {
    let srv = TestServer::start_with(db, proxied).await;
    let (willow, token, cookie, _) = sign_up(&srv, "willow@example.com").await;
    let (_tara, tara_token, _, _) = sign_up(&srv, "tara@example.com").await;
    let r = srv
        .http()
        .get(srv.url("/api/auth/security-events"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let evs = v["events"].as_array().unwrap();
    assert_eq!(evs.len(), 2, "{v}");
    for e in evs {
        assert!(
            e.get("hash").is_none() && e.get("prevHash").is_none(),
            "{e}"
        );
        assert!(!e.to_string().contains("tara"), "{e}");
    }
    assert_eq!(evs[0]["type"], "session.created");
    assert_eq!(evs[1]["type"], "user.registered");
    assert_eq!(evs[0]["device"], "Firefox on Linux");
    let desc = evs[1]["description"].as_str().unwrap();
    assert!(
        desc.starts_with("Account created — Firefox on Linux — 203.0.113.9 — "),
        "{desc}"
    );
    // Paging and bad input.
    let get = |q: &'static str, t: String| {
        let c = srv.http();
        let url = srv.url(&format!("/api/auth/security-events{q}"));
        async move { c.get(url).bearer_auth(t).send().await.unwrap() }
    };
    let p: Value = get("?limit=1", tara_token.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(p["events"].as_array().unwrap().len(), 1);
    assert!(p["next"].as_i64().is_some(), "{p}");
    assert_eq!(get("?limit=0", tara_token.clone()).await.status(), 400);
    assert_eq!(get("?before=x", tara_token.clone()).await.status(), 400);
    let anon = srv
        .http()
        .get(srv.url("/api/auth/security-events"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    // The account page shows the same history.
    let page = srv
        .http()
        .get(srv.url("/account"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Security activity"), "{html}");
    assert!(
        html.contains("Account created — Firefox on Linux — 203.0.113.9 — "),
        "{html}"
    );
    assert!(html.contains("Signed in on a device"), "{html}");
    let _ = willow;
}

async fn retention_prunes_and_chain_stays_verifiable(db: Db) {
    let srv = TestServer::start_with(db, |c| {
        proxied(c);
        c.audit.retention_days = 1;
        c.audit.prune_interval = 1;
    })
    .await;
    sign_up(&srv, "willow@example.com").await;
    srv.state.clock.advance(3 * 86_400);
    sign_up(&srv, "tara@example.com").await;
    // The pruner (every second) removes the first two events behind an anchor.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if store::latest_anchor(&srv.state.db).await.unwrap().is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the pruner did not run"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let left = events(&srv, Filter::default()).await;
    assert_eq!(left.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 3]);
    let r = chain::verify(&srv.state.db, &chain::key(&srv.state.secret))
        .await
        .unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!((r.from_seq, r.last_seq), (2, 4), "{r:?}");
}

/// A refresh token used twice: the reuse is recorded with the family's revocation and
/// the owner is mailed, unless `alerts.refresh_reuse` is off.
async fn refresh_reuse_is_recorded_and_mailed(db: Db) {
    for alert in [true, false] {
        let port = free_port();
        let smtp = SmtpServer::start(port).await;
        let srv = TestServer::start_with(db, |c| {
            smtp_to(port)(c);
            c.tokens.refresh_reuse_grace = 0;
            c.alerts.refresh_reuse = alert;
        })
        .await;
        let user = srv.user("buffy@example.com").await;
        let (id, secret) = web_client(&srv).await;
        let mut b = Browser::new("buffy@example.com");
        let t = code_flow(
            &srv,
            &mut b,
            &id,
            &secret,
            "openid offline_access",
            &[("prompt", "consent")],
        )
        .await;
        let rt = t["refresh_token"]
            .as_str()
            .expect("refresh token")
            .to_string();
        let refresh = |tok: String| {
            let (srv, id, secret) = (&srv, id.clone(), secret.clone());
            async move {
                token_basic(
                    srv,
                    &id,
                    &secret,
                    &[("grant_type", "refresh_token"), ("refresh_token", &tok)],
                )
                .await
            }
        };
        assert_eq!(refresh(rt.clone()).await.0, 200);
        let (s, v, _) = refresh(rt.clone()).await;
        assert_eq!(s, 400, "{v}");
        let reuse = of_type(&srv, kind::REFRESH_TOKEN_REUSED).await;
        assert_eq!(reuse.len(), 1);
        assert_eq!(reuse[0].subject.as_deref(), Some(user.id.as_str()));
        assert_eq!(reuse[0].client_id.as_deref(), Some(id.as_str()));
        assert_eq!(reuse[0].actor, format!("client:{id}"));
        assert!(!format!("{:?}", reuse[0]).contains(&rt));
        if alert {
            let mails = smtp.wait_for(1).await;
            let m = mails
                .iter()
                .find(|m| m.subject.starts_with("Security alert"))
                .expect("the alert");
            assert_eq!(m.to, "buffy@example.com");
            assert!(m.subject.contains("Test RP"), "{}", m.subject);
        } else {
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert!(
                smtp.messages()
                    .iter()
                    .all(|m| !m.subject.starts_with("Security alert")),
                "alert sent although alerts.refresh_reuse = false"
            );
            let queued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mail_outbox")
                .fetch_one(&srv.state.db.pool)
                .await
                .unwrap();
            assert_eq!(queued, 0);
        }
    }
}

db_tests!(
    sign_up_and_password_change_are_recorded,
    failed_audit_write_undoes_the_change,
    admin_api_filters_and_pages,
    own_history_only,
    retention_prunes_and_chain_stays_verifiable,
    refresh_reuse_is_recorded_and_mailed,
);
