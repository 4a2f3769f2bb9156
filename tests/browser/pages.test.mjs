// Headless-Chromium tests of klard-auth's hosted login and consent pages.
//
// Run by .ci/browser, which starts a server and passes it in through the environment:
//   KLARD_ISSUER, KLARD_REDIRECT_URI, KLARD_USER_EMAIL, KLARD_USER_PASSWORD,
//   KLARD_WEB_CLIENT_ID, KLARD_WEB_CLIENT_SECRET, KLARD_WEB_CLIENT_NAME,
//   KLARD_FIRST_PARTY_CLIENT_ID, CHROMIUM_PATH (default /usr/bin/chromium),
//   SCREENSHOT_DIR (default tests/browser/screenshots, ignored by git).
//   KLARD_MAILDIR: the maildir (new/ holds one file per message) of the SMTP server
//   the server sends its mail to.
// Only loopback is reached: every other request the page makes is aborted.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

function env(name, fallback) {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === '') throw new Error(`${name} is not set (run .ci/browser)`);
  return v;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const ISSUER = env('KLARD_ISSUER').replace(/\/$/, '');
const REDIRECT_URI = env('KLARD_REDIRECT_URI', 'http://127.0.0.1:9/callback');
const USER = env('KLARD_USER_EMAIL');
const PASSWORD = env('KLARD_USER_PASSWORD');
const WEB_ID = env('KLARD_WEB_CLIENT_ID');
const WEB_SECRET = env('KLARD_WEB_CLIENT_SECRET');
const WEB_NAME = env('KLARD_WEB_CLIENT_NAME', 'Klard Test App');
const FP_ID = env('KLARD_FIRST_PARTY_CLIENT_ID');
const CHROMIUM = env('CHROMIUM_PATH', '/usr/bin/chromium');
const SHOTS = env('SCREENSHOT_DIR', path.join(here, 'screenshots'));
const CALLBACK_ORIGIN = new URL(REDIRECT_URI).origin;
const CALLBACK_PATH = new URL(REDIRECT_URI).pathname;

const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
const DESKTOP = { viewport: { width: 1280, height: 800 } };
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // The callback is on port 9, which Chromium refuses as an unsafe port before any
  // request interception; allow it so that session() can answer it.
  `--explicitly-allowed-ports=${new URL(REDIRECT_URI).port || 80}`,
];

const b64url = (buf) => Buffer.from(buf).toString('base64url');

let discovery;
async function metadata() {
  if (!discovery) {
    const r = await fetch(`${ISSUER}/.well-known/openid-configuration`);
    assert.equal(r.status, 200, 'discovery document');
    discovery = await r.json();
  }
  return discovery;
}

/**
 * An authorization request with fresh state, nonce and S256 PKCE. The server remembers
 * consent per user and client, so tests after the first that need the consent page
 * ask for it with prompt=consent.
 */
async function authzRequest(clientId, extra = {}) {
  const verifier = b64url(crypto.randomBytes(32));
  const challenge = b64url(crypto.createHash('sha256').update(verifier).digest());
  const state = b64url(crypto.randomBytes(16));
  const nonce = b64url(crypto.randomBytes(16));
  const u = new URL((await metadata()).authorization_endpoint);
  u.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    scope: 'openid email profile',
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...extra,
  }).toString();
  return { url: u.toString(), verifier, state, nonce };
}

const open = new Set();
after(async () => {
  for (const s of open) await s.close();
});

const CALLBACK_BODY = '<!doctype html><html lang="en"><title>callback</title><p id="cb">callback reached</p></html>';

/**
 * A fresh Chromium with its own temporary profile. Anything not on loopback is aborted
 * (context.route). The client's callback is answered with a tiny page through the DevTools
 * Fetch domain instead: the browser reaches it only through the server's 303 redirects,
 * and Playwright's page.route()/context.route() by design never see a request that is
 * the target of a redirect (https://playwright.dev/docs/api/class-page#page-route), so
 * with route() alone the browser would really connect to 127.0.0.1:9 and land on an
 * error page whose URL merely looks like the callback.
 */
