//! How a message leaves: SMTP through lettre (plain, STARTTLS or implicit TLS), or the
//! development `log` transport, which logs recipient and subject only (bodies carry
//! verification links and tokens, so they are never logged).

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::Message;
use crate::config::{MailConfig, MailTransportKind, SmtpSecurity};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address: {0}")]
    Address(#[from] lettre::address::AddressError),
    #[error("cannot build the message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("smtp: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("template: {0}")]
    Template(#[from] askama::Error),
}

impl MailError {
    /// Retrying cannot help: the message itself is unusable.
    pub fn is_permanent(&self) -> bool {
        matches!(self, MailError::Address(_) | MailError::Build(_))
    }
}

pub enum Transport {
    Log,
    Smtp(Box<AsyncSmtpTransport<Tokio1Executor>>),
}

impl Transport {
    pub fn from_config(cfg: &MailConfig) -> Result<Transport, MailError> {
        match cfg.transport {
            MailTransportKind::Log => Ok(Transport::Log),
            MailTransportKind::Smtp => {
                let s = &cfg.smtp;
                let tls = match s.security {
                    SmtpSecurity::None => Tls::None,
                    SmtpSecurity::Starttls => Tls::Required(TlsParameters::new(s.host.clone())?),
                    SmtpSecurity::Tls => Tls::Wrapper(TlsParameters::new(s.host.clone())?),
                };
                let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
                    .port(s.port)
                    .tls(tls)
                    .timeout(Some(Duration::from_secs(s.timeout)));
                if let (Some(user), Some(password)) = (&s.username, &s.password) {
                    b = b.credentials(Credentials::new(user.clone(), password.clone()));
                }
                Ok(Transport::Smtp(Box::new(b.build())))
            }
        }
    }

    /// Sends `msg` from `from`; `id` (the outbox id) makes the Message-ID, so a retried
    /// message keeps its identity.
    pub async fn send(&self, from: &str, id: &str, msg: &Message) -> Result<(), MailError> {
        let email = build(from, id, msg)?;
        match self {
            Transport::Log => {
                tracing::info!(to = %msg.to, subject = %msg.subject, "mail (log transport, not sent)");
                Ok(())
            }
            Transport::Smtp(smtp) => {
                smtp.send(email).await?;
                Ok(())
            }
        }
    }
}

/// A multipart/alternative message: the plain-text part first, the HTML part preferred.
pub fn build(from: &str, id: &str, msg: &Message) -> Result<lettre::Message, MailError> {
    let from: Mailbox = from.parse()?;
    let to: Mailbox = msg.to.parse()?;
    let domain = from.email.domain().to_string();
    Ok(lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(msg.subject.clone())
        .message_id(Some(format!("<{id}@{domain}>")))
        .multipart(MultiPart::alternative_plain_html(
            msg.text.clone(),
            msg.html.clone(),
        ))?)
}
