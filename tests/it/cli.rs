//! The binary itself: provisioning commands with `--json`, config validation errors,
//! and `serve` over TLS with the certificate reloaded on change.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::{Db, create_pg_database, drop_pg_database};

const BIN: &str = env!("CARGO_BIN_EXE_klard-auth");

struct Env {
    _dir: tempfile::TempDir,
    config: std::path::PathBuf,
    pg: Option<String>,
    url: String,
}

impl Env {
    async fn new(db: Db, extra: &str) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let (url, pg) = match db {
            Db::Sqlite => (
                format!("sqlite://{}/k.db?mode=rwc", dir.path().display()),
                None,
            ),
            Db::Postgres => {
                let name = format!("klard_it_{}", uuid::Uuid::new_v4().simple());
                create_pg_database(&name).await;
                (
                    format!("postgres://postgres@127.0.0.1:5432/{name}"),
                    Some(name),
                )
            }
        };
        let config = dir.path().join("klard.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = \"{d}\"\ndatabase_url = \"{url}\"\n{extra}\n[password]\nargon2_m_cost = 64\nargon2_t_cost = 1\n",
                d = dir.path().display()
            ),
        )
        .expect("write config");
        Env {
            _dir: dir,
            config,
            pg,
            url,
        }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config").arg(&self.config).args(args);
        cmd.env_remove("DATABASE_URL").env("RUST_LOG", "error");
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn klard-auth");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        let out = child.wait_with_output().expect("wait");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn json(&self, args: &[&str], stdin: Option<&str>) -> Value {
        let (ok, out, err) = self.run(args, stdin);
        assert!(ok, "klard-auth {args:?} failed: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(name) = self.pg.take() {
            drop_pg_database(name, None);
        }
    }
}

