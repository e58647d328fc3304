// The AuthKit sign-in loop driven through the official WorkOS Node SDK and `jose`, against a
// running workos-emulator. Started by tests/node_sdk.rs; it can also be run by hand:
//
//   WORKOS_BASE_URL=http://127.0.0.1:4100 WORKOS_CLIENT_ID=client_emulator \
//   WORKOS_API_KEY=sk_test_default SIGNIN_EMAIL=alice@acme.test SIGNIN_PASSWORD=AuthKit-demo-1 \
//   node sdk_flow.mjs
//
// Optional expectations (the Rust test derives them from the seed): EXPECT_ISSUER,
// EXPECT_USER_ID, EXPECT_ORG_ID, EXPECT_ROLE, EXPECT_PERMISSIONS (JSON array), EXPECT_USER_COUNT,
// MULTI_ORG_EMAIL (a user with several memberships, for the organization-selection step).
//
// Every step is recorded as ok / failed / deviation / skipped and the whole report is printed as
// one JSON object on stdout. A step listed in KNOWN_DEVIATIONS that fails is reported as
// "deviation" (the emulator differs from WorkOS in a way already written down) instead of
// "failed"; either makes the exit status 1, so the Rust test fails until the deviation is gone.
// A step whose input an earlier failure did not produce is "skipped" and does not count again.
// Exit status 2 means the script itself could not run (missing env, SDK not installed).

import http from 'node:http';
import { createRequire } from 'node:module';
import { WorkOS } from '@workos-inc/node';
import * as jose from 'jose';

// Step name → what is known to differ from WorkOS. Empty: no deviation is known.
const KNOWN_DEVIATIONS = {};

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') {
    console.error(`sdk_flow.mjs: environment variable ${name} is required`);
    process.exit(2);
  }
  return value;
};

const base = env('WORKOS_BASE_URL').replace(/\/+$/, '');
const clientId = env('WORKOS_CLIENT_ID');
const apiKey = env('WORKOS_API_KEY');
const email = env('SIGNIN_EMAIL');
const password = env('SIGNIN_PASSWORD');
const expectIssuer = process.env.EXPECT_ISSUER || `${base}/user_management/${clientId}`;
const expectUserId = process.env.EXPECT_USER_ID || null;
const expectOrgId = process.env.EXPECT_ORG_ID || null;
const expectRole = process.env.EXPECT_ROLE || null;
const expectPermissions = process.env.EXPECT_PERMISSIONS ? JSON.parse(process.env.EXPECT_PERMISSIONS) : null;
const expectUserCount = process.env.EXPECT_USER_COUNT ? Number(process.env.EXPECT_USER_COUNT) : null;
const multiOrgEmail = process.env.MULTI_ORG_EMAIL || null;
// A state with every character class that tends to be re-encoded on the way: iron's `*`, `+`,
// `/`, `=`, `&`, `%`, `~`, non-ASCII, a space, quotes and angle brackets.
const STATE = 'Fe26.2**a+b/c=d&e%f~é <"x"> 🚀';
const COOKIE_PASSWORD = 'a-cookie-password-of-at-least-32-characters!';

const require = createRequire(import.meta.url);
const versions = {
  node: process.version,
  '@workos-inc/node': require('@workos-inc/node/package.json').version,
  jose: readJoseVersion(),
};

function readJoseVersion() {
  try {
    return require('jose/package.json').version;
  } catch {
    return 'unknown';
  }
}

// ---------------------------------------------------------------------------------------------
// Step bookkeeping.

const steps = [];
const observed = {};

class Skip extends Error {}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

function equal(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

function need(value, what) {
  if (value === undefined || value === null) throw new Skip(`needs ${what} from an earlier step`);
  return value;
}

function describeError(e) {
  if (!(e instanceof Error)) return String(e);
  const parts = [`${e.name}: ${e.message}`];
  for (const key of ['status', 'code', 'error', 'errorDescription']) {
    if (e[key] !== undefined) parts.push(`${key}=${JSON.stringify(e[key])}`);
  }
  if (e.rawData !== undefined) parts.push(`rawData=${JSON.stringify(e.rawData)}`);
  if (e.cause) parts.push(`cause=${describeError(e.cause)}`);
  return parts.join(' ');
}

async function step(name, run) {
  const started = Date.now();
  try {
    const detail = await run();
    steps.push({ name, status: 'ok', ms: Date.now() - started, ...(detail ? { detail } : {}) });
    return true;
  } catch (e) {
    if (e instanceof Skip) {
      steps.push({ name, status: 'skipped', ms: Date.now() - started, detail: e.message });
      return false;
    }
    const known = KNOWN_DEVIATIONS[name];
    steps.push({
      name,
      status: known ? 'deviation' : 'failed',
      ms: Date.now() - started,
      detail: describeError(e),
      ...(known ? { known } : {}),
    });
    return false;
  }
}

// Expects `promise` to reject with an SDK exception; returns it.
async function rejection(promise, what) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error(`${what} succeeded but must fail`);
}

