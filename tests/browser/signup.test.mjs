// Headless-Chromium test of the hosted sign-up page (/sign-up), run by .ci/browser
// against its server (sign_up.mode = "open", default password policy, no terms):
// from the login page of an authorization request, "Create an account", a refused
// attempt shown inline with the values kept, the account created, "Continue" back to
// the same login page, and the new account signs in and reaches the client.
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
const FP_ID = env('KLARD_FIRST_PARTY_CLIENT_ID');
const CHROMIUM = env('CHROMIUM_PATH', '/usr/bin/chromium');
const SHOTS = env('SCREENSHOT_DIR', path.join(here, 'screenshots'));
const CALLBACK_PATH = new URL(REDIRECT_URI).pathname;
const b64url = (buf) => Buffer.from(buf).toString('base64url');

let context;
let userDataDir;
after(async () => {
  if (context) await context.close().catch(() => {});
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
});

test('sign-up from the login page: inline error, account created, back to sign in', async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'klard-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      `--explicitly-allowed-ports=${new URL(REDIRECT_URI).port || 80}`,
    ],
  });
  await context.route(
    (url) => !/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(url.hostname),
    (route) => route.abort('blockedbyclient'),
  );
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15_000);
  // The client's callback is the target of a redirect, which route() never sees:
  // answer it through the DevTools Fetch domain (as pages.test.mjs does).
  const callbacks = [];
  const cdp = await context.newCDPSession(page);
  cdp.on('Fetch.requestPaused', (e) => {
    callbacks.push(e.request.url);
    cdp
      .send('Fetch.fulfillRequest', {
        requestId: e.requestId,
        responseCode: 200,
        responseHeaders: [{ name: 'content-type', value: 'text/html; charset=utf-8' }],
        body: Buffer.from('<!doctype html><title>cb</title><p id="cb">callback</p>').toString('base64'),
      })
      .catch(() => {});
  });
  await cdp.send('Fetch.enable', {
    patterns: [{ urlPattern: `${new URL(REDIRECT_URI).origin}/*`, requestStage: 'Request' }],
  });

  const state = b64url(crypto.randomBytes(16));
  const verifier = b64url(crypto.randomBytes(32));
  const u = new URL(`${ISSUER}/authorize`);
  u.search = new URLSearchParams({
    response_type: 'code',
    client_id: FP_ID,
    redirect_uri: REDIRECT_URI,
    scope: 'openid email',
    state,
    code_challenge: b64url(crypto.createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256',
  }).toString();
  await page.goto(u.toString());
  await page.locator('form.login-form input[name=username]').waitFor();
  const loginUrl = page.url();

  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.waitForURL((x) => x.pathname === '/sign-up');
  await page.getByRole('heading', { name: 'Create an account' }).waitFor();
  const email = `grace.${crypto.randomBytes(4).toString('hex')}@example.com`;
  await page.getByLabel('Name').fill('Grace Hopper');
  await page.getByLabel('Email').fill(email);
  // Too short for the default policy: the browser's own minlength check would stop the
  // submit, so it is lifted to see the server's answer.
  await page.locator('#password').evaluate((e) => e.removeAttribute('minlength'));
  await page.getByLabel('Password').fill('short');
  await page.getByRole('button', { name: 'Create account' }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.innerText(), /Password too short/);
  assert.equal(await page.getByLabel('Email').inputValue(), email, 'the email is kept');
  assert.equal(await page.getByLabel('Password').inputValue(), '', 'the password is not echoed');
  assert.equal(await page.locator('#password').getAttribute('aria-invalid'), 'true');
  await page.screenshot({ path: path.join(SHOTS, 'signup-error-phone.png'), fullPage: true });

  const password = 'nobody ever uses COBOL 1959';
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.locator('#signed-up').waitFor();
  await page.screenshot({ path: path.join(SHOTS, 'signup-done-phone.png'), fullPage: true });
  await page.getByRole('link', { name: 'Continue' }).click();
  await page.locator('form.login-form input[name=username]').waitFor();
  assert.equal(page.url(), loginUrl, 'Continue returns to the same login page');

  await page.locator('input[name=username]').fill(email);
  await page.locator('input[name=password]').fill(password);
  await page.locator('form.login-form button[type=submit]').click();
  await page.locator('#cb').waitFor();
  const cb = new URL(callbacks.find((c) => new URL(c).pathname === CALLBACK_PATH));
  assert.equal(cb.searchParams.get('state'), state);
  assert.ok(cb.searchParams.get('code'), `a code (got ${cb.search})`);
});
