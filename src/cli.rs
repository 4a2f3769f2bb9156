//! The command line: `serve` (default), `migrate`, `user`, `client`, `keys`, `invite`. Every
//! command runs non-interactively (flags or JSON on stdin) and `--json` prints output a
//! script can parse.

mod audit;
mod invite;

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::app::{self, State};
use crate::audit::{Actor, Event, kind, pending};
use crate::config::Config;
use crate::oauth::clients::{new_client, validate_metadata};
use crate::store::{clients, users};

#[derive(Parser, Debug)]
#[command(
    name = "klard-auth",
    version,
    about = "A standards-first OpenID Connect provider"
)]
pub struct Cli {
    /// TOML configuration file (default: ./klard.toml if it exists). Env: KLARD_CONFIG.
    #[arg(long, global = true, env = "KLARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    #[command(subcommand)]
    User(UserCmd),
    #[command(subcommand)]
    Client(ClientCmd),
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Invite codes for `sign_up.mode = "invite_only"`.
    #[command(subcommand)]
    Invite(invite::InviteCmd),
    /// The audit trail: verify the chain, prune past retention, list events.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Create a user from flags, or from a JSON object on stdin with `--stdin`
    /// (email, password, email_verified, and any OIDC standard claims).
    Create(UserCreate),
    List,
    /// Lift the sign-in lock of an account (`[lockout]`) and forget its failures.
    Unlock {
        /// The account's email address.
        email: String,
    },
}

#[derive(Args, Debug)]
pub struct UserCreate {
    #[arg(long)]
    pub email: Option<String>,
    /// Password (prefer --stdin or KLARD_USER_PASSWORD to keep it out of the process list).
    #[arg(long, env = "KLARD_USER_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub email_verified: bool,
    #[arg(long)]
    pub stdin: bool,
}

#[derive(Subcommand, Debug)]
pub enum ClientCmd {
    /// Create a client from flags, or from RFC 7591 metadata JSON on stdin with `--stdin`
    /// (plus `client_id`, `client_secret`, `first_party`, `access_token_audience`).
    Create(ClientCreate),
    List,
    Show {
        client_id: String,
    },
    Delete {
        client_id: String,
    },
}

#[derive(Args, Debug)]
pub struct ClientCreate {
    #[arg(long)]
    pub client_id: Option<String>,
    #[arg(long)]
    pub client_secret: Option<String>,
    #[arg(long)]
    pub name: Option<String>,
    /// Repeatable.
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Repeatable; default authorization_code.
    #[arg(long = "grant-type")]
    pub grant_types: Vec<String>,
    /// client_secret_basic (default), client_secret_post, private_key_jwt or none.
    #[arg(long)]
    pub auth_method: Option<String>,
    /// web (default) or native.
    #[arg(long)]
    pub application_type: Option<String>,
    #[arg(long)]
    pub scope: Option<String>,
    #[arg(long)]
    pub first_party: bool,
    #[arg(long)]
    pub stdin: bool,
}

#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    List,
    /// Add a new signing key per algorithm; the old ones stay published for the grace period.
    Rotate {
        /// Start signing with the new keys at once instead of after `keys.publish_ahead`.
        #[arg(long)]
        immediate: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Start(#[from] app::StartError),
    #[error("{0}")]
    Usage(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("keys: {0}")]
    Keys(#[from] crate::jose::keys::KeyError),
    /// `audit verify` found a broken link; the message names it.
    #[error("{0}")]
    AuditBroken(String),
}

fn read_stdin_json() -> Result<Value, CliError> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| CliError::Usage(format!("cannot read stdin: {e}")))?;
    serde_json::from_str(&s).map_err(|e| CliError::Usage(format!("stdin is not valid JSON: {e}")))
}

