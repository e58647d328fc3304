//! A small axum server for `scripts/run-http.sh`: the same handler behind no auth and behind
//! `authkit_axum::AuthKitLayer::bearer`, on a tokio `current_thread` runtime (one core, as in
//! perf-security §A3). Serves on `127.0.0.1:<free port>` until SIGTERM, Ctrl-C or
//! `--max-secs` (it always stops by itself).
//!
//! Routes (every one answers the same small JSON shape):
//!
//! * `GET /open`: no authentication, answers `{"user":"anonymous"}`;
//! * `GET /bearer`: `AuthKitLayer::bearer` with the verified-token cache on (default
//!   capacity); the handler takes the `Auth` extractor and answers `{"user":"<sub>"}`;
//! * `GET /bearer-nocache`: the same with the cache off, so every request does the RSA work;
//! * `GET /plaintext`: `"ok"`, the floor of the HTTP stack itself.
//!
//! Writes the fixture access token to `<dir>/token.txt` and `<dir>/server.json`, then prints
//! `READY <base url>` on stdout.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use authkit_axum::{Auth, AuthKitLayer};
use authkit_bench::Fixture;
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser)]
#[command(about = "axum + authkit-axum bearer benchmark server (see bench/README.md)")]
struct Args {
    /// Output directory (token.txt, server.json).
    #[arg(long)]
    dir: PathBuf,
    /// Stop after this many seconds whatever happens.
    #[arg(long, default_value_t = 600)]
    max_secs: u64,
}

async fn open() -> Json<Value> {
    Json(json!({"user": "anonymous"}))
}

async fn me(Auth(principal): Auth) -> Json<Value> {
    Json(json!({"user": principal.user_id().unwrap_or_default()}))
}

fn app(fixture: &Fixture) -> anyhow::Result<Router> {
    let cached = fixture
        .verifier(authkit::verifier::DEFAULT_CACHE_CAPACITY)
        .context("verifier")?;
    let uncached = fixture.verifier(0).context("verifier")?;
    Ok(Router::new()
        .route("/plaintext", get(|| async { "ok" }))
        .route("/open", get(open))
        .merge(
            Router::new()
                .route("/bearer", get(me))
                .layer(AuthKitLayer::bearer(cached)),
        )
        .merge(
            Router::new()
                .route("/bearer-nocache", get(me))
                .layer(AuthKitLayer::bearer(uncached)),
        ))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let fixture = Fixture::from_env().context("fixture")?;
    let app = app(&fixture)?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    std::fs::write(args.dir.join("token.txt"), fixture.token())?;
    std::fs::write(
        args.dir.join("server.json"),
        json!({"base_url": base, "pid": std::process::id()}).to_string(),
    )?;
    println!("READY {base}");

    let max = Duration::from_secs(args.max_secs);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = tokio::time::sleep(max) => eprintln!("axum_bench: --max-secs reached, stopping"),
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await?;
    Ok(())
}
