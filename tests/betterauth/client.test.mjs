// The official Better Auth client (`createAuthClient` from `better-auth/client`, the
// version pinned in package.json) against klard-auth's /api/auth, in both of Better
// Auth's modes:
//   - cookie mode, as a web page on a trusted origin uses it: Node has no cookie jar, so
//     `customFetchImpl` keeps the cookies the way a browser does and sends the page's
//     Origin (a browser adds it itself);
//   - bearer mode, as a mobile app uses it (Better Auth's bearer plugin docs):
//     `fetchOptions.auth = {type: "Bearer", token: () => token}` and the token taken from
//     the `set-auth-token` response header in `onSuccess`.
//
// Run by .ci/betterauth, which starts a server and passes it in through the environment:
//   KLARD_ISSUER          the server (baseURL of the client; `/api/auth` is appended)
//   KLARD_TRUSTED_ORIGIN  an origin in `api_auth.trusted_origins`
//   KLARD_JWT_CLIENT_ID   `api_auth.client_id`: the `aud` of `/api/auth/token` JWTs
// Only loopback is reached.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { createAuthClient } from 'better-auth/client';
import { jwtClient } from 'better-auth/client/plugins';

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run .ci/betterauth)`);
  return v;
}

const ISSUER = env('KLARD_ISSUER').replace(/\/$/, '');
const ORIGIN = env('KLARD_TRUSTED_ORIGIN');
const JWT_CLIENT_ID = env('KLARD_JWT_CLIENT_ID');
const SESSION_COOKIE = 'klard_session'; // http issuer without a path: no __Host- prefix
const PASSWORD = 'correct horse battery staple';
const NEW_PASSWORD = 'tr0ub4dor & 3, but longer';

let seq = 0;
const freshEmail = (tag) =>
  `${tag}-${process.pid}-${++seq}-${crypto.randomBytes(3).toString('hex')}@example.com`;

/** Header names a page's script may always read (Fetch: CORS-safelisted response headers). */
const SAFELISTED_RESPONSE = new Set([
  'cache-control', 'content-language', 'content-length', 'content-type', 'expires',
  'last-modified', 'pragma',
]);

/**
 * Fetch's CORS rules for a page on `origin` calling the issuer, as a browser applies them
 * (Fetch standard §4.8, §4.9): a JSON POST or a request with `Authorization` is
 * preflighted, and the answer must name the page's origin exactly and, since Better
 * Auth's client sends `credentials: "include"`, allow credentials; otherwise the call
 * fails with a TypeError as in a browser. The page sees only safelisted and exposed
 * response headers.
 */
async function corsFetch(origin, input, init, headers) {
  const url = new URL(input);
  if (url.origin === origin) return fetch(input, { ...init, headers });
  const method = (init.method ?? 'GET').toUpperCase();
  const unsafe = [...headers.keys()].filter((h) => {
    if (['cookie', 'origin'].includes(h)) return false; // set by the browser, not the page
    if (['accept', 'accept-language', 'content-language'].includes(h)) return false;
    if (h === 'content-type') {
      const mime = headers.get(h).split(';')[0].trim().toLowerCase();
      return !['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain'].includes(mime);
    }
    return true;
  });
  const allowed = (res) =>
    res.headers.get('access-control-allow-origin') === origin &&
    res.headers.get('access-control-allow-credentials') === 'true';
  if (!['GET', 'HEAD', 'POST'].includes(method) || unsafe.length) {
    const pre = await fetch(input, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': method,
        ...(unsafe.length ? { 'access-control-request-headers': unsafe.sort().join(',') } : {}),
      },
    });
    const list = (name) =>
      (pre.headers.get(name) ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
    const methods = list('access-control-allow-methods');
    const hdrs = list('access-control-allow-headers');
    if (
      !pre.ok ||
      !allowed(pre) ||
      !(['GET', 'HEAD', 'POST'].includes(method) || methods.includes(method.toLowerCase())) ||
      !unsafe.every((h) => hdrs.includes(h))
    ) {
      throw new TypeError(`CORS preflight for ${method} ${url.pathname} from ${origin} refused`);
    }
  }
  const res = await fetch(input, { ...init, headers });
  if (!allowed(res)) {
    throw new TypeError(`CORS: ${method} ${url.pathname} may not be read by ${origin}`);
  }
  const exposed = new Set(
    (res.headers.get('access-control-expose-headers') ?? '').split(',').map((s) => s.trim().toLowerCase()),
  );
  const visible = new Headers();
  for (const [k, v] of res.headers) {
    if (SAFELISTED_RESPONSE.has(k) || exposed.has(k)) visible.set(k, v);
  }
  const out = new Response(res.body, { status: res.status, statusText: res.statusText, headers: visible });
  out.setCookies = res.headers.getSetCookie(); // processed by the browser, never shown to the page
  return out;
}

/**
 * A cookie jar in front of Node's fetch, doing what a browser does for a page on `origin`
 * calling the (same-site) issuer: send the page's Origin, apply CORS (`cors: false` for
 * a request a browser would not preflight or a client that is no browser), store
 * `Set-Cookie` (Max-Age=0 or an empty value deletes) and send the cookies back. Every raw
 * `Set-Cookie` is kept in `seen` so tests can check the attributes.
 */
function cookieJar(origin = ORIGIN, { cors = true } = {}) {
  const cookies = new Map();
  const seen = [];
  async function customFetch(input, init = {}) {
    const headers = new Headers(init.headers);
    if (cookies.size) {
      headers.set('cookie', [...cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    if (origin) headers.set('origin', origin);
    const res = cors && origin
      ? await corsFetch(origin, String(input), init, headers)
      : await fetch(input, { ...init, headers });
    for (const sc of res.setCookies ?? res.headers.getSetCookie()) {
      seen.push(sc);
      const [pair, ...attrs] = sc.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const maxAge = attrs.find((a) => /^max-age=/i.test(a));
      if (value === '' || (maxAge && Number(maxAge.split('=')[1]) <= 0)) cookies.delete(name);
      else cookies.set(name, value);
    }
    return res;
  }
  return { cookies, seen, customFetch };
}

/** A Better Auth client in cookie mode, with its own jar. */
function cookieClient(origin = ORIGIN, opts = {}) {
  const jar = cookieJar(origin, opts);
  const client = createAuthClient({
    baseURL: ISSUER,
    plugins: [jwtClient()],
    fetchOptions: { customFetchImpl: jar.customFetch },
  });
  return { client, jar };
}

/**
 * A Better Auth client in bearer mode (Better Auth's documented bearer usage). `state.token`
 * is the stored session token; `state.seen` every `set-auth-token` received.
 */
function bearerClient() {
  const state = { token: '', seen: [] };
  const client = createAuthClient({
    baseURL: ISSUER,
    plugins: [jwtClient()],
    fetchOptions: {
      auth: { type: 'Bearer', token: () => state.token },
      onSuccess(ctx) {
        const t = ctx.response.headers.get('set-auth-token');
        if (t) {
          state.token = t;
          state.seen.push(t);
        }
      },
    },
  });
  return { client, state };
}

/**
 * Sign-up and sign-in in bearer mode carry an Origin: Node's fetch sends
 * `Sec-Fetch-Mode: cors`, and for a request with Fetch Metadata Better Auth (and we)
 * require a trusted Origin before a first login (origin-check.ts `validateFormCsrf`).
 * Better Auth's own Expo client sends one too.
 */
const withOrigin = { fetchOptions: { headers: { origin: ORIGIN } } };

function ok(res, what) {
  assert.equal(res.error, null, `${what}: ${JSON.stringify(res.error)}`);
  return res.data;
}

function failed(res, status, code, what) {
  assert.equal(res.data, null, `${what}: expected an error, got ${JSON.stringify(res.data)}`);
  assert.equal(res.error?.status, status, `${what}: ${JSON.stringify(res.error)}`);
  assert.equal(res.error?.code, code, `${what}: ${JSON.stringify(res.error)}`);
  assert.equal(typeof res.error.message, 'string', `${what}: message`);
}

async function signUp(client, email, extra = {}) {
  return ok(
    await client.signUp.email({ name: 'Willow Rosenberg', email, password: PASSWORD, ...extra }),
    'sign-up',
  );
}

/** The session the client's credential designates, or null (get-session answers `null`). */
async function currentSession(client) {
  return ok(await client.getSession(), 'get-session');
}

function assertUser(u, { email, name, image = null }) {
  assert.equal(typeof u.id, 'string');
  assert.ok(u.id.length > 0);
  assert.equal(u.email, email);
  assert.equal(u.name, name);
  assert.equal(u.image, image);
  assert.equal(u.emailVerified, false);
  // The client's JSON parser turns ISO 8601 strings into Dates: ours must match its format.
  assert.ok(u.createdAt instanceof Date && !Number.isNaN(u.createdAt.getTime()), 'createdAt');
  assert.ok(u.updatedAt instanceof Date, 'updatedAt');
}

function decodeJwt(jwt) {
  const [h, p] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url')),
    payload: JSON.parse(Buffer.from(p, 'base64url')),
  };
}

/** Verifies a JWS with the JWKS the jwt plugin client fetched (`client.jwks()`). */
function verifyJwt(jwt, jwks) {
  const { header, payload } = decodeJwt(jwt);
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `kid ${header.kid} is in the JWKS`);
  const [h, p, s] = jwt.split('.');
  const data = Buffer.from(`${h}.${p}`);
  const sig = Buffer.from(s, 'base64url');
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  let good;
  if (header.alg === 'RS256') good = crypto.verify('sha256', data, key, sig);
  else if (header.alg === 'ES256') good = crypto.verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig);
  else if (header.alg === 'EdDSA') good = crypto.verify(null, data, key, sig);
  else assert.fail(`unexpected alg ${header.alg}`);
  assert.ok(good, 'the JWT signature verifies with the published key');
  return payload;
}

// ---------------------------------------------------------------------------------------
// Cookie mode
// ---------------------------------------------------------------------------------------

test('cookie: sign-up signs in (autoSignIn) and get-session shows that session and user', async () => {
  const { client, jar } = cookieClient();
  const email = freshEmail('cookie-signup');
  const up = await signUp(client, email.toUpperCase(), { image: 'https://example.com/w.png' });
  assertUser(up.user, { email, name: 'Willow Rosenberg', image: 'https://example.com/w.png' });
  assert.equal(typeof up.token, 'string');
  assert.equal(jar.cookies.get(SESSION_COOKIE), up.token, 'the session cookie holds the token');
  const cookie = jar.seen.find((c) => c.startsWith(`${SESSION_COOKIE}=`));
  for (const attr of ['HttpOnly', 'Secure', 'SameSite=Lax', 'Path=/']) {
    assert.ok(cookie.split('; ').includes(attr), `${attr} in ${cookie}`);
  }

  const s = await currentSession(client);
  assert.equal(s.user.id, up.user.id);
  assert.equal(s.user.email, email);
  assert.equal(s.session.userId, up.user.id);
  assert.equal(s.session.token, up.token);
  assert.ok(s.session.expiresAt instanceof Date && s.session.expiresAt > new Date());

  // The same address again: Better Auth's answer with autoSignIn.
  const again = await client.signUp.email({ name: 'X', email, password: PASSWORD });
  failed(again, 422, 'USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL', 'duplicate sign-up');
  assert.equal(jar.cookies.get(SESSION_COOKIE), up.token, 'the session is untouched');

  failed(
    await client.signUp.email({ name: 'X', email: freshEmail('short'), password: 'short' }),
    400,
    'PASSWORD_TOO_SHORT',
    'weak password',
  );
  failed(
    await client.signUp.email({ name: 'X', email: 'not-an-address', password: PASSWORD }),
    400,
    'INVALID_EMAIL',
    'bad address',
  );
});

test('cookie: sign-in, and a wrong password or unknown address fail alike', async () => {
  const email = freshEmail('cookie-signin');
  await signUp(cookieClient().client, email);

  const { client, jar } = cookieClient();
  failed(
    await client.signIn.email({ email, password: 'not the password' }),
    401,
    'INVALID_EMAIL_OR_PASSWORD',
    'wrong password',
  );
  failed(
    await client.signIn.email({ email: freshEmail('nobody'), password: PASSWORD }),
    401,
    'INVALID_EMAIL_OR_PASSWORD',
    'unknown address',
  );
  assert.equal(jar.cookies.size, 0, 'no cookie after failed sign-ins');
  assert.equal(await currentSession(client), null);

  const inn = ok(await client.signIn.email({ email, password: PASSWORD }), 'sign-in');
  assert.equal(inn.redirect, false);
  assert.equal(inn.user.email, email);
  assert.equal(jar.cookies.get(SESSION_COOKIE), inn.token);
  const s = await currentSession(client);
  assert.equal(s.user.id, inn.user.id);
  assert.equal(s.session.token, inn.token);

  // callbackURL on a trusted origin: `{redirect: true, url}` as Better Auth answers.
  const { client: c2 } = cookieClient();
  const cb = ok(
    await c2.signIn.email({ email, password: PASSWORD, callbackURL: `${ORIGIN}/dashboard` }),
    'sign-in with callbackURL',
  );
  assert.equal(cb.redirect, true);
  assert.equal(cb.url, `${ORIGIN}/dashboard`);
  failed(
    await cookieClient().client.signIn.email({
      email,
      password: PASSWORD,
      callbackURL: 'https://evil.example/steal',
    }),
    403,
    'INVALID_CALLBACK_URL',
    'foreign callbackURL',
  );
});

test('cookie: list-sessions, revoke-session, revoke-other-sessions, revoke-sessions', async () => {
  const email = freshEmail('cookie-sessions');
  const a = cookieClient();
  await signUp(a.client, email);
  const devices = [cookieClient(), cookieClient(), cookieClient()];
  for (const d of devices) ok(await d.client.signIn.email({ email, password: PASSWORD }), 'sign-in');
  const ids = [];
  for (const d of [a, ...devices]) ids.push((await currentSession(d.client)).session.id);
  assert.equal(new Set(ids).size, 4, 'four distinct sessions');

  const listed = ok(await a.client.listSessions(), 'list-sessions');
  assert.deepEqual(listed.map((s) => s.id).sort(), [...ids].sort());
  for (const s of listed) {
    assert.equal(s.userId, listed[0].userId);
    assert.ok(s.expiresAt instanceof Date && s.createdAt instanceof Date);
  }

  // revoke-session with an id from list-sessions: that device is signed out for real.
  assert.deepEqual(ok(await a.client.revokeSession({ token: ids[1] }), 'revoke-session'), { status: true });
  assert.equal(await currentSession(devices[0].client), null, 'revoked session is gone');
  assert.notEqual(await currentSession(devices[1].client), null, 'the others stay');
  const after1 = ok(await a.client.listSessions(), 'list-sessions').map((s) => s.id);
  assert.ok(!after1.includes(ids[1]) && after1.length === 3);

  // revoke-other-sessions: everything but the caller's.
  assert.deepEqual(ok(await a.client.revokeOtherSessions(), 'revoke-other-sessions'), { status: true });
  assert.equal(await currentSession(devices[1].client), null);
  assert.equal(await currentSession(devices[2].client), null);
  assert.equal((await currentSession(a.client)).session.id, ids[0], 'the caller keeps its session');
  assert.deepEqual(ok(await a.client.listSessions(), 'list-sessions').map((s) => s.id), [ids[0]]);

  // revoke-sessions: all of them, the caller's included; its cookie is cleared.
  const again = cookieClient();
  ok(await again.client.signIn.email({ email, password: PASSWORD }), 'sign-in');
  const token = a.jar.cookies.get(SESSION_COOKIE);
  assert.deepEqual(ok(await a.client.revokeSessions(), 'revoke-sessions'), { status: true });
  assert.equal(a.jar.cookies.has(SESSION_COOKIE), false, 'cookie cleared');
  assert.equal(await currentSession(again.client), null);
  const probe = bearerClient();
  probe.state.token = token;
  assert.equal(await currentSession(probe.client), null, 'the old token is dead server-side too');
  failed(await a.client.listSessions(), 401, 'UNAUTHORIZED', 'list-sessions without a session');
});

test('cookie: sign-out ends the session on the server, not only in the jar', async () => {
  const { client, jar } = cookieClient();
  await signUp(client, freshEmail('cookie-signout'));
  const token = jar.cookies.get(SESSION_COOKIE);
  assert.deepEqual(ok(await client.signOut(), 'sign-out'), { success: true });
  assert.equal(jar.cookies.has(SESSION_COOKIE), false, 'cookie cleared');
  assert.equal(await currentSession(client), null);
  const probe = bearerClient();
  probe.state.token = token;
  assert.equal(await currentSession(probe.client), null, 'the token no longer works');
  failed(await client.signOut(), 400, 'FAILED_TO_GET_SESSION', 'sign-out without a session');
});

test('cookie: CORS lets only the trusted origin read answers; a foreign Origin is refused', async () => {
  const email = freshEmail('cookie-origin');
  const good = cookieClient();
  await signUp(good.client, email);
  const cookie = good.jar.cookies.get(SESSION_COOKIE);

  // A page on another origin with the same cookie: its browser's preflight is refused,
  // and even a GET (no preflight) may not be read by its script.
  const evil = cookieClient('http://evil.example');
  evil.jar.cookies.set(SESSION_COOKIE, cookie);
  await assert.rejects(evil.client.updateUser({ name: 'Mallory' }), /CORS preflight/);
  await assert.rejects(evil.client.getSession(), /may not be read/);

  // Requests a browser sends without asking (or a client that is no browser): the
  // server's Origin check refuses them and nothing changes.
  const raw = cookieClient('http://evil.example', { cors: false });
  raw.jar.cookies.set(SESSION_COOKIE, cookie);
  failed(await raw.client.signOut(), 403, 'INVALID_ORIGIN', 'sign-out from a foreign origin');
  failed(await raw.client.updateUser({ name: 'Mallory' }), 403, 'INVALID_ORIGIN', 'update-user');
  const noOrigin = cookieClient(null);
  noOrigin.jar.cookies.set(SESSION_COOKIE, cookie);
  failed(await noOrigin.client.revokeSessions(), 403, 'MISSING_OR_NULL_ORIGIN', 'no Origin');
  const s = await currentSession(good.client);
  assert.notEqual(s, null, 'still signed in');
  assert.equal(s.user.name, 'Willow Rosenberg', 'name unchanged');
});

test('cookie: change-password, with and without revokeOtherSessions', async () => {
  const email = freshEmail('cookie-password');
  const a = cookieClient();
  await signUp(a.client, email);
  const b = cookieClient();
  ok(await b.client.signIn.email({ email, password: PASSWORD }), 'sign-in');

  failed(
    await a.client.changePassword({ currentPassword: 'wrong password!', newPassword: NEW_PASSWORD }),
    400,
    'INVALID_PASSWORD',
    'wrong current password',
  );
  failed(
    await a.client.changePassword({ currentPassword: PASSWORD, newPassword: 'short' }),
    400,
    'PASSWORD_TOO_SHORT',
    'new password too short',
  );
  failed(
    await a.client.changePassword({ currentPassword: PASSWORD, newPassword: 'x'.repeat(129) }),
    400,
    'PASSWORD_TOO_LONG',
    'new password too long',
  );
  ok(await cookieClient().client.signIn.email({ email, password: PASSWORD }), 'password unchanged so far');

  // Without revokeOtherSessions: token null, every session stays.
  const oldId = (await currentSession(a.client)).session.id;
  const kept = ok(
    await a.client.changePassword({ currentPassword: PASSWORD, newPassword: NEW_PASSWORD }),
    'change-password',
  );
  assert.equal(kept.token, null);
  assert.equal(kept.user.email, email);
  assert.equal((await currentSession(a.client)).session.id, oldId);
  assert.notEqual(await currentSession(b.client), null);
  failed(
    await cookieClient().client.signIn.email({ email, password: PASSWORD }),
    401,
    'INVALID_EMAIL_OR_PASSWORD',
    'old password after change-password',
  );
  ok(await cookieClient().client.signIn.email({ email, password: NEW_PASSWORD }), 'new password');

  // With revokeOtherSessions: the other devices are out, the caller gets a new session.
  const third = 'a third passphrase, long enough';
  const revoked = ok(
    await a.client.changePassword({
      currentPassword: NEW_PASSWORD,
      newPassword: third,
      revokeOtherSessions: true,
    }),
    'change-password revokeOtherSessions',
  );
  assert.equal(typeof revoked.token, 'string');
  assert.equal(a.jar.cookies.get(SESSION_COOKIE), revoked.token, 'the new session cookie');
  const now = await currentSession(a.client);
  assert.notEqual(now.session.id, oldId, 'a new session');
  assert.equal(now.session.token, revoked.token);
  assert.equal(await currentSession(b.client), null, 'the other device is signed out');
  assert.deepEqual(ok(await a.client.listSessions(), 'list-sessions').map((s) => s.id), [now.session.id]);
  failed(
    await cookieClient().client.signIn.email({ email, password: NEW_PASSWORD }),
    401,
    'INVALID_EMAIL_OR_PASSWORD',
    'previous password',
  );
  ok(await cookieClient().client.signIn.email({ email, password: third }), 'third password');
});

test('cookie: update-user is visible in get-session', async () => {
  const { client } = cookieClient();
  const email = freshEmail('cookie-update');
  const up = await signUp(client, email);
  const before = (await currentSession(client)).user.updatedAt;
  await new Promise((r) => setTimeout(r, 1100)); // updatedAt has second resolution

  assert.deepEqual(
    ok(await client.updateUser({ name: 'Willow R.', image: 'https://example.com/new.png' }), 'update-user'),
    { status: true },
  );
  const s = await currentSession(client);
  assertUser(s.user, { email, name: 'Willow R.', image: 'https://example.com/new.png' });
  assert.equal(s.user.id, up.user.id);
  assert.ok(s.user.updatedAt > before, 'updatedAt moved');

  ok(await client.updateUser({ image: null }), 'update-user image null');
  assert.equal((await currentSession(client)).user.image, null);

  failed(await client.updateUser({ email: 'other@example.com' }), 400, 'EMAIL_CAN_NOT_BE_UPDATED', 'email');
  // With an empty body the client's proxy would send a GET; force its POST.
  failed(
    await client.updateUser({ fetchOptions: { method: 'POST' } }),
    400,
    'NO_FIELDS_TO_UPDATE',
    'empty update',
  );
  assert.equal((await currentSession(client)).user.email, email);
  assert.equal((await currentSession(client)).user.name, 'Willow R.');
});

test('cookie: jwt plugin client: /token is a JWT that verifies with /jwks', async () => {
  const { client } = cookieClient();
  const up = await signUp(client, freshEmail('cookie-jwt'));
  const { session } = await currentSession(client);
  const { token } = ok(await client.token(), 'token');
  const jwks = ok(await client.jwks(), 'jwks');
  const claims = verifyJwt(token, jwks);
  assert.equal(claims.iss, ISSUER);
  assert.equal(claims.sub, up.user.id);
  assert.equal(claims.sid, session.id);
  assert.equal(claims.client_id, JWT_CLIENT_ID);
  assert.ok(claims.exp > Date.now() / 1000);

  await client.signOut();
  failed(await client.token(), 401, 'UNAUTHORIZED', 'token without a session');
});

// ---------------------------------------------------------------------------------------
// Bearer mode
// ---------------------------------------------------------------------------------------

test('bearer: sign-up and sign-in hand out set-auth-token, which get-session accepts', async () => {
  const email = freshEmail('bearer-signup');
  const a = bearerClient();
  const up = ok(
    await a.client.signUp.email({ name: 'Tara Maclay', email, password: PASSWORD, ...withOrigin }),
    'sign-up',
  );
  assert.equal(a.state.token, up.token, 'set-auth-token is the session token');
  const s = await currentSession(a.client);
  assert.equal(s.user.id, up.user.id);
  assert.equal(s.user.name, 'Tara Maclay');
  assert.equal(s.session.token, up.token);

  const b = bearerClient();
  failed(
    await b.client.signIn.email({ email, password: 'not the password', ...withOrigin }),
    401,
    'INVALID_EMAIL_OR_PASSWORD',
    'wrong password',
  );
  assert.equal(b.state.token, '', 'no token after a failed sign-in');
  const inn = ok(await b.client.signIn.email({ email, password: PASSWORD, ...withOrigin }), 'sign-in');
  assert.equal(b.state.token, inn.token);
  assert.notEqual(inn.token, up.token);
  assert.equal((await currentSession(b.client)).user.id, up.user.id);

  // Without Origin, Node's `Sec-Fetch-Mode: cors` makes a first login a CSRF candidate.
  failed(
    await bearerClient().client.signIn.email({ email, password: PASSWORD }),
    403,
    'MISSING_OR_NULL_ORIGIN',
    'sign-in with Fetch Metadata and no Origin',
  );
  // A token that is no session: get-session answers null, not an error.
  const stranger = bearerClient();
  stranger.state.token = 'not-a-session-token';
  assert.equal(await currentSession(stranger.client), null);
});

test('bearer: sessions, revocation and sign-out without any Origin', async () => {
  const email = freshEmail('bearer-sessions');
  const a = bearerClient();
  await a.client.signUp.email({ name: 'Tara', email, password: PASSWORD, ...withOrigin });
  const others = [bearerClient(), bearerClient(), bearerClient()];
  for (const o of others) ok(await o.client.signIn.email({ email, password: PASSWORD, ...withOrigin }), 'sign-in');
  // A browser session of the same user: one core, one session list.
  const web = cookieClient();
  ok(await web.client.signIn.email({ email, password: PASSWORD }), 'cookie sign-in');

  const ids = [];
  for (const c of [a, ...others, web]) ids.push((await currentSession(c.client)).session.id);
  const listed = ok(await a.client.listSessions(), 'list-sessions').map((s) => s.id);
  assert.deepEqual(listed.sort(), [...ids].sort());

  ok(await a.client.revokeSession({ token: ids[4] }), 'revoke the browser session by id');
  assert.equal(await currentSession(web.client), null);
  ok(await a.client.revokeSession({ token: others[0].state.token }), 'revoke by session token');
  assert.equal(await currentSession(others[0].client), null);
  assert.notEqual(await currentSession(others[1].client), null);

  ok(await a.client.revokeOtherSessions(), 'revoke-other-sessions');
  assert.equal(await currentSession(others[1].client), null);
  assert.equal(await currentSession(others[2].client), null);
  assert.equal((await currentSession(a.client)).session.id, ids[0]);

  ok(await others[1].client.signIn.email({ email, password: PASSWORD, ...withOrigin }), 'sign-in again');
  ok(await a.client.revokeSessions(), 'revoke-sessions');
  assert.equal(await currentSession(a.client), null);
  assert.equal(await currentSession(others[1].client), null);

  const c = bearerClient();
  ok(await c.client.signIn.email({ email, password: PASSWORD, ...withOrigin }), 'sign-in');
  assert.deepEqual(ok(await c.client.signOut(), 'sign-out'), { success: true });
  assert.equal(await currentSession(c.client), null, 'the bearer token is dead after sign-out');
  failed(await c.client.signOut(), 400, 'FAILED_TO_GET_SESSION', 'second sign-out');
});

test('bearer: change-password with revokeOtherSessions replaces the token via set-auth-token', async () => {
  const email = freshEmail('bearer-password');
  const a = bearerClient();
  await a.client.signUp.email({ name: 'Tara', email, password: PASSWORD, ...withOrigin });
  const b = bearerClient();
  await b.client.signIn.email({ email, password: PASSWORD, ...withOrigin });
  const oldToken = a.state.token;

  failed(
    await a.client.changePassword({ currentPassword: 'wrong password!', newPassword: NEW_PASSWORD }),
    400,
    'INVALID_PASSWORD',
    'wrong current password',
  );
  assert.equal(a.state.token, oldToken);

  const r = ok(
    await a.client.changePassword({
      currentPassword: PASSWORD,
      newPassword: NEW_PASSWORD,
      revokeOtherSessions: true,
    }),
    'change-password',
  );
  assert.equal(a.state.token, r.token, 'the client picked up the new token');
  assert.notEqual(r.token, oldToken);
  assert.equal((await currentSession(a.client)).session.token, r.token);
  assert.equal(await currentSession(b.client), null, 'the other device is out');
  const probe = bearerClient();
  probe.state.token = oldToken;
  assert.equal(await currentSession(probe.client), null, 'the replaced token is dead');

  failed(
    await bearerClient().client.signIn.email({ email, password: PASSWORD, ...withOrigin }),
    401,
    'INVALID_EMAIL_OR_PASSWORD',
    'old password',
  );
  ok(await bearerClient().client.signIn.email({ email, password: NEW_PASSWORD, ...withOrigin }), 'new password');
});

test('bearer: update-user and the jwt plugin client', async () => {
  const a = bearerClient();
  const email = freshEmail('bearer-update');
  const up = ok(
    await a.client.signUp.email({ name: 'Tara', email, password: PASSWORD, ...withOrigin }),
    'sign-up',
  );
  assert.deepEqual(ok(await a.client.updateUser({ name: 'Tara Maclay' }), 'update-user'), { status: true });
  const s = await currentSession(a.client);
  assertUser(s.user, { email, name: 'Tara Maclay' });
  failed(await a.client.updateUser({ email: 'x@example.com' }), 400, 'EMAIL_CAN_NOT_BE_UPDATED', 'email');

  const { token } = ok(await a.client.token(), 'token');
  const claims = verifyJwt(token, ok(await a.client.jwks(), 'jwks'));
  assert.equal(claims.sub, up.user.id);
  assert.equal(claims.sid, s.session.id);
  assert.equal(claims.aud, JWT_CLIENT_ID);
  assert.equal(claims.scope, 'openid profile email');
  // The JWT is an OIDC access token: /userinfo releases the updated name for it.
  const ui = await fetch(`${ISSUER}/userinfo`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(ui.status, 200);
  const info = await ui.json();
  assert.equal(info.sub, up.user.id);
  assert.equal(info.name, 'Tara Maclay');
  assert.equal(info.email, email);

  const none = bearerClient();
  failed(await none.client.token(), 401, 'UNAUTHORIZED', 'token without a session');
  failed(
    await none.client.updateUser({ name: 'x', ...withOrigin }),
    401,
    'UNAUTHORIZED',
    'update-user without a session',
  );
});
