// Headless-Chromium test of the hosted recovery pages: the verification link from the
// sign-up mail, "Forgot password?" from the login page, the reset form from the mailed
// link, all without JavaScript on our side. Mail is read from KLARD_MAILDIR (the
// aiosmtpd maildir of .ci/browser) and parsed with Python's email package, as the Rust
// tests do. Environment: see pages.test.mjs. A fresh account is signed up, so the
// shared user of pages.test.mjs is left alone.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

function env(name, fallback) {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === '') throw new Error(`${name} is not set (run .ci/browser)`);
  return v;
}

const ISSUER = env('KLARD_ISSUER').replace(/\/$/, '');
const REDIRECT_URI = env('KLARD_REDIRECT_URI', 'http://127.0.0.1:9/callback');
const WEB_ID = env('KLARD_WEB_CLIENT_ID');
const MAILDIR = env('KLARD_MAILDIR');
const CHROMIUM = env('CHROMIUM_PATH', '/usr/bin/chromium');
const EMAIL = `recovery-${crypto.randomBytes(6).toString('hex')}@example.com`;
const PASSWORD = 'first passphrase 123';
const NEW_PASSWORD = 'second passphrase 456';

const PARSE = `
import email, email.policy, json, sys
m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)
parts = {p.get_content_type(): p.get_content() for p in m.walk() if not p.is_multipart()}
print(json.dumps({"to": str(m["to"]), "subject": str(m["subject"]), "parts": parts}))
`;

function mails() {
  const dir = path.join(MAILDIR, 'new');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .sort()
    .map((f) => JSON.parse(execFileSync('python3', ['-c', PARSE, path.join(dir, f)], { encoding: 'utf8' })))
    .filter((m) => m.to === EMAIL);
}

/** Waits for the n-th mail to EMAIL and returns it. */
async function mail(n) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const m = mails();
    if (m.length >= n) return m[n - 1];
    assert.ok(Date.now() < deadline, `expected ${n} mails to ${EMAIL}, have ${m.length}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function linkIn(m, prefix) {
  const line = m.parts['text/plain']
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.startsWith(prefix));
  assert.ok(line, `a ${prefix} link in ${m.parts['text/plain']}`);
  return line;
}

async function api(p, body) {
  const r = await fetch(`${ISSUER}${p}`, {
    method: 'POST',
    // Node's fetch sends Fetch Metadata, so the Origin check applies: come from the issuer.
    headers: { 'content-type': 'application/json', origin: ISSUER },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

const contexts = [];
after(async () => {
  for (const c of contexts) await c.close().catch(() => {});
});

async function browser() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'klard-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    viewport: { width: 390, height: 844 },
    javaScriptEnabled: false,
  });
  contexts.push(context);
  await context.route(
    (url) => !/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(url.hostname),
    (route) => route.abort('blockedbyclient'),
  );
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15_000);
  return page;
}

function authorizeUrl() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const u = new URL(`${ISSUER}/authorize`);
  u.search = new URLSearchParams({
    response_type: 'code',
    client_id: WEB_ID,
    redirect_uri: REDIRECT_URI,
    scope: 'openid email',
    state: crypto.randomBytes(8).toString('base64url'),
    code_challenge: crypto.createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString();
  return u.toString();
}

test('verify the address, then forget and reset the password, all through hosted pages', async () => {
  const up = await api('/api/auth/sign-up/email', { name: 'Recovery Test', email: EMAIL, password: PASSWORD });
  assert.equal(up.status, 200, JSON.stringify(up.body));
  const page = await browser();

  // The verification mail links to the hosted result page.
  const verify = await mail(1);
  assert.match(verify.subject, /Confirm your email address/);
  await page.goto(linkIn(verify, `${ISSUER}/verify-email?token=`));
  await page.locator('#verify-done').waitFor();
  assert.match(await page.locator('h1').innerText(), /confirmed/);

  // The login page leads to the forgot-password form (no JavaScript needed).
  await page.goto(authorizeUrl());
  await page.locator('form.login-form input[name=username]').waitFor();
  await page.locator('a#forgot-password').click();
  await page.waitForURL(`${ISSUER}/forgot-password`);
  assert.equal(await page.getAttribute('input[name=email]', 'autocomplete'), 'username');
  await page.locator('input[name=email]').fill(EMAIL);
  await page.locator('form.login-form button[type=submit]').click();
  await page.locator('#reset-sent').waitFor();

  // The reset link: through the API callback to the hosted form.
  const reset = await mail(2);
  assert.match(reset.subject, /Reset your .* password/);
  const link = linkIn(reset, `${ISSUER}/api/auth/reset-password/`);
  await page.goto(link);
  assert.ok(page.url().startsWith(`${ISSUER}/reset-password?token=`), page.url());
  assert.equal(await page.getAttribute('input[name=new_password]', 'autocomplete'), 'new-password');
  // Mismatched passwords are refused with a message on the same form.
  await page.locator('input[name=new_password]').fill(NEW_PASSWORD);
  await page.locator('input[name=confirm_password]').fill('something else entirely');
  await page.locator('form.login-form button[type=submit]').click();
  assert.match(await page.locator('#reset-error').innerText(), /do not match/);
  await page.locator('input[name=new_password]').fill(NEW_PASSWORD);
  await page.locator('input[name=confirm_password]').fill(NEW_PASSWORD);
  await page.locator('form.login-form button[type=submit]').click();
  await page.locator('#reset-done').waitFor();

  // The notice arrives, the new password works, the old one and the link do not.
  const notice = await mail(3);
  assert.match(notice.subject, /password was changed/);
  assert.equal((await api('/api/auth/sign-in/email', { email: EMAIL, password: NEW_PASSWORD })).status, 200);
  assert.equal((await api('/api/auth/sign-in/email', { email: EMAIL, password: PASSWORD })).status, 401);
  await page.goto(link);
  await page.locator('#reset-invalid').waitFor();
});
