//! A small axum server for `scripts/run-http.sh`: the same handler behind no auth, behind
//! `authkit_axum::AuthKitLayer::bearer` and behind `AuthKitLayer::web` (the session cookie),
//! on a tokio `current_thread` runtime (one core, as in perf-security §A3). Serves on `127.0.0.1:<free port>` until SIGTERM, Ctrl-C or
//! `--max-secs` (it always stops by itself).
//!
//! Routes (every one answers the same small JSON shape):
//!
//! * `GET /open`: no authentication, answers `{"user":"<the fixture user id>"}`, the very
//!   body `/bearer` answers, so the two differ only by authentication;
//! * `GET /open-layered`: the same behind a pass-through tower layer (the cost of
//!   `Router::layer` alone);
//! * `GET /bearer`: `AuthKitLayer::bearer` with the verified-token cache on (default
//!   capacity); the handler takes the `Auth` extractor and answers `{"user":"<sub>"}`;
//! * `GET /bearer-nocache`: the same with the cache off, so every request does the RSA work;
//! * `GET /cookie`: `AuthKitLayer::web` over an `AuthKit` whose verifier has the cache on:
//!   every request unseals the `wos-session` cookie (iron `Fe26.2`) and verifies its access
//!   token; the handler takes `Auth`;
//! * `GET /cookie-nocache`: the same with the verifier cache off (unseal + RSA per request);
//! * `GET /plaintext`: `"ok"`, the floor of the HTTP stack itself.
//!
//! The fixture token lives an hour, so no request refreshes and the web layer never writes a
//! cookie: the cookie routes measure reading a session, the hot path of a signed-in app.
//!
//! Writes the fixture access token to `<dir>/token.txt`, the sealed session cookie value to
//! `<dir>/cookie.txt` and `<dir>/server.json`, then prints `READY <base url>` on stdout.

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
    Json(json!({"user": authkit_bench::USER_ID}))
}

async fn me(Auth(principal): Auth) -> Json<Value> {
    Json(json!({"user": principal.user_id().unwrap_or_default()}))
}

fn app(fixture: &Fixture) -> anyhow::Result<Router> {
    let cached = fixture
        .verifier(authkit::verifier::DEFAULT_CACHE_CAPACITY)
        .context("verifier")?;
    let uncached = fixture.verifier(0).context("verifier")?;
    let web_cached = fixture
        .web_authkit(authkit::verifier::DEFAULT_CACHE_CAPACITY)
        .context("authkit")?;
    let web_uncached = fixture.web_authkit(0).context("authkit")?;
    Ok(Router::new()
        .route("/plaintext", get(|| async { "ok" }))
        .route("/open", get(open))
        .merge(
            // What `Router::layer` itself costs per request (axum boxes and maps every
            // layered route), with no logic in the layer: the part of the gap between
            // `/bearer` and `/open` that no authentication layer can avoid.
            Router::new()
                .route("/open-layered", get(open))
                .layer(tower::layer::layer_fn(|service| service)),
        )
        .merge(
            Router::new()
                .route("/bearer", get(me))
                .layer(AuthKitLayer::bearer(cached)),
        )
        .merge(
            Router::new()
                .route("/bearer-nocache", get(me))
                .layer(AuthKitLayer::bearer(uncached)),
        )
        .merge(
            Router::new()
                .route("/cookie", get(me))
                .layer(AuthKitLayer::web(web_cached)),
        )
        .merge(
            Router::new()
                .route("/cookie-nocache", get(me))
                .layer(AuthKitLayer::web(web_uncached)),
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
    std::fs::write(args.dir.join("cookie.txt"), fixture.cookie())?;
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