async fn provisioning_commands(db: Db) {
    let env = Env::new(db, "").await;
    let m = env.json(&["migrate", "--json"], None);
    assert_eq!(m["migrated"], true);

    let u = env.json(
        &["user", "create", "--stdin", "--json"],
        Some(r#"{"email":"Alice@Example.com","password":"a long password","email_verified":true,"given_name":"Alice"}"#),
    );
    assert_eq!(u["email"], "alice@example.com");
    let (ok, _, err) = env.run(
        &[
            "user",
            "create",
            "--email",
            "alice@example.com",
            "--password",
            "another password",
        ],
        None,
    );
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = env.run(
        &[
            "user",
            "create",
            "--email",
            "b@example.com",
            "--password",
            "short",
        ],
        None,
    );
    assert!(!ok && err.contains("at least 8"), "{err}");
    let list = env.json(&["user", "list", "--json"], None);
    assert_eq!(list.as_array().map(Vec::len), Some(1));

    let c = env.json(
        &[
            "client",
            "create",
            "--json",
            "--name",
            "Web",
            "--redirect-uri",
            "https://app.example.com/cb",
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
        ],
        None,
    );
    let id = c["client_id"].as_str().expect("client_id").to_string();
    assert!(c["client_secret"].as_str().is_some_and(|s| s.len() >= 32));
    let native = env.json(
        &["client", "create", "--stdin", "--json"],
        Some(r#"{"client_id":"klard-ios","application_type":"native","redirect_uris":["klard://callback"],"token_endpoint_auth_method":"none"}"#),
    );
    assert_eq!(native["client_id"], "klard-ios");
    assert!(native["client_secret"].is_null());
    let (ok, _, err) = env.run(
        &[
            "client",
            "create",
            "--redirect-uri",
            "https://x.example.com/cb#frag",
        ],
        None,
    );
    assert!(!ok && err.contains("invalid_redirect_uri"), "{err}");
    let (ok, _, err) = env.run(
        &["client", "create", "--redirect-uri", "klard://callback"],
        None,
    );
    assert!(
        !ok && err.contains("invalid_redirect_uri"),
        "a web client may not use a custom scheme: {err}"
    );

    let shown = env.json(&["client", "show", &id, "--json"], None);
    assert_eq!(shown["metadata"]["client_name"], "Web");
    let clients = env.json(&["client", "list", "--json"], None);
    assert_eq!(clients.as_array().map(Vec::len), Some(2));
    let d = env.json(&["client", "delete", &id, "--json"], None);
    assert_eq!(d["deleted"], id.as_str());
    let (ok, _, _) = env.run(&["client", "show", &id], None);
    assert!(!ok);

    let before = env.json(&["keys", "list", "--json"], None);
    let before = before.as_array().expect("keys").clone();
    assert_eq!(before.len(), 3, "one key per algorithm: {before:?}");
    let rotated = env.json(&["keys", "rotate", "--immediate", "--json"], None);
    assert_eq!(rotated["new_kids"].as_array().map(Vec::len), Some(3));
    let after = env.json(&["keys", "list", "--json"], None);
    let after = after.as_array().expect("keys");
    assert_eq!(after.len(), 6);
    for k in &before {
        let now = after
            .iter()
            .find(|a| a["kid"] == k["kid"])
            .expect("old key still listed");
        assert_eq!(now["state"], "retired", "{now}");
    }
    assert_eq!(after.iter().filter(|a| a["state"] == "active").count(), 3);
}

async fn config_errors_name_the_field(db: Db) {
    let env = Env::new(db, "[tokens]\ncode_ttl = 100000\n").await;
    let (ok, _, err) = env.run(&["migrate"], None);
    assert!(!ok);
    assert!(err.contains("tokens.code_ttl"), "{err}");
    let env = Env::new(db, "issuer = \"http://auth.example.com\"\n").await;
    let (ok, _, err) = env.run(&["migrate"], None);
    assert!(
        !ok && err.contains("`issuer`") && err.contains("https"),
        "{err}"
    );
    let env = Env::new(db, "[tokens]\nno_such_option = 1\n").await;
    let (ok, _, err) = env.run(&["migrate"], None);
    assert!(!ok && err.contains("no_such_option"), "{err}");
}

/// A CA and a leaf certificate for 127.0.0.1 (see .ci/make-cert).
fn make_cert(dir: &std::path::Path) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/make-cert");
    let st = Command::new("bash")
        .arg(script)
        .arg(dir)
        .status()
        .expect("make-cert");
    assert!(st.success());
}

async fn serve_over_tls_and_reload_certificate(db: Db) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let tmp = tempfile::tempdir().expect("tmp");
    make_cert(tmp.path());
    let env = Env::new(
        db,
        &format!(
            "issuer = \"https://127.0.0.1:{port}\"\nbind = \"127.0.0.1:{port}\"\n[tls]\ncert = \"{c}\"\nkey = \"{k}\"\nreload_interval = 1\n",
            c = tmp.path().join("cert.pem").display(),
            k = tmp.path().join("key.pem").display()
        ),
    )
    .await;
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&env.config)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let fetch = |pem: Vec<u8>| async move {
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
            .build()
            .expect("client");
        http.get(format!(
            "https://127.0.0.1:{port}/.well-known/openid-configuration"
        ))
        .send()
        .await
    };
    let first = std::fs::read(tmp.path().join("ca.pem")).expect("ca");
    let mut doc = None;
    for _ in 0..100 {
        if let Ok(r) = fetch(first.clone()).await {
            doc = Some(r.json::<Value>().await.expect("json"));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let doc = doc.expect("server answered over TLS");
    assert_eq!(doc["issuer"], format!("https://127.0.0.1:{port}"));
    assert_eq!(
        doc["token_endpoint"],
        format!("https://127.0.0.1:{port}/token")
    );
    // Replace the certificate (issued by a new CA); the watcher picks it up without a restart.
    make_cert(tmp.path());
    let second = std::fs::read(tmp.path().join("ca.pem")).expect("ca");
    let mut reloaded = false;
    for _ in 0..100 {
        if fetch(second.clone()).await.is_ok() {
            reloaded = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(reloaded, "the new certificate was not served");
    assert!(
        fetch(first).await.is_err(),
        "the old certificate is still served"
    );
}

/// `audit verify` through the binary: exit 0 and a summary on an intact chain; after a
/// row is edited behind the app's back, non-zero and the edited seq named.
async fn audit_verify_names_the_first_broken_link(db: Db) {
    let env = Env::new(db, "").await;
    let (ok, _, err) = env.run(
        &[
            "user",
            "create",
            "--email",
            "giles@example.com",
            "--password",
            "a long passphrase here",
        ],
        None,
    );
    assert!(ok, "{err}");
    let (ok, _, err) = env.run(&["keys", "rotate"], None);
    assert!(ok, "{err}");
    let (ok, out, err) = env.run(&["audit", "verify"], None);
    assert!(ok, "{err}");
    assert!(out.contains("audit chain intact"), "{out}");
    let v = env.json(&["audit", "verify", "--json"], None);
    assert_eq!(v["ok"], true, "{v}");
    let checked = v["checked"].as_i64().unwrap();
    assert!(
        checked >= 2,
        "user create and key rotation are recorded: {v}"
    );
    let list = env.json(
        &["audit", "list", "--type", "user.registered", "--json"],
        None,
    );
    let evs = list["events"].as_array().unwrap();
    assert_eq!(evs.len(), 1, "{list}");
    assert_eq!(evs[0]["actor"], "cli");
    assert!(!list.to_string().contains("a long passphrase here"));
    let (ok, _, err) = env.run(&["audit", "list", "--limit", "0"], None);
    assert!(!ok && err.contains("limit"), "{err}");
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&env.url).await.unwrap();
    sqlx::query("UPDATE audit_events SET data = '{\"email\":\"x\"}' WHERE seq = 1")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (ok, _, err) = env.run(&["audit", "verify"], None);
    assert!(!ok, "a tampered chain verified");
    assert!(err.contains("first broken link: seq 1"), "{err}");
    let (ok, out, _) = env.run(&["audit", "verify", "--json"], None);
    assert!(!ok);
    assert!(out.contains("hash_mismatch"), "{out}");
}

db_tests!(
    audit_verify_names_the_first_broken_link,
    provisioning_commands,
    config_errors_name_the_field,
    serve_over_tls_and_reload_certificate
);
