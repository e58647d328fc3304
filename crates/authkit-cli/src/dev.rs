//! `authkit dev`: the emulator, the reference backend and the admin app in one process.
//!
//! Start-up order matters: the admin app's listener is bound first so its real port (the
//! flags accept 0) is known before the redirect URI is configured; the emulator comes up
//! next, and only then are the apps built against its base URL.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use authkit::auth::AuthKit;
use authkit::config::AuthKitConfig;
use authkit::verifier::Verifier;
use authkit_axum::{AuthKitLayer, auth_routes};
use clap::Args;
use tokio::net::TcpListener;
use tokio::sync::watch;
use workos_emulator::seed::Seed;
use workos_emulator::{Config as EmulatorConfig, Emulator};

use admin_app::backend::Backend;
use admin_app::backend::projects::Projects;
use admin_app::db::Database;
use admin_app::web::AdminWeb;

/// The demo tenant `authkit dev` seeds when no `--seed` is given.
const DEMO_SEED: &str = include_str!("../../workos-emulator/seeds/demo.yaml");

/// Flags of `authkit dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Port of the emulator (0 picks a free one).
    #[arg(long, default_value_t = 4100)]
    emulator_port: u16,
    /// Port of the backend API (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    backend_port: u16,
    /// Port of the admin web app (0 picks a free one).
    #[arg(long, default_value_t = 3000)]
    admin_port: u16,
    /// Seed file replacing the demo tenant (the emulator's format).
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Directory for the SQLite databases and the generated cookie password.
    #[arg(long, default_value = ".authkit")]
    data_dir: PathBuf,
    /// Keep the emulator and backend data in memory (nothing written to --data-dir).
    #[arg(long)]
    in_memory: bool,
}

/// The emulated environment's credentials (the emulator's defaults).
const EMULATOR_API_KEY: &str = "sk_test_default";
const EMULATOR_CLIENT_ID: &str = "client_emulator";

