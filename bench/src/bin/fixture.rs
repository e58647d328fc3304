//! Prints a fresh benchmark fixture as JSON (cookie, password, session JSON, token, JWKS) for
//! the Node peer `scripts/iron_peer.mjs`, and its sizes on stderr.
//!
//! ```sh
//! cargo run -p authkit-bench --bin fixture > target/bench-fixture.json
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    match authkit_bench::Fixture::new() {
        Ok(f) => {
            eprintln!(
                "token {} bytes, session JSON {} bytes, cookie {} chars",
                f.token().len(),
                f.session_json().len(),
                f.cookie().len()
            );
            println!("{}", f.export_json());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fixture: {e}");
            ExitCode::FAILURE
        }
    }
}
