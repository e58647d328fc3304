//! Webhook endpoints and delivery: signed as WorkOS signs, queued durably with the event, retried
//! with exponential back-off by the emulator's clock (no sleeping), given up and redelivered.
//! Each test runs its own receiver on 127.0.0.1:0 and drives delivery with
//! `POST /_emulate/webhooks/deliver` (the interval worker is off).

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use aws_lc_rs::hmac;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use workos_emulator::{Clock, Config, RunningEmulator};

use common::Api;

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    /// Statuses to answer, in order; 200 once empty.
    script: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    async fn start(script: &[u16]) -> (Self, String, tokio::sync::oneshot::Sender<()>) {
        let receiver = Self::default();
        receiver.script.lock().unwrap().extend(script);
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(Self::hook))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        (receiver, url, tx)
    }

    async fn hook(State(r): State<Self>, headers: HeaderMap, body: Bytes) -> StatusCode {
        r.seen.lock().unwrap().push((headers, body));
        let code = r.script.lock().unwrap().pop_front().unwrap_or(200);
        StatusCode::from_u16(code).unwrap()
    }

    fn seen(&self) -> Vec<(HeaderMap, Bytes)> {
        self.seen.lock().unwrap().clone()
    }
}

fn t0() -> DateTime<Utc> {
    "2025-03-01T12:00:00Z".parse().unwrap()
}

async fn emulator(clock: Clock) -> RunningEmulator {
    common::start(common::config().clock(clock).webhook_interval(None)).await
}