// ---------------------------------------------------------------------------------------------
// A browser, as far as this flow needs one: cookies per origin, form parsing, manual redirects.

const cookieJar = new Map(); // origin → Map(name → value)

function storeCookies(url, response) {
  const origin = new URL(url).origin;
  const jar = cookieJar.get(origin) ?? new Map();
  for (const line of response.headers.getSetCookie?.() ?? []) {
    const [pair] = line.split(';');
    const eq = pair.indexOf('=');
    if (eq > 0) jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
  cookieJar.set(origin, jar);
}

function cookieHeader(url) {
  const jar = cookieJar.get(new URL(url).origin);
  if (!jar || jar.size === 0) return {};
  return { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') };
}

const BROWSER_HEADERS = {
  'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) sdk_flow.mjs',
  accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
};

async function browse(url, init = {}) {
  const response = await fetch(url, {
    ...init,
    redirect: 'manual',
    headers: { ...BROWSER_HEADERS, ...cookieHeader(url), ...(init.headers ?? {}) },
  });
  storeCookies(url, response);
  return response;
}

function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos|#39);/g, (_, entity) => {
    if (entity[0] === '#') {
      const code = entity[1] === 'x' ? parseInt(entity.slice(2), 16) : parseInt(entity.slice(1), 10);
      return String.fromCodePoint(code);
    }
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[entity];
  });
}

