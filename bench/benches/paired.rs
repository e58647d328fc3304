//! The uncached-verification ratio, measured by interleaving subject and floor.
//!
//! `benches/crypto.rs` times `verify_uncached/authkit` and its floor `aws_lc_parsed` one
//! after the other, three seconds each. On a shared VM the speed of the core drifts by
//! several percent over such spans (other tenants' load on the host: the same floor has
//! read 15.55 µs and 16.3 µs a minute apart), which moves a 0.95 ratio by more than the
//! differences being measured. Here the two alternate in short blocks (a few ms each),
//! so both see the same drift; the figure is the median of the per-round ratios.
//!
//! `cargo bench -p authkit-bench --bench paired` (pinned: `taskset -c 1`); `ROUNDS` sets the
//! number of rounds (default 2,000). Under `cargo test --all-targets` it runs a few rounds
//! as a smoke test.

#[path = "support/cpu_time.rs"]
#[allow(dead_code)] // the criterion configuration it also holds is not used here
mod cpu_time;

use std::hint::black_box;
use std::time::Duration;

use authkit_bench::Fixture;
use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use cpu_time::ThreadCpuTime;
use criterion::measurement::Measurement;

/// Verifications per block: ~3 ms of work, long next to the clock's resolution and short
/// next to the drift.
const BLOCK: u32 = 200;

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let rounds: usize = match std::env::var("ROUNDS") {
        Ok(v) => v.parse().expect("ROUNDS is a number"),
        Err(_) if benching => 2_000,
        Err(_) => 3,
    };
    assert!(rounds > 0, "ROUNDS must be at least 1");
    let f = Fixture::from_env().expect("fixture (see AUTHKIT_BENCH_FIXTURE)");
    let input = f.signing_input().as_bytes().to_vec();
    let sig = f.signature();
    let floor = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, f.public_key_der())
        .expect("fixture key parses");
    let verifier = f.verifier(0).expect("verifier");
    let token = f.token().to_owned();
    assert!(floor.verify_sig(&input, &sig).is_ok());
    assert!(verifier.verify_without_fetch(&token).is_ok());

    let clock = ThreadCpuTime::from_env();
    let time = |run: &dyn Fn()| -> Duration {
        let start = clock.start();
        for _ in 0..BLOCK {
            run();
        }
        clock.end(start)
    };
    // Failures are counted outside the timed calls' results, so an expired fixture or a
    // refused token cannot go unnoticed while its (cheaper) error path is timed.
    let failures = std::cell::Cell::new(0u64);
    let run_floor = || {
        let ok =
            black_box(black_box(&floor).verify_sig(black_box(&input), black_box(&sig))).is_ok();
        failures.set(failures.get() + u64::from(!ok));
    };
    let run_authkit = || {
        let ok = black_box(verifier.verify_without_fetch(black_box(&token))).is_ok();
        failures.set(failures.get() + u64::from(!ok));
    };
    // Warm-up.
    for _ in 0..rounds.min(50) {
        time(&run_floor);
        time(&run_authkit);
    }
    let mut ratios = Vec::with_capacity(rounds);
    let (mut floor_total, mut authkit_total) = (Duration::ZERO, Duration::ZERO);
    for round in 0..rounds {
        // Alternate which goes first, so neither always follows the other.
        let (a, b) = if round % 2 == 0 {
            let a = time(&run_floor);
            (a, time(&run_authkit))
        } else {
            let b = time(&run_authkit);
            (time(&run_floor), b)
        };
        floor_total += a;
        authkit_total += b;
        ratios.push(a.as_secs_f64() / b.as_secs_f64());
    }
    assert_eq!(failures.get(), 0, "every timed verification must succeed");
    assert_eq!(
        verifier.stats().cache_hits,
        0,
        "the uncached verifier must never hit a cache"
    );
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
    let per = |total: Duration| total.as_secs_f64() * 1e6 / (rounds as f64 * f64::from(BLOCK));
    if !benching {
        // `cargo test --all-targets` builds this without optimisation: a smoke test only.
        println!("smoke run (cargo test, unoptimised build): the figures below mean nothing");
    }
    println!(
        "verify_uncached paired ({}, {rounds} rounds of {BLOCK}): authkit {:.3} µs, floor {:.3} µs; \
         ratio floor/authkit median {:.4} (quartiles {:.4}-{:.4})",
        clock.describe(),
        per(authkit_total),
        per(floor_total),
        at(0.5),
        at(0.25),
        at(0.75),
    );
}
