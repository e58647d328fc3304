//! The official Python SDK (`workos` on PyPI), unchanged, accepts the emulator for the AuthKit
//! sign-in loop: `tests/py/sdk_flow.py` builds the authorize URL with PKCE, posts the hosted form
//! as a browser would, exchanges the code, verifies the token with PyJWT against the served JWKS
//! (issuer checked), seals and refreshes a session with the SDK's own helpers (which also require
//! `auth_time`), lists users across pages, maps errors to the SDK's exception classes, completes
//! the organization selection and follows the logout redirect.
//!
//! The SDK is installed with pip into `tests/py/.venv` (gitignored) from the pinned
//! `tests/py/requirements.txt` the first time; python3 with the `venv` module must be on `PATH`
//! (or named by `PYTHON`), otherwise the test fails saying so.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use workos_emulator::model::SessionStatus;
use workos_emulator::seed::Seed;
use workos_emulator::store::{Order, OrganizationFilter, PageRequest};
use workos_emulator::{Config, Emulator};

const SIGN_IN_EMAIL: &str = "alice@acme.test";
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

fn py_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("py")
}

async fn run(command: &Path, args: &[&str], dir: &Path) -> std::process::Output {
    tokio::process::Command::new(command)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "`{}` could not be started ({e}): python3 with venv and pip is required for the \
                 Python SDK test (set PYTHON to another interpreter)",
                command.display()
            )
        })
}

/// Creates `tests/py/.venv` and installs the pinned requirements unless the venv already holds
/// exactly them (a copy of the installed requirements file is kept inside the venv).
async fn ensure_venv(dir: &Path) -> PathBuf {
    let python = PathBuf::from(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()));
    let venv = dir.join(".venv");
    let venv_python = venv.join("bin").join("python");
    let requirements = std::fs::read_to_string(dir.join("requirements.txt")).expect("requirements");
    let marker = venv.join("installed-requirements.txt");
    if venv_python.exists() && std::fs::read_to_string(&marker).ok() == Some(requirements.clone()) {
        return venv_python;
    }
    let created = run(&python, &["-m", "venv", ".venv"], dir).await;
    assert!(
        created.status.success(),
        "`{} -m venv` failed: {}",
        python.display(),
        String::from_utf8_lossy(&created.stderr)
    );
    let installed = run(
        &venv_python,
        &[
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            "requirements.txt",
        ],
        dir,
    )
    .await;
    assert!(
        installed.status.success(),
        "pip install -r tests/py/requirements.txt failed:\n{}\n{}",
        String::from_utf8_lossy(&installed.stdout),
        String::from_utf8_lossy(&installed.stderr)
    );
    std::fs::write(&marker, requirements).expect("write the venv marker");
    venv_python
}

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
async fn official_python_sdk_completes_the_hosted_sign_in_loop() {
    let dir = py_dir();
    let python = ensure_venv(&dir).await;

    let seed = Seed::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("seeds")
            .join("demo.yaml"),
    )
    .expect("demo seed");
    let password = seed
        .user_by_email(SIGN_IN_EMAIL)
        .and_then(|u| u.password.as_ref())
        .expect("seeded password")
        .expose()
        .to_owned();
    let (org_name, role_slug) = seed
        .organizations
        .iter()
        .find_map(|o| {
            o.memberships
                .iter()
                .find(|m| m.email.eq_ignore_ascii_case(SIGN_IN_EMAIL))
                .map(|m| (o.name.clone(), m.role.clone()))
        })
        .expect("the signed-in user has a membership");
    let permissions = seed.role(&role_slug).expect("role").permissions.clone();
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
        .expect("a user in several organizations");
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
        .expect("user")
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
        .expect("organization")
        .id;
    let config = &emulator.state().config;

    let child = tokio::process::Command::new(&python)
        .arg("sdk_flow.py")
        .current_dir(&dir)
        .env("WORKOS_EMULATOR_URL", emulator.base_url())
        .env("WORKOS_CLIENT_ID", &config.client_id)
        .env("WORKOS_API_KEY", &config.api_key)
        .env("SIGNIN_EMAIL", SIGN_IN_EMAIL)
        .env("SIGNIN_PASSWORD", &password)
        .env("EXPECT_ISSUER", emulator.issuer())
        .env("EXPECT_USER_ID", &user_id)
        .env("EXPECT_ORG_ID", &org_id)
        .env("EXPECT_ROLE", &role_slug)
        .env(
            "EXPECT_PERMISSIONS",
            serde_json::to_string(&permissions).expect("json"),
        )
        .env("EXPECT_USER_COUNT", user_count.to_string())
        .env("MULTI_ORG_EMAIL", &multi_org_email)
        // The SDK reads these when an argument is missing; none may leak in from outside.
        .env_remove("WORKOS_BASE_URL")
        .env_remove("WORKOS_ISSUER")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sdk_flow.py starts");
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("sdk_flow.py did not finish within {SCRIPT_TIMEOUT:?}"))
        .expect("sdk_flow.py output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| {
            panic!(
                "sdk_flow.py printed no JSON report (exit {}).\nstdout:\n{stdout}\nstderr:\n{stderr}",
                output.status
            )
        });
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );

    let deviations = steps_with(&report, "deviation");
    let failed = steps_with(&report, "failed");
    let skipped = steps_with(&report, "skipped");
    assert!(
        deviations.is_empty() && failed.is_empty() && skipped.is_empty() && output.status.success(),
        "Python SDK flow (versions {}) exit {}:\nknown deviations:\n  {}\nfailed steps:\n  {}\nskipped steps:\n  {}\nstderr:\n{stderr}",
        report["versions"],
        output.status,
        deviations.join("\n  "),
        failed.join("\n  "),
        skipped.join("\n  "),
    );
    assert!(
        report["summary"]["ok"].as_u64().unwrap_or(0) >= 10,
        "{report}"
    );
    assert_eq!(report["versions"]["workos"], "10.8.0", "the pinned SDK ran");
    assert_eq!(report["observed"]["user_id"], user_id.as_str());
    assert_eq!(report["observed"]["claims"]["org_id"], org_id.as_str());
    assert_eq!(report["observed"]["listed_users"], user_count);
    let ended = report["observed"]["logged_out_session"]
        .as_str()
        .expect("the logout step names its session");
    let session = store
        .get_session(ended)
        .await
        .expect("store")
        .expect("the session exists");
    assert_eq!(session.status, SessionStatus::Revoked);

    emulator.shutdown().await;
}
