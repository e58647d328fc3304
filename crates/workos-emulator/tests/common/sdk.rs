//! What the official-SDK tests (`node_sdk`, `python_sdk`) share: the demo-seeded emulator with
//! the expectations drawn from the same seed, reading the script's JSON report, and the checks
//! every report must pass.

use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use workos_emulator::model::SessionStatus;
use workos_emulator::seed::Seed;
use workos_emulator::store::{Order, OrganizationFilter, PageRequest};
use workos_emulator::{Config, Emulator, RunningEmulator};

/// The signed-in user of the demo seed: one membership (Acme, admin).
pub const SIGN_IN_EMAIL: &str = "alice@acme.test";
/// Longest a script may run before the test gives up on it.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

/// The running emulator (in memory, port 0, the demo seed) and what the script should observe.
pub struct DemoRun {
    pub emulator: RunningEmulator,
    /// Seeded password of [`SIGN_IN_EMAIL`].
    pub password: String,
    pub user_id: String,
    pub org_id: String,
    pub role_slug: String,
    pub permissions: Vec<String>,
    /// A user with memberships in two or more organizations (organization-selection step).
    pub multi_org_email: String,
    pub user_count: usize,
}

impl DemoRun {
    /// Sets what both SDK scripts read besides the base URL: the credentials, the user to sign
    /// in and what the script should observe.
    pub fn script_env<'c>(
        &self,
        command: &'c mut tokio::process::Command,
    ) -> &'c mut tokio::process::Command {
        let config = &self.emulator.state().config;
        command
            .env("WORKOS_CLIENT_ID", &config.client_id)
            .env("WORKOS_API_KEY", &config.api_key)
            .env("SIGNIN_EMAIL", SIGN_IN_EMAIL)
            .env("SIGNIN_PASSWORD", &self.password)
            .env("EXPECT_ISSUER", self.emulator.issuer())
            .env("EXPECT_USER_ID", &self.user_id)
            .env("EXPECT_ORG_ID", &self.org_id)
            .env("EXPECT_ROLE", &self.role_slug)
            .env(
                "EXPECT_PERMISSIONS",
                serde_json::to_string(&self.permissions).expect("json"),
            )
            .env("EXPECT_USER_COUNT", self.user_count.to_string())
            .env("MULTI_ORG_EMAIL", &self.multi_org_email)
    }
}

/// Starts the emulator with `seeds/demo.yaml` and derives the expectations from that seed.
pub async fn start_demo() -> DemoRun {
    let seed = Seed::load(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("seeds")
            .join("demo.yaml"),
    )
    .expect("demo seed");
    let password = seed
        .user_by_email(SIGN_IN_EMAIL)
        .expect("seeded user")
        .password
        .as_ref()
        .expect("seeded password")
        .expose()
        .to_owned();
    let memberships: Vec<(String, String)> = seed
        .organizations
        .iter()
        .flat_map(|o| {
            o.memberships
                .iter()
                .filter(|m| m.email.eq_ignore_ascii_case(SIGN_IN_EMAIL))
                .map(move |m| (o.name.clone(), m.role.clone()))
        })
        .collect();
    assert_eq!(
        memberships.len(),
        1,
        "the signed-in user has one membership"
    );
    let (org_name, role_slug) = memberships[0].clone();
    let permissions = seed
        .role(&role_slug)
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

    let emulator = Emulator::start(Config::default().in_memory().port(0).seed(Arc::new(seed)))
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
    DemoRun {
        emulator,
        password,
        user_id,
        org_id,
        role_slug,
        permissions,
        multi_org_email,
        user_count,
    }
}

/// Waits (up to [`SCRIPT_TIMEOUT`]) for `script` and returns its output with the JSON report it
/// printed last; the report is also printed (shown with `--nocapture`). `about` is added to the
/// failure message when there is no report.
pub async fn run_script(
    child: tokio::process::Child,
    script: &str,
    about: &str,
) -> (Output, Value) {
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within {SCRIPT_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{script} output: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| {
            panic!(
                "{script} printed no JSON report (exit {}{about}).\nstdout:\n{stdout}\nstderr:\n{stderr}",
                output.status
            )
        });
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    (output, report)
}

/// Steps of the report in a given status, as `name: detail` lines.
pub fn steps_with(report: &Value, status: &str) -> Vec<String> {
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

/// The script exited successfully with no deviating, failed or skipped step, and at least
/// `min_ok` steps passed. Deviations come first in the message: they are what the emulator
/// still gets wrong.
pub fn assert_clean_report(sdk: &str, output: &Output, report: &Value, min_ok: u64) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let deviations = steps_with(report, "deviation");
    let failed = steps_with(report, "failed");
    let skipped = steps_with(report, "skipped");
    assert!(
        deviations.is_empty() && failed.is_empty() && skipped.is_empty() && output.status.success(),
        "{sdk} SDK flow (versions {}) exit {}:\nknown deviations:\n  {}\nfailed steps:\n  {}\nskipped steps:\n  {}\nstderr:\n{stderr}",
        report["versions"],
        output.status,
        deviations.join("\n  "),
        failed.join("\n  "),
        skipped.join("\n  "),
    );
    let ok = report["summary"]["ok"].as_u64().unwrap_or(0);
    assert!(ok >= min_ok, "only {ok} steps ran: {report}");
}

/// The session the report's logout step names was revoked, and belonged to `user_id`.
pub async fn assert_logged_out(run: &DemoRun, report: &Value) {
    let ended = report["observed"]["logged_out_session"]
        .as_str()
        .expect("the logout step names its session");
    let session = run
        .emulator
        .store()
        .get_session(ended)
        .await
        .expect("store")
        .expect("the logged-out session exists");
    assert_eq!(
        session.status,
        SessionStatus::Revoked,
        "logout ended the session"
    );
    assert_eq!(session.user_id, run.user_id);
}
