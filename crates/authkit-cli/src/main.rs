//! The `authkit` command.
//!
//! `authkit emulator` runs the local WorkOS-compatible server (crate `workos-emulator`) until
//! Ctrl-C or SIGTERM, then shuts it down gracefully.

mod dev;
mod sync;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use workos_emulator::seed::Seed;
use workos_emulator::{Config, Emulator};

#[derive(Debug, Parser)]
#[command(
    name = "authkit",
    version,
    about = "AuthKit for Rust: local WorkOS emulator and tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the emulator, the reference backend API and the admin app, seeded with a demo
    /// tenant (or use real WorkOS when WORKOS_API_KEY and WORKOS_CLIENT_ID are set).
    Dev(dev::DevArgs),
    /// Run the local WorkOS-compatible API server (hosted sign-in, authenticate, JWKS, users…).
    Emulator(EmulatorArgs),
    /// Mirror Directory Sync (directories, users, groups, memberships) into the app's
    /// database from the Events API, exactly once and in order.
    Sync(sync::SyncArgs),
}

#[derive(Debug, Args)]
struct EmulatorArgs {
    /// Interface to bind.
    #[arg(long, default_value = "127.0.0.1", env = "WORKOS_EMULATOR_HOST")]
    host: String,
    /// Port to bind; 0 picks a free port (the chosen one is printed).
    #[arg(long, default_value_t = 4100, env = "WORKOS_EMULATOR_PORT")]
    port: u16,
    /// SQLite database file.
    #[arg(
        long,
        default_value = ".authkit/emulator.db",
        conflicts_with = "in_memory"
    )]
    data: PathBuf,
    /// Keep everything in memory (lost on exit).
    #[arg(long)]
    in_memory: bool,
    /// Seed file (YAML or JSON, the official emulator's format), applied to an empty database
    /// and on `POST /_emulate/reset`.
    #[arg(long, env = "WORKOS_EMULATOR_SEED")]
    seed: Option<PathBuf>,
    /// API key management calls must present (also the `client_secret`).
    #[arg(long, default_value = "sk_test_default", env = "WORKOS_API_KEY")]
    api_key: String,
    /// Client id of the emulated environment.
    #[arg(long, default_value = "client_emulator", env = "WORKOS_CLIENT_ID")]
    client_id: String,
    /// `iss` of access tokens (default: `{base URL}/user_management/{client id}`).
    #[arg(long, env = "WORKOS_EMULATOR_ISSUER")]
    issuer: Option<String>,
    /// Access-token lifetime in seconds.
    #[arg(long, default_value_t = 300)]
    access_token_ttl: i64,
    /// Allowed redirect URI (exact match; repeat the flag for several). Loopback
    /// `http://localhost:<any port>` and `http://127.0.0.1:<any port>` are always allowed.
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// Answer /user_management/authorize with a code at once, without the sign-in page.
    #[arg(long)]
    auto_approve: bool,
    /// Add a new signing key at start (the old one stays published until its tokens expire).
    #[arg(long)]
    rotate_keys: bool,
    /// Seconds during which a used refresh token is still accepted (0 = strict rotation).
    #[arg(long, default_value_t = 0)]
    refresh_grace: i64,
}

impl EmulatorArgs {
    fn into_config(self) -> anyhow::Result<Config> {
        let mut config = Config::default()
            .host(self.host)
            .port(self.port)
            .api_key(self.api_key)
            .client_id(self.client_id)
            .access_token_ttl(self.access_token_ttl)
            .refresh_grace(self.refresh_grace)
            .auto_approve(self.auto_approve)
            .rotate_keys_on_start(self.rotate_keys);
        config = if self.in_memory {
            config.in_memory()
        } else {
            config.data_file(self.data)
        };
        if let Some(issuer) = self.issuer {
            config = config.issuer(issuer);
        }
        for uri in self.redirect_uris {
            config = config.redirect_uri(uri);
        }
        if let Some(path) = self.seed {
            let seed = Seed::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
            config = config.seed(Arc::new(seed));
        }
        config.validate()?;
        Ok(config)
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

async fn run_emulator(args: EmulatorArgs) -> anyhow::Result<()> {
    let config = args.into_config()?;
    let api_key_hint = if config.api_key == "sk_test_default" {
        "sk_test_default"
    } else {
        "(as configured)"
    };
    let client_id = config.client_id.clone();
    Emulator::serve_until(config, shutdown_signal(), |base_url| {
        println!("workos-emulator listening on {base_url}");
        println!("  WORKOS_API_BASE_URL={base_url}");
        println!("  WORKOS_CLIENT_ID={client_id}");
        println!("  WORKOS_API_KEY={api_key_hint}");
        println!("  JWKS: {base_url}/sso/jwks/{client_id}");
    })
    .await
    .context("emulator failed")?;
    println!("workos-emulator stopped");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Dev(args) => dev::run(args, shutdown_signal()).await,
        Command::Emulator(args) => run_emulator(args).await,
        Command::Sync(args) => sync::run(args, shutdown_signal()).await,
    }
}
