//! Rate limiting (issue 4, `[rate_limit]`) over real HTTP: per-IP budgets on each door
//! (api/auth JSON, OAuth JSON, HTML pages) and the general budget; addresses from
//! trusted proxies only, IPv6 grouped by /64; per-account budgets across addresses;
//! per-client budgets at /token (Basic and form); per-endpoint budgets; the window
//! sliding on (test clock); two instances sharing the database or Redis holding one
//! limit; the counter store down, fail open and fail closed. Every refusal is checked
//! for a well-formed 429 (`Retry-After`, `RateLimit`, `RateLimit-Policy` consistent,
//! body in the door's format).

use klard_auth::app;
use klard_auth::config::{Config, RateLimitKey, RateLimitRuleConfig, RateLimitStorage};
use reqwest::Response;
use serde_json::{Value, json};

use crate::support::*;

const SIGN_IN: &str = "/api/auth/sign-in/email";

fn rule(path: &str, key: RateLimitKey, window: u64, max: u64) -> RateLimitRuleConfig {
    RateLimitRuleConfig {
        path: path.into(),
        methods: Vec::new(),
        window,
        max,
        key,
    }
}

/// Limits on, built-in rules off, only `rules` (and a general budget nobody reaches).
fn limits(cfg: &mut Config, rules: Vec<RateLimitRuleConfig>) {
    cfg.rate_limit.enabled = true;
    cfg.rate_limit.defaults = false;
    cfg.rate_limit.max = 10_000;
    cfg.rate_limit.rules = rules;
}

fn trust_local_proxy(cfg: &mut Config) {
    cfg.proxy.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
}

/// One item of a `RateLimit` or `RateLimit-Policy` list: name and parameters.
#[derive(Debug)]
struct Item {
    name: String,
    params: Vec<(String, u64)>,
}

impl Item {
    fn get(&self, k: &str) -> u64 {
        self.params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("{k} missing in {self:?}"))
    }
}

/// Parses `"name";a=1;b=2, "other";a=3` (the structured-field lists of
/// draft-ietf-httpapi-ratelimit-headers; our names contain no `,` `;` or `"`).
fn parse_list(v: &str) -> Vec<Item> {
    v.split(',')
        .map(|item| {
            let mut parts = item.trim().split(';');
            let name = parts.next().expect("name");
            assert!(
                name.starts_with('"') && name.ends_with('"') && name.len() >= 2,
                "not an sf-string: {name}"
            );
            let params = parts
                .map(|p| {
                    let (k, v) = p.split_once('=').expect("param");
                    (k.to_string(), v.parse::<u64>().expect("integer param"))
                })
                .collect();
            Item {
                name: name[1..name.len() - 1].to_string(),
                params,
            }
        })
        .collect()
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The `RateLimit` and `RateLimit-Policy` items of policy `name`, checked to agree.
fn policy(r: &Response, name: &str) -> (Item, Item) {
    let limit = parse_list(header(r, "ratelimit").expect("RateLimit header"));
    let pol = parse_list(header(r, "ratelimit-policy").expect("RateLimit-Policy header"));
    assert_eq!(limit.len(), pol.len(), "one RateLimit item per policy");
    let find = |v: Vec<Item>| {
        v.into_iter()
            .find(|i| i.name == name)
            .unwrap_or_else(|| panic!("no policy {name}"))
    };
    (find(limit), find(pol))
}

/// The door whose error format a refusal must have.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Door {
    Api,
    OAuth,
    Page,
}