/// Runs until `shutdown` resolves.
pub async fn run(
    args: DevArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    if !args.in_memory {
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("creating {}", args.data_dir.display()))?;
    }
    let admin_listener = bind(args.admin_port, "admin app").await?;
    let backend_listener = bind(args.backend_port, "backend API").await?;
    let admin_url = format!("http://localhost:{}", admin_listener.local_addr()?.port());
    let backend_url = format!("http://127.0.0.1:{}", backend_listener.local_addr()?.port());
    let redirect_uri = format!("{admin_url}/callback");
    let cookie_password = cookie_password(&args)?;

    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
    let real_workos = set("WORKOS_API_KEY") && set("WORKOS_CLIENT_ID");
    let (emulator, config, credentials) = if real_workos {
        println!(
            "WORKOS_API_KEY and WORKOS_CLIENT_ID are set: using real WorkOS, not the emulator."
        );
        let config = AuthKitConfig::from_lookup(|name| match name {
            "WORKOS_COOKIE_PASSWORD" => std::env::var(name).ok().or(Some(cookie_password.clone())),
            "WORKOS_REDIRECT_URI" => std::env::var(name).ok().or(Some(redirect_uri.clone())),
            _ => std::env::var(name).ok(),
        })?;
        (None, config, Vec::new())
    } else {
        let (seed, credentials) = load_seed(args.seed.as_deref())?;
        let mut emulator_config = EmulatorConfig::default()
            .port(args.emulator_port)
            .api_key(EMULATOR_API_KEY)
            .client_id(EMULATOR_CLIENT_ID)
            .redirect_uri(redirect_uri.clone())
            .seed(Arc::new(seed));
        emulator_config = if args.in_memory {
            emulator_config.in_memory()
        } else {
            emulator_config.data_file(args.data_dir.join("emulator.db"))
        };
        let emulator = Emulator::start(emulator_config)
            .await
            .context("starting the emulator")?;
        let base = url::Url::parse(emulator.base_url()).context("emulator base URL")?;
        let config = AuthKitConfig::builder()
            .client_id(EMULATOR_CLIENT_ID)
            .api_key(EMULATOR_API_KEY)
            .cookie_password(cookie_password)
            .redirect_uri(redirect_uri.clone())
            .api_hostname(base.host_str().unwrap_or("127.0.0.1"))
            .api_https(false)
            .api_port(base.port().unwrap_or(80))
            .build()?;
        (Some(emulator), config, credentials)
    };

    // Backend: bearer tokens only, verified against the environment's JWKS.
    let verifier = Verifier::builder()
        .jwks_url(config.jwks_url())
        .key_store_config(config.key_store_config())
        .issuers(config.accepted_issuers())
        .build()
        .context("building the token verifier")?;
    let database_url = match std::env::var("DATABASE_URL") {
        Ok(url) => url,
        Err(_) if args.in_memory => "sqlite::memory:".to_owned(),
        Err(_) => format!(
            "sqlite:{}?mode=rwc",
            args.data_dir.join("backend.db").display()
        ),
    };
    let db = Database::connect(&database_url)
        .await
        .context("opening the backend database")?;
    // Directory Sync: mirror the environment's directories into the backend's database,
    // polling briskly so SCIM changes show up on the Directory page within seconds.
    let sync_store = authkit_sync::Store::connect(&database_url)
        .await
        .context("opening the Directory Sync tables")?;
    let sync_source = authkit_sync::WorkosSyncClient::new(
        config.api_base_url().as_str().trim_end_matches('/'),
        config.require_api_key()?.expose().to_owned(),
    )
    .context("configuring the Directory Sync client")?;
    let sync_worker = authkit_sync::SyncWorker::new(
        sync_store.clone(),
        sync_source,
        authkit_sync::WorkerConfig {
            poll_interval: std::time::Duration::from_secs(2),
            ..authkit_sync::WorkerConfig::default()
        },
    )
    .spawn();
    let backend = Backend::new(Projects::new(db))
        .with_directory(sync_store)
        .router(AuthKitLayer::bearer(verifier));

    // Admin app: cookie sessions, pages call the backend with the user's access token.
    let authkit = AuthKit::new(config.clone()).context("configuring AuthKit")?;
    let workos = workos::Client::builder()
        .api_key(config.require_api_key()?.expose())
        .client_id(config.client_id())
        .base_url(config.api_base_url().as_str().trim_end_matches('/'))
        .build();
    let admin = AdminWeb::new(
        backend_url.clone(),
        workos,
        vec!["admin".into(), "member".into()],
    )
    .router()
    .merge(auth_routes(authkit.clone()))
    .layer(AuthKitLayer::web(authkit).public_paths([
        "/",
        "/login",
        "/signup",
        "/auth/**",
        "/callback",
    ]));

    let (stop_tx, stop_rx) = watch::channel(false);
    let admin_task = tokio::spawn(serve(admin_listener, admin, stop_rx.clone()));
    let backend_task = tokio::spawn(serve(backend_listener, backend, stop_rx));

    println!();
    if let Some(emulator) = &emulator {
        println!("  WorkOS emulator  {}", emulator.base_url());
    }
    println!("  backend API      {backend_url}");
    println!("  admin app        {admin_url}");
    if !credentials.is_empty() {
        println!();
        println!("  Sign in as (password in parentheses):");
        for (email, password) in &credentials {
            println!("    {email} ({password})");
        }
    }
    println!();
    println!("Press Ctrl-C to stop.");

    shutdown.await;
    println!("Stopping…");
    let _ = stop_tx.send(true);
    for task in [admin_task, backend_task] {
        task.await.context("server task panicked")??;
    }
    if let Err(e) = sync_worker.stop().await {
        eprintln!("Directory Sync worker: {e}");
    }
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    Ok(())
}

async fn bind(port: u16, what: &str) -> anyhow::Result<TcpListener> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpListener::bind(addr).await.with_context(|| {
        format!("binding the {what} to {addr} (use another port, or 0 for a free one)")
    })
}

async fn serve(
    listener: TcpListener,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = stop.wait_for(|stop| *stop).await;
    })
    .await
    .context("serving")
}

/// `WORKOS_COOKIE_PASSWORD` when set (so another app can share the cookie); otherwise a
/// random one kept in the data directory, so sessions survive a restart.
fn cookie_password(args: &DevArgs) -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("WORKOS_COOKIE_PASSWORD") {
        return Ok(password);
    }
    if args.in_memory {
        return Ok(random_password());
    }
    let path = args.data_dir.join("cookie-password");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_owned();
        if existing.len() >= 32 {
            return Ok(existing);
        }
    }
    let password = random_password();
    write_private(&path, &password)?;
    Ok(password)
}

fn random_password() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("writing {}", path.display()))?;
        file.write_all(contents.as_bytes())?;
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
    }
}

/// The seed to apply, and the sign-in credentials to print (email, password).
fn load_seed(path: Option<&Path>) -> anyhow::Result<(Seed, Vec<(String, String)>)> {
    let seed = match path {
        Some(path) => Seed::load(path).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => Seed::parse_named(DEMO_SEED, "demo.yaml").map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let credentials = seed
        .users
        .iter()
        .filter_map(|u| Some((u.email.clone(), u.password.as_ref()?.expose().to_owned())))
        .collect();
    Ok((seed, credentials))
}
