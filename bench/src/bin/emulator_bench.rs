//! The workos-emulator, prepared for `scripts/run-http.sh`: seeded with the demo tenant plus
//! `--users` users created through the API, `--refresh-tokens` live refresh tokens written to
//! a file for wrk's Lua script, then serving on `127.0.0.1:<free port>` until SIGTERM, Ctrl-C
//! or `--max-secs` (it always stops by itself).
//!
//! Refresh tokens are single-use (rotation), so every wrk request needs its own. Minting them
//! through the API would cost one sign-in (and one RSA signature) each; instead each is a
//! session created directly in the emulator's store, exactly what a sign-in stores, scoped to
//! the Acme organization so a refresh does the organization/role/permission lookups of a
//! real one.
//!
//! Writes `<dir>/server.json` (base URL, pid, timings, RSS) and `<dir>/refresh_tokens.txt`,
//! then prints `READY <base url>` on stdout.
//!
//! `--sign-floor-secs N` instead measures the emulator's own signing floor and exits: access
//! tokens signed back to back on one thread with the emulator's signer (aws-lc RSA-2048, the
//! same claims shape a grant signs), as signatures per CPU-second of that thread, the unit
//! `openssl speed` reports. No grant can go faster than this.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::TimeDelta;
use clap::Parser;
use serde_json::{Value, json};
use workos_emulator::config::Config;
use workos_emulator::model::AuthMethod;
use workos_emulator::seed::Seed;
use workos_emulator::server::Emulator;
use workos_emulator::store::NewSession;
use workos_emulator::tokens::{hash_token, opaque_token};

const DEMO_SEED: &str = include_str!("../../../crates/workos-emulator/seeds/demo.yaml");
const DEMO_USER: &str = "alice@acme.test";
const DEMO_PASSWORD: &str = "AuthKit-demo-1";

#[derive(Parser)]
#[command(about = "workos-emulator prepared for wrk (see bench/README.md)")]
struct Args {
    /// Users to create through `POST /user_management/users` (on top of the demo tenant).
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Live refresh tokens to pre-generate for the refresh-grant benchmark.
    #[arg(long, default_value_t = 30_000)]
    refresh_tokens: usize,
    /// Output directory (server.json, refresh_tokens.txt, emulator.db).
    #[arg(long, required_unless_present = "sign_floor_secs")]
    dir: Option<PathBuf>,
    /// Keep data in memory instead of the default SQLite file.
    #[arg(long)]
    in_memory: bool,
    /// Stop after this many seconds whatever happens.
    #[arg(long, default_value_t = 600)]
    max_secs: u64,
    /// Measure the signing floor for this many CPU-seconds, print `SIGN_FLOOR <per s>`, exit.
    #[arg(long)]
    sign_floor_secs: Option<f64>,
}

/// CPU time of the calling thread, from /proc/thread-self/stat (utime + stime, in clock ticks
/// of 10 ms: coarse, so measure for seconds).
fn thread_cpu_secs() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat")?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed /proc/thread-self/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .context("short /proc/thread-self/stat")?
            .parse::<f64>()?)
    };
    // `rest` starts at field 3 (state), so field n is at index n - 3.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// Signs scoped access-token claims with the emulator's signer until `secs` CPU-seconds have
/// been spent; returns signatures per CPU-second.
async fn sign_floor(secs: f64) -> anyhow::Result<f64> {
    use workos_emulator::keys::KeyRing;
    use workos_emulator::store::sqlite::SqliteStore;
    use workos_emulator::tokens::AccessClaims;

    let clock = workos_emulator::Clock::real();
    let store = SqliteStore::open_in_memory(clock.clone()).await?;
    let ring = KeyRing::load_or_create(Arc::new(store), clock).await?;
    let now = chrono::Utc::now().timestamp();
    let claims = AccessClaims {
        act: None,
        iss: "http://127.0.0.1:4100/user_management/client_emulator".into(),
        sub: "user_01JBENCH0000000000000000".into(),
        sid: "session_01JBENCH0000000000000000".into(),
        jti: "01JBENCH0000000000000000".into(),
        org_id: Some("org_01JBENCH0000000000000000".into()),
        role: Some("admin".into()),
        roles: Some(vec!["admin".into()]),
        permissions: Some(vec![
            "members:manage".into(),
            "projects:read".into(),
            "projects:write".into(),
        ]),
        entitlements: Some(Vec::new()),
        feature_flags: Some(Vec::new()),
        exp: now + 300,
        iat: now,
        auth_time: now,
    };
    ring.sign(&claims).await?;
    let start = thread_cpu_secs()?;
    let mut n = 0u64;
    loop {
        for _ in 0..50 {
            ring.sign(&claims).await?;
        }
        n += 50;
        let spent = thread_cpu_secs()? - start;
        if spent >= secs {
            return Ok(n as f64 / spent);
        }
    }
}