/// Checks a refusal completely and returns its `Retry-After`.
async fn assert_refused(r: Response, door: Door, name: &str, max: u64, window: u64) -> u64 {
    assert_eq!(r.status(), 429, "{:?}", r.headers());
    let retry: u64 = header(&r, "retry-after")
        .expect("Retry-After")
        .parse()
        .expect("Retry-After is delay-seconds");
    assert!(retry >= 1 && retry <= 2 * window, "retry-after {retry}");
    let (limit, pol) = policy(&r, name);
    assert_eq!((pol.get("q"), pol.get("w")), (max, window));
    assert_eq!(limit.get("r"), 0);
    assert_eq!(limit.get("t"), retry);
    assert_eq!(header(&r, "cache-control"), Some("no-store"));
    let ct = header(&r, "content-type").unwrap_or("").to_string();
    match door {
        Door::Api => {
            assert!(ct.starts_with("application/json"), "{ct}");
            let v: Value = r.json().await.expect("json");
            assert_eq!(v["code"], "TOO_MANY_REQUESTS", "{v}");
            assert!(
                v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(&retry.to_string()))
            );
        }
        Door::OAuth => {
            assert!(ct.starts_with("application/json"), "{ct}");
            let v: Value = r.json().await.expect("json");
            assert_eq!(v["error"], "temporarily_unavailable", "{v}");
            assert!(v["error_description"].as_str().is_some());
        }
        Door::Page => {
            assert!(ct.starts_with("text/html"), "{ct}");
            assert!(r.headers().get("location").is_none());
            let body = r.text().await.expect("body");
            assert!(body.contains("Too many requests"), "{body}");
            assert!(body.contains("too_many_requests"), "{body}");
        }
    }
    retry
}

async fn sign_in(s: &TestServer, c: &reqwest::Client, email: &str, xff: Option<&str>) -> Response {
    let mut req = c
        .post(s.url(SIGN_IN))
        .json(&json!({ "email": email, "password": "not the password" }));
    if let Some(ip) = xff {
        req = req.header("x-forwarded-for", ip);
    }
    req.send().await.expect("sign-in")
}

