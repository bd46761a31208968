// The support console end to end, in headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core): an operator signs in with
// password + TOTP (enrolled from the page's key after the one-time
// enrolment code `operator add` printed, the code computed here),
// finds a locked card holder, verifies the caller's security code, unlocks,
// removes a device; the card holder then signs in over the JSON API.
//
// Usage: node journey.mjs SERVER_BINARY [SCREENSHOT_DIR]
// Prints one line `browser: N passed, M failed` (a step that fails fails
// the steps after it too) and exits non-zero on any failure.

import { spawn, spawnSync } from 'node:child_process';
import { createHmac, webcrypto } from 'node:crypto';
import { mkdtempSync, readFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [binary, shots] = process.argv.slice(2);
if (!binary) {
  console.error('usage: node journey.mjs SERVER_BINARY [SCREENSHOT_DIR]');
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), 'dt-console-'));
const db = `sqlite://${join(dir, 'dt.db')}`;
const outbox = join(dir, 'outbox.jsonl');
const apiPort = 20000 + Math.floor(Math.random() * 20000);
const consolePort = apiPort + 1;
const api = `http://127.0.0.1:${apiPort}`;
// `localhost`: a secure context for Chromium, so its Secure cookies work over plain HTTP.
const consoleBase = `http://localhost:${consolePort}`;
const HOLDER_PASSWORD = 'Correct horse battery 9';
const OPERATOR_PASSWORD = 'Operator pass 4 the console';
const SECURITY_CODE = '493817';

