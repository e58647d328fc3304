//! The per-request cost of `authkit_axum::AuthKitLayer` in process, without sockets: the
//! same axum handler called through a `Router` with no auth (`open`, the floor), behind
//! `AuthKitLayer::bearer` with a repeated token (`bearer_cached`), with no token (the
//! 401 path, `bearer_missing`), and behind `AuthKitLayer::web` with a repeated session
//! cookie (`cookie_cached`: unseal + cached verify). The HTTP benchmark (`scripts/run-http.sh`) measures the same
//! routes over loopback, where the kernel's share hides the layer's; this one shows it.
//!
//! Times are thread CPU time, as in `crypto.rs`.

#[path = "support/cpu_time.rs"]
mod cpu_time;

use std::hint::black_box;

use authkit_axum::{Auth, AuthKitLayer};
use authkit_bench::Fixture;
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use cpu_time::ThreadCpuTime;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderValue, Request, StatusCode, header};
use tower::ServiceExt as _;

type C = Criterion<ThreadCpuTime>;

async fn open() -> &'static str {
    "anonymous"
}

async fn me(Auth(principal): Auth) -> String {
    principal.user_id().unwrap_or_default().to_owned()
}

fn layer(c: &mut C) {
    eprintln!("measuring {}", ThreadCpuTime::from_env().describe());
    let f = Fixture::from_env().expect("fixture (see AUTHKIT_BENCH_FIXTURE)");
    let verifier = f
        .verifier(authkit::verifier::DEFAULT_CACHE_CAPACITY)
        .expect("verifier");
    let app = Router::new()
        .route("/open", get(open))
        .merge(
            Router::new()
                .route("/bearer", get(me))
                .layer(AuthKitLayer::bearer(verifier)),
        )
        .merge(
            Router::new()
                .route("/cookie", get(me))
                .layer(AuthKitLayer::web(
                    f.web_authkit(authkit::verifier::DEFAULT_CACHE_CAPACITY)
                        .expect("authkit"),
                )),
        )
        // What `axum::serve` does once: handlers become routes here, not per request.
        .with_state(());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let authorization =
        HeaderValue::from_str(&format!("Bearer {}", f.token())).expect("header value");
    let cookie =
        HeaderValue::from_str(&format!("wos-session={}", f.cookie())).expect("header value");
    let call = |path: &'static str, token: bool| {
        let mut request = Request::get(path);
        if token && path == "/cookie" {
            request = request.header(header::COOKIE, cookie.clone());
        } else if token {
            request = request.header(header::AUTHORIZATION, authorization.clone());
        }
        let request = request.body(Body::empty()).expect("request");
        rt.block_on(app.clone().oneshot(request))
            .map(|r| r.status())
    };
    // Every case must do what it claims before it is timed.
    assert_eq!(call("/open", true).ok(), Some(StatusCode::OK));
    assert_eq!(call("/bearer", true).ok(), Some(StatusCode::OK));
    assert_eq!(call("/bearer", false).ok(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(call("/cookie", true).ok(), Some(StatusCode::OK));

    let mut g = c.benchmark_group("layer");
    g.bench_function("open", |b| b.iter(|| call(black_box("/open"), true)));
    g.bench_function("bearer_cached", |b| {
        b.iter(|| call(black_box("/bearer"), true))
    });
    g.bench_function("bearer_missing", |b| {
        b.iter(|| call(black_box("/bearer"), false))
    });
    g.bench_function("cookie_cached", |b| {
        b.iter(|| call(black_box("/cookie"), true))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = cpu_time::criterion();
    targets = layer
}
criterion_main!(benches);