async function session(contextOptions = DESKTOP) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'klard-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    ...contextOptions,
  });
  await context.route(
    (url) => !/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(url.hostname),
    (route) => route.abort('blockedbyclient'),
  );
  const page = context.pages()[0] ?? (await context.newPage());
  const callbacks = [];
  const cdp = await context.newCDPSession(page);
  cdp.on('Fetch.requestPaused', (e) => {
    const isCallback = new URL(e.request.url).pathname === CALLBACK_PATH;
    if (isCallback) callbacks.push(e.request.url);
    const fulfilled = isCallback
      ? { responseCode: 200, body: CALLBACK_BODY, type: 'text/html; charset=utf-8' }
      : { responseCode: 404, body: '', type: 'text/plain' };
    cdp
      .send('Fetch.fulfillRequest', {
        requestId: e.requestId,
        responseCode: fulfilled.responseCode,
        responseHeaders: [{ name: 'content-type', value: fulfilled.type }],
        body: Buffer.from(fulfilled.body).toString('base64'),
      })
      .catch(() => {});
  });
  await cdp.send('Fetch.enable', { patterns: [{ urlPattern: `${CALLBACK_ORIGIN}/*`, requestStage: 'Request' }] });
  page.setDefaultTimeout(15_000);
  const visited = [];
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) visited.push(f.url());
  });
  const s = {
    context,
    page,
    callbacks,
    visited,
    async close() {
      open.delete(s);
      await context.close().catch(() => {});
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
  open.add(s);
  return s;
}

function isLoginPage(page) {
  return page.locator('form.login-form input[name=username]').waitFor();
}

/** Waits until the client's callback page (served by session()) is really shown. */
async function waitForCallback(page) {
  await page.waitForURL((u) => u.href.startsWith(REDIRECT_URI));
  await page.locator('#cb').waitFor();
  return new URL(page.url());
}

/** Sign in with fill/click (tests that are not about the keyboard). */
async function signIn(page, password = PASSWORD) {
  await isLoginPage(page);
  await page.locator('input[name=username]').fill(USER);
  await page.locator('input[name=password]').fill(password);
  await page.locator('form.login-form button[type=submit]').click();
}

async function activeDescription(page) {
  return page.evaluate(() => {
    const e = document.activeElement;
    if (!e || e === document.body) return 'body';
    const attrs = ['id', 'name', 'value'].filter((a) => e.getAttribute(a)).map((a) => `${a}=${e.getAttribute(a)}`);
    return `${e.tagName.toLowerCase()}[${attrs.join(' ')}]`;
  });
}

/** The focus ring the page draws on its focused element. */
async function focusRing(page) {
  return page.evaluate(() => {
    const e = document.activeElement;
    const cs = getComputedStyle(e);
    return {
      focusVisible: e.matches(':focus-visible'),
      outlineStyle: cs.outlineStyle,
      outlineWidth: parseFloat(cs.outlineWidth) || 0,
      boxShadow: cs.boxShadow,
    };
  });
}

function assertFocusRing(ring, what) {
  assert.ok(ring.focusVisible, `${what} should match :focus-visible after keyboard navigation`);
  const outlined = ring.outlineStyle !== 'none' && ring.outlineWidth > 0;
  assert.ok(
    outlined,
    `${what} has no visible focus indicator (outline-style ${ring.outlineStyle}, outline-width ${ring.outlineWidth}px, box-shadow ${ring.boxShadow})`,
  );
}

function assertCallback(url, req, { error } = {}) {
  assert.equal(url.origin + url.pathname, REDIRECT_URI, 'redirected to the registered redirect_uri');
  const q = url.searchParams;
  if (error) {
    assert.equal(q.get('error'), error, `error=${error} (got ${url.search})`);
    assert.equal(q.get('code'), null, 'no code with an error');
  } else {
    assert.equal(q.get('error'), null, `no error (got ${url.search})`);
    assert.ok(q.get('code'), 'callback has a code');
  }
  assert.equal(q.get('state'), req.state, 'state is returned unchanged');
  assert.equal(q.get('iss'), ISSUER, 'iss is the issuer (RFC 9207)');
}

fs.mkdirSync(SHOTS, { recursive: true });

test('phone: login page is accessible and sign-in + consent work with the keyboard only', async () => {
  const s = await session(PHONE);
  const { page } = s;
  const req = await authzRequest(WEB_ID);
  await page.goto(req.url);
  await isLoginPage(page);

  // Page basics.
  const lang = await page.getAttribute('html', 'lang');
  assert.ok(lang && lang.trim(), 'html[lang] is set');
  const vp = await page.locator('meta[name=viewport]').getAttribute('content');
  assert.match(vp ?? '', /width=device-width/, 'viewport meta with width=device-width');

  // Every visible form control has a label (for=, wrapping <label>, or aria-labelledby).
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea')]
      .filter((e) => e.type !== 'hidden')
      .filter((e) => {
        const hasLabel = e.labels && [...e.labels].some((l) => l.textContent.trim());
        const labelledBy = (e.getAttribute('aria-labelledby') || '')
          .split(/\s+/)
          .some((id) => id && document.getElementById(id)?.textContent.trim());
        return !hasLabel && !labelledBy;
      })
      .map((e) => e.name || e.id || e.outerHTML),
  );
  assert.deepEqual(unlabelled, [], 'inputs without an associated <label>');
  assert.equal(await page.getAttribute('input[name=username]', 'autocomplete'), 'username');
  assert.equal(await page.getAttribute('input[name=password]', 'autocomplete'), 'current-password');

  // Fits a phone: no horizontal scrolling.
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  assert.ok(scrollWidth <= innerWidth, `no horizontal overflow (scrollWidth ${scrollWidth} > innerWidth ${innerWidth})`);

  // Who is asking, and their documents.
  await assert.doesNotReject(page.getByText(WEB_NAME, { exact: true }).first().waitFor({ state: 'visible' }), 'client name visible');
  const privacy = page.getByRole('link', { name: /privacy/i });
  const terms = page.getByRole('link', { name: /terms/i });
  assert.equal(await privacy.count(), 1, 'one privacy policy link');
  assert.equal(await terms.count(), 1, 'one terms of service link');
  assert.equal(await privacy.getAttribute('href'), 'https://app.example.com/privacy');
  assert.equal(await terms.getAttribute('href'), 'https://app.example.com/terms');

  const loginShot = path.join(SHOTS, 'login-phone.png');
  await page.screenshot({ path: loginShot, fullPage: true });
  console.log(`  screenshot: ${loginShot}`);

  // Keyboard only from here on.
  let how = 'autofocus';
  for (let i = 0; (await activeDescription(page)) !== 'input[id=username name=username]'; i++) {
    assert.ok(i < 10, `Tab never reached the username field (focus on ${await activeDescription(page)})`);
    await page.keyboard.press('Tab');
    how = `${i + 1} Tab press(es)`;
  }
  console.log(`  username focused by ${how}`);
  await page.keyboard.type(USER);
  await page.keyboard.press('Tab');
  assert.equal(await activeDescription(page), 'input[id=password name=password]', 'Tab from username goes to password');
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Enter');

  // Consent page.
  const allow = page.locator('button[type=submit][name=decision][value=allow]');
  await allow.waitFor();
  assert.match(await page.locator('h1').innerText(), new RegExp(WEB_NAME), 'consent heading names the client');
  const { scrollWidth: sw2, innerWidth: iw2 } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  assert.ok(sw2 <= iw2, `consent page: no horizontal overflow (scrollWidth ${sw2} > innerWidth ${iw2})`);
  const consentShot = path.join(SHOTS, 'consent-phone.png');
  await page.screenshot({ path: consentShot, fullPage: true });
  console.log(`  screenshot: ${consentShot}`);

  const path_ = [];
  for (let i = 0; ; i++) {
    assert.ok(i < 15, `Tab never reached Allow (went through ${path_.join(' -> ')})`);
    await page.keyboard.press('Tab');
    const d = await activeDescription(page);
    path_.push(d);
    if (d === 'button[name=decision value=allow]') break;
  }
  console.log(`  Tab order to Allow: ${path_.join(' -> ')}`);
  assertFocusRing(await focusRing(page), 'the Allow button');
  await page.keyboard.press('Enter');

  const cb = await waitForCallback(page);
  assertCallback(cb, req);

  // The code is real: exchange it (client_secret_basic + PKCE) and check the ID token.
  const md = await metadata();
  const r = await fetch(md.token_endpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(WEB_ID)}:${encodeURIComponent(WEB_SECRET)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: cb.searchParams.get('code'),
      redirect_uri: REDIRECT_URI,
      code_verifier: req.verifier,
    }),
  });
  const tok = await r.json();
  assert.equal(r.status, 200, `token exchange: ${JSON.stringify(tok)}`);
  const claims = JSON.parse(Buffer.from(tok.id_token.split('.')[1], 'base64url').toString());
  assert.equal(claims.iss, ISSUER);
  assert.equal(claims.aud === WEB_ID || (Array.isArray(claims.aud) && claims.aud.includes(WEB_ID)), true, 'aud');
  assert.equal(claims.nonce, req.nonce, 'nonce round-trips into the ID token');
  await s.close();
});

