//! The per-request cost of `authkit_axum::AuthKitLayer` in process, without sockets: the
//! same axum handler called through a `Router` with no auth (`open`, the floor), behind
//! `AuthKitLayer::bearer` with a repeated token (`bearer_cached`), with no token (the
//! 401 path, `bearer_missing`), and behind `AuthKitLayer::web` with a repeated session
//! cookie (`cookie_cached`: unseal + cached verify) or the bearer token
//! (`web_bearer_cached`). The HTTP benchmark (`scripts/run-http.sh`) measures the same
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
    // What the request carries: nothing, the bearer token, or the session cookie.
    #[derive(Clone, Copy)]
    enum Carry {
        Nothing,
        Bearer,
        Cookie,
    }
    let call = |path: &'static str, carry: Carry| {
        let mut request = Request::get(path);
        match carry {
            Carry::Nothing => {}
            Carry::Bearer => {
                request = request.header(header::AUTHORIZATION, authorization.clone());
            }
            Carry::Cookie => request = request.header(header::COOKIE, cookie.clone()),
        }
        let request = request.body(Body::empty()).expect("request");
        rt.block_on(app.clone().oneshot(request))
            .map(|r| r.status())
    };
    // Every case must do what it claims before it is timed.
    assert_eq!(call("/open", Carry::Bearer).ok(), Some(StatusCode::OK));
    assert_eq!(call("/bearer", Carry::Bearer).ok(), Some(StatusCode::OK));
    assert_eq!(
        call("/bearer", Carry::Nothing).ok(),
        Some(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(call("/cookie", Carry::Cookie).ok(), Some(StatusCode::OK));
    assert_eq!(call("/cookie", Carry::Bearer).ok(), Some(StatusCode::OK));

    let mut g = c.benchmark_group("layer");
    let cases = [
        ("open", "/open", Carry::Bearer),
        ("bearer_cached", "/bearer", Carry::Bearer),
        ("bearer_missing", "/bearer", Carry::Nothing),
        ("cookie_cached", "/cookie", Carry::Cookie),
        // The web-mode layer given a bearer token (an API client of a web app).
        ("web_bearer_cached", "/cookie", Carry::Bearer),
    ];
    for (id, path, carry) in cases {
        g.bench_function(id, |b| b.iter(|| call(black_box(path), carry)));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = cpu_time::criterion();
    targets = layer
}
criterion_main!(benches);
