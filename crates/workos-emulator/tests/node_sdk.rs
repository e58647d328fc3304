//! The official Node SDK (`@workos-inc/node`) and `jose`, unchanged, accept the emulator for the
//! whole AuthKit sign-in loop (issue 2, "How it is shown").
//!
//! The emulator runs in-process (in memory, port 0, the demo seed); `tests/js/sdk_flow.mjs` then
//! plays both the browser and the application: `getAuthorizationUrl` with PKCE and an awkward
//! `state`, the hosted page fetched and its form posted as a browser would, the redirect followed
//! to a local callback, `authenticateWithCode` (sealing an iron session), `jose.jwtVerify`
//! against `createRemoteJWKSet` on `/sso/jwks/{client_id}`, the SDK's own sealed-session
//! verification, refresh rotation, user listing across pages, the organization-selection step,
//! the logout redirect and the SDK's exception types. It prints one JSON report; this test
//! asserts on it and cross-checks the store.
//!
//! Node.js and npm must be on `PATH` (the test fails, naming them, when they are not); the
//! pinned packages are installed with `npm ci` from `tests/js/package-lock.json` the first time.
//! `NODE` and `NPM` override the commands.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use workos_emulator::model::SessionStatus;
use workos_emulator::seed::Seed;
use workos_emulator::store::{Order, OrganizationFilter, PageRequest};
use workos_emulator::{Config, Emulator};

/// The signed-in user of the demo seed: one membership (Acme, admin).
const SIGN_IN_EMAIL: &str = "alice@acme.test";
/// Longest the script may run before the test gives up on it.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn js_dir() -> PathBuf {
    manifest_dir().join("tests").join("js")
}

