//! The mail outbox against a real SMTP server (aiosmtpd, `pip install aiosmtpd`):
//! delivery of multipart messages in the right locale, retries with backoff (the clock
//! is advanced, not slept), exactly-once claims, giving up after `mail.max_attempts`.

use std::process::Command;
use std::time::{Duration, Instant};

use klard_auth::config::Config;
use klard_auth::mail::{self, CLAIM_LEASE, templates};
use klard_auth::store::outbox::{self, OutboxRow, Status};

use crate::smtp::{SmtpServer, free_port, smtp_to};
use crate::support::{Db, TestServer};

const LINK: &str = "https://auth.klard.test/verify?token=tok3n-abc&u=1";
const SMTP_PASSWORD: &str = "s3cret-smtp-passw0rd";

async fn enqueue_verify(server: &TestServer, to: &str, locale: &str) -> String {
    let msg = templates::verify_email(&server.state.config.mail.branding, to, locale, LINK)
        .expect("render");
    mail::enqueue(&server.state.db, &msg, server.state.clock.now())
        .await
        .expect("enqueue")
}

async fn row(server: &TestServer, id: &str) -> OutboxRow {
    outbox::get(&server.state.db, id)
        .await
        .expect("select")
        .expect("row")
}

async fn wait_row(
    server: &TestServer,
    id: &str,
    what: &str,
    f: impl Fn(&OutboxRow) -> bool,
) -> OutboxRow {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = row(server, id).await;
        if f(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "waiting for {what}: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn delivers_multipart_in_locale(db: Db) {
    let port = free_port();
    let smtp = SmtpServer::start(port).await;
    let server = TestServer::start_with(db, smtp_to(port)).await;
    let en = enqueue_verify(&server, "buffy@example.com", "en-US").await;
    let de = enqueue_verify(&server, "willow@example.com", "de-DE").await;
    let mails = smtp.wait_for(2).await;
    assert_eq!(mails.len(), 2);

    let m_en = mails
        .iter()
        .find(|m| m.to == "buffy@example.com")
        .expect("en mail");
    assert_eq!(m_en.subject, "Confirm your email address for Klard Test");
    assert_eq!(m_en.from, "Klard Test <no-reply@klard.test>");
    assert_eq!(m_en.content_type, "multipart/alternative");
    assert_eq!(m_en.message_id, format!("<{en}@klard.test>"));
    let text = m_en.part("text/plain");
    assert!(text.contains("Confirm your email address"), "{text}");
    assert!(text.contains(LINK), "{text}");
    assert!(text.contains("help@klard.test"), "{text}");
    let html = m_en.part("text/html");
    assert!(html.contains("Confirm email address"), "{html}");
    assert!(html.contains("token=tok3n-abc&#38;u=1"), "{html}");
    assert!(html.contains("https://klard.test/logo.png"), "{html}");
    assert!(html.contains("#4f46e5"), "{html}");

    let m_de = mails
        .iter()
        .find(|m| m.to == "willow@example.com")
        .expect("de mail");
    assert_eq!(
        m_de.subject,
        "Bestätigen Sie Ihre E-Mail-Adresse für Klard Test"
    );
    assert_eq!(m_de.message_id, format!("<{de}@klard.test>"));
    let text = m_de.part("text/plain");
    assert!(text.contains("Bitte bestätigen Sie"), "{text}");
    assert!(text.contains(LINK), "{text}");
    assert!(!text.contains("Confirm"), "{text}");
    let html = m_de.part("text/html");
    assert!(html.contains("lang=\"de\""), "{html}");
    assert!(html.contains("E-Mail-Adresse bestätigen"), "{html}");

    for id in [&en, &de] {
        let r = wait_row(&server, id, "sent", |r| r.status == Status::Sent).await;
        assert_eq!(r.attempts, 1);
        assert!(r.sent_at.is_some() && r.last_error.is_none(), "{r:?}");
    }
    assert_eq!(row(&server, &de).await.locale, "de");
}

async fn retries_after_backoff_then_delivers_once(db: Db) {
    let port = free_port();
    // No SMTP server yet: the first attempt fails.
    let server = TestServer::start_with(db, smtp_to(port)).await;
    let id = enqueue_verify(&server, "xander@example.com", "en").await;
    let r = wait_row(&server, &id, "a failed attempt", |r| r.attempts == 1).await;
    assert_eq!(r.status, Status::Pending, "{r:?}");
    assert!(
        r.last_error.as_deref().is_some_and(|e| !e.is_empty()),
        "{r:?}"
    );
    let delay = r.next_attempt_at - r.created_at;
    assert!(
        (30..=32).contains(&delay),
        "first retry after 30 s, got {delay}"
    );

    let smtp = SmtpServer::start(port).await;
    // Before the backoff has passed nothing is tried (the worker polls every second).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(smtp.messages().is_empty());
    assert_eq!(row(&server, &id).await.attempts, 1);

    server.state.clock.advance(31);
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails[0].to, "xander@example.com");
    let r = wait_row(&server, &id, "sent", |r| r.status == Status::Sent).await;
    assert_eq!(r.attempts, 2);
    assert!(r.last_error.is_none(), "{r:?}");
    // Exactly once: later polls (and later times) send nothing more.
    server.state.clock.advance(4000);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(smtp.messages().len(), 1);
}