/// Peak and current resident set size of this process, in KiB, from /proc/self/status.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(secs) = args.sign_floor_secs {
        println!("SIGN_FLOOR {:.1}", sign_floor(secs).await?);
        return Ok(());
    }
    let dir = args.dir.context("--dir is required")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let db = dir.join("emulator.db");
    remove_db(&db);

    let seed = Seed::parse(DEMO_SEED).context("demo seed")?;
    let config = Config::default().port(0).seed(Arc::new(seed));
    let config = if args.in_memory {
        config.in_memory()
    } else {
        config.data_file(&db)
    };
    let api_key = config.api_key.clone();
    let client_id = config.client_id.clone();

    let started = Instant::now();
    let emulator = Emulator::start(config).await.context("starting emulator")?;
    let base = emulator.base_url().to_owned();
    let http = reqwest::Client::new();
    let health = http.get(format!("{base}/health")).send().await?;
    let startup_ms = started.elapsed().as_secs_f64() * 1e3;
    if !health.status().is_success() {
        bail!("health check answered {}", health.status());
    }
    let (_, rss_idle) = rss_kib();

    // Users through the API, one request at a time (as perf-security §A3b measured them).
    let started = Instant::now();
    let mut some_user_id = String::new();
    for i in 0..args.users {
        let res = http
            .post(format!("{base}/user_management/users"))
            .bearer_auth(&api_key)
            .json(&json!({
                "email": format!("user{i:06}@bench.test"),
                "first_name": "Bench",
                "last_name": format!("User {i}"),
                "email_verified": true,
            }))
            .send()
            .await?;
        if !res.status().is_success() {
            bail!("creating user {i}: {}", res.status());
        }
        if i == args.users / 2 {
            let body: Value = res.json().await?;
            some_user_id = body["id"].as_str().unwrap_or_default().to_owned();
        }
    }
    let create_users_secs = started.elapsed().as_secs_f64();
    let (_, rss_seeded) = rss_kib();

    // One real password sign-in tells us the user and organization the tokens belong to.
    let res = http
        .post(format!("{base}/user_management/authenticate"))
        .json(&json!({
            "grant_type": "password", "client_id": client_id, "client_secret": api_key,
            "email": DEMO_USER, "password": DEMO_PASSWORD,
        }))
        .send()
        .await?;
    if !res.status().is_success() {
        bail!("password sign-in answered {}", res.status());
    }
    let body: Value = res.json().await?;
    let user_id = body["user"]["id"].as_str().unwrap_or_default().to_owned();
    let organization_id = body["organization_id"].as_str().map(str::to_owned);

    let started = Instant::now();
    let store = emulator.store().clone();
    let expires_at = emulator.clock().now() + TimeDelta::days(30);
    let mut tokens = String::with_capacity(args.refresh_tokens * 44);
    for _ in 0..args.refresh_tokens {
        let token = opaque_token();
        store
            .create_session(NewSession {
                user_id: user_id.clone(),
                organization_id: organization_id.clone(),
                ip_address: None,
                user_agent: None,
                auth_method: AuthMethod::Password,
                impersonator: None,
                expires_at,
                refresh_token_hash: Some(hash_token(&token)),
            })
            .await?;
        tokens.push_str(&token);
        tokens.push('\n');
    }
    let sessions_secs = started.elapsed().as_secs_f64();
    std::fs::write(dir.join("refresh_tokens.txt"), tokens)?;

    let (hwm, rss) = rss_kib();
    let info = json!({
        "base_url": base,
        "pid": std::process::id(),
        "api_key": api_key,
        "client_id": client_id,
        "storage": if args.in_memory { "memory" } else { "sqlite-file" },
        "users_created": args.users,
        "some_user_id": some_user_id,
        "password_user": DEMO_USER,
        "password": DEMO_PASSWORD,
        "organization_id": organization_id,
        "refresh_tokens": args.refresh_tokens,
        "startup_to_first_response_ms": startup_ms,
        "create_users_via_api_secs": create_users_secs,
        "create_sessions_in_store_secs": sessions_secs,
        "rss_kib": {"idle": rss_idle, "after_users": rss_seeded, "ready": rss, "peak_so_far": hwm},
    });
    std::fs::write(dir.join("server.json"), info.to_string())?;
    println!("READY {base}");

    let deadline = tokio::time::sleep(Duration::from_secs(args.max_secs));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = deadline => eprintln!("emulator_bench: --max-secs reached, stopping"),
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    emulator.shutdown().await;
    let (hwm, _) = rss_kib();
    eprintln!("emulator_bench: stopped; VmHWM {hwm} KiB");
    Ok(())
}
