//! The `exbrief` binary: parse the command line, set up logging, and call into the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use exbrief::bundle::{Bundle, Task};
use exbrief::config::{Config, LogFormat};
use exbrief::prompts::{self, Registry};
use exbrief::redact::Policies;
use exbrief::vault::Vault;
use exbrief::{app, audit, demo, keys, store::Store};
use tracing_subscriber::EnvFilter;

/// mimalloc: under load the service allocates and frees many short-lived JSON values from many
/// threads; glibc's per-thread arenas then hold on to freed memory (issue 9's RSS figures).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "exbrief",
    version,
    about = "Governed LLM briefs for operational exceptions"
)]
struct Cli {
    /// TOML config file; EXBRIEF_<SECTION>__<KEY> environment variables override it.
    #[arg(long, global = true, env = "EXBRIEF_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides database.url.
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service.
    Serve {
        /// Overrides server.listen.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Validate config, prompts and providers, then exit.
        #[arg(long)]
        check: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Redact a bundle file as the pipeline would (a dry run; nothing is sent anywhere).
    Redact {
        /// The bundle (JSON file; `-` for standard input).
        file: PathBuf,
        /// Policy name (a file in the redaction directory); the configured default otherwise.
        #[arg(long)]
        policy: Option<String>,
        #[arg(long, value_enum, default_value = "bundle")]
        format: RedactFormat,
    },
    /// Prompt templates: list versions, render a fixture, diff versions, write the lock.
    Prompts {
        #[command(subcommand)]
        command: PromptsCommand,
    },
    /// The Odoo outbox: list rows, requeue dead ones.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// API keys: create (the secret is printed once), list, revoke.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The compliance log: verify its hash chain, export it, apply retention.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Run every fixture bundle through the pipeline and print the results.
    Demo {
        #[arg(long, default_value = "fixtures")]
        fixtures: PathBuf,
    },
}

#[derive(Subcommand)]
enum PromptsCommand {
    /// Every version of every task: status, sha256, production and canary labels.
    List,
    /// The exact messages a model would get for a bundle file, after redaction.
    Render {
        task: Task,
        /// The bundle (JSON file).
        fixture: PathBuf,
        /// Render this version instead of the one the bundle would get.
        #[arg(long)]
        version: Option<String>,
        /// Policy name; the bundle's `policy`, else the configured default.
        #[arg(long)]
        policy: Option<String>,
    },
    /// A unified diff of two versions of a task, file by file.
    Diff {
        task: Task,
        from: String,
        to: String,
    },
    /// Record every version's sha256 in prompts.lock; refuses to change a released one.
    Lock,
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// Every outbox row (or only the dead ones): status, tries, Odoo's last error, Odoo ids.
    List {
        #[arg(long)]
        dead: bool,
    },
    /// Make a row (or every dead row) due now with a fresh budget of tries.
    Retry {
        /// The outbox row id.
        #[arg(required_unless_present = "dead", conflicts_with = "dead")]
        id: Option<uuid::Uuid>,
        #[arg(long)]
        dead: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a key; prints its secret (and signing secret) once — only hashes are stored.
    Create {
        #[arg(long)]
        name: String,
        /// Comma-separated: summarize, review, audit, admin (admin holds every scope).
        #[arg(long)]
        scopes: String,
        /// Pin the key's requests to this redaction policy.
        #[arg(long)]
        policy: Option<String>,
        /// Require X-Exbrief-Signature on the key's POST requests; prints the signing secret.
        #[arg(long)]
        signed: bool,
    },
    /// Every key: id, name, scopes, policy, signed, created, revoked.
    List,
    /// Refuse a key from now on.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the chain; prints the report, exits 1 naming the first row that breaks it.
    Verify,
    /// Write the chain's rows created in [--from, --to) to FILE (`-` for standard output).
    Export {
        /// RFC 3339 time, e.g. 2026-11-01T00:00:00Z.
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        file: PathBuf,
    },
    /// Apply retention now (the server also runs it every retention.interval_minutes).
    Purge,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    Jsonl,
    Csv,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RedactFormat {
    /// The redacted bundle, as a model would see it.
    Bundle,
    /// Where values were redacted: path, character offsets, class, entity; never the values.
    Findings,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("exbrief: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::load(cli.config.as_deref()).context("configuration")?;
    if let Some(url) = cli.database_url {
        config.database.url = url;
        config.validate().context("--database-url")?;
    }
    // The demo prints results; its logs stay quiet unless EXBRIEF_LOG asks otherwise.
    let default_level = if matches!(
        cli.command,
        Command::Demo { .. }
            | Command::Redact { .. }
            | Command::Prompts { .. }
            | Command::Outbox { .. }
            | Command::Audit { .. }
            | Command::Keys { .. }
    ) {
        "warn"
    } else {
        "info"
    };
    init_logging(config.server.log_format, default_level);
    match cli.command {
        Command::Serve { listen, check } => {
            if let Some(addr) = listen {
                config.server.listen = addr;
            }
            if check {
                app::parts(&config)?;
                println!(
                    "configuration OK: listen {}, database {}, llm {}",
                    config.server.listen,
                    redact_url(&config.database.url),
                    if config.llm.is_configured() {
                        config.llm.model.as_str()
                    } else {
                        "offline"
                    }
                );
                return Ok(());
            }
            let pipeline = app::pipeline(&config).await?;
            if !config.auth.disabled
                && let Some(k) = keys::bootstrap(pipeline.store(), pipeline.vault()).await?
            {
                // Printed, not logged: a secret never goes to the logs.
                println!(
                    "exbrief: no API keys existed, so this admin key was made. It is shown only now:\n\n    {}\n\nUse it as `Authorization: Bearer <key>`; make narrower keys with `exbrief keys create`.",
                    keys::reveal_once(&k.secret)
                );
            }
            let listener = exbrief::app::listen(config.server.listen)
                .with_context(|| format!("cannot listen on {}", config.server.listen))?;
            let addr = listener.local_addr()?;
            tracing::info!(%addr, database = pipeline.store().backend(), llm = %pipeline.llm().describe(), "exbrief listening");
            app::serve(&config, pipeline, listener, shutdown_signal()).await?;
            tracing::info!("exbrief stopped");
            Ok(())
        }
        Command::Migrate => {
            let store = Store::connect(&config.database.url, 1, 0).await?;
            store.close().await;
            println!("migrations applied to {}", redact_url(&config.database.url));
            Ok(())
        }
        Command::Redact {
            file,
            policy,
            format,
        } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?
            };
            let raw: serde_json::Value =
                serde_json::from_str(&text).context("the file is not valid JSON")?;
            let policies = Policies::load(&config.redaction.dir, &config.redaction.policy)?;
            let wanted = policy.or_else(|| {
                raw.get("policy")
                    .and_then(|p| p.as_str())
                    .map(str::to_owned)
            });
            let redactor = policies.get(wanted.as_deref())?;
            let r = redactor.redact(&raw);
            let out = match format {
                RedactFormat::Bundle => r.value,
                RedactFormat::Findings => serde_json::json!({
                    "policy": redactor.policy().name, "policy_version": redactor.policy().version,
                    "policy_sha256": redactor.policy().sha256, "counts": r.counts, "findings": r.findings}),
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::Prompts { command } => prompts_command(&config, command),
        Command::Outbox { command } => {
            let store = Store::connect(&config.database.url, 1, 0).await?;
            let result = outbox_command(&store, command).await;
            store.close().await;
            result
        }
        Command::Keys { command } => {
            let vault = Vault::from_config(&config.vault, &config.database.url)?;
            let store = Store::connect(&config.database.url, 1, 0).await?;
            let result = keys_command(&store, &vault, &config, command).await;
            store.close().await;
            result
        }
        Command::Audit { command } => {
            let vault = Vault::from_config(&config.vault, &config.database.url)?;
            let store = Store::connect(&config.database.url, 1, 0).await?;
            let result = audit_command(&store, &vault, &config, command).await;
            store.close().await;
            result
        }
        Command::Demo { fixtures } => {
            let mut out = std::io::stdout().lock();
            let n = demo::run(config, &fixtures, &mut out).await?;
            anyhow::ensure!(n > 0, "no bundles found in {}", fixtures.display());
            Ok(())
        }
    }
}

async fn keys_command(
    store: &Store,
    vault: &Vault,
    config: &Config,
    command: KeysCommand,
) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            name,
            scopes,
            policy,
            signed,
        } => {
            if let Some(p) = &policy {
                Policies::load(&config.redaction.dir, &config.redaction.policy)?.get(Some(p))?;
            }
            let created = keys::create(
                store,
                vault,
                &keys::Request {
                    name,
                    scopes: keys::parse_scopes(&scopes)?,
                    policy,
                    signed,
                },
            )
            .await?;
            println!("id:     {}", created.id);
            println!("secret: {}", keys::reveal_once(&created.secret));
            if let Some(w) = &created.webhook_secret {
                println!("signing secret: {}", keys::reveal_once(w));
            }
            println!("(shown only now: exbrief stores hashes, and the signing secret sealed)");
        }
        KeysCommand::List => {
            println!(
                "{:<12}  {:<24} {:<28} {:<10} {:<6} {:<25} revoked",
                "id", "name", "scopes", "policy", "signed", "created"
            );
            for k in store.keys().await? {
                println!(
                    "{:<12}  {:<24} {:<28} {:<10} {:<6} {:<25} {}",
                    k.id,
                    k.name,
                    k.scopes,
                    k.policy.as_deref().unwrap_or("-"),
                    if k.webhook_key_id.is_some() {
                        "yes"
                    } else {
                        "no"
                    },
                    exbrief::store::rfc3339(k.created_at),
                    k.revoked_at
                        .map(exbrief::store::rfc3339)
                        .unwrap_or_else(|| "-".to_owned())
                );
            }
        }
        KeysCommand::Revoke { id } => {
            keys::revoke(store, &id).await?;
            println!("key {id} revoked");
        }
    }
    Ok(())
}

/// Who runs the CLI, as the access record names them.
fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".to_owned())
    )
}

