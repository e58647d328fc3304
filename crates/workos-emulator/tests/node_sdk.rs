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

use serde_json::Value;

mod common;
use common::sdk::{assert_clean_report, assert_logged_out, run_script, start_demo};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_node_sdk_and_jose_complete_the_hosted_sign_in_loop() {
    let node = tool("NODE", "node");
    let npm = tool("NPM", "npm");
    let node_version = require_tool(&node, "Node.js").await;
    require_tool(&npm, "npm").await;
    let dir = js_dir();
    ensure_packages(&dir, &npm).await;

    // The emulator with the demo seed; expectations come from the same seed.
    let run = start_demo().await;
    let emulator = &run.emulator;

    let mut command = tokio::process::Command::new(&node);
    let child = run
        .script_env(&mut command)
        .arg("sdk_flow.mjs")
        .current_dir(&dir)
        .env("WORKOS_BASE_URL", emulator.base_url())
        // The SDK falls back to these when an option is missing; none may leak in from outside.
        .env_remove("WORKOS_COOKIE_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("`{node} sdk_flow.mjs` could not be started: {e}"));
    let (output, report) = run_script(child, "sdk_flow.mjs", &format!(", {node_version}")).await;

    assert_clean_report("Node", &output, &report, 17);
    assert_eq!(
        report["versions"]["@workos-inc/node"], "11.0.0",
        "the pinned SDK ran"
    );

    // What the SDK saw agrees with the store.
    assert_eq!(report["observed"]["user"]["id"], run.user_id.as_str());
    assert_eq!(report["observed"]["claims"]["org_id"], run.org_id.as_str());
    assert_eq!(report["observed"]["claims"]["iss"], emulator.issuer());
    assert_eq!(report["observed"]["listed_users"], run.user_count);
    assert_logged_out(&run, &report).await;

    run.emulator.shutdown().await;
}
