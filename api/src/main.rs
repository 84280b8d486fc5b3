//! The `confab` command line: parse, then call into the library.
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use confab::config::Config;
use confab::domain::{Role, workspaces};
use confab::error::DomainError;

// Resolving a large GraphQL response allocates many small values on every worker thread at
// once; mimalloc's per-thread heaps keep that off glibc's contended arena locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "confab",
    version,
    about = "One conversation per contact, over GraphQL."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Args, Clone)]
struct DbArgs {
    /// Database URL: sqlite://path/to/file.db?mode=rwc or postgres://user@host/db
    /// [default: an SQLite file under ./data/]
    #[arg(long, env = "DATABASE_URL", global = true)]
    database_url: Option<String>,
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CONFAB_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Do not create a demo workspace on an empty database.
    #[arg(long, env = "CONFAB_NO_DEMO")]
    no_demo: bool,
    /// The most database connections requests share [default: 8 on SQLite, 10 on PostgreSQL].
    #[arg(long, env = "CONFAB_DB_POOL_SIZE", value_parser = clap::value_parser!(u32).range(1..=1000))]
    db_pool_size: Option<u32>,
    /// The most queries sent over HTTP that execute at once; the rest wait their turn
    /// (mutations and subscriptions do not count) [default: twice the cores, at least 4].
    #[arg(long, env = "CONFAB_MAX_CONCURRENT_QUERIES", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max_concurrent_queries: Option<u32>,
    /// How often, in milliseconds, the scheduler and the plugin worker look for jobs nothing
    /// told them about (scheduled by another replica); jobs this server schedules run when
    /// they fall due either way.
    #[arg(long, env = "CONFAB_SCHEDULER_POLL_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    scheduler_poll_ms: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the GraphQL API (the default).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create a workspace and its first admin; prints the admin's token once.
    Bootstrap {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        admin_email: String,
        /// Print {"workspaceId","userId","token"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Print the served GraphQL schema (SDL).
    Schema,
    /// Fill a new workspace with deterministic, realistic data (bulk inserts), for
    /// benchmarks and demos; prints its admin token.
    Seed {
        #[command(flatten)]
        plan: confab::seed::Plan,
        /// Print what was written as JSON (with the admin token).
        #[arg(long)]
        json: bool,
    },
    /// Automation plugins.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Check, precompile and install a plugin component (.wasm) into a workspace, as its
    /// first admin. A component that fails the checks is refused and nothing is stored.
    Install {
        /// The component: `cargo build --release --target wasm32-wasip2 -p <crate>` writes it
        /// to target/wasm32-wasip2/release/<crate>.wasm.
        file: std::path::PathBuf,
        #[arg(long)]
        workspace: String,
        /// The name admins see [default: the plugin's own name from its manifest].
        #[arg(long)]
        name: Option<String>,
        /// Install it switched off.
        #[arg(long)]
        disabled: bool,
        /// Limits as JSON, e.g. '{"fuel":100000000,"wallMs":2000}' (each up to its ceiling).
        #[arg(long)]
        limits: Option<String>,
        /// Print {"pluginId","name","version","events","schedules","sha256"} as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token for a user (created with --role if new); prints it once.
    Create {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        email: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Print {"userId","token"} as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Agent,
    Integration,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Agent => Role::Agent,
            RoleArg::Integration => Role::Integration,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(std::env::args_os());
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONFAB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let database_url = cli.db.database_url.clone();
    match cli.command {
        None => serve(database_url, cli.serve).await,
        Some(Command::Serve(args)) => serve(database_url, args).await,
        Some(Command::Migrate) => {
            let db = open(database_url).await?;
            drop(db);
            println!("database is up to date");
            Ok(())
        }
        Some(Command::Bootstrap {
            workspace,
            admin_email,
            json,
        }) => {
            let db = open(database_url).await?;
            let out = workspaces::bootstrap(&db, &workspace, &admin_email)
                .await
                .map_err(cli_error)?;
            if json {
                println!("{}", serde_json::to_string(&out)?);
            } else {
                println!("workspace {workspace} created; admin {admin_email}");
                println!("admin token (shown once): {}", out.token);
            }
            Ok(())
        }
        Some(Command::Token {
            command:
                TokenCommand::Create {
                    workspace,
                    email,
                    role,
                    json,
                },
        }) => {
            let db = open(database_url).await?;
            let out = workspaces::create_token(&db, &workspace, &email, role.into())
                .await
                .map_err(cli_error)?;
            if json {
                println!("{}", serde_json::to_string(&out)?);
            } else {
                println!("token for {email} (shown once): {}", out.token);
            }
            Ok(())
        }
        Some(Command::Schema) => {
            print!("{}", confab::graphql::sdl());
            Ok(())
        }
        Some(Command::Seed { plan, json }) => {
            let db = open(database_url).await?;
            let out = confab::seed::seed(&db, &plan).await.map_err(cli_error)?;
            if json {
                println!("{}", serde_json::to_string(&out)?);
            } else {
                println!(
                    "seeded {}: {} contacts, {} messages, {} activities in {} ms",
                    out.workspace, out.contacts, out.messages, out.activities, out.millis
                );
                println!("admin token (shown once): {}", out.token);
            }
            Ok(())
        }
        Some(Command::Plugin {
            command:
                PluginCommand::Install {
                    file,
                    workspace,
                    name,
                    disabled,
                    limits,
                    json,
                },
        }) => {
            let wasm = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let limits = limits
                .map(|l| serde_json::from_str(&l))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--limits is not valid limits JSON: {e}"))?;
            let db = open(database_url).await?;
            let host = confab::plugins::PluginHost::new().map_err(anyhow::Error::msg)?;
            let scope = workspaces::first_admin(&db, &workspace)
                .await
                .map_err(cli_error)?;
            let install = confab::domain::plugins::Install {
                name,
                wasm,
                enabled: !disabled,
                limits,
            };
            let p = confab::domain::plugins::install(&db, &host, &scope, install)
                .await
                .map_err(cli_error)?;
            let id = confab::ids::encode("Plugin", p.id).0;
            if json {
                let out = serde_json::json!({ "pluginId": id, "name": p.name, "version": p.version,
                    "events": p.events, "schedules": p.schedules, "sha256": p.sha256 });
                println!("{out}");
            } else {
                println!(
                    "installed plugin {} {} ({id}) in {workspace}",
                    p.name, p.version
                );
            }
            Ok(())
        }
    }
}

async fn serve(database_url: Option<String>, args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::new(database_url, args.listen);
    config.bootstrap_demo = !args.no_demo;
    if let Some(n) = args.db_pool_size {
        config.db_pool_size = n;
    }
    if let Some(n) = args.max_concurrent_queries {
        config.max_concurrent_queries = n as usize;
    }
    config.scheduler_poll = std::time::Duration::from_millis(args.scheduler_poll_ms);
    confab::serve(config).await
}

async fn open(database_url: Option<String>) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let url = database_url.unwrap_or_else(|| confab::config::DEFAULT_DATABASE_URL.to_string());
    let db = confab::db::connect(&url).await.map_err(|e| {
        anyhow::anyhow!("cannot open the database at {}: {e}", confab::redact(&url))
    })?;
    confab::db::migrate(&db)
        .await
        .map_err(|e| anyhow::anyhow!("cannot migrate the database: {e}"))?;
    Ok(db)
}

fn cli_error(e: DomainError) -> anyhow::Error {
    match e {
        DomainError::Database(db) => anyhow::anyhow!("database error: {db}"),
        other => anyhow::anyhow!("{other}"),
    }
}
