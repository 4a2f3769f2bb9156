//! Registration policy (issue 3): the password policy, custom user fields, terms of
//! service, invite-only and disabled sign-up, the `invite` CLI, and the hosted
//! `/sign-up` form. Every refusal is checked for its exact status and code and for
//! leaving nothing behind (users and invites counted, invites still unspent).

use klard_auth::config::{Config, SignUpMode, UserFieldConfig, UserFieldType};
use klard_auth::store::{invites, users};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const SIGN_UP: &str = "/api/auth/sign-up/email";

async fn post(
    c: &reqwest::Client,
    server: &TestServer,
    path: &str,
    body: Value,
    bearer: Option<&str>,
) -> (StatusCode, Value) {
    let mut rb = c.post(server.url(path)).json(&body);
    if let Some(t) = bearer {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.expect("POST");
    let s = r.status();
    (s, r.json::<Value>().await.unwrap_or(Value::Null))
}

async fn count(server: &TestServer, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM {table}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_one(&server.state.db.pool)
        .await
        .expect("count");
    sqlx::Row::try_get::<i64, _>(&row, "n").expect("n")
}

async fn stored(server: &TestServer, email: &str) -> Option<users::User> {
    users::by_email(&server.state.db, email)
        .await
        .expect("by_email")
}

/// Expects a refusal with `status` and `code` and no new user.
async fn refused(
    server: &TestServer,
    body: Value,
    status: u16,
    code: &str,
    users_before: i64,
) -> Value {
    let (s, v) = post(&server.http(), server, SIGN_UP, body.clone(), None).await;
    assert_eq!(s.as_u16(), status, "{body} → {v}");
    assert_eq!(v["code"], code, "{body} → {v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert_eq!(
        count(server, "users").await,
        users_before,
        "{body} wrote a user"
    );
    v
}

fn sign_up_body(email: &str, password: &str) -> Value {
    json!({ "name": "Faith Lehane", "email": email, "password": password })
}

async fn sign_in(server: &TestServer, email: &str, password: &str) -> String {
    let (s, v) = post(
        &server.http(),
        server,
        "/api/auth/sign-in/email",
        json!({ "email": email, "password": password }),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["token"].as_str().expect("token").to_string()
}

async fn password_policy_rules(db: Db) {
    let server = TestServer::start_with(db, |c| {
        let p = &mut c.password_policy;
        p.min_length = 10;
        p.max_length = 24;
        p.require_lowercase = true;
        p.require_uppercase = true;
        p.require_digit = true;
        p.require_symbol = true;
    })
    .await;
    let email = "faith@example.com";
    for (password, code, rule) in [
        ("Sh0rt!", "PASSWORD_TOO_SHORT", "10"),
        ("Waytoolong-passw0rd-0123456", "PASSWORD_TOO_LONG", "24"),
        ("ALLUPPER-CASE-1", "PASSWORD_TOO_WEAK", "lower-case"),
        ("all-lower-case-1", "PASSWORD_TOO_WEAK", "upper-case"),
        ("No-Digits-Here", "PASSWORD_TOO_WEAK", "digit"),
        ("NoSymbols0Here", "PASSWORD_TOO_WEAK", "symbol"),
        ("My-Faith-Pass-1", "PASSWORD_TOO_WEAK", "email"),
    ] {
        let v = refused(&server, sign_up_body(email, password), 400, code, 0).await;
        let m = v["message"].as_str().unwrap_or("");
        assert!(m.contains(rule), "{password}: {m}");
        assert!(
            !m.contains(password),
            "the message repeats the password: {m}"
        );
    }
    let good = "Slayer-Since-1998";
    let (s, v) = post(
        &server.http(),
        &server,
        SIGN_UP,
        sign_up_body(email, good),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(count(&server, "users").await, 1);
    // change-password applies the same policy, with the account's address.
    let token = sign_in(&server, email, good).await;
    let before = stored(&server, email).await.expect("user").password_hash;
    for (new, code) in [
        ("weakpassword", "PASSWORD_TOO_WEAK"),
        ("Faith-Lehane-2", "PASSWORD_TOO_WEAK"),
        ("S0rt!", "PASSWORD_TOO_SHORT"),
    ] {
        let (s, v) = post(
            &server.http(),
            &server,
            "/api/auth/change-password",
            json!({ "currentPassword": good, "newPassword": new }),
            Some(&token),
        )
        .await;
        assert_eq!(
            (s.as_u16(), v["code"].as_str()),
            (400, Some(code)),
            "{new}: {v}"
        );
    }
    assert_eq!(
        stored(&server, email).await.expect("user").password_hash,
        before
    );
    // The CLI's account service too.
    let e = klard_auth::accounts::create_user(
        &server.state,
        json!({ "email": "kendra@example.com", "password": "no-digits-or-caps" }),
    )
    .await
    .expect_err("weak password accepted");
    assert!(e.contains("upper-case"), "{e}");
    assert_eq!(count(&server, "users").await, 1);
}

/// With the defaults, 8 characters and the address's local part.
async fn default_policy_forbids_the_email(db: Db) {
    let server = TestServer::start(db).await;
    refused(
        &server,
        sign_up_body("oz@example.com", "1234567"),
        400,
        "PASSWORD_TOO_SHORT",
        0,
    )
    .await;
    refused(
        &server,
        sign_up_body("willow@example.com", "WILLOW-rosenberg"),
        400,
        "PASSWORD_TOO_WEAK",
        0,
    )
    .await;
    // Local parts under four characters are not checked ("oz" is everywhere).
    let (s, v) = post(
        &server.http(),
        &server,
        SIGN_UP,
        sign_up_body("oz@example.com", "ozzy-the-werewolf"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

fn field(name: &str, kind: UserFieldType) -> UserFieldConfig {
    UserFieldConfig {
        name: name.into(),
        kind,
        ..UserFieldConfig::default()
    }
}

fn declare_fields(c: &mut Config) {
    c.sign_up.fields = vec![
        UserFieldConfig {
            required: true,
            max_length: Some(10),
            label: Some("Company".into()),
            ..field("company", UserFieldType::String)
        },
        UserFieldConfig {
            min: Some(18.0),
            max: Some(130.0),
            ..field("age", UserFieldType::Number)
        },
        UserFieldConfig {
            default: Some(json!(false)),
            ..field("newsletter", UserFieldType::Boolean)
        },
        UserFieldConfig {
            values: vec!["free".into(), "pro".into()],
            default: Some(json!("free")),
            ..field("plan", UserFieldType::Enum)
        },
        UserFieldConfig {
            input: false,
            default: Some(json!("member")),
            ..field("role", UserFieldType::String)
        },
    ];
}

async fn custom_fields_at_sign_up_and_update(db: Db) {
    let server = TestServer::start_with(db, declare_fields).await;
    let email = "giles@example.com";
    let with = |extra: Value| {
        let mut b = sign_up_body(email, PASSWORD);
        if let (Some(m), Some(x)) = (b.as_object_mut(), extra.as_object()) {
            m.extend(x.clone());
        }
        b
    };
    for (extra, name, what) in [
        (json!({}), "company", "is required"),
        (json!({ "company": null }), "company", "is required"),
        (
            json!({ "company": "Sunnydale High" }),
            "company",
            "at most 10",
        ),
        (json!({ "company": 7 }), "company", "expected a string"),
        (
            json!({ "company": "Watchers", "age": "forty" }),
            "age",
            "expected a number",
        ),
        (
            json!({ "company": "Watchers", "age": 12 }),
            "age",
            "at least 18",
        ),
        (
            json!({ "company": "Watchers", "age": 131 }),
            "age",
            "at most 130",
        ),
        (
            json!({ "company": "Watchers", "newsletter": "yes" }),
            "newsletter",
            "boolean",
        ),
        (
            json!({ "company": "Watchers", "plan": "gold" }),
            "plan",
            "one of free, pro",
        ),
        (
            json!({ "company": "Watchers", "role": "admin" }),
            "role",
            "not allowed",
        ),
    ] {
        let v = refused(&server, with(extra.clone()), 400, "VALIDATION_ERROR", 0).await;
        let m = v["message"].as_str().unwrap_or("");
        assert!(
            m.contains(&format!("[body.{name}]")) && m.contains(what),
            "{extra}: {m}"
        );
    }
    let (s, v) = post(
        &server.http(),
        &server,
        SIGN_UP,
        with(json!({ "company": "Watchers", "age": 48, "newsletter": true, "unknownKey": "ignored" })),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let u = &v["user"];
    assert_eq!(
        (
            &u["company"],
            &u["age"],
            &u["newsletter"],
            &u["plan"],
            &u["role"]
        ),
        (
            &json!("Watchers"),
            &json!(48),
            &json!(true),
            &json!("free"),
            &json!("member")
        ),
        "{u}"
    );
    assert!(u.get("unknownKey").is_none(), "{u}");
    assert_eq!(u["termsVersion"], Value::Null);
    let user = stored(&server, email).await.expect("user");
    assert_eq!(
        Value::Object(user.fields.clone()),
        json!({ "company": "Watchers", "age": 48, "newsletter": true, "plan": "free", "role": "member" })
    );
    // update-user validates the same way and changes nothing on a refusal.
    let token = sign_in(&server, email, PASSWORD).await;
    let c = server.http();
    for (body, name) in [
        (json!({ "age": 5 }), "age"),
        (json!({ "plan": "gold", "name": "Rupert" }), "plan"),
        (json!({ "role": "admin" }), "role"),
        (json!({ "company": null }), "company"),
        (json!({ "newsletter": 1 }), "newsletter"),
    ] {
        let (s, v) = post(
            &c,
            &server,
            "/api/auth/update-user",
            body.clone(),
            Some(&token),
        )
        .await;
        assert_eq!(
            (s.as_u16(), v["code"].as_str()),
            (400, Some("VALIDATION_ERROR")),
            "{body}: {v}"
        );
        assert!(
            v["message"]
                .as_str()
                .unwrap_or("")
                .contains(&format!("[body.{name}]")),
            "{v}"
        );
        let now = stored(&server, email).await.expect("user");
        assert_eq!(now.fields, user.fields, "{body} changed the fields");
        assert_eq!(now.claims, user.claims, "{body} changed the claims");
    }
    let (s, v) = post(
        &c,
        &server,
        "/api/auth/update-user",
        json!({ "other": 1 }),
        Some(&token),
    )
    .await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (400, Some("NO_FIELDS_TO_UPDATE")),
        "{v}"
    );
    let (s, v) = post(
        &c,
        &server,
        "/api/auth/update-user",
        json!({ "plan": "pro", "age": null }),
        Some(&token),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let now = stored(&server, email).await.expect("user");
    assert_eq!(now.fields.get("plan"), Some(&json!("pro")));
    assert_eq!(now.fields.get("age"), None);
    assert_eq!(now.fields.get("company"), Some(&json!("Watchers")));
    let r = c
        .get(server.url("/api/auth/get-session"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get-session");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["user"]["plan"], "pro", "{v}");
    // The CLI may set an `input = false` field; types still apply.
    let u = klard_auth::accounts::create_user(
        &server.state,
        json!({ "email": "wesley@example.com", "password": PASSWORD, "fields": { "role": "watcher" } }),
    )
    .await
    .expect("admin user");
    assert_eq!(u.fields.get("role"), Some(&json!("watcher")));
    let e = klard_auth::accounts::create_user(
        &server.state,
        json!({ "email": "ethan@example.com", "password": PASSWORD, "fields": { "age": "old" } }),
    )
    .await
    .expect_err("mistyped field");
    assert!(e.contains("fields.age"), "{e}");
}

/// An existing address gets the same answer as a new one, custom fields included.
async fn duplicate_sign_up_with_fields_looks_new(db: Db) {
    let server = TestServer::start_with(db, declare_fields).await;
    server.user("anya@example.com").await;
    let before = stored(&server, "anya@example.com").await.expect("user");
    let body = |email: &str| json!({ "name": "Anya", "email": email, "password": PASSWORD, "company": "Magic Box" });
    let (s1, new) = post(
        &server.http(),
        &server,
        SIGN_UP,
        body("halfrek@example.com"),
        None,
    )
    .await;
    let (s2, dup) = post(
        &server.http(),
        &server,
        SIGN_UP,
        body("anya@example.com"),
        None,
    )
    .await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{new} {dup}");
    let keys = |v: &Value| {
        let mut k: Vec<String> = v["user"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    };
    assert_eq!(keys(&new), keys(&dup));
    assert_eq!(dup["user"]["company"], "Magic Box");
    assert_ne!(dup["user"]["id"], json!(before.id));
    let after = stored(&server, "anya@example.com").await.expect("user");
    assert_eq!(
        (after.password_hash, after.fields, after.claims),
        (before.password_hash, before.fields, before.claims)
    );
}

#[test]
fn config_rejects_bad_declarations() {
    for (toml, field) in [
        ("[[sign_up.fields]]\nname = \"email\"", "sign_up.fields"),
        (
            "[[sign_up.fields]]\nname = \"inviteCode\"",
            "sign_up.fields",
        ),
        ("[[sign_up.fields]]\nname = \"Company\"", "sign_up.fields"),
        (
            "[[sign_up.fields]]\nname = \"a\"\n[[sign_up.fields]]\nname = \"a\"",
            "declared twice",
        ),
        (
            "[[sign_up.fields]]\nname = \"plan\"\ntype = \"enum\"",
            "values",
        ),
        (
            "[[sign_up.fields]]\nname = \"age\"\ntype = \"number\"\nmax_length = 3",
            "max_length",
        ),
        (
            "[[sign_up.fields]]\nname = \"age\"\ntype = \"number\"\ndefault = \"x\"",
            "default",
        ),
        ("[[sign_up.fields]]\nname = \"a\"\nlabel = 1", "label"),
        (
            "[[sign_up.fields]]\nname = \"a\"\ncolour = \"red\"",
            "colour",
        ),
        (
            "[password_policy]\nmin_length = 0",
            "password_policy.min_length",
        ),
        (
            "[password_policy]\nmax_length = 2000",
            "password_policy.max_length",
        ),
        (
            "[password_policy]\nmin_length = 20\nmax_length = 10",
            "password_policy.min_length",
        ),
        ("[sign_up]\nmode = \"closed\"", "mode"),
        ("[sign_up]\nterms_version = \"\"", "sign_up.terms_version"),
        ("[sign_up]\nterms_url = \"/terms\"", "sign_up.terms_url"),
        ("[sign_up]\ninvite_ttl = 0", "sign_up.invite_ttl"),
    ] {
        let e = Config::from_toml(toml).expect_err(toml).to_string();
        assert!(e.contains(field), "{toml}: {e}");
    }
    let ok = Config::from_toml(
        "[sign_up]\nmode = \"invite_only\"\nterms_version = \"2026-01\"\n\
         [[sign_up.fields]]\nname = \"age\"\ntype = \"number\"\nmin = 18\nmax = 130.5\nrequired = true\n\
         [[sign_up.fields]]\nname = \"plan\"\ntype = \"enum\"\nvalues = [\"free\", \"pro\"]\ndefault = \"free\"",
    )
    .expect("valid");
    assert_eq!(ok.sign_up.mode, SignUpMode::InviteOnly);
    assert_eq!(ok.sign_up.fields[0].min, Some(18.0));
    assert!(ok.sign_up.fields[1].input);
    assert_eq!(ok.password_policy.min_length, 8);
    assert_eq!(ok.password_policy.max_length, 128);
}

async fn terms_must_be_accepted_and_are_recorded(db: Db) {
    let server =
        TestServer::start_with(db, |c| c.sign_up.terms_version = Some("2026-01".into())).await;
    let email = "dawn@example.com";
    for accept in [None, Some(json!(false))] {
        let mut b = sign_up_body(email, PASSWORD);
        if let Some(a) = accept {
            b["acceptTerms"] = a;
        }
        refused(&server, b, 400, "TERMS_NOT_ACCEPTED", 0).await;
    }
    let mut b = sign_up_body(email, PASSWORD);
    b["acceptTerms"] = json!("yes");
    refused(&server, b, 400, "VALIDATION_ERROR", 0).await;
    let before = server.state.clock.now();
    let mut b = sign_up_body(email, PASSWORD);
    b["acceptTerms"] = json!(true);
    let (s, v) = post(&server.http(), &server, SIGN_UP, b, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["user"]["termsVersion"], "2026-01");
    assert!(
        v["user"]["termsAcceptedAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{v}"
    );
    let u = stored(&server, email).await.expect("user");
    assert_eq!(u.terms_version.as_deref(), Some("2026-01"));
    let at = u.terms_accepted_at.expect("accepted at");
    assert!(at >= before && at <= server.state.clock.now() + 1, "{at}");
}

async fn invite_only_sign_up(db: Db) {
    let server = TestServer::start_with(db, |c| c.sign_up.mode = SignUpMode::InviteOnly).await;
    let st = &server.state;
    let now = st.clock.now();
    let (_, good) = invites::create(&st.db, None, 3600, now)
        .await
        .expect("invite");
    let (_, bound) = invites::create(&st.db, Some("Tara@Example.com"), 3600, now)
        .await
        .expect("invite");
    let (_, expired) = invites::create(&st.db, None, 3600, now - 7200)
        .await
        .expect("invite");
    let with = |email: &str, code: Option<&str>| {
        let mut b = sign_up_body(email, PASSWORD);
        if let Some(c) = code {
            b["inviteCode"] = json!(c);
        }
        b
    };
    let unused = || async {
        invites::list(&st.db)
            .await
            .expect("list")
            .iter()
            .filter(|i| i.used_at.is_none())
            .count()
    };
    assert_eq!(unused().await, 3);
    refused(
        &server,
        with("kennedy@example.com", None),
        403,
        "INVITE_REQUIRED",
        0,
    )
    .await;
    refused(
        &server,
        with("kennedy@example.com", Some("")),
        403,
        "INVITE_REQUIRED",
        0,
    )
    .await;
    refused(
        &server,
        with("kennedy@example.com", Some("not-a-code")),
        403,
        "INVALID_INVITE",
        0,
    )
    .await;
    refused(
        &server,
        with("kennedy@example.com", Some(&expired)),
        403,
        "INVALID_INVITE",
        0,
    )
    .await;
    refused(
        &server,
        with("kennedy@example.com", Some(&bound)),
        403,
        "INVALID_INVITE",
        0,
    )
    .await;
    // A valid invite with bad input is not spent.
    let mut weak = with("kennedy@example.com", Some(&good));
    weak["password"] = json!("short");
    refused(&server, weak, 400, "PASSWORD_TOO_SHORT", 0).await;
    assert_eq!(unused().await, 3, "a refused sign-up spent an invite");

    let (s, v) = post(
        &server.http(),
        &server,
        SIGN_UP,
        with("kennedy@example.com", Some(&good)),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let kennedy = stored(&server, "kennedy@example.com").await.expect("user");
    let used = invites::by_code(&st.db, &good)
        .await
        .expect("db")
        .expect("invite");
    assert_eq!(used.used_by.as_deref(), Some(kennedy.id.as_str()));
    assert!(used.used_at.is_some());
    refused(
        &server,
        with("satsu@example.com", Some(&good)),
        403,
        "INVALID_INVITE",
        1,
    )
    .await;

    let (s, v) = post(
        &server.http(),
        &server,
        SIGN_UP,
        with("tara@example.com", Some(&bound)),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(count(&server, "users").await, 2);
    assert_eq!(count(&server, "invites").await, 3);
}

/// An invite tells nothing about which addresses have accounts: an existing address
/// gets the same answer and spends the invite the same way.
async fn invites_do_not_enumerate(db: Db) {
    let server = TestServer::start_with(db, |c| c.sign_up.mode = SignUpMode::InviteOnly).await;
    let st = &server.state;
    server.user("joyce@example.com").await;
    let before = stored(&server, "joyce@example.com").await.expect("user");
    let now = st.clock.now();
    let (_, a) = invites::create(&st.db, None, 3600, now)
        .await
        .expect("invite");
    let (_, b) = invites::create(&st.db, None, 3600, now)
        .await
        .expect("invite");
    let body = |email: &str, code: &str| json!({ "name": "J", "email": email, "password": PASSWORD, "inviteCode": code });
    let (s1, new) = post(
        &server.http(),
        &server,
        SIGN_UP,
        body("hank@example.com", &a),
        None,
    )
    .await;
    let (s2, dup) = post(
        &server.http(),
        &server,
        SIGN_UP,
        body("joyce@example.com", &b),
        None,
    )
    .await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{new} {dup}");
    assert_eq!(new["token"], Value::Null);
    assert_eq!(dup["token"], Value::Null);
    for code in [&a, &b] {
        let i = invites::by_code(&st.db, code)
            .await
            .expect("db")
            .expect("invite");
        assert!(i.used_at.is_some(), "invite left unspent");
    }
    let after = stored(&server, "joyce@example.com").await.expect("user");
    assert_eq!(after.password_hash, before.password_hash);
    assert_eq!(count(&server, "users").await, 2);
}

async fn disabled_sign_up(db: Db) {
    let server = TestServer::start_with(db, |c| c.sign_up.mode = SignUpMode::Disabled).await;
    refused(
        &server,
        sign_up_body("spike@example.com", PASSWORD),
        400,
        "EMAIL_PASSWORD_SIGN_UP_DISABLED",
        0,
    )
    .await;
    let b = browser();
    let r = b.get(server.url("/sign-up")).send().await.expect("GET");
    assert_eq!(r.status(), 400);
    let html = r.text().await.expect("html");
    assert!(
        html.contains("data-error=\"EMAIL_PASSWORD_SIGN_UP_DISABLED\""),
        "{html}"
    );
    assert!(!html.contains("<form"), "{html}");
    // A hand-made POST is refused the same way.
    let r = b
        .post(server.url("/sign-up"))
        .form(&[("csrf_token", "x")])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 403);
    assert_eq!(count(&server, "users").await, 0);
}

/// `klard-auth invite create|list` through the real binary, against the server's
/// database; the code it prints once works for sign-up, `list` never shows a code.
async fn cli_invites(db: Db) {
    let server = TestServer::start_with(db, |c| c.sign_up.mode = SignUpMode::InviteOnly).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = &server.state.config;
    let path = dir.path().join("klard.toml");
    std::fs::write(
        &path,
        format!(
            "issuer = \"{}\"\ndata_dir = \"{}\"\ndatabase_url = \"{}\"\nsecret = \"{}\"\n[password]\nargon2_m_cost = 64\nargon2_t_cost = 1\n[sign_up]\nmode = \"invite_only\"\n",
            cfg.issuer,
            dir.path().display(),
            cfg.database_url,
            server.state.secret
        ),
    )
    .expect("config");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_klard-auth"))
            .arg("--config")
            .arg(&path)
            .args(args)
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "error")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run klard-auth");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&[
        "invite",
        "create",
        "--email",
        "Robin@Example.com",
        "--ttl",
        "600",
        "--json",
    ]);
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).expect("json");
    let code = created["code"].as_str().expect("code").to_string();
    assert_eq!(created["email"], "robin@example.com");
    let now = server.state.clock.now();
    let exp = created["expires_at"].as_i64().expect("expires_at");
    assert!((now + 590..=now + 610).contains(&exp), "{exp}");
    let (ok, out, err) = run(&["invite", "create"]);
    assert!(
        ok && out.contains("invite code: ") && out.contains("shown only now"),
        "{out}{err}"
    );
    let (ok, _, err) = run(&["invite", "create", "--ttl", "0"]);
    assert!(!ok && err.contains("--ttl"), "{err}");
    let (ok, _, err) = run(&["invite", "create", "--email", "not-an-address"]);
    assert!(!ok && err.contains("--email"), "{err}");
    assert_eq!(count(&server, "invites").await, 2);

    let (ok, out, err) = run(&["invite", "list", "--json"]);
    assert!(ok, "{err}");
    assert!(!out.contains(&code), "list shows a code: {out}");
    let list: Value = serde_json::from_str(&out).expect("json");
    let find = |list: &Value| {
        list.as_array()
            .and_then(|a| a.iter().find(|i| i["id"] == created["id"]).cloned())
            .expect("the invite in the list")
    };
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    let mine = find(&list);
    assert_eq!(
        (&mine["status"], &mine["email"]),
        (&json!("unused"), &json!("robin@example.com"))
    );

    let (s, v) = post(
        &server.http(),
        &server,
        SIGN_UP,
        json!({ "name": "Robin", "email": "robin@example.com", "password": PASSWORD, "inviteCode": code }),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, out, _) = run(&["invite", "list", "--json"]);
    let list: Value = serde_json::from_str(&out).expect("json");
    let robin = stored(&server, "robin@example.com").await.expect("user");
    let mine = find(&list);
    assert_eq!(
        (&mine["status"], &mine["used_by"]),
        (&json!("used"), &json!(robin.id))
    );
    let other = list
        .as_array()
        .and_then(|a| a.iter().find(|i| i["id"] != created["id"]).cloned())
        .expect("other");
    assert_eq!(other["status"], "unused");
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// GETs the form; returns its hidden fields.
async fn open_form(
    c: &reqwest::Client,
    server: &TestServer,
    query: &str,
) -> (String, Vec<(String, String)>) {
    let r = c
        .get(server.url(&format!("/sign-up{query}")))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 200);
    let html = r.text().await.expect("html");
    let form = Form::parse(&html).expect("form");
    assert!(form.action.ends_with("/sign-up"), "{}", form.action);
    assert!(form.has_password);
    (html, form.hidden)
}

async fn submit(
    c: &reqwest::Client,
    server: &TestServer,
    fields: &[(String, String)],
) -> (u16, String, reqwest::header::HeaderMap) {
    let r = c
        .post(server.url("/sign-up"))
        .form(fields)
        .send()
        .await
        .expect("POST");
    let s = r.status().as_u16();
    let h = r.headers().clone();
    (s, r.text().await.unwrap_or_default(), h)
}

fn pairs(hidden: &[(String, String)], more: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v = hidden.to_vec();
    v.extend(more.iter().map(|(k, x)| (k.to_string(), x.to_string())));
    v
}

async fn hosted_sign_up_form(db: Db) {
    let server = TestServer::start_with(db, |c| {
        c.sign_up.terms_version = Some("v3".into());
        c.sign_up.terms_url = Some("https://example.com/terms".into());
        declare_fields(c);
    })
    .await;
    let c = browser();
    let (html, hidden) = open_form(&c, &server, "?return_to=%2Flogin%3Finteraction%3Dabc").await;
    for needle in [
        "name=\"company\"",
        "type=\"number\"",
        "name=\"newsletter\" type=\"checkbox\"",
        "<select id=\"field-plan\" name=\"plan\"",
        "name=\"accept_terms\"",
        "(version v3)",
        "https://example.com/terms",
    ] {
        assert!(html.contains(needle), "{needle} missing: {html}");
    }
    assert!(
        !html.contains("name=\"role\""),
        "an input = false field is shown"
    );
    assert!(!html.contains("invite_code"), "no invite in open mode");
    assert!(
        hidden
            .iter()
            .any(|(k, v)| k == "return_to" && v == "/login?interaction=abc"),
        "{hidden:?}"
    );
    assert!(hidden.iter().any(|(k, _)| k == "csrf_token"));
    let base = [
        ("name", "Jenny Calendar"),
        ("email", "jenny@example.com"),
        ("password", PASSWORD),
        ("company", "Sunnydale"),
    ];
    // Terms not ticked: shown inline, values kept, nothing written.
    let (s, body, _) = submit(&c, &server, &pairs(&hidden, &base)).await;
    assert_eq!(s, 400, "{body}");
    assert!(
        body.contains("role=\"alert\"") && body.contains("terms of service"),
        "{body}"
    );
    assert!(
        body.contains("value=\"jenny@example.com\"") && body.contains("value=\"Sunnydale\""),
        "{body}"
    );
    assert!(!body.contains(PASSWORD), "the password is echoed");
    assert_eq!(count(&server, "users").await, 0);
    // A bad number, shown on its control.
    let mut more = base.to_vec();
    more.extend([("accept_terms", "true"), ("age", "twelve")]);
    let (s, body, _) = submit(&c, &server, &pairs(&hidden, &more)).await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("age: expected a number"), "{body}");
    assert!(
        body.contains("id=\"field-age\" name=\"age\" type=\"number\" value=\"twelve\""),
        "{body}"
    );
    assert_eq!(count(&server, "users").await, 0);
    // A weak password.
    let mut weak = pairs(&hidden, &more);
    for (k, v) in weak.iter_mut() {
        if k == "password" {
            *v = "short".into();
        }
        if k == "age" {
            *v = "41".into();
        }
    }
    let (s, body, _) = submit(&c, &server, &weak).await;
    assert_eq!(s, 400);
    assert!(body.contains("Password too short"), "{body}");
    assert_eq!(count(&server, "users").await, 0);
    // Terms of another version than the current one do not count.
    let mut old = pairs(&hidden, &more);
    old.retain(|(k, _)| k != "age");
    old.push(("terms_version".into(), "v2".into()));
    let (s, _, _) = submit(&c, &server, &old).await;
    assert_eq!(s, 400);
    // Everything right.
    let mut good = pairs(&hidden, &more);
    good.retain(|(k, _)| k != "age");
    good.extend([
        ("age".into(), "41".into()),
        ("newsletter".into(), "true".into()),
        ("plan".into(), "pro".into()),
        ("terms_version".into(), "v3".into()),
    ]);
    let (s, body, h) = submit(&c, &server, &good).await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains("id=\"signed-up\"") && body.contains("href=\"/login?interaction=abc\""),
        "{body}"
    );
    assert!(
        h.get("set-cookie")
            .is_none_or(|v| !v.to_str().unwrap_or("").contains("klard_session")),
        "signed in without auto_sign_in"
    );
    let u = stored(&server, "jenny@example.com").await.expect("user");
    assert_eq!(u.claims.get("name"), Some(&json!("Jenny Calendar")));
    assert_eq!(
        Value::Object(u.fields.clone()),
        json!({ "company": "Sunnydale", "age": 41, "newsletter": true, "plan": "pro", "role": "member" })
    );
    assert_eq!(u.terms_version.as_deref(), Some("v3"));
    // The same address again: the same page, nothing changed.
    let (s, body2, _) = submit(&c, &server, &good).await;
    assert_eq!(s, 200);
    assert_eq!(body, body2);
    assert_eq!(count(&server, "users").await, 1);
    // A foreign return_to is dropped.
    let (html, hidden) = open_form(&c, &server, "?return_to=https%3A%2F%2Fevil.example%2F").await;
    assert!(!html.contains("evil.example"), "{html}");
    assert!(!hidden.iter().any(|(k, _)| k == "return_to"));
}

async fn hosted_form_refuses_forged_posts(db: Db) {
    let server = TestServer::start(db).await;
    let a = browser();
    let (_, hidden) = open_form(&a, &server, "").await;
    let fields = pairs(
        &hidden,
        &[
            ("name", "Drusilla"),
            ("email", "dru@example.com"),
            ("password", PASSWORD),
        ],
    );
    // Another browser (its own cookie) with this browser's token.
    let b = browser();
    let _ = open_form(&b, &server, "").await;
    let (s, body, _) = submit(&b, &server, &fields).await;
    assert_eq!(s, 403, "{body}");
    // No cookie at all.
    let (s, _, _) = submit(&server.http(), &server, &fields).await;
    assert_eq!(s, 403);
    // A wrong token in the right browser.
    let mut wrong = fields.clone();
    for (k, v) in wrong.iter_mut() {
        if k == "csrf_token" {
            *v = "AAAA".into();
        }
    }
    let (s, _, _) = submit(&a, &server, &wrong).await;
    assert_eq!(s, 403);
    assert_eq!(count(&server, "users").await, 0);
    // Not a form body.
    let r = a
        .post(server.url("/sign-up"))
        .json(&json!({}))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 400);
    // The real thing still works.
    let (s, body, _) = submit(&a, &server, &fields).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(count(&server, "users").await, 1);
}

async fn hosted_invite_with_auto_sign_in(db: Db) {
    let server = TestServer::start_with(db, |c| {
        c.sign_up.mode = SignUpMode::InviteOnly;
        c.api_auth.auto_sign_in = true;
    })
    .await;
    let st = &server.state;
    let (_, code) = invites::create(&st.db, None, 3600, st.clock.now())
        .await
        .expect("invite");
    let c = browser();
    let (html, hidden) = open_form(&c, &server, "?return_to=%2Fwelcome").await;
    assert!(html.contains("name=\"invite_code\""), "{html}");
    let base = [
        ("name", "Amy"),
        ("email", "amy@example.com"),
        ("password", PASSWORD),
    ];
    let (s, body, _) = submit(&c, &server, &pairs(&hidden, &base)).await;
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("invite code is required"), "{body}");
    let mut bad = base.to_vec();
    bad.push(("invite_code", "bogus"));
    let (s, body, _) = submit(&c, &server, &pairs(&hidden, &bad)).await;
    assert_eq!(s, 403);
    assert!(
        body.contains("not valid") && body.contains("value=\"bogus\""),
        "{body}"
    );
    assert_eq!(count(&server, "users").await, 0);
    let mut good = base.to_vec();
    good.push(("invite_code", &code));
    let (s, body, h) = submit(&c, &server, &pairs(&hidden, &good)).await;
    assert_eq!(s, 303, "{body}");
    assert_eq!(h["location"], "/welcome");
    assert!(
        h["set-cookie"]
            .to_str()
            .unwrap_or("")
            .starts_with("klard_session=")
    );
    let r = c
        .get(server.url("/api/auth/get-session"))
        .send()
        .await
        .expect("GET");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["user"]["email"], "amy@example.com", "{v}");
    // In this (documented, enumerating) mode a duplicate is told so.
    let (_, hidden) = open_form(&c, &server, "").await;
    let (_, code2) = invites::create(&st.db, None, 3600, st.clock.now())
        .await
        .expect("invite");
    let mut dup = base.to_vec();
    dup.push(("invite_code", &code2));
    let (s, body, _) = submit(&c, &server, &pairs(&hidden, &dup)).await;
    assert_eq!(s, 400);
    assert!(body.contains("already exists"), "{body}");
    assert_eq!(count(&server, "users").await, 1);
}

/// The login page links to the sign-up page, which leads back to this login.
async fn login_page_links_to_sign_up(db: Db) {
    let server = TestServer::start(db).await;
    let (id, _) = web_client(&server).await;
    let (_, challenge) = pkce();
    let url = authorize_url(
        &server,
        &[
            ("response_type", "code"),
            ("client_id", &id),
            ("redirect_uri", CB),
            ("scope", "openid"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let c = browser();
    let r = c.get(&url).send().await.expect("authorize");
    let login = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let login_url = url::Url::parse(&server.url("/"))
        .and_then(|b| b.join(&login))
        .expect("url");
    let html = c
        .get(login_url.clone())
        .send()
        .await
        .expect("login")
        .text()
        .await
        .expect("html");
    let at = html.find("id=\"sign-up-link\"").expect("sign-up link");
    let tag = &html[html[..at].rfind("<a ").expect("<a")..at];
    let href = tag
        .split("href=\"")
        .nth(1)
        .and_then(|h| h.split('"').next())
        .expect("href");
    let href = href
        .replace("&amp;", "&")
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&#61;", "=")
        .replace("&#x3d;", "=");
    let target = login_url.join(&href).expect("href");
    assert_eq!(target.path(), "/sign-up");
    let back: String = target
        .query_pairs()
        .find(|(k, _)| k == "return_to")
        .map(|(_, v)| v.into_owned())
        .expect("return_to");
    assert_eq!(
        back,
        format!("{}?{}", login_url.path(), login_url.query().unwrap_or(""))
    );
    let (_, hidden) = open_form(&c, &server, &format!("?{}", target.query().unwrap_or(""))).await;
    assert!(
        hidden.iter().any(|(k, v)| k == "return_to" && *v == back),
        "{hidden:?}"
    );
}

db_tests!(
    password_policy_rules,
    default_policy_forbids_the_email,
    custom_fields_at_sign_up_and_update,
    duplicate_sign_up_with_fields_looks_new,
    terms_must_be_accepted_and_are_recorded,
    invite_only_sign_up,
    invites_do_not_enumerate,
    disabled_sign_up,
    cli_invites,
    hosted_sign_up_form,
    hosted_form_refuses_forged_posts,
    hosted_invite_with_auto_sign_in,
    login_page_links_to_sign_up,
);
