//! A real SMTP server for the mail tests: aiosmtpd (`pip install aiosmtpd`) writing
//! into a maildir, and the delivered messages parsed by Python's `email` package.
//! `smtp_to(port)` points a test server's mail at it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use klard_auth::config::{Config, MailTransportKind, SmtpSecurity};
use serde_json::Value;

/// A real SMTP server writing what it receives into a maildir.
pub struct SmtpServer {
    child: Child,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    pub async fn start(port: u16) -> SmtpServer {
        let dir = tempfile::tempdir().expect("tempdir");
        // aiosmtpd's Mailbox creates the maildir only if the folder does not exist yet.
        let maildir = dir.path().join("maildir");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd)");
        let deadline = Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        SmtpServer {
            child,
            maildir,
            _dir: dir,
        }
    }

    /// The delivered messages, parsed.
    pub fn messages(&self) -> Vec<Mail> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        files.iter().map(|f| Mail::parse(f)).collect()
    }

    pub async fn wait_for(&self, n: usize) -> Vec<Mail> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} delivered messages, have {}",
                m.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A delivered message as Python's `email` package reads it (decoded headers and parts).
#[derive(Debug)]
pub struct Mail {
    pub subject: String,
    pub to: String,
    pub from: String,
    pub content_type: String,
    pub message_id: String,
    /// (content type, decoded body)
    pub parts: Vec<(String, String)>,
}

const PARSE: &str = r#"
import email, email.policy, json, sys
m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)
parts = [[p.get_content_type(), p.get_content()] for p in m.walk() if not p.is_multipart()]
print(json.dumps({"subject": str(m["subject"]), "to": str(m["to"]), "from": str(m["from"]),
    "content_type": m.get_content_type(), "message_id": str(m["message-id"]), "parts": parts}))
"#;

impl Mail {
    pub fn parse(file: &Path) -> Mail {
        let out = Command::new("python3")
            .args(["-c", PARSE])
            .arg(file)
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        Mail {
            subject: s("subject"),
            to: s("to"),
            from: s("from"),
            content_type: s("content_type"),
            message_id: s("message_id"),
            parts: v["parts"]
                .as_array()
                .expect("parts")
                .iter()
                .map(|p| {
                    (
                        p[0].as_str().unwrap_or_default().to_string(),
                        p[1].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
        }
    }

    pub fn part(&self, ty: &str) -> &str {
        self.parts
            .iter()
            .find(|(t, _)| t == ty)
            .map(|(_, b)| b.as_str())
            .unwrap_or_else(|| panic!("no {ty} part in {:?}", self.parts))
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// SMTP to 127.0.0.1:`port`, polled every second.
pub fn smtp_to(port: u16) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        let m = &mut c.mail;
        m.transport = MailTransportKind::Smtp;
        m.from = "Klard Test <no-reply@klard.test>".into();
        m.poll_interval = 1;
        m.smtp.host = "127.0.0.1".into();
        m.smtp.port = port;
        m.smtp.security = SmtpSecurity::None;
        m.smtp.timeout = 5;
        m.branding.product_name = "Klard Test".into();
        m.branding.support_email = Some("help@klard.test".into());
        m.branding.logo_url = Some("https://klard.test/logo.png".into());
    }
}
