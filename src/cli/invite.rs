//! `klard-auth invite create|list`: invite codes for `sign_up.mode = "invite_only"`.
//! A code is printed once, at creation; only its hash is stored, so `list` shows the
//! invites' ids, bound addresses and state, never a code.

use clap::Subcommand;
use serde_json::{Value, json};

use super::{CliError, print};
use crate::app::State;
use crate::audit::{self, Actor, Event, kind};
use crate::store::invites;

#[derive(Subcommand, Debug)]
pub enum InviteCmd {
    /// Create an invite code (printed once).
    Create {
        /// Only this address may sign up with it.
        #[arg(long)]
        email: Option<String>,
        /// Seconds it stays valid (default `sign_up.invite_ttl`).
        #[arg(long)]
        ttl: Option<i64>,
    },
    /// List invites: id, bound address, created, expires, state, the account created.
    List,
}

pub async fn run(state: &State, cmd: InviteCmd, json_mode: bool) -> Result<(), CliError> {
    let now = state.clock.now();
    match cmd {
        InviteCmd::Create { email, ttl } => {
            let ttl = ttl.unwrap_or(state.config.sign_up.invite_ttl);
            if ttl <= 0 {
                return Err(CliError::Usage(
                    "--ttl must be a positive number of seconds".into(),
                ));
            }
            if let Some(e) = &email
                && !crate::signup::is_email(e)
            {
                return Err(CliError::Usage(format!(
                    "--email: `{e}` is not an email address"
                )));
            }
            let event = |id: &str| {
                let e = Event::here(kind::ADMIN_ACTION)
                    .actor(Actor::Cli)
                    .with("action", "invite.create")
                    .with("invite", id)
                    .with("bound_to_email", email.is_some());
                audit::pending(state, e)
            };
            let (inv, code) =
                invites::create_recorded(&state.db, email.as_deref(), ttl, now, Some(&event))
                    .await?;
            let v = json!({
                "id": inv.id,
                "code": code,
                "email": inv.email,
                "expires_at": inv.expires_at,
            });
            print(json_mode, &v, || {
                format!(
                    "invite code: {code}\n(the code is shown only now)\nid: {}\nexpires: {}{}",
                    inv.id,
                    crate::api::iso8601(inv.expires_at),
                    inv.email
                        .as_deref()
                        .map(|e| format!("\nonly for: {e}"))
                        .unwrap_or_default()
                )
            });
        }
        InviteCmd::List => {
            let list = invites::list(&state.db).await?;
            let v: Vec<Value> = list
                .iter()
                .map(|i| {
                    json!({
                        "id": i.id,
                        "email": i.email,
                        "created_at": i.created_at,
                        "expires_at": i.expires_at,
                        "used_at": i.used_at,
                        "used_by": i.used_by,
                        "status": i.status(now),
                    })
                })
                .collect();
            print(json_mode, &json!(v), || {
                list.iter()
                    .map(|i| {
                        format!(
                            "{}  {:8}  {}  expires {}",
                            i.id,
                            i.status(now),
                            i.email.as_deref().unwrap_or("(any address)"),
                            crate::api::iso8601(i.expires_at)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    Ok(())
}
