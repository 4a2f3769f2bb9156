// Headless-Chromium tests of the hosted account page and its standalone login.
//
// Run by .ci/browser (see pages.test.mjs for the environment): KLARD_ISSUER,
// KLARD_USER_EMAIL, KLARD_USER_PASSWORD, CHROMIUM_PATH. Only loopback is reached.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
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
const USER = env('KLARD_USER_EMAIL');
const PASSWORD = env('KLARD_USER_PASSWORD');
const CHROMIUM = env('CHROMIUM_PATH', '/usr/bin/chromium');
const BASE_PATH = new URL(ISSUER).pathname.replace(/\/$/, '');

const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
const DESKTOP = { viewport: { width: 1280, height: 800 } };
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

const open = new Set();
after(async () => {
  for (const s of open) await s.close();
});

/** A fresh Chromium with its own profile; anything not on loopback is aborted. */
async function browser(contextOptions = DESKTOP) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'klard-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
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
  page.setDefaultTimeout(15_000);
  const s = {
    context,
    page,
    async close() {
      open.delete(s);
      await context.close().catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  open.add(s);
  return s;
}

/** Opens /account, is sent to the standalone login, signs in, lands on /account. */
async function signInToAccount(page) {
  await page.goto(`${ISSUER}/account`);
  await page.waitForURL((u) => u.pathname === `${BASE_PATH}/login` && u.searchParams.get('return_to') === `${BASE_PATH}/account`);
  await page.locator('form.login-form input[name=username]').fill(USER);
  await page.locator('input[name=password]').fill(PASSWORD);
  await page.locator('form.login-form button[type=submit]').click();
  await page.waitForURL((u) => u.pathname === `${BASE_PATH}/account`);
  await page.getByRole('heading', { name: 'Your account' }).waitFor();
}

test('phone: standalone login, rename this device, sign out', async () => {
  const s = await browser(PHONE);
  const { page } = s;
  await signInToAccount(page);
  const current = page.locator('li[aria-current=true]');
  await current.waitFor();
  assert.match(await current.innerText(), /This device/);
  // Nothing overflows the phone viewport.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page is ${overflow}px wider than the viewport`);

  const name = `Phone ${Date.now()}`;
  await current.locator('input[name=name]').fill(name);
  await current.getByRole('button', { name: 'Rename' }).click();
  await page.waitForURL((u) => u.searchParams.get('done') === 'renamed');
  await page.getByRole('status').filter({ hasText: 'The device name was saved.' }).waitFor();
  assert.match(await page.locator('li[aria-current=true] strong').first().innerText(), new RegExp(name));

  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.waitForURL((u) => u.pathname === `${BASE_PATH}/login`);
  await page.goto(`${ISSUER}/account`);
  await page.waitForURL((u) => u.pathname === `${BASE_PATH}/login`);
  await s.close();
});

test('signing out all other devices ends the other browser\'s session', async () => {
  const a = await browser(DESKTOP);
  const b = await browser(DESKTOP);
  await signInToAccount(a.page);
  await signInToAccount(b.page);
  await a.page.reload();
  await a.page.getByRole('button', { name: 'Sign out all other devices' }).click();
  await a.page.waitForURL((u) => u.searchParams.get('done') === 'revoked-others');
  await a.page.getByRole('status').filter({ hasText: 'All other devices were signed out.' }).waitFor();
  // A is still signed in; B is not.
  await a.page.goto(`${ISSUER}/account`);
  await a.page.getByRole('heading', { name: 'Your account' }).waitFor();
  await b.page.goto(`${ISSUER}/account`);
  await b.page.waitForURL((u) => u.pathname === `${BASE_PATH}/login`);
  // The session cookie of the account pages is HttpOnly, Secure and SameSite=Lax.
  const host = new URL(ISSUER).hostname;
  const cookies = (await a.context.cookies()).filter((c) => c.domain.replace(/^\./, '') === host);
  const session = cookies.find((c) => /session/.test(c.name));
  assert.ok(session, `a session cookie is set (got [${cookies.map((c) => c.name)}])`);
  assert.equal(session.httpOnly, true);
  assert.equal(session.secure, true);
  assert.equal(session.sameSite, 'Lax');
  await a.close();
  await b.close();
});
