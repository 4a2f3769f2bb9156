//! Black-box OpenID conformance harness for klard-auth.
//!
//! Runs, under the official OpenID Foundation module names, the Basic OP
//! modules that apply to static clients with the code flow, the Config OP
//! module `oidcc-discovery-endpoint-verification`, and
//! `oidcc-server-rotate-keys` (with a rotate hook). Our own implementation of
//! the behaviour described in shared/conformance-plans.md; see README.md here.

mod browser;
mod checks;
mod html;
mod modules;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;

use crate::checks::Skip;
use crate::modules::{AuthMethod, Client, Global, MODULES};

#[derive(Parser, Debug)]
#[command(
    name = "conformance",
    about = "Black-box OpenID Connect OP conformance harness (Basic OP static code flow + Config OP)"
)]
struct Cli {
    /// Issuer URL; discovery is fetched from <issuer>/.well-known/openid-configuration.
    #[arg(long)]
    issuer: Option<String>,
    /// Test user's login name (email).
    #[arg(long)]
    username: Option<String>,
    /// Test user's password.
    #[arg(long)]
    password: Option<String>,
    /// The one redirect URI registered for all three clients (never fetched).
    #[arg(long)]
    redirect_uri: Option<String>,
    /// client_secret_basic client ("client").
    #[arg(long)]
    client_id: Option<String>,
    #[arg(long)]
    client_secret: Option<String>,
    /// Second client_secret_basic client ("client2", for oidcc-refresh-token).
    #[arg(long)]
    client2_id: Option<String>,
    #[arg(long)]
    client2_secret: Option<String>,
    /// client_secret_post client (for oidcc-server-client-secret-post).
    #[arg(long)]
    post_client_id: Option<String>,
    #[arg(long)]
    post_client_secret: Option<String>,
    /// PEM file with the (self-signed) certificate(s) to trust for https.
    #[arg(long)]
    ca_file: Option<String>,
    /// Shell command (run with `sh -c`) that rotates the OP's signing keys.
    #[arg(long)]
    rotate_keys_cmd: Option<String>,
    /// Run only these modules (repeatable, or comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Modules without long waits run at most this many at a time.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// -v: print each failed module's HTTP trace to stderr; -vv: every module's.
    #[arg(long, short, action = clap::ArgAction::Count)]
    verbose: u8,
    /// List the module names and exit.
    #[arg(long)]
    list: bool,
}

fn need(v: Option<String>, flag: &str) -> Result<String> {
    match v {
        Some(s) if !s.is_empty() => Ok(s),
        _ => bail!("--{flag} is required"),
    }
}

fn build_global(cli: &Cli) -> Result<Global> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .user_agent("Mozilla/5.0 (klard-auth conformance harness)");
    if let Some(path) = &cli.ca_file {
        let pem = std::fs::read(path).with_context(|| format!("reading --ca-file {path}"))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("parsing --ca-file {path}"))?;
        if certs.is_empty() {
            bail!("--ca-file {path} holds no certificate");
        }
        builder = builder.tls_certs_only(certs);
    }
    let http = builder.build().context("building the HTTP client")?;
    let redirect_uri = need(cli.redirect_uri.clone(), "redirect-uri")?;
    url::Url::parse(&redirect_uri).context("--redirect-uri is not a URL")?;
    let issuer = need(cli.issuer.clone(), "issuer")?;
    url::Url::parse(&issuer).context("--issuer is not a URL")?;
    Ok(Global {
        http,
        issuer,
        username: need(cli.username.clone(), "username")?,
        password: need(cli.password.clone(), "password")?,
        redirect_uri,
        client: Client {
            id: need(cli.client_id.clone(), "client-id")?,
            secret: need(cli.client_secret.clone(), "client-secret")?,
            method: AuthMethod::Basic,
        },
        client2: Client {
            id: need(cli.client2_id.clone(), "client2-id")?,
            secret: need(cli.client2_secret.clone(), "client2-secret")?,
            method: AuthMethod::Basic,
        },
        post_client: Client {
            id: need(cli.post_client_id.clone(), "post-client-id")?,
            secret: need(cli.post_client_secret.clone(), "post-client-secret")?,
            method: AuthMethod::Post,
        },
        rotate_keys_cmd: cli.rotate_keys_cmd.clone(),
    })
}

