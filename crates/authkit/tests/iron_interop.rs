//! Interop with the real npm `iron-session` 8.0.4 (and `iron-webcrypto` 2.0.0, the path
//! `@workos-inc/node` takes): Rust seals → Node opens, Node seals → Rust opens, same JSON.
//!
//! Needs `node` and `npm` on PATH. The packages are installed into `tests/js/node_modules` on
//! first run (`npm install --no-audit --no-fund`, versions pinned by `tests/js/package.json`
//! and its lock file). Without node or npm these tests FAIL: an interop test that silently
//! passes would prove nothing.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use authkit::pkce::PkceState;
use authkit::return_to::ReturnPath;
use authkit::seal::{self, Passwords, SealError};
use authkit::session::{Session, SessionCookie, User};
use serde_json::{Value, json};

const PW: &str = "this-is-a-test-password-of-32+chars!!";
const NEW_PW: &str = "a-rotated-password-that-is-long-enough!";

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

/// Installs the npm packages once per test binary; panics with a clear message if node or
/// npm is missing or the install fails.
fn ensure_node() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let node = Command::new("node").arg("--version").output();
        match node {
            Ok(o) if o.status.success() => {}
            _ => {
                return Err(
                    "`node` is not on PATH: the iron-session interop tests need Node.js \
                            (>= 18) and npm. Install them (e.g. apt-get install nodejs npm)."
                        .into(),
                );
            }
        }
        let installed = js_dir().join("node_modules/iron-session/package.json");
        let pinned = std::fs::read_to_string(&installed)
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
            .is_some_and(|v| v["version"] == "8.0.4")
            && js_dir()
                .join("node_modules/iron-webcrypto-v2/package.json")
                .exists();
        if !pinned {
            let out = Command::new("npm")
                .args(["install", "--no-audit", "--no-fund"])
                .current_dir(js_dir())
                .output()
                .map_err(|e| {
                    format!("could not run `npm` ({e}); the iron-session interop tests need npm")
                })?;
            if !out.status.success() {
                return Err(format!(
                    "`npm install` in {} failed:\n{}",
                    js_dir().display(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        Ok(())
    });
    if let Err(msg) = ready {
        panic!("{msg}");
    }
}

/// Runs the operations in `tests/js/iron_interop.mjs` and returns one result per operation.
fn node(ops: Value) -> Vec<Value> {
    ensure_node();
    let mut child = Command::new("node")
        .arg("iron_interop.mjs")
        .current_dir(js_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(ops.to_string().as_bytes())
        .expect("write ops");
    let out = child.wait_with_output().expect("node output");
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).expect("node JSON");
    for r in &results {
        assert!(r.get("error").is_none(), "node op failed: {r}");
    }
    results
}

fn pw() -> Passwords {
    Passwords::single(PW).unwrap()
}

fn rotated() -> Passwords {
    Passwords::from_pairs([("1", PW), ("2", NEW_PW)]).unwrap()
}

fn sample_session() -> Session {
    let user = User::from_api_json(&json!({
        "object": "user", "id": "user_01", "email": "ada@example.com", "email_verified": true,
        "first_name": "Ada", "last_name": "Lovelace 🧮", "profile_picture_url": null,
        "last_sign_in_at": "2026-01-01T00:00:00.000Z", "created_at": "2025-01-01T00:00:00.000Z",
        "updated_at": "2025-01-02T00:00:00.000Z", "external_id": null, "metadata": {"k": "v"}
    }))
    .unwrap();
    let mut s = Session::new("eyJhbGciOiJSUzI1NiJ9.payload.sig", "rt_01ABC");
    s.user = Some(user);
    s
}

#[test]
fn pinned_npm_versions_are_the_ones_tested() {
    let r = node(json!([{"op": "versions"}]));
    let v = &r[0]["versions"];
    assert_eq!(v["iron-session"], "8.0.4");
    assert_eq!(v["iron-webcrypto"], "1.2.1");
    assert_eq!(v["iron-webcrypto-v2"], "2.0.0");
}

#[test]
fn rust_sealed_session_opens_in_iron_session_and_iron_webcrypto_2() {
    let session = sample_session();
    let sealed = SessionCookie::new("wos-session", pw())
        .seal(&session, SystemTime::now())
        .unwrap();
    let expected = serde_json::to_value(&session).unwrap();
    let r = node(json!([
        {"op": "unseal", "seal": sealed.as_str(), "password": PW},
        {"op": "unseal_v2", "seal": sealed.as_str(), "password": PW},
    ]));
    assert_eq!(r[0]["data"], expected);
    assert_eq!(r[1]["data"], expected);
}

#[test]
fn iron_session_sealed_cookie_opens_in_rust() {
    let data = serde_json::to_value(sample_session()).unwrap();
    let r = node(json!([{"op": "seal", "data": data, "password": PW, "ttl": 0}]));
    let cookie = r[0]["seal"].as_str().unwrap();
    assert!(cookie.ends_with("~2"));
    let now = SystemTime::now();
    let session = SessionCookie::new("wos-session", pw())
        .unseal(cookie, now)
        .unwrap();
    assert_eq!(session, sample_session());
    // And byte-for-byte the same JSON text Node stringified.
    let bare = cookie.split('~').next().unwrap();
    let plain = seal::unseal_bytes(bare, &pw(), now).unwrap();
    assert_eq!(plain, serde_json::to_vec(&data).unwrap());
}

#[test]
fn password_rotation_works_in_both_directions() {
    let now = SystemTime::now();
    let map = json!({"1": PW, "2": NEW_PW});
    // Node with {1, 2} seals under id 2; Rust with {1, 2} opens it, Rust with {1} cannot.
    let r = node(json!([
        {"op": "seal", "data": {"n": "node"}, "password": map, "ttl": 0},
        {"op": "seal", "data": {"n": "old"}, "password": PW, "ttl": 0},
    ]));
    let node_new = r[0]["seal"].as_str().unwrap().to_owned();
    let node_old = r[1]["seal"].as_str().unwrap().to_owned();
    assert!(node_new.starts_with("Fe26.2*2*"));
    assert_eq!(
        seal::unseal_value(&node_new, &rotated(), now).unwrap(),
        json!({"n": "node"})
    );
    assert_eq!(
        seal::unseal_value(&node_old, &rotated(), now).unwrap(),
        json!({"n": "old"})
    );
    assert!(matches!(
        seal::unseal_value(&node_new, &pw(), now),
        Err(SealError::UnknownPasswordId(_))
    ));
    // Rust with {1, 2} seals under id 2; Node with the map opens it.
    let rust_new = seal::seal_json(&json!({"n": "rust"}), &rotated(), None, now).unwrap();
    assert!(rust_new.as_str().starts_with("Fe26.2*2*"));
    let r = node(json!([
        {"op": "unseal", "seal": rust_new.as_str(), "password": map},
        {"op": "unseal", "seal": rust_new.as_str(), "password": PW},
    ]));
    assert_eq!(r[0]["data"], json!({"n": "rust"}));
    // iron-session answers "Cannot find password" with an empty object.
    assert_eq!(r[1]["data"], json!({}));
}

#[test]
fn expirations_use_milliseconds_in_both_directions() {
    let now = SystemTime::now();
    let r = node(json!([{"op": "seal", "data": {"x": 1}, "password": PW, "ttl": 600}]));
    let node_seal = r[0]["seal"].as_str().unwrap();
    let exp: u64 = node_seal.split('*').nth(5).unwrap().parse().unwrap();
    let now_ms = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(exp.abs_diff(now_ms + 600_000) < 60_000, "{exp} vs {now_ms}");
    assert!(seal::unseal_value(node_seal, &pw(), now).is_ok());
    assert!(matches!(
        seal::unseal_value(node_seal, &pw(), now + Duration::from_secs(600 + 120)),
        Err(SealError::Expired)
    ));

    // A Rust seal already expired (sealed 20 minutes ago with 10 minutes ttl) is refused by
    // iron-session too.
    let old = seal::seal_json(
        &json!({"x": 1}),
        &pw(),
        Some(Duration::from_secs(600)),
        now - Duration::from_secs(1200),
    )
    .unwrap();
    let fresh =
        seal::seal_json(&json!({"x": 2}), &pw(), Some(Duration::from_secs(600)), now).unwrap();
    let r = node(json!([
        {"op": "unseal", "seal": old.as_str(), "password": PW},
        {"op": "unseal", "seal": fresh.as_str(), "password": PW},
    ]));
    assert_eq!(r[0]["data"], json!({}));
    assert_eq!(r[1]["data"], json!({"x": 2}));
}

#[test]
fn seals_rust_rejects_are_rejected_by_iron_session_too() {
    let now = SystemTime::now();
    let good = seal::seal_json(&json!({"x": 1}), &pw(), None, now).unwrap();
    let bare = good.iron_seal();
    let mut fields: Vec<String> = bare.split('*').map(str::to_owned).collect();
    let mac = fields[7].clone();
    fields[7] = format!(
        "{}{}",
        if mac.starts_with('A') { 'B' } else { 'A' },
        &mac[1..]
    );
    let tampered = format!("{}~2", fields.join("*"));
    assert!(matches!(
        seal::unseal_value(&tampered, &pw(), now),
        Err(SealError::BadMac)
    ));
    let seven = format!("{}~2", bare.rsplit_once('*').unwrap().0);
    let wrong_pw = Passwords::single("some-other-password-of-32-characters").unwrap();
    let r = node(json!([
        {"op": "unseal", "seal": tampered, "password": PW},
        {"op": "unseal", "seal": seven, "password": PW},
        {"op": "unseal", "seal": good.as_str(), "password": "some-other-password-of-32-characters"},
    ]));
    for x in &r {
        assert_eq!(x["data"], json!({}), "{x}");
    }
    assert!(seal::unseal_value(good.as_str(), &wrong_pw, now).is_err());
}

#[test]
fn rust_pkce_state_opens_in_iron_session_with_the_authkit_nextjs_schema() {
    let rp = ReturnPath::parse("/orgs?tab=users").unwrap();
    let (state, verifier) = PkceState::generate(Some("custom".into()), Some(&rp)).unwrap();
    let sealed = state.seal(&pw(), SystemTime::now()).unwrap();
    let r = node(json!([{"op": "unseal", "seal": sealed.as_str(), "password": PW}]));
    let d = &r[0]["data"];
    assert_eq!(d["codeVerifier"], verifier.expose());
    assert_eq!(d["customState"], "custom");
    assert_eq!(d["returnPathname"], "/orgs?tab=users");
    assert_eq!(d["nonce"].as_str().unwrap().len(), 36);
}

#[test]
fn non_ascii_payloads_match_byte_for_byte() {
    let data = json!({"s": "héllo 🧮 \u{2028} \"q\" \\ </script>"});
    let r = node(json!([{"op": "seal", "data": data, "password": PW, "ttl": 0}]));
    let now = SystemTime::now();
    let bare = r[0]["seal"]
        .as_str()
        .unwrap()
        .split('~')
        .next()
        .unwrap()
        .to_owned();
    // JSON.stringify and serde_json produce the same text for this value.
    assert_eq!(
        seal::unseal_bytes(&bare, &pw(), now).unwrap(),
        serde_json::to_vec(&data).unwrap()
    );
    let rust = seal::seal_json(&data, &pw(), None, now).unwrap();
    let r = node(json!([{"op": "unseal", "seal": rust.as_str(), "password": PW}]));
    assert_eq!(r[0]["data"], data);
}
