//! `authkit sync`: mirror WorkOS Directory Sync into the app's database (crate
//! `authkit-sync`). Backfill or reconcile first when asked, then follow the Events API;
//! with `--webhook-port`, a signed WorkOS webhook wakes the worker at once.

use std::io::Write as _;
use std::net::SocketAddr;

use anyhow::Context as _;
use authkit::webhook::{WebhookSecret, WebhookVerifier};
use authkit_sync::webhook::DoorbellWebhook;
use authkit_sync::{FetchProgress, Store, SyncWorker, WorkerConfig, WorkosSyncClient};
use clap::Args;

/// Flags of `authkit sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The app's database (`sqlite:PATH?mode=rwc` or `postgres://…`).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite:.authkit/sync.db?mode=rwc"
    )]
    database_url: String,
    /// WorkOS API base URL (the emulator's for local development).
    #[arg(
        long,
        env = "WORKOS_API_BASE_URL",
        default_value = "https://api.workos.com"
    )]
    api_base_url: String,
    /// WorkOS API key.
    #[arg(long, env = "WORKOS_API_KEY", hide_env_values = true)]
    api_key: String,
    /// Load every directory, user and group from the list endpoints first.
    #[arg(long)]
    backfill: bool,
    /// Compare the tables with WorkOS and repair drift, then continue.
    #[arg(long, conflicts_with = "backfill")]
    reconcile: bool,
    /// With --reconcile: report the drift, change nothing, and exit.
    #[arg(long, requires = "reconcile")]
    dry_run: bool,
    /// Exit once caught up instead of following new events.
    #[arg(long)]
    once: bool,
    /// Serve the webhook doorbell on 127.0.0.1:PORT at /workos/webhook.
    #[arg(long, requires = "webhook_secret")]
    webhook_port: Option<u16>,
    /// The webhook endpoint's signing secret.
    #[arg(long, env = "WORKOS_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
}

/// Runs until `shutdown` resolves (or, with `--once`/`--dry-run`, until caught up).
pub async fn run(
    args: SyncArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    if let Some(path) = args
        .database_url
        .strip_prefix("sqlite:")
        .map(|p| p.split('?').next().unwrap_or(p))
        .filter(|p| !p.starts_with(':'))
        && let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let store = Store::connect(&args.database_url)
        .await
        .context("opening the sync database")?;
    let source = WorkosSyncClient::new(&args.api_base_url, args.api_key.clone())
        .context("configuring the WorkOS client")?;

    if args.backfill || args.reconcile {
        let lock = store
            .try_lock_worker()
            .await
            .context("taking the sync lock")?
            .context("another `authkit sync` holds this database's sync lock; stop it first")?;
        let mut progress = |p: &FetchProgress| {
            eprint!(
                "\r  {} directories, {} users, {} groups, {} memberships{}",
                p.directories,
                p.users,
                p.groups,
                p.memberships,
                p.current_directory
                    .as_deref()
                    .map(|d| format!("  (reading {d})"))
                    .unwrap_or_default()
            );
            let _ = std::io::stderr().flush();
        };
        let report = if args.backfill {
            eprintln!("Backfilling from the list endpoints…");
            authkit_sync::backfill(&store, &lock, &source, &mut progress).await
        } else {
            eprintln!(
                "Reconciling with WorkOS{}…",
                if args.dry_run { " (dry run)" } else { "" }
            );
            authkit_sync::reconcile(&store, &lock, &source, None, args.dry_run, &mut progress).await
        }
        .context("reading WorkOS")?;
        eprintln!();
        println!("{report:#?}");
        lock.release().await;
        if args.dry_run {
            return Ok(());
        }
    }

    let config = WorkerConfig {
        stop_when_caught_up: args.once,
        ..WorkerConfig::default()
    };
    let worker = SyncWorker::new(store, source, config);
    let doorbell = worker.doorbell();
    let webhook = match (args.webhook_port, args.webhook_secret) {
        (Some(port), Some(secret)) => {
            let verifier = WebhookVerifier::new(WebhookSecret::new(secret));
            let app = DoorbellWebhook::new(verifier, doorbell).router::<()>("/workos/webhook");
            let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
                .await
                .with_context(|| format!("binding the webhook doorbell to port {port}"))?;
            println!(
                "Webhook doorbell: http://{}/workos/webhook",
                listener.local_addr()?
            );
            Some(tokio::spawn(
                async move { axum::serve(listener, app).await },
            ))
        }
        _ => None,
    };
    let handle = worker.spawn();
    let status = if args.once {
        handle.join().await
    } else {
        shutdown.await;
        eprintln!("Stopping…");
        handle.stop().await
    }
    .context("sync worker failed")?;
    if let Some(task) = webhook {
        task.abort();
    }
    println!(
        "applied {}, duplicates {}, skipped {}, last event {}",
        status.applied,
        status.duplicates,
        status.skipped,
        status.last_event_id.as_deref().unwrap_or("none")
    );
    Ok(())
}
