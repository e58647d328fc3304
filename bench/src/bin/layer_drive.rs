//! Drives requests through an axum router in process, for `scripts/count-instructions.sh`,
//! which runs it under callgrind: instruction counts do not move with the machine's load, so
//! they show changes of a few percent that wall-clock runs on a shared VM cannot.
//!
//! `layer_drive <route> <requests>` sends `GET <route>` with the fixture's bearer token
//! `<requests>` times and exits non-zero unless every answer was 200. Routes:
//!
//! * `/open`: the handler alone (the floor);
//! * `/bearer`: behind `AuthKitLayer::bearer` (cache on), the handler taking `Auth`;
//! * `/extension`: behind a tower layer that does nothing but insert one `Arc` extension,
//!   read back with axum's `Extension` extractor: what any layer that hands a handler a
//!   principal this way costs, before it authenticates anything.
//!
//! All three answer the same JSON body. Setup (the fixture, the router) is the same for every
//! count, so the difference between two counts divided by the difference in requests is the
//! cost of one request.

use std::process::ExitCode;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::Context as _;
use authkit_axum::{Auth, AuthKitLayer};
use authkit_bench::{Fixture, USER_ID};
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::routing::get;
use axum::{Extension, Json, Router};
use clap::Parser;
use tower::{Service, ServiceExt as _};

#[derive(Parser)]
#[command(about = "in-process requests through the bench router, for callgrind")]
struct Args {
    /// `/open`, `/bearer` or `/extension`.
    route: String,
    /// How many requests to send.
    requests: usize,
}

async fn open() -> Json<&'static str> {
    Json(USER_ID)
}

async fn me(Auth(principal): Auth) -> Json<String> {
    Json(principal.user_id().unwrap_or_default().to_owned())
}

#[derive(Clone)]
struct Who(Arc<str>);

async fn who(Extension(who): Extension<Who>) -> Json<String> {
    Json(who.0.as_ref().to_owned())
}

/// The minimal principal-passing layer (see the module docs).
#[derive(Clone)]
struct InsertWho<S>(S);

impl<S: Service<Request<Body>>> Service<Request<Body>> for InsertWho<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> S::Future {
        request.extensions_mut().insert(Who(Arc::from(USER_ID)));
        self.0.call(request)
    }
}

fn app(fixture: &Fixture) -> anyhow::Result<Router> {
    let verifier = fixture
        .verifier(authkit::verifier::DEFAULT_CACHE_CAPACITY)
        .context("verifier")?;
    Ok(Router::new()
        .route("/open", get(open))
        .merge(
            Router::new()
                .route("/bearer", get(me))
                .layer(AuthKitLayer::bearer(verifier)),
        )
        .merge(
            Router::new()
                .route("/extension", get(who))
                .layer(tower::layer::layer_fn(InsertWho)),
        )
        .with_state(()))
}

/// Sends `requests` requests to `route`; how many were answered 200.
fn drive(fixture: &Fixture, app: &Router, route: &str, requests: usize) -> anyhow::Result<usize> {
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let authorization = HeaderValue::from_str(&format!("Bearer {}", fixture.token()))?;
    let mut ok = 0;
    for _ in 0..requests {
        let request = Request::get(route)
            .header(header::AUTHORIZATION, authorization.clone())
            .body(Body::empty())?;
        let response = runtime.block_on(app.clone().oneshot(request))?;
        ok += usize::from(response.status() == StatusCode::OK);
    }
    Ok(ok)
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let fixture = Fixture::from_env().context("fixture")?;
    let app = app(&fixture)?;
    let ok = drive(&fixture, &app, &args.route, args.requests)?;
    eprintln!("{ok} of {} requests answered 200", args.requests);
    Ok(if ok == args.requests {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_answers_200_and_others_do_not() {
        let fixture = Fixture::from_env().expect("fixture");
        let app = app(&fixture).expect("app");
        for route in ["/open", "/bearer", "/extension"] {
            assert_eq!(
                drive(&fixture, &app, route, 3).expect("drive"),
                3,
                "{route}"
            );
        }
        assert_eq!(drive(&fixture, &app, "/nowhere", 2).expect("drive"), 0);
    }
}
