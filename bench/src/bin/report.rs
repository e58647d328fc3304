//! Prints the crypto benchmark table (markdown) from criterion baselines and Node peer outputs.
//!
//! ```sh
//! report CRITERION_DIR run1,run2,run3 [node1.json node2.json node3.json]
//! ```
//!
//! `scripts/run-crypto.sh` calls it after running the benchmarks; see `authkit_bench::report`
//! for the method.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use authkit_bench::report::{Measured, ReportError, Row, load_criterion, load_node, render};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, baselines, node @ ..] = args.as_slice() else {
        eprintln!("usage: report CRITERION_DIR run1,run2,... [node-output.json ...]");
        return ExitCode::from(2);
    };
    let baselines: Vec<String> = baselines.split(',').map(str::to_owned).collect();
    let node: Vec<PathBuf> = node.iter().map(PathBuf::from).collect();
    match table(Path::new(dir), &baselines, &node) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("report: {e}");
            ExitCode::FAILURE
        }
    }
}

fn table(dir: &Path, baselines: &[String], node: &[PathBuf]) -> Result<String, ReportError> {
    let c = |group: &str, id: &str, label: &str| load_criterion(dir, baselines, group, id, label);
    let n = |name: &str, label: &str| -> Result<Option<Measured>, ReportError> {
        if node.is_empty() {
            Ok(None)
        } else {
            load_node(node, name, label).map(Some)
        }
    };

    let floor = c(
        "verify_uncached",
        "aws_lc_parsed",
        "**floor**: aws-lc-rs `ParsedPublicKey` RSA-2048 verify",
    )?;
    let unparsed = c(
        "verify_uncached",
        "aws_lc_unparsed",
        "aws-lc-rs `UnparsedPublicKey` verify (parses the DER key per call)",
    )?;
    let authkit = c(
        "verify_uncached",
        "authkit",
        "**authkit** `Verifier`, cache off",
    )?;
    let jwt = c(
        "verify_uncached",
        "jsonwebtoken",
        "jsonwebtoken 10.3 `decode` (aws-lc, `from_rsa_components`)",
    )?;
    let jwt_kid = c(
        "verify_uncached",
        "jsonwebtoken_kid",
        "jsonwebtoken 10.3 `decode_header` + kid map + `decode`",
    )?;
    let jose = n(
        "jose_verify",
        "Node: jose 6.2.17 `jwtVerify` (local JWKS, sequential)",
    )?;
    let compare = c(
        "verify_cached",
        "token_compare",
        "**floor**: constant-time comparison of the 901-byte token with a copy (what every hit makes)",
    )?;
    let hashmap = c(
        "verify_cached",
        "hashmap_token",
        "`HashMap<String, _>` lookup keyed by the token (a plain peer: foldhash of all of it, `==` that stops at the first difference)",
    )?;
    let gmac = c(
        "verify_cached",
        "gmac_aes_token",
        "GHASH (AES-128-GCM tag) + one AES block over the token (the cache key before the cache kept tokens)",
    )?;
    let siv = c(
        "verify_cached",
        "gcm_siv_token",
        "AES-128-GCM-SIV tag of the token (the cache key before that)",
    )?;
    let sha = c(
        "verify_cached",
        "sha256_token",
        "SHA-256 of the token (the first cache key)",
    )?;
    let cached = c(
        "verify_cached",
        "authkit",
        "**authkit** `Verifier`, cache on, repeated token",
    )?;
    let unseal = c(
        "session",
        "unseal",
        "**authkit** unseal (`SessionCookie::unseal`), repeated cookie",
    )?;
    let unseal_first = c(
        "session",
        "unseal_first_sight",
        "**authkit** unseal, a cookie not seen before (both keys derived)",
    )?;
    let seal = c(
        "session",
        "seal",
        "**authkit** seal (`SessionCookie::seal`)",
    )?;
    let uv_cached = c(
        "session",
        "unseal_verify_cached",
        "**authkit** unseal + verify token (cache on)",
    )?;
    let uv_uncached = c(
        "session",
        "unseal_verify_uncached",
        "**authkit** unseal + verify token (cache off)",
    )?;
    let iron_unseal = n("iron_unseal", "Node: iron-session 8.0.4 `unsealData`")?;
    let iron_seal = n("iron_seal", "Node: iron-session 8.0.4 `sealData`")?;
    let iron_jose = n(
        "iron_unseal_jose",
        "Node: `unsealData` + jose `jwtVerify` of its token",
    )?;

    let mut verify = vec![
        Row::plain(floor.clone()),
        Row::plain(unparsed).versus(&floor, "floor"),
    ];
    let mut authkit_row = Row::plain(authkit.clone())
        .versus(&floor, "floor (goal ≥ 0.95)")
        .versus(&jwt, "jsonwebtoken")
        .versus(&jwt_kid, "jsonwebtoken+kid");
    if let Some(jose) = &jose {
        authkit_row = authkit_row.versus(jose, "jose");
    }
    verify.push(authkit_row);
    verify.push(Row::plain(jwt).versus(&floor, "floor"));
    verify.push(Row::plain(jwt_kid).versus(&floor, "floor"));
    if let Some(jose) = &jose {
        verify.push(Row::plain(jose.clone()).versus(&floor, "floor"));
    }

    let cached_rows = vec![
        Row::plain(compare.clone()),
        Row::plain(hashmap).versus(&compare, "floor"),
        Row::plain(gmac).versus(&compare, "floor"),
        Row::plain(siv).versus(&compare, "floor"),
        Row::plain(sha).versus(&compare, "floor"),
        Row::plain(cached.clone())
            .versus(&compare, "floor")
            .versus(&authkit, "uncached"),
    ];

    let mut session = Vec::new();
    for unseal in [unseal, unseal_first] {
        let mut row = Row::plain(unseal);
        if let Some(p) = &iron_unseal {
            row = row.versus(p, "iron-session");
        }
        session.push(row);
    }
    let mut row = Row::plain(seal);
    if let Some(p) = &iron_seal {
        row = row.versus(p, "iron-session");
    }
    session.push(row);
    let mut row = Row::plain(uv_cached);
    if let Some(p) = &iron_jose {
        row = row.versus(p, "Node unseal+jose");
    }
    session.push(row);
    let mut row = Row::plain(uv_uncached);
    if let Some(p) = &iron_jose {
        row = row.versus(p, "Node unseal+jose");
    }
    session.push(row);
    for p in [iron_unseal, iron_seal, iron_jose].into_iter().flatten() {
        session.push(Row::plain(p));
    }

    Ok(format!(
        "### a. Uncached verification (901-byte RS256 token)\n\n{}\n\
         ### b. Cached verification\n\n{}\n\
         ### c/d. Session cookie (1,535-byte JSON, 2,257-char cookie)\n\n{}",
        render(&verify),
        render(&cached_rows),
        render(&session)
    ))
}
