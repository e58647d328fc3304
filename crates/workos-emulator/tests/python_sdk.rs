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

mod common;
use common::sdk::{assert_clean_report, assert_logged_out, run_script, start_demo};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_sdk_completes_the_hosted_sign_in_loop() {
    let dir = py_dir();
    let python = ensure_venv(&dir).await;

    let run = start_demo().await;
    let emulator = &run.emulator;

    let mut command = tokio::process::Command::new(&python);
    let child = run
        .script_env(&mut command)
        .arg("sdk_flow.py")
        .current_dir(&dir)
        .env("WORKOS_EMULATOR_URL", emulator.base_url())
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
    let (output, report) = run_script(child, "sdk_flow.py", "").await;

    assert_clean_report("Python", &output, &report, 10);
    assert_eq!(report["versions"]["workos"], "10.8.0", "the pinned SDK ran");
    assert_eq!(report["observed"]["user_id"], run.user_id.as_str());
    assert_eq!(report["observed"]["claims"]["org_id"], run.org_id.as_str());
    assert_eq!(report["observed"]["listed_users"], run.user_count);
    assert_logged_out(&run, &report).await;

    run.emulator.shutdown().await;
}