async fn audit_command(
    store: &Store,
    vault: &Vault,
    config: &Config,
    command: AuditCommand,
) -> anyhow::Result<()> {
    use futures::StreamExt;
    use std::io::Write;
    let request_id = uuid::Uuid::now_v7().to_string();
    match command {
        AuditCommand::Verify => {
            audit::record_access(
                store,
                &request_id,
                None,
                &cli_actor(),
                "verify",
                serde_json::json!({}),
            )
            .await?;
            let report = audit::verify(store, vault).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            anyhow::ensure!(report.ok, "the audit chain does not verify");
        }
        AuditCommand::Export {
            from,
            to,
            format,
            file,
        } => {
            let parse =
                |name: &str, v: &Option<String>| -> anyhow::Result<Option<time::OffsetDateTime>> {
                    v.as_deref()
                        .map(|t| {
                            time::OffsetDateTime::parse(
                                t,
                                &time::format_description::well_known::Rfc3339,
                            )
                            .with_context(|| {
                                format!(
                                    "--{name} must be an RFC 3339 time such as 2026-11-01T00:00:00Z"
                                )
                            })
                        })
                        .transpose()
                };
            let (from_t, to_t) = (parse("from", &from)?, parse("to", &to)?);
            let format = match format {
                ExportFormat::Jsonl => audit::Format::Jsonl,
                ExportFormat::Csv => audit::Format::Csv,
            };
            audit::record_access(
                store,
                &request_id,
                None,
                &cli_actor(),
                "export",
                serde_json::json!({"from": from, "to": to, "format": match format {
                    audit::Format::Jsonl => "jsonl", audit::Format::Csv => "csv"},
                    "file": file.display().to_string()}),
            )
            .await?;
            let mut out: Box<dyn Write> = if file.as_os_str() == "-" {
                Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
            } else {
                Box::new(std::io::BufWriter::new(
                    std::fs::File::create(&file)
                        .with_context(|| format!("cannot create {}", file.display()))?,
                ))
            };
            let mut stream = std::pin::pin!(audit::export(store.clone(), format, from_t, to_t));
            while let Some(chunk) = stream.next().await {
                out.write_all(&chunk?)?;
            }
            out.flush()?;
        }
        AuditCommand::Purge => {
            let run = audit::retention(
                store,
                vault,
                config.retention.prompt_log_days,
                exbrief::store::now(),
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&run)?);
        }
    }
    Ok(())
}

