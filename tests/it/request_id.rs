//! `x-request-id` (http/request_meta.rs): kept only from a trusted proxy and only when
//! short and printable; anything else gets a fresh id. Every answer carries one.

use crate::support::*;

async fn echoed(server: &TestServer, sent: Option<&str>) -> String {
    let mut req = server.http().get(server.url("/health"));
    if let Some(id) = sent {
        req = req.header("x-request-id", id);
    }
    let r = req.send().await.expect("health");
    r.headers()["x-request-id"].to_str().unwrap().to_string()
}

async fn request_ids_come_from_trusted_proxies_only(db: Db) {
    let untrusted = TestServer::start(db).await;
    let fresh = echoed(&untrusted, None).await;
    assert_eq!(fresh.len(), 32, "{fresh}");
    assert_ne!(
        echoed(&untrusted, None).await,
        fresh,
        "a new id per request"
    );
    assert_ne!(
        echoed(&untrusted, Some("chosen-by-client")).await,
        "chosen-by-client"
    );

    let proxied = TestServer::start_with(db, |c| {
        c.proxy.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    assert_eq!(echoed(&proxied, Some("lb-42.7:a_b")).await, "lb-42.7:a_b");
    for bad in ["has space", "semi;colon", &"x".repeat(65)] {
        let got = echoed(&proxied, Some(bad)).await;
        assert_ne!(got, bad);
        assert_eq!(got.len(), 32, "{got}");
    }
}

db_tests!(request_ids_come_from_trusted_proxies_only);