fn tool(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// Fails the test with a message that says what to install when `command --version` cannot run.
async fn require_tool(command: &str, what: &str) -> String {
    let output = tokio::process::Command::new(command)
        .arg("--version")
        .output()
        .await;
    match output {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Ok(out) => panic!(
            "`{command} --version` failed ({}): {what} is required for the Node SDK test. {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "`{command}` could not be started ({e}): {what} is required for the Node SDK test \
             (install Node.js 20+ with npm, e.g. `apt-get install nodejs npm`, or set {})",
            if command.contains("npm") {
                "NPM"
            } else {
                "NODE"
            }
        ),
    }
}

/// Installs the pinned packages unless they are already there in the pinned versions.
async fn ensure_packages(dir: &Path, npm: &str) {
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("package.json")).expect("tests/js/package.json"),
    )
    .expect("package.json is JSON");
    let installed = |name: &str| -> Option<String> {
        let path = dir.join("node_modules").join(name).join("package.json");
        let text = std::fs::read_to_string(path).ok()?;
        let json: Value = serde_json::from_str(&text).ok()?;
        json["version"].as_str().map(str::to_owned)
    };
    let deps = manifest["dependencies"]
        .as_object()
        .expect("package.json dependencies");
    let up_to_date = deps
        .iter()
        .all(|(name, pinned)| installed(name).as_deref() == pinned.as_str());
    if up_to_date {
        return;
    }
    let output = tokio::process::Command::new(npm)
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap_or_else(|e| panic!("`{npm} ci` could not be started: {e}"));
    assert!(
        output.status.success(),
        "`{npm} ci` in {} failed ({}):\n{}\n{}",
        dir.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Steps of the report in a given status, as `name: detail` lines.
fn steps_with(report: &Value, status: &str) -> Vec<String> {
    report["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .filter(|s| s["status"] == status)
                .map(|s| {
                    format!(
                        "{}: {}{}",
                        s["name"].as_str().unwrap_or("?"),
                        s["detail"].as_str().unwrap_or(""),
                        s["known"]
                            .as_str()
                            .map(|k| format!(" [known deviation: {k}]"))
                            .unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_node_sdk_and_jose_complete_the_hosted_sign_in_loop() {
    let node = tool("NODE", "node");
    let npm = tool("NPM", "npm");
    let node_version = require_tool(&node, "Node.js").await;
    require_tool(&npm, "npm").await;
    let dir = js_dir();
    ensure_packages(&dir, &npm).await;

    // The emulator with the demo seed; expectations come from the same seed.
    let seed = Seed::load(&manifest_dir().join("seeds").join("demo.yaml")).expect("demo seed");
    let user = seed.user_by_email(SIGN_IN_EMAIL).expect("seeded user");
    let password = user
        .password
        .as_ref()
        .expect("seeded password")
        .expose()
        .to_owned();
    let memberships: Vec<(&str, &str)> = seed
        .organizations
        .iter()
        .flat_map(|o| {
            o.memberships
                .iter()
                .filter(|m| m.email.eq_ignore_ascii_case(SIGN_IN_EMAIL))
                .map(move |m| (o.name.as_str(), m.role.as_str()))
        })
        .collect();
    assert_eq!(
        memberships.len(),
        1,
        "the signed-in user has one membership"
    );
    let (org_name, role_slug) = memberships[0];
    let permissions = seed
        .role(role_slug)
        .expect("seeded role")
        .permissions
        .clone();
    let multi_org_email = seed
        .users
        .iter()
        .find(|u| {
            seed.organizations
                .iter()
                .filter(|o| {
                    o.memberships
                        .iter()
                        .any(|m| m.email.eq_ignore_ascii_case(&u.email))
                })
                .count()
                >= 2
        })
        .map(|u| u.email.clone())
        .expect("the demo seed has a user in several organizations");
    let user_count = seed.users.len();

    let emulator = Emulator::start(
        Config::default()
            .in_memory()
            .port(0)
            .seed(Arc::new(seed.clone())),
    )
    .await
    .expect("emulator starts");
    let store = emulator.store().clone();
    let user_id = store
        .get_user_by_email(SIGN_IN_EMAIL)
        .await
        .expect("store")
        .expect("seeded user exists")
        .id;
    let org_id = store
        .list_organizations(
            &OrganizationFilter::default(),
            &PageRequest::first(100, Order::Asc),
        )
        .await
        .expect("store")
        .items
        .into_iter()
        .find(|o| o.name == org_name)
        .expect("seeded organization exists")
        .id;
    let config = &emulator.state().config;

    let child = tokio::process::Command::new(&node)
        .arg("sdk_flow.mjs")
        .current_dir(&dir)
        .env("WORKOS_BASE_URL", emulator.base_url())
        .env("WORKOS_CLIENT_ID", &config.client_id)
        .env("WORKOS_API_KEY", &config.api_key)
        .env("SIGNIN_EMAIL", SIGN_IN_EMAIL)
        .env("SIGNIN_PASSWORD", &password)
        .env("EXPECT_ISSUER", emulator.issuer())
        .env("EXPECT_USER_ID", &user_id)
        .env("EXPECT_ORG_ID", &org_id)
        .env("EXPECT_ROLE", role_slug)
        .env(
            "EXPECT_PERMISSIONS",
            serde_json::to_string(&permissions).expect("json"),
        )
        .env("EXPECT_USER_COUNT", user_count.to_string())
        .env("MULTI_ORG_EMAIL", &multi_org_email)
        // The SDK falls back to these when an option is missing; none may leak in from outside.
        .env_remove("WORKOS_COOKIE_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("`{node} sdk_flow.mjs` could not be started: {e}"));
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("sdk_flow.mjs did not finish within {SCRIPT_TIMEOUT:?}"))
        .expect("sdk_flow.mjs output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| {
            panic!(
                "sdk_flow.mjs printed no JSON report (exit {}, {node_version}).\nstdout:\n{stdout}\nstderr:\n{stderr}",
                output.status
            )
        });

    // Shown with `--nocapture`: the whole report, step by step.
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );

    // Deviations first: they are what the emulator still gets wrong.
    let deviations = steps_with(&report, "deviation");
    let failed = steps_with(&report, "failed");
    let skipped = steps_with(&report, "skipped");
    assert!(
        deviations.is_empty() && failed.is_empty() && output.status.success(),
        "Node SDK flow (versions {}) exit {}:\nknown deviations:\n  {}\nfailed steps:\n  {}\nskipped steps:\n  {}\nstderr:\n{stderr}",
        report["versions"],
        output.status,
        deviations.join("\n  "),
        failed.join("\n  "),
        skipped.join("\n  "),
    );
    assert!(skipped.is_empty(), "skipped steps: {skipped:?}");
    let ok = report["summary"]["ok"].as_u64().unwrap_or(0);
    assert!(ok >= 17, "only {ok} steps ran: {report}");
    assert_eq!(
        report["versions"]["@workos-inc/node"], "11.0.0",
        "the pinned SDK ran"
    );

    // What the SDK saw agrees with the store.
    assert_eq!(report["observed"]["user"]["id"], user_id.as_str());
    assert_eq!(report["observed"]["claims"]["org_id"], org_id.as_str());
    assert_eq!(report["observed"]["claims"]["iss"], emulator.issuer());
    assert_eq!(report["observed"]["listed_users"], user_count);
    let ended = report["observed"]["logged_out_session"]
        .as_str()
        .expect("the logout step names its session");
    let session = store
        .get_session(ended)
        .await
        .expect("store")
        .expect("the logged-out session exists");
    assert_eq!(
        session.status,
        SessionStatus::Revoked,
        "logout ended the session"
    );
    assert_eq!(session.user_id, user_id);

    emulator.shutdown().await;
}
