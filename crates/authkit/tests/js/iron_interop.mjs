// Node side of crates/authkit/tests/iron_interop.rs.
//
// Reads a JSON array of operations on stdin, runs each with the real npm packages, and
// prints a JSON array of results (same order) on stdout:
//   {op: "seal", data, password, ttl}        -> {seal}      iron-session sealData (ttl in s)
//   {op: "unseal", seal, password, ttl?}     -> {data}      iron-session unsealData ({} on a bad seal)
//   {op: "unseal_v2", seal, password}        -> {data}      iron-webcrypto 2.0.0 unseal, as @workos-inc/node
//   {op: "versions"}                         -> {versions}
// `password` is a string or an {id: password} map. Errors become {error: message}.
import { sealData, unsealData } from 'iron-session';
import * as ironV2 from 'iron-webcrypto-v2';
import { readFileSync } from 'node:fs';

const version = (name) =>
  JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), 'utf8')).version;

async function run(op) {
  switch (op.op) {
    case 'seal':
      return { seal: await sealData(op.data, { password: op.password, ttl: op.ttl ?? 0 }) };
    case 'unseal':
      return { data: await unsealData(op.seal, { password: op.password, ttl: op.ttl ?? 0 }) };
    case 'unseal_v2': {
      // @workos-inc/node strips the "~2" suffix and calls iron-webcrypto with {1: password}.
      const [bare] = op.seal.split('~');
      const password = typeof op.password === 'string' ? { 1: op.password } : op.password;
      return { data: await ironV2.unseal(bare, password, ironV2.defaults) };
    }
    case 'versions':
      return {
        versions: {
          node: process.version,
          'iron-session': version('iron-session'),
          'iron-webcrypto': version('iron-webcrypto'),
          'iron-webcrypto-v2': version('iron-webcrypto-v2'),
        },
      };
    default:
      throw new Error(`unknown op ${op.op}`);
  }
}

const ops = JSON.parse(readFileSync(0, 'utf8'));
const results = [];
for (const op of ops) {
  try {
    results.push(await run(op));
  } catch (e) {
    results.push({ error: String(e && e.message ? e.message : e) });
  }
}
process.stdout.write(JSON.stringify(results));