fn print(json_mode: bool, v: &Value, human: impl FnOnce() -> String) {
    if json_mode {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        println!("{}", human());
    }
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            let db = crate::store::Db::connect(&config.database_url)
                .await
                .map_err(app::StartError::from)?;
            db.migrate().await.map_err(app::StartError::from)?;
            print(cli.json, &json!({"migrated": true}), || {
                "migrations applied".into()
            });
            Ok(())
        }
        Command::User(u) => {
            let state = app::build_state(config).await?;
            user_cmd(&state, u, cli.json).await
        }
        Command::Client(c) => {
            let state = app::build_state(config).await?;
            client_cmd(&state, c, cli.json).await
        }
        Command::Invite(i) => {
            let state = app::build_state(config).await?;
            invite::run(&state, i, cli.json).await
        }
        Command::Audit(a) => {
            let state = app::build_state(config).await?;
            audit::run(&state, a, cli.json).await
        }
        Command::Keys(k) => {
            let state = app::build_state(config).await?;
            match k {
                KeysCmd::List => {
                    let rows = state.keys.describe().await;
                    let v = json!(rows);
                    print(cli.json, &v, || {
                        rows.iter()
                            .map(|r| format!("{}  {}  {}", r["kid"], r["alg"], r["state"]))
                            .collect::<Vec<_>>()
                            .join("\n")
                    });
                }
                KeysCmd::Rotate { immediate } => {
                    let ahead = if immediate {
                        0
                    } else {
                        state.config.keys.publish_ahead
                    };
                    let record = |kid: &str, alg: &str| {
                        let e = Event::here(kind::KEY_ROTATED)
                            .actor(Actor::Cli)
                            .with("kid", kid)
                            .with("alg", alg)
                            .with("activates_in", ahead);
                        Some(pending(&state, e))
                    };
                    let kids = state
                        .keys
                        .rotate_recorded(ahead, state.config.keys.rotation_grace, &record)
                        .await?;
                    print(cli.json, &json!({"new_kids": kids}), || {
                        format!("new keys: {}", kids.join(", "))
                    });
                }
            }
            Ok(())
        }
    }
}

async fn serve(config: Config) -> Result<(), CliError> {
    let (_, generated) = app::load_secret(&config)?;
    let bind = config.bind.clone();
    let state = app::build_state(config).await?;
    let listener = std::net::TcpListener::bind(&bind).map_err(app::StartError::from)?;
    let running = app::serve(state.clone(), listener).await?;
    let c = &state.config;
    if generated {
        println!(
            "generated a server secret in {}/secret (set `secret` or KLARD_SECRET in production)",
            c.data_dir.display()
        );
    }
    println!(
        "klard-auth listening on {}{}",
        if c.tls.is_some() {
            "https://"
        } else {
            "http://"
        },
        running.addr
    );
    println!("issuer:     {}", c.issuer);
    println!("discovery:  {}/.well-known/openid-configuration", c.issuer);
    println!("database:   {}", redact_url(&c.database_url));
    println!("add a user:   klard-auth user create --email you@example.com --password '...'");
    println!(
        "add a client: klard-auth client create --name web --redirect-uri https://app.example.com/callback"
    );
    tokio::select! {
        r = running.task => {
            if let Ok(Err(e)) = r {
                return Err(CliError::Usage(format!("server stopped: {e}")));
            }
        }
        _ = tokio::signal::ctrl_c() => {
            running.handle.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
        }
    }
    Ok(())
}

/// Never print a database password.
fn redact_url(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut p) if p.password().is_some() => {
            let _ = p.set_password(Some("***"));
            p.to_string()
        }
        _ => u.to_string(),
    }
}

