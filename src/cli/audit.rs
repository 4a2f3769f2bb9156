//! `klard-auth audit verify | prune | list`: the chain check (exit status non-zero and
//! the first broken link named when it fails), retention run by the owner role, and
//! the admin API's filters on the command line.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{CliError, print};
use crate::app::State;
use crate::audit::{chain, query, retention};
use crate::store::audit as store;

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Check the hash chain from the newest retention anchor to the head.
    Verify,
    /// Remove the events past retention (behind an anchor, so `verify` stays ok). Run it
    /// as the database owner when the app's role may not delete audit events.
    Prune {
        /// Prune events older than this many days (default `audit.retention_days`).
        #[arg(long)]
        before_days: Option<u32>,
    },
    /// Events, newest first, filtered like `GET /admin/audit-events`.
    List(ListArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// The subject (a user id).
    #[arg(long)]
    pub user: Option<String>,
    /// An event type; repeatable or a comma list.
    #[arg(long = "type")]
    pub types: Vec<String>,
    #[arg(long)]
    pub ip: Option<String>,
    /// Unix seconds or RFC 3339.
    #[arg(long)]
    pub since: Option<String>,
    /// Unix seconds or RFC 3339.
    #[arg(long)]
    pub until: Option<String>,
    /// Paging cursor: events with a smaller seq.
    #[arg(long)]
    pub before: Option<String>,
    #[arg(long)]
    pub limit: Option<String>,
}

pub async fn run(state: &State, cmd: AuditCmd, json_mode: bool) -> Result<(), CliError> {
    match cmd {
        AuditCmd::Verify => {
            let r = chain::verify(&state.db, &chain::key(&state.secret)).await?;
            let v = crate::admin::audit::report_json(&r);
            if let Some((seq, why)) = &r.broken {
                if json_mode {
                    print(true, &v, String::new);
                }
                return Err(CliError::AuditBroken(format!(
                    "first broken link: seq {seq} ({})",
                    describe(why)
                )));
            }
            print(json_mode, &v, || {
                format!(
                    "audit chain intact: {} events checked (seq {}..{})",
                    r.checked, r.from_seq, r.last_seq
                )
            });
        }
        AuditCmd::Prune { before_days } => {
            let days = before_days.unwrap_or(state.config.audit.retention_days);
            let n = retention::prune(state, days).await?;
            print(
                json_mode,
                &json!({"pruned": n, "before_days": days}),
                || format!("pruned {n} events older than {days} days"),
            );
        }
        AuditCmd::List(a) => {
            let mut pairs = Vec::new();
            let mut add = |k: &str, v: &Option<String>| {
                if let Some(v) = v {
                    pairs.push((k.to_string(), v.clone()));
                }
            };
            add("user", &a.user);
            add("ip", &a.ip);
            add("since", &a.since);
            add("until", &a.until);
            add("before", &a.before);
            add("limit", &a.limit);
            pairs.extend(a.types.iter().map(|t| ("type".to_string(), t.clone())));
            let f = query::filter(&pairs).map_err(CliError::Usage)?;
            let rows = store::query(&state.db, &f).await?;
            let events: Vec<Value> = rows.iter().map(query::admin_json).collect();
            let v = json!({"events": events, "next": query::next_cursor(&rows, f.limit)});
            print(json_mode, &v, || {
                rows.iter()
                    .map(|r| {
                        format!(
                            "{:>6}  {}  {:<32} {:<8} {}  {}",
                            r.seq,
                            crate::api::iso8601(r.at),
                            r.event_type,
                            r.outcome,
                            r.actor,
                            r.subject.as_deref().unwrap_or("-")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    Ok(())
}

fn describe(b: &chain::Break) -> String {
    match b {
        chain::Break::Gap { expected } => format!("seq {expected} is missing"),
        chain::Break::PrevMismatch => "prev_hash does not name the event before".into(),
        chain::Break::HashMismatch => "the stored hash does not match the event".into(),
        chain::Break::HeadMismatch { head_seq } => {
            format!("the head names seq {head_seq}, which is not there")
        }
    }
}