async fn per_ip_on_every_door(db: Db) {
    let s = TestServer::start_with(db, |c| {
        limits(
            c,
            vec![
                rule("/api/auth/sign-in/*", RateLimitKey::Ip, 60, 3),
                rule("/token", RateLimitKey::Ip, 60, 2),
                rule("/authorize", RateLimitKey::Ip, 60, 2),
            ],
        );
        c.rate_limit.max = 4;
    })
    .await;
    let c = s.http();
    let user = s.user("buffy@example.com").await;
    // Allowed answers carry the fields too, counting down; the body reaches the
    // handler intact (the right password signs in).
    let ok = c
        .post(s.url(SIGN_IN))
        .json(&json!({ "email": user.email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let (l, p) = policy(&ok, "ip:/api/auth/sign-in/*");
    assert_eq!((l.get("r"), p.get("q"), p.get("w")), (2, 3, 60));
    assert!(l.get("t") >= 1 && l.get("t") <= 60);
    for left in [1, 0] {
        let r = sign_in(&s, &c, "buffy@example.com", None).await;
        assert_eq!(r.status(), 401);
        assert_eq!(policy(&r, "ip:/api/auth/sign-in/*").0.get("r"), left);
    }
    let r = sign_in(&s, &c, "buffy@example.com", None).await;
    assert_refused(r, Door::Api, "ip:/api/auth/sign-in/*", 3, 60).await;

    // The token endpoint: OAuth's JSON.
    for _ in 0..2 {
        let r = c
            .post(s.url("/token"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error() && r.status() != 429);
    }
    let r = c
        .post(s.url("/token"))
        .header("origin", "https://spa.example")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    // Readable by a browser app, as every answer of the back-channel endpoints is.
    assert_eq!(header(&r, "access-control-allow-origin"), Some("*"));
    assert!(header(&r, "access-control-expose-headers").is_some_and(|v| v.contains("retry-after")));
    assert_refused(r, Door::OAuth, "ip:/token", 2, 60).await;

    // The authorization endpoint: an HTML page, never a redirect.
    let authz = s.url(
        "/authorize?client_id=x&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=code",
    );
    for _ in 0..2 {
        let r = c.get(&authz).send().await.unwrap();
        assert_eq!(r.status(), 400);
    }
    let r = c.get(&authz).send().await.unwrap();
    assert_refused(r, Door::Page, "ip:/authorize", 2, 60).await;

    // The general budget: per address and path, `rate_limit.max` per `window`.
    for _ in 0..4 {
        let r = c.get(s.url("/health")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        policy(&r, "default");
    }
    let r = c.get(s.url("/health")).send().await.unwrap();
    assert_refused(r, Door::Page, "default", 4, 60).await;
    // Another path has its own general budget.
    let r = c
        .get(s.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The OAuth JSON door covers the metadata endpoints too.
    for _ in 0..3 {
        c.get(s.url("/jwks")).send().await.unwrap();
    }
    let r = c.get(s.url("/jwks")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(s.url("/jwks")).send().await.unwrap();
    assert_refused(r, Door::OAuth, "default", 4, 60).await;
}

async fn addresses_from_trusted_proxies_only(db: Db) {
    let sign_in_rule = || vec![rule("/api/auth/sign-in/*", RateLimitKey::Ip, 60, 2)];
    let s = TestServer::start_with(db, |c| {
        limits(c, sign_in_rule());
        trust_local_proxy(c);
    })
    .await;
    let c = s.http();
    let name = "ip:/api/auth/sign-in/*";
    for _ in 0..2 {
        let r = sign_in(&s, &c, "a@example.com", Some("203.0.113.1")).await;
        assert_eq!(r.status(), 401);
    }
    let r = sign_in(&s, &c, "a@example.com", Some("203.0.113.1")).await;
    assert_refused(r, Door::Api, name, 2, 60).await;
    // Another client behind the same proxy has its own budget.
    let r = sign_in(&s, &c, "a@example.com", Some("203.0.113.2")).await;
    assert_eq!(r.status(), 401);
    // A forged hop to the left of the one our proxy appended changes nothing.
    let r = sign_in(&s, &c, "a@example.com", Some("198.51.100.7, 203.0.113.1")).await;
    assert_eq!(r.status(), 429);
    // IPv6: one /64 is one client.
    for ip in ["2001:db8:1:2::1", "2001:db8:1:2:ffff::9"] {
        let r = sign_in(&s, &c, "a@example.com", Some(ip)).await;
        assert_eq!(r.status(), 401, "{ip}");
    }
    let r = sign_in(&s, &c, "a@example.com", Some("2001:db8:1:2:abcd::1")).await;
    assert_refused(r, Door::Api, name, 2, 60).await;
    let r = sign_in(&s, &c, "a@example.com", Some("2001:db8:1:3::1")).await;
    assert_eq!(r.status(), 401, "another /64");

    // Without trusted proxies, X-Forwarded-For is the client's own claim: ignored.
    let u = TestServer::start_with(db, |c| limits(c, sign_in_rule())).await;
    for ip in ["203.0.113.10", "203.0.113.11"] {
        let r = sign_in(&u, &c, "a@example.com", Some(ip)).await;
        assert_eq!(r.status(), 401);
    }
    let r = sign_in(&u, &c, "a@example.com", Some("203.0.113.12")).await;
    assert_refused(r, Door::Api, name, 2, 60).await;
}

async fn per_account_across_addresses(db: Db) {
    let s = TestServer::start_with(db, |c| {
        limits(
            c,
            vec![
                rule("/api/auth/sign-in/*", RateLimitKey::Account, 300, 2),
                rule("/login", RateLimitKey::Account, 300, 2),
            ],
        );
        trust_local_proxy(c);
    })
    .await;
    let c = s.http();
    let name = "account:/api/auth/sign-in/*";
    // The same account from new addresses each time, spelled differently.
    let r = sign_in(&s, &c, "willow@example.com", Some("203.0.113.1")).await;
    assert_eq!(r.status(), 401);
    let r = sign_in(&s, &c, " Willow@Example.com ", Some("203.0.113.2")).await;
    assert!(r.status().is_client_error() && r.status() != 429);
    let r = sign_in(&s, &c, "WILLOW@example.com", Some("203.0.113.3")).await;
    assert_refused(r, Door::Api, name, 2, 300).await;
    // Another account from the same address is not affected.
    let r = sign_in(&s, &c, "xander@example.com", Some("203.0.113.3")).await;
    assert_eq!(r.status(), 401);
    // A request that names no account is not counted by an account rule.
    let r = c
        .post(s.url(SIGN_IN))
        .json(&json!({ "password": "x" }))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 429);

    // The hosted login form: the `username` field of the form body.
    let post = |ip: &'static str| {
        c.post(s.url("/login"))
            .header("x-forwarded-for", ip)
            .form(&[("username", "willow@example.com"), ("password", "x")])
            .send()
    };
    for ip in ["203.0.113.4", "203.0.113.5"] {
        let r = post(ip).await.unwrap();
        assert_ne!(r.status(), 429);
    }
    let r = post("203.0.113.6").await.unwrap();
    assert_refused(r, Door::Page, "account:/login", 2, 300).await;
}

async fn per_client_at_the_token_endpoint(db: Db) {
    let s = TestServer::start_with(db, |c| {
        limits(c, vec![rule("/token", RateLimitKey::Client, 60, 3)]);
    })
    .await;
    let (id, secret) = s
        .client(json!({
            "client_name": "Service",
            "grant_types": ["client_credentials"],
            "scope": "openid",
        }))
        .await;
    let secret = secret.expect("secret");
    let c = s.http();
    let grant = [("grant_type", "client_credentials")];
    // Basic: the body reaches the handler intact and a token is issued.
    let r = c
        .post(s.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&grant)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(policy(&r, "client:/token").0.get("r"), 2);
    // The form's client_id shares the client's budget.
    let r = c
        .post(s.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error() && r.status() != 429);
    let r = c
        .post(s.url("/token"))
        .basic_auth(&id, Some("wrong"))
        .form(&grant)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(s.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&grant)
        .send()
        .await
        .unwrap();
    assert_refused(r, Door::OAuth, "client:/token", 3, 60).await;
    let r = c
        .post(s.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // Another client is not affected.
    let r = c
        .post(s.url("/token"))
        .basic_auth("someone-else", Some("x"))
        .form(&grant)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

async fn per_endpoint_budget(db: Db) {
    let s = TestServer::start_with(db, |c| {
        limits(
            c,
            vec![rule("/api/auth/sign-in/*", RateLimitKey::Endpoint, 60, 2)],
        );
        trust_local_proxy(c);
    })
    .await;
    let c = s.http();
    for (email, ip) in [
        ("a@example.com", "203.0.113.1"),
        ("b@example.com", "203.0.113.2"),
    ] {
        let r = sign_in(&s, &c, email, Some(ip)).await;
        assert_eq!(r.status(), 401);
    }
    let r = sign_in(&s, &c, "c@example.com", Some("203.0.113.3")).await;
    assert_refused(r, Door::Api, "endpoint:/api/auth/sign-in/*", 2, 60).await;
    // Other endpoints are not counted by it.
    let r = c
        .post(s.url("/api/auth/sign-up/email"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 429);
}

async fn the_window_slides_on(db: Db) {
    let s = TestServer::start_with(db, |c| {
        limits(
            c,
            vec![rule("/api/auth/sign-in/*", RateLimitKey::Ip, 10, 2)],
        );
    })
    .await;
    let c = s.http();
    let name = "ip:/api/auth/sign-in/*";
    for _ in 0..2 {
        assert_eq!(sign_in(&s, &c, "a@example.com", None).await.status(), 401);
    }
    let retry = assert_refused(
        sign_in(&s, &c, "a@example.com", None).await,
        Door::Api,
        name,
        2,
        10,
    )
    .await;
    // Just before the promised time it is still refused (the refused request counted),
    // unless the wall clock moved on meanwhile; a refused attempt counts too, so wait
    // as long as that answer says.
    s.state.clock.advance(retry as i64 - 1);
    let r = sign_in(&s, &c, "a@example.com", None).await;
    if r.status() == 429 {
        let again = assert_refused(r, Door::Api, name, 2, 10).await;
        s.state.clock.advance(again as i64);
    } else {
        assert_eq!(r.status(), 401);
        s.state.clock.advance(10);
    }
    assert_eq!(sign_in(&s, &c, "a@example.com", None).await.status(), 401);
    // Two windows later everything is forgotten.
    s.state.clock.advance(20);
    for _ in 0..2 {
        assert_eq!(sign_in(&s, &c, "a@example.com", None).await.status(), 401);
    }
}

/// A second server on the same database as `first`, with the same configuration.
async fn second_instance(first: &TestServer) -> (app::Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut cfg = first.state.config.clone();
    cfg.issuer = format!("http://127.0.0.1:{port}");
    cfg.bind = format!("127.0.0.1:{port}");
    cfg.data_dir = dir.path().to_path_buf();
    let state = app::build_state(cfg).await.expect("state");
    let running = app::serve(state, listener).await.expect("serve");
    (running, dir)
}

/// Two instances sharing their counters (`storage`) allow `max` between them.
async fn shared_between_instances(db: Db, storage: RateLimitStorage) {
    let prefix = format!("klard:it:{}:", uuid::Uuid::new_v4().simple());
    let a = TestServer::start_with(db, |c| {
        limits(
            c,
            vec![rule("/api/auth/sign-in/*", RateLimitKey::Account, 60, 4)],
        );
        c.rate_limit.storage = storage;
        c.rate_limit.redis_prefix = prefix.clone();
    })
    .await;
    let (b, _dir) = second_instance(&a).await;
    let b_url = format!("http://{}{SIGN_IN}", b.addr);
    let c = a.http();
    let post_b = || {
        c.post(&b_url)
            .json(&json!({ "email": "giles@example.com", "password": "x" }))
            .send()
    };
    for i in 0..4 {
        let r = if i % 2 == 0 {
            sign_in(&a, &c, "giles@example.com", None).await
        } else {
            post_b().await.unwrap()
        };
        assert_eq!(r.status(), 401, "request {i}");
    }
    let name = "account:/api/auth/sign-in/*";
    assert_refused(post_b().await.unwrap(), Door::Api, name, 4, 60).await;
    let r = sign_in(&a, &c, "giles@example.com", None).await;
    assert_refused(r, Door::Api, name, 4, 60).await;
    b.shutdown();
}

async fn two_instances_share_the_database(db: Db) {
    shared_between_instances(db, RateLimitStorage::Database).await;
}

async fn two_instances_share_redis(db: Db) {
    shared_between_instances(db, RateLimitStorage::Redis).await;
}

async fn store_down_fails_open_or_closed(db: Db) {
    let down = |fail_open: bool| {
        move |c: &mut Config| {
            limits(
                c,
                vec![
                    rule("/api/auth/sign-in/*", RateLimitKey::Ip, 60, 1),
                    rule("/token", RateLimitKey::Ip, 60, 1),
                    rule("/authorize", RateLimitKey::Ip, 60, 1),
                ],
            );
            c.rate_limit.storage = RateLimitStorage::Redis;
            // Nothing listens on port 1.
            c.rate_limit.redis_url = "redis://127.0.0.1:1".into();
            c.rate_limit.fail_open = fail_open;
        }
    };
    // Open: allowed (with a warning in the log), and no fields it cannot vouch for.
    let s = TestServer::start_with(db, down(true)).await;
    let c = s.http();
    for _ in 0..3 {
        let r = sign_in(&s, &c, "a@example.com", None).await;
        assert_eq!(r.status(), 401);
        assert!(r.headers().get("ratelimit").is_none());
    }
    drop(s);
    // Closed: 503 in each door's format.
    let s = TestServer::start_with(db, down(false)).await;
    let r = sign_in(&s, &c, "a@example.com", None).await;
    assert_eq!(r.status(), 503);
    assert!(
        header(&r, "content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "SERVICE_UNAVAILABLE", "{v}");
    let r = c
        .post(s.url("/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "temporarily_unavailable", "{v}");
    let r = c.get(s.url("/authorize?client_id=x")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(header(&r, "content-type").unwrap().starts_with("text/html"));
    assert!(r.headers().get("location").is_none());
}

async fn built_in_rules_guard_sign_in(db: Db) {
    // The defaults as shipped: 10 sign-ins per account in 5 minutes.
    let s = TestServer::start_with(db, |c| {
        c.rate_limit.enabled = true;
        trust_local_proxy(c);
    })
    .await;
    let c = s.http();
    for i in 0..10 {
        let ip = format!("203.0.113.{i}");
        let r = sign_in(&s, &c, "dawn@example.com", Some(&ip)).await;
        assert_eq!(r.status(), 401, "attempt {i}");
        policy(&r, "sign-in-ip");
        policy(&r, "sign-in-account");
    }
    let r = sign_in(&s, &c, "dawn@example.com", Some("203.0.113.99")).await;
    assert_refused(r, Door::Api, "sign-in-account", 10, 300).await;
}

async fn built_in_rules_let_a_person_through(db: Db) {
    // The hosted login form is read for its account (body peeked and handed on) and the
    // token request counted by client: a person's code flows pass untouched.
    let s = TestServer::start_with(db, |c| c.rate_limit.enabled = true).await;
    let user = s.user("joyce@example.com").await;
    let (id, secret) = web_client(&s).await;
    for _ in 0..3 {
        let mut browser = Browser::new(&user.email);
        let tokens = code_flow(&s, &mut browser, &id, &secret, "openid", &[]).await;
        assert!(tokens["id_token"].is_string(), "{tokens}");
        assert_eq!(
            browser.pages_seen.first().map(String::as_str),
            Some("login")
        );
    }
    let (status, _, headers) = token_basic(
        &s,
        &id,
        &secret,
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    )
    .await;
    assert_eq!(status, 400);
    let pol = headers
        .get("ratelimit-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        pol.contains("\"token-ip\";q=600;w=60") && pol.contains("\"token-client\";q=1200;w=60"),
        "{pol}"
    );
}

/// The owner's known device has its own account budget: an attacker who spends the
/// account's budget from anywhere does not shut the owner out, and a forged or foreign
/// device cookie buys nothing.
async fn known_device_keeps_its_own_account_budget(db: Db) {
    let s = TestServer::start_with(db, |c| {
        limits(
            c,
            vec![rule("/api/auth/sign-in/*", RateLimitKey::Account, 300, 3)],
        );
        trust_local_proxy(c);
    })
    .await;
    s.user("owner@example.com").await;
    s.user("other@example.com").await;
    let c = s.http();
    let device_of = |r: &Response| {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("klard_device="))
            .and_then(|v| v.split(';').next())
            .map(String::from)
            .expect("device cookie")
    };
    let good = |email: &str, cookie: Option<&str>, ip: &str| {
        let mut req = c
            .post(s.url(SIGN_IN))
            .header("x-forwarded-for", ip)
            .json(&json!({ "email": email, "password": PASSWORD }));
        if let Some(k) = cookie {
            // A cookie request must come from a trusted origin (the issuer's own).
            req = req.header("cookie", k).header("origin", s.issuer());
        }
        req.send()
    };
    let owner = device_of(
        &good("owner@example.com", None, "198.51.100.1")
            .await
            .unwrap(),
    );
    let other = device_of(
        &good("other@example.com", None, "198.51.100.2")
            .await
            .unwrap(),
    );
    // The attacker spends the owner's account budget from rotating addresses.
    for n in 3..=4 {
        let r = sign_in(&s, &c, "owner@example.com", Some(&format!("203.0.113.{n}"))).await;
        assert_ne!(r.status(), 429);
    }
    let r = sign_in(&s, &c, "owner@example.com", Some("203.0.113.9")).await;
    assert_refused(r, Door::Api, "account:/api/auth/sign-in/*", 3, 300).await;
    // Without the device, even the right password is throttled...
    let r = good("owner@example.com", None, "198.51.100.7")
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // ...with another account's device cookie too, and with a made-up one...
    let r = good("owner@example.com", Some(&other), "198.51.100.7")
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let r = good(
        "owner@example.com",
        Some("klard_device=forged"),
        "198.51.100.7",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 429);
    // ...but the owner's own device signs in.
    let r = good("owner@example.com", Some(&owner), "198.51.100.7")
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

db_tests!(
    known_device_keeps_its_own_account_budget,
    built_in_rules_let_a_person_through,
    per_ip_on_every_door,
    addresses_from_trusted_proxies_only,
    per_account_across_addresses,
    per_client_at_the_token_endpoint,
    per_endpoint_budget,
    the_window_slides_on,
    two_instances_share_the_database,
    two_instances_share_redis,
    store_down_fails_open_or_closed,
    built_in_rules_guard_sign_in,
);