async fn outbox_command(store: &Store, command: OutboxCommand) -> anyhow::Result<()> {
    match command {
        OutboxCommand::List { dead } => {
            let rows = store.outbox_list(dead).await?;
            println!(
                "{:<36}  {:<20} {:<7} {:>5}  {:<36} {:<36}  result / last error",
                "id", "kind", "status", "tries", "target", "summary"
            );
            for r in &rows {
                let target = exbrief::outbox::describe_target(r);
                let detail = match (&r.result, &r.last_error) {
                    // Odoo's messages run over several lines; the first says what happened.
                    (_, Some(e)) if r.status != "done" => e.lines().next().unwrap_or("").to_owned(),
                    (Some(res), _) => res.0.to_string(),
                    _ => String::new(),
                };
                let summary = r
                    .summary_id
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".to_owned());
                println!(
                    "{:<36}  {:<20} {:<7} {:>5}  {:<36} {:<36}  {detail}",
                    r.id, r.kind, r.status, r.attempts, target, summary
                );
            }
            println!("{} row(s)", rows.len());
        }
        OutboxCommand::Retry { id, dead } => {
            let n = store.outbox_requeue(if dead { None } else { id }).await?;
            anyhow::ensure!(n > 0 || dead, "no pending or dead outbox row with that id");
            println!("{n} row(s) due again");
        }
    }
    Ok(())
}