async fn endpoint(api: &Api, url: &str, events: Value) -> Value {
    let (status, body) = api
        .post(
            "/webhook_endpoints",
            json!({"endpoint_url": url, "secret": "whsec_test_secret", "events": events}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn deliver(api: &Api) -> Vec<Value> {
    let (status, body) = api
        .send_as(None, Method::POST, "/_emulate/webhooks/deliver", None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

/// Verifies a `WorkOS-Signature` independently of the emulator's code (wire §6.2).
fn verify(headers: &HeaderMap, body: &[u8], secret: &str) -> i64 {
    let header = headers
        .get("workos-signature")
        .expect("signature header")
        .to_str()
        .unwrap();
    let (t, v1) = header.split_once(", ").expect("`t=…, v1=…`");
    let t = t.strip_prefix("t=").unwrap();
    let v1 = v1.strip_prefix("v1=").unwrap();
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut message = format!("{t}.").into_bytes();
    message.extend_from_slice(body);
    let bytes: Vec<u8> = (0..v1.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&v1[i..i + 2], 16).unwrap())
        .collect();
    hmac::verify(&key, &message, &bytes).expect("valid signature");
    t.parse().unwrap()
}

#[tokio::test]
async fn each_event_is_posted_once_signed_with_the_endpoint_secret() {
    let clock = Clock::pinned(t0());
    let emu = emulator(clock.clone()).await;
    let api = Api::new(&emu);
    let (receiver, url, stop) = Receiver::start(&[]).await;
    let hook = endpoint(&api, &url, json!([])).await;
    assert_eq!(hook["object"], "webhook_endpoint");
    assert!(hook["id"].as_str().unwrap().starts_with("we_"));
    assert_eq!(hook["status"], "enabled");

    let (_, user) = api
        .post("/user_management/users", json!({"email": "ann@x.test"}))
        .await;
    let attempts = deliver(&api).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["status"], "delivered");
    assert!(deliver(&api).await.is_empty(), "delivered once");

    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    let (headers, body) = &seen[0];
    assert_eq!(headers["content-type"], "application/json");
    let t = verify(headers, body, "whsec_test_secret");
    assert_eq!(t, t0().timestamp_millis());
    let event: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(
        event.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["created_at", "data", "event", "id"]
    );
    assert_eq!(event["event"], "user.created");
    assert_eq!(event["data"]["id"], user["id"]);
    // The same id the Events API lists.
    let listed = api.all_events("events=user.created").await;
    assert_eq!(listed[0]["id"], event["id"]);
    let (_, deliveries) = api
        .send_as(None, Method::GET, "/_emulate/webhooks/deliveries", None)
        .await;
    assert_eq!(deliveries["data"][0]["status"], "delivered");
    assert_eq!(deliveries["data"][0]["attempts"], 1);
    assert_eq!(deliveries["data"][0]["last_status_code"], 200);
    let _ = stop.send(());
    emu.shutdown().await;
}

#[tokio::test]
async fn failures_retry_with_doubling_backoff_by_the_clock_then_give_up_and_redeliver() {
    let clock = Clock::pinned(t0());
    let emu = emulator(clock.clone()).await;
    let api = Api::new(&emu);
    let (receiver, url, stop) = Receiver::start(&[500, 503]).await;
    endpoint(&api, &url, json!(["organization.created"])).await;
    api.post("/organizations", json!({"name": "Acme"})).await;

    assert_eq!(deliver(&api).await[0]["status"], "pending");
    assert!(
        deliver(&api).await.is_empty(),
        "not due before the back-off"
    );
    clock.advance(TimeDelta::milliseconds(999));
    assert!(deliver(&api).await.is_empty());
    clock.advance(TimeDelta::milliseconds(1));
    let second = deliver(&api).await;
    assert_eq!(second[0]["status"], "pending");
    assert_eq!(second[0]["status_code"], 503);
    clock.advance(TimeDelta::seconds(1));
    assert!(deliver(&api).await.is_empty(), "second wait is 2 s");
    clock.advance(TimeDelta::seconds(1));
    assert_eq!(deliver(&api).await[0]["status"], "delivered");
    let seen = receiver.seen();
    assert_eq!(seen.len(), 3);
    // Signed afresh at each attempt, with the same body.
    let times: Vec<i64> = seen
        .iter()
        .map(|(h, b)| verify(h, b, "whsec_test_secret"))
        .collect();
    let start = t0().timestamp_millis();
    assert_eq!(times, [start, start + 1000, start + 3000]);
    assert_eq!(seen[0].1, seen[2].1);

    // An endpoint that never answers 2xx is given up after the last attempt.
    receiver.script.lock().unwrap().extend(std::iter::repeat_n(
        500,
        workos_emulator::webhooks::MAX_ATTEMPTS as usize,
    ));
    api.post("/organizations", json!({"name": "Beta"})).await;
    let mut last = Vec::new();
    for _ in 0..workos_emulator::webhooks::MAX_ATTEMPTS {
        last = deliver(&api).await;
        assert_eq!(last.len(), 1);
        clock.advance(TimeDelta::seconds(
            workos_emulator::webhooks::MAX_BACKOFF_SECS,
        ));
    }
    assert_eq!(last[0]["status"], "failed");
    assert!(deliver(&api).await.is_empty());
    let id = last[0]["delivery_id"].as_str().unwrap();
    let (status, again) = api
        .send_as(
            None,
            Method::POST,
            &format!("/_emulate/webhooks/deliveries/{id}/redeliver"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["status"], "pending");
    assert_eq!(deliver(&api).await[0]["status"], "delivered");
    let _ = stop.send(());
    emu.shutdown().await;
}

#[tokio::test]
async fn subscriptions_and_disabled_endpoints_decide_what_is_queued() {
    let emu = emulator(Clock::pinned(t0())).await;
    let api = Api::new(&emu);
    let (receiver, url, stop) = Receiver::start(&[]).await;
    let orgs_only = endpoint(&api, &url, json!(["organization.created"])).await;
    let everything = endpoint(&api, &url, json!([])).await;
    let (status, patched) = api
        .send(
            Method::PATCH,
            &format!("/webhook_endpoints/{}", everything["id"].as_str().unwrap()),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["status"], "disabled");
    api.post("/user_management/users", json!({"email": "a@x.test"}))
        .await;
    api.post("/organizations", json!({"name": "Acme"})).await;
    let attempts = deliver(&api).await;
    assert_eq!(attempts.len(), 1);
    let (_, deliveries) = api
        .send_as(
            None,
            Method::GET,
            &format!(
                "/_emulate/webhooks/deliveries?endpoint_id={}",
                orgs_only["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(deliveries["data"][0]["event"], "organization.created");
    assert_eq!(receiver.seen().len(), 1);
    let _ = stop.send(());
    emu.shutdown().await;
}

#[tokio::test]
async fn endpoint_crud_validates_and_answers_404s() {
    let emu = emulator(Clock::real()).await;
    let api = Api::new(&emu);
    let (status, err) = api
        .post("/webhook_endpoints", json!({"endpoint_url": "not a url"}))
        .await;
    assert_eq!(status, 422, "{err}");
    let (status, created) = api
        .post(
            "/webhook_endpoints",
            json!({"endpoint_url": "https://app.example/webhooks", "events": ["dsync.user.created"]}),
        )
        .await;
    assert_eq!(status, 201);
    assert!(created["secret"].as_str().unwrap().len() >= 32);
    let id = created["id"].as_str().unwrap();
    let (_, list) = api.get("/webhook_endpoints").await;
    assert_eq!(list["data"][0]["id"], id);
    let (status, patched) = api
        .send(
            Method::PATCH,
            &format!("/webhook_endpoints/{id}"),
            Some(json!({"secret": "a-new-secret-123", "events": []})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(patched["secret"], "a-new-secret-123");
    assert_eq!(patched["events"], json!([]));
    let (status, _) = api.delete(&format!("/webhook_endpoints/{id}")).await;
    assert_eq!(status, 204);
    let (status, _) = api.get(&format!("/webhook_endpoints/{id}")).await;
    assert_eq!(status, 404);
    let (status, _) = api
        .send(
            Method::PATCH,
            "/webhook_endpoints/we_nope",
            Some(json!({"status": "enabled"})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = api
        .send_as(None, Method::GET, "/webhook_endpoints", None)
        .await;
    assert_eq!(status, 401);
    emu.shutdown().await;
}

/// The queue is a table: what was queued before a restart is delivered after it.
#[tokio::test]
async fn queued_deliveries_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("emu-hooks-{}", workos_emulator::ids::ulid()));
    let file = dir.join("emulator.db");
    let config = || -> Config {
        common::config()
            .data_file(file.clone())
            .clock(Clock::pinned(t0()))
            .webhook_interval(None)
    };
    let (receiver, url, stop) = Receiver::start(&[]).await;
    let emu = common::start(config()).await;
    let api = Api::new(&emu);
    endpoint(&api, &url, json!([])).await;
    api.post("/user_management/users", json!({"email": "a@x.test"}))
        .await;
    emu.shutdown().await;

    let emu = common::start(config()).await;
    let api = Api::new(&emu);
    assert_eq!(deliver(&api).await.len(), 1);
    assert_eq!(receiver.seen().len(), 1);
    emu.shutdown().await;
    let _ = stop.send(());
    let _ = std::fs::remove_dir_all(dir);
}

/// With the interval worker on (the default), deliveries go out by themselves.
#[tokio::test]
async fn the_interval_worker_delivers_without_being_asked() {
    let emu = common::start(
        common::config().webhook_interval(Some(std::time::Duration::from_millis(20))),
    )
    .await;
    let api = Api::new(&emu);
    let (receiver, url, stop) = Receiver::start(&[]).await;
    endpoint(&api, &url, json!([])).await;
    api.post("/user_management/users", json!({"email": "a@x.test"}))
        .await;
    // Waits for the background task (not for time to pass): bounded.
    for _ in 0..250 {
        if !receiver.seen().is_empty() {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(receiver.seen().len(), 1);
    let _ = stop.send(());
    emu.shutdown().await;
}

/// A seeded endpoint (pinned secret) receives the events of what is seeded after it.
#[tokio::test]
async fn seeded_endpoint_receives_the_seeds_own_events() {
    let (receiver, url, stop) = Receiver::start(&[]).await;
    let seed = workos_emulator::seed::Seed::parse(&format!(
        "webhookEndpoints:\n  - endpoint_url: {url}\n    secret: whsec_seeded_secret\n    events: [organization.created]\norganizations:\n  - name: Acme\n"
    ))
    .unwrap();
    let emu = common::start(
        common::config()
            .clock(Clock::pinned(t0()))
            .webhook_interval(None)
            .seed(Arc::new(seed)),
    )
    .await;
    let api = Api::new(&emu);
    assert_eq!(deliver(&api).await.len(), 1);
    let seen = receiver.seen();
    verify(&seen[0].0, &seen[0].1, "whsec_seeded_secret");
    let event: Value = serde_json::from_slice(&seen[0].1).unwrap();
    assert_eq!(event["data"]["name"], "Acme");
    let _ = stop.send(());
    emu.shutdown().await;
}