function attributes(tag) {
  const attrs = {};
  const body = tag.replace(/^<\w+/, '').replace(/\/?>$/, '');
  const re = /([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g;
  for (const m of body.matchAll(re)) {
    attrs[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

// The forms of a page: action, method and the controls in document order.
function parseForms(html) {
  const forms = [];
  for (const m of html.matchAll(/<form\b[^>]*>([\s\S]*?)<\/form>/gi)) {
    const open = m[0].match(/^<form\b[^>]*>/i)[0];
    const controls = [...m[1].matchAll(/<(input|button|select|textarea)\b[^>]*>/gi)].map((c) => ({
      tag: c[1].toLowerCase(),
      ...attributes(c[0]),
    }));
    forms.push({ ...attributes(open), controls });
  }
  return forms;
}

// The body a browser sends when the user fills `values` into `form` and presses its submit
// button: successful controls in document order (HTML §4.10.21.4), no unnamed or disabled ones.
function formBody(form, values) {
  const body = new URLSearchParams();
  let submitted = false;
  for (const c of form.controls) {
    if (!c.name || 'disabled' in c) continue;
    const type = (c.type ?? (c.tag === 'button' ? 'submit' : 'text')).toLowerCase();
    if (type === 'submit' || type === 'image') {
      if (!submitted) {
        submitted = true;
        body.append(c.name, c.value ?? '');
      }
      continue;
    }
    if (['button', 'reset', 'file'].includes(type)) continue;
    if ((type === 'checkbox' || type === 'radio') && !('checked' in c)) continue;
    body.append(c.name, c.name in values ? values[c.name] : (c.value ?? ''));
  }
  for (const name of Object.keys(values)) {
    check(form.controls.some((c) => c.name === name), `the form has no '${name}' field`);
  }
  return body;
}

// A local "application": its callback route records what the browser brings back.
async function startApp() {
  const hits = [];
  const server = http.createServer((req, res) => {
    hits.push(req.url);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return { origin: `http://127.0.0.1:${port}`, hits, close: () => new Promise((r) => server.close(r)) };
}

// ---------------------------------------------------------------------------------------------
// The flow.

const baseUrl = new URL(base);
const workos = new WorkOS(apiKey, {
  apiHostname: baseUrl.hostname,
  https: baseUrl.protocol === 'https:',
  port: baseUrl.port ? Number(baseUrl.port) : undefined,
  clientId,
  issuer: expectIssuer,
  maxRetries: 0,
});
const um = workos.userManagement;
const app = await startApp();
const redirectUri = `${app.origin}/callback`;
const jwks = jose.createRemoteJWKSet(new URL(`${base}/sso/jwks/${clientId}`));

async function verify(token) {
  return jose.jwtVerify(token, jwks, { issuer: expectIssuer, algorithms: ['RS256'] });
}

function checkClaims(payload, header, user, what) {
  check(header.alg === 'RS256', `${what}: alg ${header.alg}`);
  check(/^sso_oidc_key_pair_[0-9A-Z]{26}$/.test(header.kid ?? ''), `${what}: kid ${header.kid}`);
  equal(payload.sub, user.id, `${what}: sub`);
  check(/^session_[0-9A-Z]{26}$/.test(payload.sid ?? ''), `${what}: sid ${payload.sid}`);
  check(typeof payload.jti === 'string' && payload.jti.length > 0, `${what}: jti`);
  equal(payload.exp - payload.iat, 300, `${what}: exp - iat`);
  if (expectOrgId) equal(payload.org_id, expectOrgId, `${what}: org_id`);
  if (expectRole) {
    equal(payload.role, expectRole, `${what}: role`);
    check(Array.isArray(payload.roles) && payload.roles.includes(expectRole), `${what}: roles ${JSON.stringify(payload.roles)}`);
  }
  if (expectPermissions) {
    equal([...(payload.permissions ?? [])].sort(), [...expectPermissions].sort(), `${what}: permissions`);
  }
}

const s = {}; // state carried between steps

await step('sdk_builds_base_url_from_options', () => {
  equal(workos.baseURL, base, 'workos.baseURL');
  return { baseURL: workos.baseURL };
});

await step('get_authorization_url_with_pkce_and_state', async () => {
  s.pkce = await workos.pkce.generate();
  s.authorizeUrl = um.getAuthorizationUrl({
    provider: 'authkit',
    redirectUri,
    state: STATE,
    codeChallenge: s.pkce.codeChallenge,
    codeChallengeMethod: 'S256',
  });
  check(s.authorizeUrl.startsWith(`${base}/user_management/authorize?`), `url ${s.authorizeUrl}`);
  const q = new URL(s.authorizeUrl).searchParams;
  equal(q.get('state'), STATE, 'state in the authorize URL');
  return { url: s.authorizeUrl };
});

await step('authorize_page_serves_sign_in_form', async () => {
  need(s.authorizeUrl, 'the authorize URL');
  const response = await browse(s.authorizeUrl);
  equal(response.status, 200, 'GET authorize status');
  const type = response.headers.get('content-type') ?? '';
  check(type.startsWith('text/html'), `content-type ${type}`);
  s.pageUrl = s.authorizeUrl;
  const html = await response.text();
  const forms = parseForms(html);
  s.form = forms.find((f) => f.controls.some((c) => c.name === 'password'));
  check(s.form, `no form with a password field among ${forms.length} forms`);
  check((s.form.method ?? 'get').toLowerCase() === 'post', `form method ${s.form.method}`);
  const hidden = s.form.controls.filter((c) => c.type === 'hidden').map((c) => c.name);
  return { action: s.form.action, hidden };
});

await step('form_post_redirects_to_callback_with_code_and_exact_state', async () => {
  const form = need(s.form, 'the sign-in form');
  const action = new URL(form.action ?? '', s.pageUrl).toString();
  const body = formBody(form, { email, password });
  const response = await browse(action, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(s.pageUrl).origin },
    body: body.toString(),
  });
  check([302, 303].includes(response.status), `POST status ${response.status}: ${(await response.text()).slice(0, 300)}`);
  const location = response.headers.get('location');
  check(location, 'no Location header');
  const target = new URL(location, action);
  equal(`${target.origin}${target.pathname}`, redirectUri, 'redirect target');
  // Follow the redirect as a browser does (303/302 after POST → GET) to the app's callback.
  const landed = await browse(target.toString());
  equal(landed.status, 200, 'callback status');
  const hit = app.hits.at(-1);
  check(hit, 'the callback saw no request');
  const callback = new URL(hit, app.origin);
  s.code = callback.searchParams.get('code');
  check(s.code, `no code in ${hit}`);
  equal(callback.searchParams.get('state'), STATE, 'state echoed to the callback');
  check(!callback.searchParams.has('error'), `error in callback: ${hit}`);
  return { status: response.status, callback_params: [...callback.searchParams.keys()] };
});

await step('authenticate_with_code_pkce_and_sealed_session', async () => {
  const code = need(s.code, 'an authorization code');
  const auth = await um.authenticateWithCode({
    code,
    codeVerifier: s.pkce.codeVerifier,
    session: { sealSession: true, cookiePassword: COOKIE_PASSWORD },
  });
  s.auth = auth;
  equal(auth.user.email, email, 'user.email');
  if (expectUserId) equal(auth.user.id, expectUserId, 'user.id');
  check(/^user_[0-9A-Z]{26}$/.test(auth.user.id), `user.id ${auth.user.id}`);
  if (expectOrgId) equal(auth.organizationId, expectOrgId, 'organizationId');
  equal(auth.authenticationMethod, 'Password', 'authenticationMethod');
  check(typeof auth.accessToken === 'string' && auth.accessToken.split('.').length === 3, 'accessToken is a JWT');
  check(typeof auth.refreshToken === 'string' && auth.refreshToken.length > 0, 'refreshToken');
  check(typeof auth.sealedSession === 'string' && auth.sealedSession.startsWith('Fe26.2*'), 'sealedSession is iron');
  observed.user = { id: auth.user.id, email: auth.user.email, organizationId: auth.organizationId };
  return { user: auth.user.id, organizationId: auth.organizationId };
});

await step('jose_verifies_access_token_against_remote_jwks', async () => {
  const auth = need(s.auth, 'tokens');
  const { payload, protectedHeader } = await verify(auth.accessToken);
  checkClaims(payload, protectedHeader, auth.user, 'access token');
  check(!('typ' in protectedHeader), `header has typ ${protectedHeader.typ} (production tokens have none)`);
  s.claims = payload;
  observed.claims = payload;
  observed.header = protectedHeader;
  return { kid: protectedHeader.kid, sid: payload.sid, org_id: payload.org_id, role: payload.role };
});

await step('sealed_session_authenticates_with_sdk_verification', async () => {
  const auth = need(s.auth, 'a sealed session');
  const claims = need(s.claims, 'verified claims');
  const session = um.loadSealedSession({ sessionData: auth.sealedSession, cookiePassword: COOKIE_PASSWORD });
  const result = await session.authenticate();
  check(result.authenticated, `not authenticated: ${result.reason}`);
  equal(result.sessionId, claims.sid, 'sessionId');
  equal(result.organizationId, claims.org_id, 'organizationId');
  equal(result.role, claims.role, 'role');
  equal(result.permissions, claims.permissions, 'permissions');
  equal(result.user.id, auth.user.id, 'user.id');
  // The same check through the other entry point.
  const viaCookie = await um.authenticateWithSessionCookie({ sessionData: auth.sealedSession, cookiePassword: COOKIE_PASSWORD });
  check(viaCookie.authenticated, `authenticateWithSessionCookie: ${viaCookie.reason}`);
  return { sessionId: result.sessionId };
});

await step('refresh_rotates_tokens_and_keeps_session', async () => {
  const auth = need(s.auth, 'a refresh token');
  const claims = need(s.claims, 'verified claims');
  const next = await um.authenticateWithRefreshToken({ refreshToken: auth.refreshToken });
  check(next.accessToken !== auth.accessToken, 'the access token did not change');
  check(next.refreshToken !== auth.refreshToken, 'the refresh token did not rotate');
  equal(next.user.id, auth.user.id, 'user.id');
  const { payload, protectedHeader } = await verify(next.accessToken);
  checkClaims(payload, protectedHeader, next.user, 'refreshed access token');
  equal(payload.sid, claims.sid, 'sid after refresh');
  check(payload.jti !== claims.jti, 'jti did not change');
  s.refreshed = next;
  return { sid: payload.sid };
});

await step('cookie_session_refresh_reseals_with_new_tokens', async () => {
  const refreshed = need(s.refreshed, 'a live refresh token');
  const sealed = await um.authenticateWithRefreshToken({
    refreshToken: refreshed.refreshToken,
    session: { sealSession: true, cookiePassword: COOKIE_PASSWORD },
  });
  const session = um.loadSealedSession({ sessionData: sealed.sealedSession, cookiePassword: COOKIE_PASSWORD });
  const result = await session.refresh();
  check(result.authenticated, `refresh failed: ${result.reason}`);
  check(result.sealedSession && result.sealedSession !== sealed.sealedSession, 'no new sealed session');
  if (expectOrgId) equal(result.organizationId, expectOrgId, 'organizationId');
  if (expectRole) equal(result.role, expectRole, 'role');
  const again = await um.loadSealedSession({ sessionData: result.sealedSession, cookiePassword: COOKIE_PASSWORD }).authenticate();
  check(again.authenticated, `resealed session does not authenticate: ${again.reason}`);
  s.cookieSession = um.loadSealedSession({ sessionData: result.sealedSession, cookiePassword: COOKIE_PASSWORD });
  s.lastRefreshToken = result.session.refreshToken;
  return { sessionId: result.sessionId };
});

// On a session of its own (a password sign-in of the same user), because the emulator follows
// RFC 9700 §4.14.2 and a replay also revokes the family's live refresh token.
await step('used_refresh_token_is_refused', async () => {
  const first = await um.authenticateWithPassword({ email, password });
  equal(first.authenticationMethod, 'Password', 'authenticationMethod');
  if (expectOrgId) equal(first.organizationId, expectOrgId, 'organizationId of a one-organization user');
  const second = await um.authenticateWithRefreshToken({ refreshToken: first.refreshToken });
  const e = await rejection(um.authenticateWithRefreshToken({ refreshToken: first.refreshToken }), 'reusing the refresh token');
  equal(e.name, 'OauthException', 'exception type');
  equal(e.status, 400, 'status');
  equal(e.error, 'invalid_grant', 'error');
  // Informational: whether the replay also revoked the token that replaced it.
  let liveTokenAfterReplay;
  try {
    await um.authenticateWithRefreshToken({ refreshToken: second.refreshToken });
    liveTokenAfterReplay = 'still valid';
  } catch (err) {
    liveTokenAfterReplay = `refused (${err.error ?? err.name})`;
  }
  observed.live_refresh_token_after_replay = liveTokenAfterReplay;
  return { error: e.error, errorDescription: e.errorDescription, liveTokenAfterReplay };
});

await step('list_users_paginates_with_cursors', async () => {
  const first = await um.listUsers({ limit: 2, order: 'asc' });
  equal(first.object, 'list', 'object');
  check(first.data.length <= 2, `page 1 has ${first.data.length} users`);
  const seen = [...first.data];
  let meta = first.listMetadata;
  let pages = 1;
  while (meta.after) {
    check(pages < 50, 'pagination does not end');
    const page = await um.listUsers({ limit: 2, order: 'asc', after: meta.after });
    check(page.data.length > 0, 'an `after` cursor led to an empty page');
    seen.push(...page.data);
    meta = page.listMetadata;
    pages += 1;
  }
  const ids = seen.map((u) => u.id);
  equal(new Set(ids).size, ids.length, 'no user listed twice');
  const created = seen.map((u) => u.createdAt);
  equal(created, [...created].sort(), 'order=asc is by created_at');
  if (expectUserCount !== null) equal(seen.length, expectUserCount, 'users across pages');
  check(seen.some((u) => u.email === email), `${email} is not listed`);
  const filtered = await um.listUsers({ email });
  equal(filtered.data.map((u) => u.email), [email], 'email filter');
  observed.listed_users = seen.length;
  return { pages, users: seen.length };
});

await step('get_user_and_not_found', async () => {
  const auth = need(s.auth, 'a user id');
  const user = await um.getUser(auth.user.id);
  equal(user.id, auth.user.id, 'id');
  equal(user.email, email, 'email');
  equal(user.object, 'user', 'object');
  check(typeof user.createdAt === 'string' && !Number.isNaN(Date.parse(user.createdAt)), 'createdAt');
  const e = await rejection(um.getUser('user_01H0000000000000000000000Z'), 'getUser of an unknown id');
  equal(e.name, 'NotFoundException', 'exception type');
  equal(e.status, 404, 'status');
  return { email: user.email };
});

await step('wrong_api_key_is_unauthorized', async () => {
  const wrong = new WorkOS('sk_test_wrong', {
    apiHostname: baseUrl.hostname,
    https: false,
    port: Number(baseUrl.port),
    clientId,
    maxRetries: 0,
  });
  const e = await rejection(wrong.userManagement.listUsers(), 'listUsers with a wrong key');
  equal(e.name, 'UnauthorizedException', 'exception type');
  equal(e.status, 401, 'status');
  return null;
});

await step('wrong_password_is_invalid_credentials', async () => {
  const e = await rejection(um.authenticateWithPassword({ email, password: `${password}-wrong` }), 'a wrong password');
  // WorkOS answers 400 {code:"invalid_credentials", message}; the SDK maps a 400 with a code and
  // no `errors` array to GenericServerException carrying that code.
  equal(e.name, 'GenericServerException', 'exception type');
  equal(e.status, 400, 'status');
  equal(e.code, 'invalid_credentials', 'code');
  return { message: e.message };
});

await step('organization_selection_flow', async () => {
  if (!multiOrgEmail) throw new Skip('MULTI_ORG_EMAIL not given');
  const e = await rejection(um.authenticateWithPassword({ email: multiOrgEmail, password }), 'password sign-in of a multi-organization user');
  equal(e.name, 'AuthenticationException', 'exception type');
  equal(e.status, 403, 'status');
  equal(e.code, 'organization_selection_required', 'code');
  check(typeof e.pendingAuthenticationToken === 'string' && e.pendingAuthenticationToken.length > 0, 'pendingAuthenticationToken');
  const orgs = e.rawData.organizations;
  check(Array.isArray(orgs) && orgs.length >= 2, `organizations ${JSON.stringify(orgs)}`);
  const chosen = orgs[orgs.length - 1];
  const auth = await um.authenticateWithOrganizationSelection({
    pendingAuthenticationToken: e.pendingAuthenticationToken,
    organizationId: chosen.id,
  });
  equal(auth.organizationId, chosen.id, 'organizationId');
  const { payload } = await verify(auth.accessToken);
  equal(payload.org_id, chosen.id, 'org_id claim');
  return { organizations: orgs.length, chosen: chosen.id };
});

await step('logout_url_ends_session_and_redirects', async () => {
  const session = need(s.cookieSession, 'a sealed session');
  const returnTo = `${app.origin}/signed-out`;
  const logoutUrl = await session.getLogoutUrl({ returnTo });
  check(logoutUrl.startsWith(`${base}/user_management/sessions/logout?session_id=session_`), `url ${logoutUrl}`);
  const response = await browse(logoutUrl);
  equal(response.status, 302, 'logout status');
  equal(response.headers.get('location'), returnTo, 'Location');
  // The session is over: its refresh token no longer works.
  const e = await rejection(um.authenticateWithRefreshToken({ refreshToken: need(s.lastRefreshToken, 'a refresh token') }), 'refresh after logout');
  equal(e.name, 'OauthException', 'exception type after logout');
  equal(e.error, 'invalid_grant', 'error after logout');
  observed.logged_out_session = new URL(logoutUrl).searchParams.get('session_id');
  return { session_id: observed.logged_out_session };
});

// Last, because the emulator follows RFC 6749 §4.1.2 / RFC 9700: a replayed code also ends the
// session its first redemption created (production's behaviour here is not documented).
await step('code_is_single_use', async () => {
  const code = need(s.auth && s.code, 'a redeemed code');
  const e = await rejection(um.authenticateWithCode({ code, codeVerifier: s.pkce.codeVerifier }), 'reusing the code');
  equal(e.name, 'OauthException', 'exception type');
  equal(e.status, 400, 'status');
  equal(e.error, 'invalid_grant', 'error');
  return { error: e.error };
});

await app.close();

const count = (status) => steps.filter((st) => st.status === status).length;
const report = {
  versions,
  base,
  steps,
  observed,
  summary: { ok: count('ok'), failed: count('failed'), deviation: count('deviation'), skipped: count('skipped') },
};
process.stdout.write(`${JSON.stringify(report)}\n`);
// A skipped step follows a failed one (or lacks an optional input), so it is not counted again.
process.exitCode = report.summary.failed + report.summary.deviation === 0 ? 0 : 1;
