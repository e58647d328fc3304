// Node peer for bench/benches/crypto.rs: measures, on the SAME fixture the Rust benchmarks
// use (exported by `cargo run -p authkit-bench --bin fixture`), how many operations per second
// one Node process does with the libraries a Next.js/Node app would use:
//
//   iron_unseal       iron-session 8.0.4 unsealData(cookie)         (Rust: session/unseal)
//   iron_seal         iron-session 8.0.4 sealData(session)          (Rust: session/seal)
//   jose_verify       jose 6.2.17 jwtVerify(token, createLocalJWKSet) with issuer check
//                                                                    (Rust: verify_uncached/authkit)
//   iron_unseal_jose  unsealData then jwtVerify of its accessToken  (Rust: session/unseal_verify_uncached)
//
// Method (perf-security §0): 300 ms warm-up, then ROUNDS rounds of ROUND_MS each, sequential
// awaits; prints one JSON object {name: {ops_per_sec (median of rounds, per CPU second unless
// AUTHKIT_BENCH_CLOCK=wall), cpu_ops_per_sec, wall_ops_per_sec}}.
// Run pinned: taskset -c 1 node iron_peer.mjs fixture.json
//
// Usage: node iron_peer.mjs FIXTURE_JSON [--round-ms N] [--rounds N]

import { readFileSync } from "node:fs";
import { sealData, unsealData } from "iron-session";
import { createLocalJWKSet, jwtVerify } from "jose";

const args = process.argv.slice(2);
const fixturePath = args[0];
if (!fixturePath) {
  console.error("usage: node iron_peer.mjs FIXTURE_JSON [--round-ms N] [--rounds N]");
  process.exit(2);
}
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const ROUND_MS = opt("--round-ms", 1500);
const ROUNDS = opt("--rounds", 5);
const WARMUP_MS = Math.min(300, ROUND_MS);

const fx = JSON.parse(readFileSync(fixturePath, "utf8"));
const password = fx.password;
const session = JSON.parse(fx.session_json);
const jwks = createLocalJWKSet(fx.jwks);

// Returns {cpu, wall}: operations per second of process CPU time (user + system, all threads:
// WebCrypto work runs on libuv's pool) and per second of wall time. The Rust benchmarks count
// their thread's CPU time, so `cpu` is the comparable figure on a shared machine.
async function timed(fn, ms) {
  let n = 0;
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  const budget = BigInt(ms) * 1_000_000n;
  let elapsed = 0n;
  while (elapsed < budget) {
    // 16 calls between clock reads keeps the timer out of the measurement.
    for (let i = 0; i < 16; i++) await fn();
    n += 16;
    elapsed = process.hrtime.bigint() - start;
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuNs = (cpu.user + cpu.system) * 1000;
  return { cpu: (n * 1e9) / cpuNs, wall: (n * 1e9) / Number(elapsed) };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(fn) {
  await timed(fn, WARMUP_MS);
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) rounds.push(await timed(fn, ROUND_MS));
  const clock = process.env.AUTHKIT_BENCH_CLOCK === "wall" ? "wall" : "cpu";
  return {
    ops_per_sec: median(rounds.map((r) => r[clock])),
    clock,
    cpu_ops_per_sec: median(rounds.map((r) => r.cpu)),
    wall_ops_per_sec: median(rounds.map((r) => r.wall)),
  };
}

// Check every subject on the fixture before timing it.
const opened = await unsealData(fx.cookie, { password });
if (opened.accessToken !== session.accessToken) throw new Error("iron-session did not open the Rust cookie");
const resealed = await sealData(session, { password });
if ((await unsealData(resealed, { password })).refreshToken !== session.refreshToken) throw new Error("reseal failed");
await jwtVerify(fx.token, jwks, { issuer: fx.issuer, algorithms: ["RS256"] });

const out = {
  versions: { node: process.version, "iron-session": "8.0.4", jose: "6.2.17" },
  iron_unseal: await measure(() => unsealData(fx.cookie, { password })),
  iron_seal: await measure(() => sealData(session, { password })),
  jose_verify: await measure(() => jwtVerify(fx.token, jwks, { issuer: fx.issuer, algorithms: ["RS256"] })),
  iron_unseal_jose: await measure(async () => {
    const s = await unsealData(fx.cookie, { password });
    return jwtVerify(s.accessToken, jwks, { issuer: fx.issuer, algorithms: ["RS256"] });
  }),
};
console.log(JSON.stringify(out));