test('wrong password: role=alert error, stays on the login page, focus ring visible', async () => {
  const s = await session(DESKTOP);
  const { page } = s;
  const req = await authzRequest(WEB_ID, { prompt: 'consent' });
  await page.goto(req.url);
  await isLoginPage(page);
  const loginUrl = page.url();
  await page.locator('input[name=username]').focus();
  await page.keyboard.type(USER);
  await page.keyboard.press('Tab');
  await page.keyboard.type(`${PASSWORD}-wrong`);
  const resp = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname.endsWith('/login'));
  await page.keyboard.press('Enter');
  assert.equal((await resp).status(), 400, 'the failed login answers 400');
  await page.waitForLoadState('domcontentloaded');

  const alert = page.getByRole('alert');
  await alert.waitFor({ state: 'visible' });
  const text = (await alert.innerText()).trim();
  assert.ok(text.length > 0, 'the alert has text');
  assert.match(text, /incorrect|invalid|wrong/i, `the alert says what went wrong (got "${text}")`);
  console.log(`  alert: "${text}"`);

  // Still the login page for the same client, ready to try again; nothing reached the client.
  await isLoginPage(page);
  assert.match(new URL(page.url()).pathname, /\/login$/, `on the login page (at ${page.url()}, came from ${loginUrl})`);
  assert.equal(s.callbacks.length, 0, 'the client got nothing');
  assert.equal(await page.inputValue('input[name=username]'), USER, 'the email is kept');
  assert.equal(await page.inputValue('input[name=password]'), '', 'the password is not echoed back');
  const describedBy = await page.getAttribute('input[name=username]', 'aria-describedby');
  const alertId = await alert.getAttribute('id');
  assert.ok(describedBy && alertId && describedBy.split(/\s+/).includes(alertId), 'the field is described by the error');
  for (const f of ['username', 'password']) {
    assert.equal(await page.getAttribute(`input[name=${f}]`, 'aria-invalid'), 'true', `${f} is marked invalid`);
  }
  assert.equal(await activeDescription(page), 'input[id=password name=password]', 'after an error the focus is on the password');

  // Focus indicator: keyboard to each control and look at its outline.
  await page.locator('input[name=username]').focus();
  await page.keyboard.press('Tab');
  assert.equal(await activeDescription(page), 'input[id=password name=password]');
  assertFocusRing(await focusRing(page), 'the password field');
  await page.keyboard.press('Tab');
  assert.match(await activeDescription(page), /^button/, 'Tab from password reaches the submit button');
  assertFocusRing(await focusRing(page), 'the Sign in button');
  const errShot = path.join(SHOTS, 'login-error.png');
  await page.screenshot({ path: errShot, fullPage: true });
  console.log(`  screenshot: ${errShot}`);

  // And the right password still works in the same interaction.
  await page.locator('input[name=password]').fill(PASSWORD);
  await page.locator('form.login-form button[type=submit]').click();
  await page.locator('button[name=decision][value=allow]').waitFor();
  await s.close();
});