function cli(args, input) {
  const r = spawnSync(binary, ['--database', db, ...args], { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function json(method, path, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(api + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

function lastOtp() {
  const lines = readFileSync(outbox, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const m = lines.reverse().find((l) => l.purpose === 'otp' && l.user_id === 'jane');
  if (!m) throw new Error('no OTP in the outbox');
  return m.code;
}

async function emailOtp(loginId) {
  const sent = await json('POST', '/v1/login/otp/send', { login_id: loginId, channel: 'email' });
  expect(sent.status === 200, `otp send: ${JSON.stringify(sent.body)}`);
  return lastOtp();
}

function b64url(bytes) {
  return Buffer.from(bytes).toString('base64url');
}

function base32Decode(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of s.replace(/=+$/, '').toUpperCase()) {
    const v = alphabet.indexOf(ch);
    if (v < 0) throw new Error(`not base32: ${ch}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const out = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) out.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(out);
}

// RFC 6238, SHA-1, 6 digits, 30 s.
function totp(secret, now = Date.now()) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(now / 1000 / 30)));
  const mac = createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const off = mac[mac.length - 1] & 0xf;
  const n = (mac.readUInt32BE(off) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}

function expect(ok, what) {
  if (!ok) throw new Error(what);
}

async function waitForServer() {
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(`${api}/healthz`);
      const c = await fetch(`${consoleBase.replace('localhost', '127.0.0.1')}/console/sign-in`);
      if (r.ok && c.ok) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the server did not start');
}

const state = {};
let server;
let browser;
let page;

async function shot(name) {
  if (!shots) return;
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

const steps = [
  ['set up a card holder, a market and an operator with the CLI', async () => {
    cli(['user', 'add', '--user-id', 'jane', '--name', 'Jane Doe', '--email', 'jane@example.com', '--market', 'GB'], `${HOLDER_PASSWORD}\n`);
    cli(['market', 'set', 'GB', '--second-factor', 'required']);
    const added = cli(['operator', 'add', '--name', 'alice', '--role', 'support'], `${OPERATOR_PASSWORD}\n`);
    const code = /enrolment code .*: ([A-Z2-7]{4}(?:-[A-Z2-7]{4}){5})\s*$/.exec(added);
    expect(code, `the CLI shows the enrolment code once: ${added}`);
    state.enrolmentCode = code[1];
    server = spawn(binary, ['--database', db, 'serve', '--listen', `127.0.0.1:${apiPort}`,
      '--console-listen', `127.0.0.1:${consolePort}`, '--rp-id', api, '--outbox', outbox,
      '--ip-rate-limit', '0', '--risk', 'off'], { stdio: ['ignore', 'ignore', 'pipe'] });
    server.stderr.on('data', (d) => { if (process.env.CONSOLE_E2E_LOG) process.stderr.write(d); });
    await waitForServer();
  }],
  ['the card holder enrols, signs in with an OTP and registers a phone', async () => {
    let a = await json('POST', '/v1/login/password', { user_id: 'jane', password: HOLDER_PASSWORD });
    expect(a.body.status === 'enrolment_required', JSON.stringify(a.body));
    a = await json('POST', '/v1/login/enrol', { login_id: a.body.login_id, security_code: SECURITY_CODE });
    expect(a.body.status === 'second_factor_required', JSON.stringify(a.body));
    const code = await emailOtp(a.body.login_id);
    const v = await json('POST', '/v1/login/otp/verify', { login_id: a.body.login_id, code });
    expect(v.status === 200, JSON.stringify(v.body));
    const token = v.body.session.access_token;
    const reg = await json('POST', '/v1/devices/registration', {}, token);
    expect(reg.status === 200, JSON.stringify(reg.body));
    const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign']);
    const jwk = await webcrypto.subtle.exportKey('jwk', keys.publicKey);
    const header = { alg: 'ES256', typ: 'devicetrust-register+jwt', jwk: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y } };
    const payload = { aud: api, sub: 'jane', nonce: reg.body.challenge };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
    const sig = await webcrypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, keys.privateKey, Buffer.from(input));
    const d = await json('POST', '/v1/devices', {
      registration_id: reg.body.registration_id, proof: `${input}.${b64url(new Uint8Array(sig))}`,
      name: "Jane's Pixel", platform: 'android', key_storage: 'tee', user_verification: 'biometric',
    }, token);
    expect(d.status === 201, JSON.stringify(d.body));
    state.deviceId = d.body.device.device_id;
  }],
  ['five wrong passwords lock the card holder out', async () => {
    for (let i = 0; i < 5; i++) await json('POST', '/v1/login/password', { user_id: 'jane', password: 'Wrong password 1' });
    const a = await json('POST', '/v1/login/password', { user_id: 'jane', password: HOLDER_PASSWORD });
    expect(a.status === 423, `locked: ${JSON.stringify(a.body)}`);
  }],
  ['the operator signs in with password and enrols TOTP from the page', async () => {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
    const context = await browser.newContext({ viewport: { width: 1200, height: 860 } });
    page = await context.newPage();
    await page.goto(`${consoleBase}/console/`);
    expect(page.url().endsWith('/console/sign-in'), `sent to sign in: ${page.url()}`);
    await page.fill('input[name=name]', 'alice');
    await page.fill('input[name=password]', OPERATOR_PASSWORD);
    await shot('sign-in');
    await page.click('button:has-text("Continue")');
    await page.waitForURL('**/console/sign-in/enrol');
    expect(!(await page.isVisible('#totp-secret')), 'no key before the enrolment code');
    await page.fill('input[name=enrolment_code]', state.enrolmentCode);
    await shot('enrolment-code');
    await page.click('button:has-text("Continue")');
    await page.waitForSelector('#totp-secret');
    const secret = (await page.textContent('#totp-secret')).trim();
    expect(/^[A-Z2-7]{32}$/.test(secret), `a base32 key: ${secret}`);
    expect(await page.isVisible('img.qr'), 'the QR code is shown');
    await shot('enrol');
    await page.fill('input[name=code]', totp(secret));
    await page.click('button:has-text("Confirm and sign in")');
    await page.waitForURL('**/console/');
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === '__Host-dtc_session');
    expect(session && session.httpOnly && session.secure && session.sameSite === 'Strict', `cookie: ${JSON.stringify(cookies)}`);
  }],
  ['the operator finds the locked card holder', async () => {
    await page.selectOption('select[name=by]', 'email');
    await page.fill('input[name=q]', 'JANE@example.com');
    await page.click('button:has-text("Search")');
    await page.waitForSelector('table');
    await shot('search');
    await page.click('a:has-text("jane")');
    await page.waitForURL('**/console/holders/jane');
    expect((await page.textContent('body')).includes('Locked for another'), 'shown as locked');
    expect((await page.textContent('body')).includes("Jane's Pixel"), 'the phone is listed');
    await shot('holder-locked');
  }],
  ["the operator verifies the caller's security code", async () => {
    await page.fill('input[name=security_code]', '111222');
    await page.click('button:has-text("Check")');
    expect((await page.textContent('.notice')).includes('No match'), 'a wrong code is no match');
    await page.fill('input[name=security_code]', SECURITY_CODE);
    await page.click('button:has-text("Check")');
    expect((await page.textContent('.notice')).includes('Match: the security code is right'), 'the right code matches');
  }],
  ['the operator unlocks', async () => {
    await page.click('button:has-text("Unlock")');
    expect((await page.textContent('.notice')).includes('Unlocked'), 'unlocked notice');
    expect((await page.textContent('body')).includes('Not locked.'), 'no longer locked');
  }],
  ['the operator removes the device', async () => {
    await page.click('tr:has-text("Jane\'s Pixel") button:has-text("Remove")');
    expect((await page.textContent('.notice')).includes('Device removed'), 'removed notice');
    const devices = await page.textContent('section.card:has(h2:has-text("Trusted devices"))');
    expect(!devices.includes("Jane's Pixel"), 'the phone is gone from the trusted devices');
    await shot('holder');
    const c = await json('POST', '/v1/login/device/challenge', { device_id: state.deviceId });
    expect(c.status === 401, `the removed phone cannot sign in: ${JSON.stringify(c.body)}`);
  }],
  ['the audit view lists what the operator did, by name', async () => {
    await page.goto(`${consoleBase}/console/audit?operator=alice`);
    const text = await page.textContent('table');
    for (const ev of ['caller_verified', 'caller_verify_failed', 'unlocked', 'device_removed']) {
      expect(text.includes(ev), `${ev} in the audit view`);
    }
    await shot('audit');
    await page.goto(`${consoleBase}/console/markets`);
    expect((await page.textContent('table')).includes('GB'), 'GB in the markets');
    await shot('markets');
  }],
  ['the card holder signs in again and sees the service team in their events', async () => {
    let a = await json('POST', '/v1/login/password', { user_id: 'jane', password: HOLDER_PASSWORD });
    expect(a.body.status === 'second_factor_required', JSON.stringify(a.body));
    const code = await emailOtp(a.body.login_id);
    const v = await json('POST', '/v1/login/otp/verify', { login_id: a.body.login_id, code });
    expect(v.status === 200 && v.body.status === 'authenticated', JSON.stringify(v.body));
    const ev = await json('GET', '/v1/account/events', undefined, v.body.session.access_token);
    const byTeam = ev.body.events.filter((e) => e.changed_by === 'service_team').map((e) => e.type);
    for (const kind of ['unlocked', 'device_removed', 'caller_verified']) {
      expect(byTeam.includes(kind), `${kind} by the service team in ${JSON.stringify(byTeam)}`);
    }
  }],
];

let passed = 0;
let failed = 0;
let broken = null;
for (const [name, run] of steps) {
  if (broken) {
    failed++;
    console.log(`not run (an earlier step failed): ${name}`);
    continue;
  }
  try {
    await run();
    passed++;
    console.log(`ok: ${name}`);
  } catch (e) {
    failed++;
    broken = e;
    console.log(`FAILED: ${name}: ${e.message}`);
  }
}
if (browser) await browser.close().catch(() => {});
if (server) server.kill('SIGTERM');
if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