async fn gives_up_after_max_attempts(db: Db) {
    let port = free_port();
    let server = TestServer::start_with(db, |c| {
        smtp_to(port)(c);
        c.mail.max_attempts = 2;
        c.mail.smtp.username = Some("mailer".into());
        c.mail.smtp.password = Some(SMTP_PASSWORD.into());
    })
    .await;
    let id = enqueue_verify(&server, "giles@example.com", "de").await;
    let r = wait_row(&server, &id, "attempt 1", |r| r.attempts == 1).await;
    assert_eq!(r.status, Status::Pending);
    server.state.clock.advance(31);
    let r = wait_row(&server, &id, "failed", |r| r.status == Status::Failed).await;
    assert_eq!(r.attempts, 2);
    let err = r.last_error.expect("error recorded");
    assert!(!err.contains(SMTP_PASSWORD), "{err}");
    assert!(!err.contains("tok3n"), "{err}");
    // Failed is final.
    server.state.clock.advance(10_000);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = row(&server, &id).await;
    assert_eq!((r.status, r.attempts), (Status::Failed, 2));
}

async fn concurrent_claims_take_a_row_once(db: Db) {
    let server = TestServer::start(db).await;
    let dbh = &server.state.db;
    // Due only in the future, so the server's own worker leaves them alone.
    let later = server.state.clock.now() + 100_000;
    let msg = templates::verify_email(
        &server.state.config.mail.branding,
        "dawn@example.com",
        "en",
        LINK,
    )
    .expect("render");
    let id = mail::enqueue(dbh, &msg, later).await.expect("enqueue");
    let (a, b) = tokio::join!(
        outbox::claim_next(dbh, later, CLAIM_LEASE),
        outbox::claim_next(dbh, later, CLAIM_LEASE)
    );
    let claimed: Vec<_> = [a.expect("claim a"), b.expect("claim b")]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].row.id, id);
    assert_eq!(row(&server, &id).await.status, Status::Sending);

    // Many rows, many claimers: no row is claimed twice, and all are claimed.
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(mail::enqueue(dbh, &msg, later + 1).await.expect("enqueue"));
    }
    let claims =
        futures::future::join_all((0..20).map(|_| outbox::claim_next(dbh, later + 1, CLAIM_LEASE)))
            .await;
    let mut got: Vec<String> = claims
        .into_iter()
        .filter_map(|c| c.expect("claim").map(|c| c.row.id))
        .collect();
    while let Some(c) = outbox::claim_next(dbh, later + 1, CLAIM_LEASE)
        .await
        .expect("claim")
    {
        got.push(c.row.id);
    }
    let n = got.len();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), n, "a row was claimed twice");
    ids.sort();
    assert_eq!(got, ids);
}