test('deny on the consent page returns error=access_denied with the state', async () => {
  const s = await session(DESKTOP);
  const { page } = s;
  const req = await authzRequest(WEB_ID, { prompt: 'consent' });
  await page.goto(req.url);
  await signIn(page);
  const deny = page.locator('button[type=submit][name=decision][value=deny]');
  await deny.waitFor();
  await deny.click();
  const cb = await waitForCallback(page);
  assertCallback(cb, req, { error: 'access_denied' });
  await s.close();
});

test('first-party public client skips consent', async () => {
  const s = await session(DESKTOP);
  const { page } = s;
  const req = await authzRequest(FP_ID);
  await page.goto(req.url);
  await signIn(page);
  const cb = await waitForCallback(page);
  assertCallback(cb, req);
  const consent = s.visited.filter((u) => /\/consent\b/.test(new URL(u).pathname));
  assert.deepEqual(consent, [], 'no consent page was shown');
  assert.equal(await page.locator('button[name=decision]').count(), 0);

  // A public client redeems the code with the verifier alone.
  const r = await fetch((await metadata()).token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: cb.searchParams.get('code'),
      redirect_uri: REDIRECT_URI,
      client_id: FP_ID,
      code_verifier: req.verifier,
    }),
  });
  const tok = await r.json();
  assert.equal(r.status, 200, `token exchange: ${JSON.stringify(tok)}`);
  await s.close();
});

test('cookies set by the server are HttpOnly, Secure and SameSite=Lax', async () => {
  const s = await session(DESKTOP);
  const { page, context } = s;
  const req = await authzRequest(WEB_ID, { prompt: 'consent' });
  await page.goto(req.url);
  await signIn(page);
  await page.locator('button[name=decision][value=allow]').click();
  await waitForCallback(page);

  const host = new URL(ISSUER).hostname;
  const cookies = (await context.cookies()).filter((c) => c.domain.replace(/^\./, '') === host);
  const names = cookies.map((c) => c.name);
  console.log(`  cookies: ${cookies.map((c) => `${c.name} (httpOnly=${c.httpOnly} secure=${c.secure} sameSite=${c.sameSite} path=${c.path})`).join(', ')}`);
  assert.ok(cookies.length >= 2, `expected the browser and session cookies, got [${names}]`);
  assert.ok(names.some((n) => /session/.test(n)), `a session cookie is set (got [${names}])`);
  for (const c of cookies) {
    assert.equal(c.httpOnly, true, `${c.name} is HttpOnly`);
    assert.equal(c.secure, true, `${c.name} is Secure`);
    assert.equal(c.sameSite, 'Lax', `${c.name} is SameSite=Lax`);
  }
  await s.close();
});