fn prompts_command(config: &Config, command: PromptsCommand) -> anyhow::Result<()> {
    let dir = &config.prompts.dir;
    match command {
        PromptsCommand::Lock => {
            let lock = prompts::write_lock(dir)?;
            let n: usize = lock.0.values().map(|v| v.len()).sum();
            println!(
                "{} records {n} versions",
                dir.join(prompts::lock::FILE).display()
            );
        }
        PromptsCommand::List => {
            let registry = Registry::load(dir, &config.prompts)?;
            println!(
                "{:<16} {:<8} {:<9} {:<12} labels",
                "task", "version", "status", "sha256"
            );
            for v in registry.list() {
                let mut labels = Vec::new();
                if v.production {
                    labels.push("production".to_owned());
                }
                if let Some(share) = v.canary {
                    labels.push(format!("canary {:.1}%", share * 100.0));
                }
                println!(
                    "{:<16} {:<8} {:<9} {:<12} {}",
                    v.task.as_str(),
                    v.version,
                    v.status.as_str(),
                    prompts::lock::short(&v.sha256),
                    labels.join(", ")
                );
            }
        }
        PromptsCommand::Render {
            task,
            fixture,
            version,
            policy,
        } => {
            let text = std::fs::read_to_string(&fixture)
                .with_context(|| format!("cannot read {}", fixture.display()))?;
            let raw: serde_json::Value =
                serde_json::from_str(&text).context("the file is not valid JSON")?;
            let bundle = Bundle::from_value(&raw)?;
            let registry = Registry::load(dir, &config.prompts)?;
            let policies = Policies::load(&config.redaction.dir, &config.redaction.policy)?;
            let redactor = policies.get(policy.as_deref().or(bundle.policy.as_deref()))?;
            let pinned = version
                .as_deref()
                .or(bundle.prompt_versions.get(&task).map(String::as_str));
            let template = registry.resolve(task, pinned, bundle.event_id.as_str())?;
            let redacted = redactor.redact(&raw);
            let context = prompts::context(&redacted.value, &bundle.reply_language());
            let rendered = registry.render(&template, &context)?;
            let out = serde_json::json!({
                "template": rendered.template,
                "policy": {"name": redactor.policy().name, "version": redactor.policy().version,
                           "sha256": redactor.policy().sha256},
                "parameters": {"temperature": rendered.meta.temperature,
                               "max_tokens": rendered.meta.max_tokens, "top_p": rendered.meta.top_p},
                "messages": &*rendered.messages,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        PromptsCommand::Diff { task, from, to } => {
            let registry = Registry::load(dir, &config.prompts)?;
            let files = |v: &str| {
                registry
                    .files(task, v)
                    .with_context(|| format!("no version {v} of {task}"))
            };
            let (a, b) = (files(&from)?, files(&to)?);
            let mut same = true;
            for (name, old) in a {
                let new = b.get(name).map(String::as_str).unwrap_or("");
                if old == new {
                    continue;
                }
                same = false;
                let diff = similar::TextDiff::from_lines(old.as_str(), new);
                print!(
                    "{}",
                    diff.unified_diff().context_radius(3).header(
                        &format!("{task}/{from}/{name}"),
                        &format!("{task}/{to}/{name}")
                    )
                );
            }
            if same {
                println!("{task}: {from} and {to} have identical files");
            }
        }
    }
    Ok(())
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter =
        EnvFilter::try_from_env("EXBRIEF_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    // async-openai logs undecodable response bodies at ERROR; those may hold model text.
    let filter = match "async_openai=off".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

/// Database URLs may carry a password; print scheme and host only.
fn redact_url(url: &str) -> String {
    match url.split_once('@') {
        Some((scheme_user, host)) => {
            let scheme = scheme_user.split("://").next().unwrap_or("db");
            format!("{scheme}://…@{host}")
        }
        None => url.to_owned(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; draining in-flight requests");
}