async fn log_transport_marks_sent(db: Db) {
    let server = TestServer::start_with(db, |c| c.mail.poll_interval = 1).await;
    let id = enqueue_verify(&server, "cordelia@example.com", "en").await;
    let r = wait_row(&server, &id, "sent", |r| r.status == Status::Sent).await;
    assert_eq!(r.attempts, 1);
}

db_tests!(
    delivers_multipart_in_locale,
    retries_after_backoff_then_delivers_once,
    gives_up_after_max_attempts,
    concurrent_claims_take_a_row_once,
    log_transport_marks_sent,
);

#[test]
fn backoff_doubles_and_is_capped() {
    assert_eq!(
        (0..9).map(mail::backoff).collect::<Vec<_>>(),
        [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    );
    assert_eq!(mail::backoff(1000), 3600);
}

#[test]
fn mail_config_errors_name_the_field() {
    for (toml, field) in [
        ("[mail]\nfrom = \"not an address\"", "mail.from"),
        ("[mail]\ntransport = \"smtp\"", "mail.smtp.host"),
        ("[mail]\nmax_attempts = 0", "mail.max_attempts"),
        (
            "[mail.smtp]\nhost = \"smtp.example.com\"\nsecurity = \"none\"\nusername = \"u\"\npassword = \"p\"",
            "mail.smtp.security",
        ),
        ("[mail.smtp]\nusername = \"u\"", "mail.smtp.password"),
        (
            "[mail.branding]\naccent_color = \"red;x\"",
            "mail.branding.accent_color",
        ),
        (
            "[mail.branding]\nlogo_url = \"javascript:x\"",
            "mail.branding.logo_url",
        ),
        (
            "[mail.branding]\nsupport_email = \"nope\"",
            "mail.branding.support_email",
        ),
    ] {
        let err = Config::from_toml(toml).expect_err(toml).to_string();
        assert!(err.contains(&format!("`{field}`")), "{toml}: {err}");
    }
    assert!(Config::from_toml("[mail.smtp]\nsecurity = \"ssl\"").is_err());
    assert!(Config::from_toml("[mail]\nunknown = 1").is_err());
    let ok = Config::from_toml(
        "[mail]\ntransport = \"smtp\"\nfrom = \"Klard <no-reply@klard.com>\"\n[mail.smtp]\nhost = \"smtp.example.com\"\nport = 465\nsecurity = \"tls\"\nusername = \"u\"\npassword = \"p\"",
    )
    .expect("valid");
    assert!(
        !format!("{:?}", ok.mail).contains("\"p\""),
        "password in Debug"
    );
}

/// `KLARD_MAIL__SMTP__PASSWORD` supplies the SMTP password.
#[test]
fn smtp_password_from_env() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("klard.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{d}\"\ndatabase_url = \"sqlite://{d}/k.db?mode=rwc\"\n[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"smtp.example.com\"\nusername = \"mailer\"\n",
            d = dir.path().display()
        ),
    )
    .expect("write");
    let run = |password: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_klard-auth"));
        cmd.arg("--config").arg(&config).arg("migrate");
        cmd.env_remove("DATABASE_URL")
            .env_remove("KLARD_MAIL__SMTP__PASSWORD");
        if let Some(p) = password {
            cmd.env("KLARD_MAIL__SMTP__PASSWORD", p);
        }
        let out = cmd.output().expect("run");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, err) = run(None);
    assert!(!ok && err.contains("mail.smtp.password"), "{err}");
    let (ok, err) = run(Some(SMTP_PASSWORD));
    assert!(ok, "{err}");
    assert!(!err.contains(SMTP_PASSWORD), "{err}");
}