async fn user_cmd(state: &State, cmd: UserCmd, json_mode: bool) -> Result<(), CliError> {
    match cmd {
        UserCmd::Create(u) => {
            let mut doc = if u.stdin {
                read_stdin_json()?
            } else {
                json!({})
            };
            let m = doc
                .as_object_mut()
                .ok_or_else(|| CliError::Usage("the user JSON must be an object".into()))?;
            if let Some(e) = u.email {
                m.insert("email".into(), json!(e));
            }
            if let Some(p) = u.password {
                m.insert("password".into(), json!(p));
            }
            if let Some(n) = u.name {
                m.insert("name".into(), json!(n));
            }
            if u.email_verified {
                m.insert("email_verified".into(), json!(true));
            }
            let user = crate::accounts::create_user(state, doc)
                .await
                .map_err(CliError::Usage)?;
            print(
                json_mode,
                &json!({"id": user.id, "email": user.email}),
                || format!("created user {} ({})", user.email, user.id),
            );
        }
        UserCmd::List => {
            let list = users::list(&state.db).await?;
            let v: Vec<Value> = list.iter().map(|u| json!({"id": u.id, "email": u.email, "email_verified": u.email_verified, "created_at": u.created_at})).collect();
            print(json_mode, &json!(v), || {
                list.iter()
                    .map(|u| format!("{}  {}", u.id, u.email))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        UserCmd::Unlock { email } => {
            let Some(u) = users::by_email(&state.db, &email).await? else {
                return Err(CliError::Usage(format!("no user with the email {email}")));
            };
            let meta = crate::http::request_meta::RequestMeta::internal("cli");
            let was =
                crate::lockout::unlock::unlock(state, &meta, &u, crate::audit::Actor::Cli).await?;
            print(
                json_mode,
                &json!({"id": u.id, "email": u.email, "was_locked": was}),
                || {
                    if was {
                        format!("{} unlocked", u.email)
                    } else {
                        format!("{} was not locked (failures forgotten)", u.email)
                    }
                },
            );
        }
    }
    Ok(())
}

async fn client_cmd(state: &State, cmd: ClientCmd, json_mode: bool) -> Result<(), CliError> {
    match cmd {
        ClientCmd::Create(c) => {
            let mut doc = if c.stdin {
                read_stdin_json()?
            } else {
                json!({})
            };
            let m = doc
                .as_object_mut()
                .ok_or_else(|| CliError::Usage("the client JSON must be an object".into()))?;
            let client_id = c.client_id.or_else(|| {
                m.remove("client_id")
                    .and_then(|v| v.as_str().map(String::from))
            });
            let secret = c.client_secret.or_else(|| {
                m.remove("client_secret")
                    .and_then(|v| v.as_str().map(String::from))
            });
            if let Some(n) = c.name {
                m.insert("client_name".into(), json!(n));
            }
            if !c.redirect_uris.is_empty() {
                m.insert("redirect_uris".into(), json!(c.redirect_uris));
            }
            if !c.post_logout_redirect_uris.is_empty() {
                m.insert(
                    "post_logout_redirect_uris".into(),
                    json!(c.post_logout_redirect_uris),
                );
            }
            if !c.grant_types.is_empty() {
                m.insert("grant_types".into(), json!(c.grant_types));
            }
            if let Some(a) = c.auth_method {
                m.insert("token_endpoint_auth_method".into(), json!(a));
            }
            if let Some(a) = c.application_type {
                m.insert("application_type".into(), json!(a));
            }
            if let Some(s) = c.scope {
                m.insert("scope".into(), json!(s));
            }
            if c.first_party {
                m.insert("first_party".into(), json!(true));
            }
            let meta = validate_metadata(&doc, true)
                .map_err(|e| CliError::Usage(format!("{}: {}", e.error, e.description)))?;
            let (client, secret) = new_client(meta, client_id, secret, "cli", state.clock.now(), 0);
            if clients::get(&state.db, &client.client_id).await?.is_some() {
                return Err(CliError::Usage(format!(
                    "client `{}` already exists",
                    client.client_id
                )));
            }
            let event = Event::here(kind::CLIENT_REGISTERED)
                .actor(Actor::Cli)
                .client(Some(&client.client_id))
                .with("source", "cli");
            clients::insert_recorded(&state.db, &client, pending(state, event)).await?;
            let v = json!({"client_id": client.client_id, "client_secret": secret, "metadata": client.metadata});
            print(json_mode, &v, || match &secret {
                Some(s) => format!(
                    "client_id:     {}\nclient_secret: {s}\n(the secret is shown only now)",
                    client.client_id
                ),
                None => format!("client_id: {} (public client)", client.client_id),
            });
        }
        ClientCmd::List => {
            let list = clients::list(&state.db).await?;
            let v: Vec<Value> = list.iter().map(|c| json!({"client_id": c.client_id, "client_name": c.metadata.client_name, "source": c.source})).collect();
            print(json_mode, &json!(v), || {
                list.iter()
                    .map(|c| {
                        format!(
                            "{}  {}  ({})",
                            c.client_id,
                            c.metadata.client_name.clone().unwrap_or_default(),
                            c.source
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ClientCmd::Show { client_id } => {
            let c = clients::get(&state.db, &client_id)
                .await?
                .ok_or_else(|| CliError::Usage(format!("no client `{client_id}`")))?;
            let v = json!({"client_id": c.client_id, "source": c.source, "created_at": c.created_at, "metadata": c.metadata});
            print(json_mode, &v, || {
                serde_json::to_string_pretty(&v).unwrap_or_default()
            });
        }
        ClientCmd::Delete { client_id } => {
            let event = Event::here(kind::CLIENT_DELETED)
                .actor(Actor::Cli)
                .client(Some(&client_id));
            let event = pending(state, event);
            if !clients::delete(&state.db, &client_id, state.clock.now(), event).await? {
                return Err(CliError::Usage(format!("no client `{client_id}`")));
            }
            print(json_mode, &json!({"deleted": client_id}), || {
                format!("deleted {client_id}")
            });
        }
    }
    Ok(())
}