enum Verdict {
    Pass(Vec<String>, Vec<String>),
    Fail(String),
    Skip(String),
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.list {
        for m in MODULES {
            println!("{}", m.name);
        }
        return ExitCode::SUCCESS;
    }
    for o in &cli.only {
        if !MODULES.iter().any(|m| m.name == o) {
            eprintln!("unknown module {o:?}; --list shows the names");
            return ExitCode::from(2);
        }
    }
    let g = match build_global(&cli) {
        Ok(g) => Arc::new(g),
        Err(e) => {
            eprintln!("conformance: {e:#}");
            return ExitCode::from(2);
        }
    };
    let selected: Vec<&'static modules::ModuleDef> = MODULES
        .iter()
        .filter(|m| cli.only.is_empty() || cli.only.iter().any(|o| o == m.name))
        .collect();

    let sem = Arc::new(tokio::sync::Semaphore::new(cli.jobs.max(1)));
    let mut handles = Vec::new();
    // Modules that rotate keys run last, alone, so they cannot disturb others.
    let (last, first): (Vec<&'static modules::ModuleDef>, Vec<_>) =
        selected.into_iter().partition(|m| m.exclusive);
    for m in first {
        let g = g.clone();
        let sem = sem.clone();
        handles.push((
            m,
            tokio::spawn(async move {
                let _permit = if m.long {
                    None
                } else {
                    sem.acquire_owned().await.ok()
                };
                run_one(g, m).await
            }),
        ));
    }
    let mut passed = 0usize;
    let mut failed = 0usize;
    let mut print = |name: &str, v: Verdict, trace: Vec<String>| match v {
        Verdict::Pass(w, notes) => {
            if cli.verbose >= 2 {
                for t in &trace {
                    eprintln!("    {name}: {t}");
                }
            }
            passed += 1;
            let mut extra = String::new();
            if !w.is_empty() {
                extra.push_str(&format!(" (warning: {})", one_line(&w.join("; "))));
            }
            if !notes.is_empty() {
                extra.push_str(&format!(" (note: {})", one_line(&notes.join("; "))));
            }
            println!("PASS  {name}{extra}");
        }
        Verdict::Fail(msg) => {
            failed += 1;
            println!("FAIL  {name}: {}", one_line(&msg));
            if cli.verbose >= 1 {
                for t in trace {
                    eprintln!("    {name}: {t}");
                }
            }
        }
        Verdict::Skip(why) => println!("SKIP  {name} ({})", one_line(&why)),
    };
    for (m, h) in handles {
        let (v, trace) = match h.await {
            Ok(r) => r,
            Err(e) => (
                Verdict::Fail(format!("module task crashed: {e}")),
                Vec::new(),
            ),
        };
        print(m.name, v, trace);
    }
    for m in last {
        let (v, trace) = run_one(g.clone(), m).await;
        print(m.name, v, trace);
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn run_one(g: Arc<Global>, m: &'static modules::ModuleDef) -> (Verdict, Vec<String>) {
    let limit = Duration::from_secs(if m.long { 120 } else { 90 });
    let mut run = None;
    let res = tokio::time::timeout(limit, modules::run(g, m.name, &mut run)).await;
    let (rep, trace) = match run {
        Some(r) => (r.rep, r.browser.trace),
        None => (Default::default(), Vec::new()),
    };
    let v = match res {
        Err(_) => Verdict::Fail(format!("timed out after {}s", limit.as_secs())),
        Ok(Ok(())) => Verdict::Pass(rep.warnings, rep.notes),
        Ok(Err(e)) => match e.downcast_ref::<Skip>() {
            Some(s) => Verdict::Skip(s.0.clone()),
            None => Verdict::Fail(format!("{e:#}")),
        },
    };
    (v, trace)
}
