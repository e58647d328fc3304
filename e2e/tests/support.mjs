// Shared fixtures for the browser tests: one `authkit dev` process on free ports, one
// headless Debian chromium, screenshots of every step under e2e/artifacts/.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const artifacts = join(here, '..', 'artifacts');
mkdirSync(artifacts, { recursive: true });

export const PASSWORD = 'AuthKit-demo-1';

/** Starts `authkit dev` on port 0 everywhere and resolves with its URLs. */
export async function startDev() {
  const bin = process.env.AUTHKIT_BIN;
  if (!bin) throw new Error('AUTHKIT_BIN must name the built `authkit` binary (scripts/test sets it)');
  const env = { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' };
  // The emulator, never real WorkOS, even on a machine that has credentials set.
  delete env.WORKOS_API_KEY;
  delete env.WORKOS_CLIENT_ID;
  delete env.WORKOS_COOKIE_PASSWORD;
  const child = spawn(bin, ['dev', '--emulator-port', '0', '--backend-port', '0', '--admin-port', '0', '--in-memory'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let output = '';
  const urls = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`authkit dev did not start in 30 s:\n${output}`)), 30_000);
    const onData = (chunk) => {
      output += chunk;
      const admin = output.match(/admin app\s+(\S+)/);
      const backend = output.match(/backend API\s+(\S+)/);
      const emulator = output.match(/WorkOS emulator\s+(\S+)/);
      if (admin && backend && emulator && output.includes('Press Ctrl-C')) {
        clearTimeout(timer);
        resolve({ admin: admin[1], backend: backend[1], emulator: emulator[1] });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (c) => { output += c; });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`authkit dev exited with ${code}:\n${output}`)); });
  });
  child.removeAllListeners('exit');
  return {
    ...urls,
    output: () => output,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGINT');
      const timeout = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timeout);
      return code;
    },
  };
}

/** Launches Debian's chromium headless (never a downloaded browser). */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

/** Runs one named step: a screenshot afterwards, the page's text if it throws. */
export function stepper(page, prefix) {
  let n = 0;
  return async function step(name, fn) {
    n += 1;
    const file = join(artifacts, `${prefix}-${String(n).padStart(2, '0')}-${name.replace(/[^a-z0-9]+/gi, '-')}.png`);
    try {
      await fn();
      await page.screenshot({ path: file, fullPage: true });
    } catch (error) {
      await page.screenshot({ path: file.replace('.png', '-FAILED.png'), fullPage: true }).catch(() => {});
      const text = await page.evaluate(() => document.body?.innerText ?? '').catch(() => '<no page>');
      throw new Error(`step "${name}" failed at ${page.url()}\n--- page text ---\n${text}\n---\n${error.stack}`);
    }
  };
}

/** Fills and submits the emulator's hosted sign-in form. */
export async function signInOnHostedPage(page, email, password = PASSWORD) {
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
}
