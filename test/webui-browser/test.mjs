// Drives kvserve's web page in headless Chromium (Debian's /usr/bin/chromium)
// with playwright-core: the API key prompt, a streamed chat reply, the live
// cache map compared cell by cell with GET /cache/usage?pages=1, a policy
// demoting pages while a reply streams, a requantization (preview, then
// apply) changing the cells, and the page under load from 4 API clients
// streaming at once. Saves screenshots.
//
// Run: KVSERVE_BIN=/path/to/kvserve node --test test.mjs
// (without KVSERVE_BIN the test builds ./cmd/kvserve with go build).
// WEBUI_ARTIFACTS=DIR keeps the screenshots there (default: a temp dir).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const KEY = 'webui-test-key';
const SLOTS = 4;
const artifacts = process.env.WEBUI_ARTIFACTS || fs.mkdtempSync(path.join(os.tmpdir(), 'kvserve-webui-'));
fs.mkdirSync(artifacts, { recursive: true });

let server; let serverLog = ''; let base; let context; let page; let userDir;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function api(p, body) {
  const r = await fetch(base + p, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { Authorization: 'Bearer ' + KEY, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const j = await r.json();
  assert.equal(r.status, 200, `${p}: ${JSON.stringify(j)}`);
  return j;
}

// until polls f (async) until it returns a truthy value, up to ms.
async function until(what, f, ms = 20000) {
  const t0 = Date.now();
  let last;
  while (Date.now() - t0 < ms) {
    last = await f();
    if (last) return last;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

// The map as the page shows it: "slot/layer/kv/page" → type.
const mapCells = () => page.evaluate(() => {
  const out = {};
  for (const c of document.querySelectorAll('[data-testid=cache-map] .cell')) {
    out[`${c.dataset.slot}/${c.dataset.layer}/${c.dataset.kv}/${c.dataset.page}`] = c.dataset.type;
  }
  return out;
});

// The same from the server's JSON.
function jsonCells(u) {
  const out = {};
  for (const s of u.slots) for (const p of s.pages_list || []) out[`${s.id}/${p.layer}/${p.kv}/${p.index}`] = p.type;
  return out;
}

// sameAsServer waits until the page's map equals /cache/usage?pages=1
// (both read while nothing is generating, so the cache is still).
async function sameAsServer(what) {
  let u; let cells;
  try {
    await until(what, async () => {
      u = await api('/cache/usage?pages=1');
      cells = await mapCells();
      return JSON.stringify(sortKeys(cells)) === JSON.stringify(sortKeys(jsonCells(u)));
    });
  } catch (e) {
    assert.deepEqual(sortKeys(cells), sortKeys(jsonCells(u)), what);
    throw e;
  }
  return { u, cells };
}
const sortKeys = (o) => Object.fromEntries(Object.entries(o).sort());

before(async () => {
  let bin = process.env.KVSERVE_BIN;
  if (!bin) {
    bin = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kvserve-bin-')), 'kvserve');
    execFileSync('go', ['build', '-o', bin, './cmd/kvserve'], { cwd: repo, stdio: 'inherit' });
  }
  server = spawn(bin, ['serve', '--host', '127.0.0.1', '--port', '0', '-np', String(SLOTS), '-c', String(2048 * SLOTS),
    '--api-key', KEY, '--cache-page-tokens', '32'], { stdio: ['ignore', 'ignore', 'pipe'] });
  server.stderr.on('data', (d) => { serverLog += d; });
  const addr = await until('kvserve to listen', () => /addr=(127\.0\.0\.1:\d+)/.exec(serverLog)?.[1], 60000);
  base = 'http://' + addr;
  await until('/health 200', async () => (await fetch(base + '/health').catch(() => ({}))).status === 200, 60000);

  userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvserve-chromium-'));
  context = await chromium.launchPersistentContext(userDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 860 },
  });
  page = context.pages()[0] || await context.newPage();
  page.on('pageerror', (e) => { console.log('page error:', e.message); pageErrors.push(e.message); });
  page.on('console', (m) => { if (m.type() === 'error') console.log('page console:', m.text()); });
});

const pageErrors = [];

after(async () => {
  await context?.close().catch(() => {});
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
  fs.writeFileSync(path.join(artifacts, 'kvserve.log'), serverLog);
  console.log(`screenshots and the server log in ${artifacts}`);
});

test('the page loads from the binary and asks for the API key', async () => {
  const r = await fetch(base + '/');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/html/);
  await page.goto(base + '/');
  const paint = (when) => page.evaluate(() => {
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    const nav = performance.getEntriesByType('navigation')[0];
    return { fcp: fcp && fcp.startTime, dcl: nav && nav.domContentLoadedEventEnd, load: nav && nav.loadEventEnd };
  }).then((p) => console.log(`${when}: first contentful paint ${p.fcp?.toFixed(0)} ms, DOMContentLoaded ` +
    `${p.dcl?.toFixed(0)} ms, load ${p.load?.toFixed(0)} ms (loopback; a figure, not asserted)`));
  await paint('first load in a new browser');
  // /props and /cache/usage answer 401 without the key: the page asks for it.
  await page.waitForSelector('#key-form:not([hidden])');
  await page.fill('[data-testid=api-key]', KEY);
  await page.press('[data-testid=api-key]', 'Enter');
  await until('the map to poll', async () => Number(await page.getAttribute('[data-testid=cache-map]', 'data-polls')) > 0);
  assert.match(await page.textContent('#model'), new RegExp(`${SLOTS} slots`));
  assert.equal(await page.evaluate(() => sessionStorage.getItem('kvserve.apiKey')), KEY);
  // Reloaded, the key is still there (sessionStorage) and the form stays hidden.
  await page.reload();
  await page.waitForFunction(() => document.querySelector('#status').dataset.state === 'ready');
  await paint('reload');
  await until('the map to poll after the reload', async () => Number(await page.getAttribute('[data-testid=cache-map]', 'data-polls')) > 1);
  assert.ok(await page.locator('#key-form').isHidden(), 'the key form came back after a reload');
});

test('a chat reply streams in and the map matches /cache/usage', async () => {
  await page.click('#settings summary');
  await page.fill('#set-system', 'You are a helpful assistant.');
  await page.fill('#set-temperature', '0');
  await page.fill('#set-max_tokens', '128');
  // Record the reply's text as it changes, to see it arrive in pieces.
  await page.evaluate(() => {
    window.__lengths = [];
    new MutationObserver(() => {
      const r = document.querySelector('[data-testid=reply]:last-of-type');
      if (r && r.getAttribute('aria-busy') === 'true') window.__lengths.push(r.querySelector('.body').textContent.length);
    }).observe(document.getElementById('messages'), { subtree: true, childList: true, characterData: true, attributes: true });
  });
  await page.fill('[data-testid=chat-input]', 'Tell me a story about a fox.');
  await page.click('[data-testid=send]');
  await page.waitForSelector('[data-testid=reply][aria-busy=false]', { timeout: 60000 });
  const lengths = [...new Set(await page.evaluate(() => window.__lengths))].filter((n) => n > 0);
  console.log(`reply text grew through ${lengths.length} lengths while streaming: ${lengths.slice(0, 12).join(', ')}${lengths.length > 12 ? ', …' : ''}`);
  assert.ok(lengths.length >= 3, `the reply did not stream in pieces (lengths ${lengths})`);
  const reply = page.locator('[data-testid=reply]').last();
  assert.ok((await reply.locator('.body').textContent()).trim().length > 0, 'empty reply');
  const stats = await reply.locator('[data-testid=reply-stats]').textContent();
  console.log('reply stats:', stats);
  assert.match(stats, /\d+ tokens · [\d.]+ tokens\/s/);

  const { u, cells } = await sameAsServer('the map to show every page of /cache/usage?pages=1');
  const used = u.slots.filter((s) => s.tokens > 0);
  assert.equal(used.length, 1, 'one slot holds the conversation');
  const n = Object.keys(cells).filter((k) => k.startsWith(used[0].id + '/')).length;
  assert.ok(n >= 2 * u.slots[0].layers.length, `too few cells for slot ${used[0].id}: ${n}`);
  assert.ok(Object.values(cells).every((t) => t === 'f16'), 'a fresh cache is f16');
  console.log(`map: slot ${used[0].id}, ${used[0].tokens} tokens, ${n} cells, all matching the JSON`);
});

test('a policy set from the page demotes pages while a reply streams', async () => {
  await page.click('#pol-form >> xpath=..//summary');
  await page.fill('#set-max_tokens', '160');
  await page.fill('#pol-hot', '32');
  await page.fill('#pol-sink', '32');
  await page.fill('#pol-warm', '0');
  await page.click('[data-testid=policy-apply]');
  await until('the policy to apply', async () => (await api('/cache/policy')).enabled);
  await page.fill('[data-testid=chat-input]', 'And then what happened to the fox?');
  await page.click('[data-testid=send]');
  // Demoted (cold, below tier 0) cells appear while the reply is still streaming.
  const seen = await until('cold, demoted cells during the stream', () => page.evaluate(() => {
    const busy = document.querySelector('[data-testid=reply][aria-busy=true]');
    const cold = document.querySelectorAll('[data-testid=cache-map] .cell[data-zone=cold]:not([data-type=f16])').length;
    return cold > 0 ? { cold, busy: !!busy } : null;
  }), 60000);
  console.log(`during the stream: ${seen.cold} demoted cells (reply still streaming: ${seen.busy})`);
  await page.waitForSelector('[data-testid=reply][aria-busy=false] >> nth=1', { timeout: 60000 });
  const { u } = await sameAsServer('the map to match the JSON after demotion');
  const types = new Set(Object.values(jsonCells(u)));
  assert.ok(types.has('f16') && types.size > 1, `expected hot f16 pages and demoted ones, got ${[...types]}`);
  const stats = (await api('/cache/policy')).stats;
  assert.ok(stats.conversions_by_age > 0, 'the policy converted nothing');
  const zones = await page.evaluate(() => [...document.querySelectorAll('[data-testid=cache-map] .cell')]
    .reduce((m, c) => { m[c.dataset.zone] = (m[c.dataset.zone] || 0) + 1; return m; }, {}));
  console.log('cells by zone:', JSON.stringify(zones), 'types:', [...types].join(', '));
  assert.ok(zones.sink > 0 && zones.hot > 0 && zones.cold > 0, 'sink, hot and cold pages are marked');
  // The screenshot for the README: mixed types, chat and map in view.
  await page.click('#settings summary');
  await page.evaluate(() => { document.querySelector('.pane.cache').scrollTop = 0; });
  await page.screenshot({ path: path.join(artifacts, 'webui.png') });
  console.log('screenshot', path.join(artifacts, 'webui.png'));
  // Turn the policy off again for the requantization below.
  await page.click('#pol-off');
  await until('the policy to be off', async () => !(await api('/cache/policy')).enabled);
});

test('requantize from the page: preview changes nothing, apply changes the cells', async () => {
  await page.selectOption('#rq-k', 'q4_0');
  await page.selectOption('#rq-v', 'q4_0');
  const before = await api('/cache/usage?pages=1');
  await page.click('[data-testid=requantize-preview]');
  await page.waitForSelector('#rq-result[data-dry-run=true]');
  const preview = await page.textContent('#rq-result');
  console.log('preview:', preview);
  assert.match(preview, /would free/);
  assert.deepEqual(jsonCells(await api('/cache/usage?pages=1')), jsonCells(before), 'a dry run changed the cache');
  await page.click('[data-testid=requantize]');
  await page.waitForSelector('#rq-result[data-dry-run=false]');
  console.log('applied:', await page.textContent('#rq-result'));
  const { u, cells } = await sameAsServer('the map to show the requantized pages');
  assert.ok(Object.keys(cells).length > 0);
  assert.ok(Object.values(cells).every((t) => t === 'q4_0'), 'every page is q4_0 after the requantization');
  assert.ok(u.total_bytes < before.total_bytes, 'requantizing to q4_0 freed nothing');
  const rotated = await page.locator('[data-testid=cache-map] .cell[data-rotated=true]').count();
  assert.equal(rotated, Object.keys(cells).length, 'quantized pages are rotated (--cache-rotate on)');
  await page.screenshot({ path: path.join(artifacts, 'webui-q4_0.png') });
});

test('Enter sends, the stop button ends a stream and the server frees the slot', async () => {
  await page.evaluate(() => { document.getElementById('settings').open = true; });
  await page.fill('#set-max_tokens', '1500');
  const replies = await page.locator('[data-testid=reply]').count();
  await page.fill('[data-testid=chat-input]', 'Tell me a very long story.');
  await page.press('[data-testid=chat-input]', 'Enter');
  const reply = page.locator('[data-testid=reply]').nth(replies);
  await until('text to stream', async () => (await reply.getAttribute('aria-busy')) === 'true' &&
    (await reply.locator('.body').textContent()).length > 20);
  assert.ok(await page.isEnabled('[data-testid=stop]'), 'stop is enabled while streaming');
  await page.click('[data-testid=stop]');
  await until('the reply to end', async () => (await reply.getAttribute('aria-busy')) === 'false', 10000);
  const stats = await reply.locator('[data-testid=reply-stats]').textContent();
  console.log('stopped reply:', stats);
  assert.match(stats, /stopped by you/);
  await until('no slot processing after the stop', async () => (await api('/slots')).every((s) => !s.is_processing), 10000);
  assert.ok(await page.isDisabled('[data-testid=stop]'));
});

test('the page keeps working while 4 other clients stream through the API', async () => {
  let stop = false;
  const done = { requests: 0, chunks: 0, errors: 0 };
  const client = async () => {
    for (let i = 0; i < 20 && !stop; i++) {
      try {
        const r = await fetch(base + '/v1/chat/completions', {
          method: 'POST',
          headers: { Authorization: 'Bearer ' + KEY, 'Content-Type': 'application/json' },
          body: JSON.stringify({ messages: [{ role: 'user', content: `Story number ${i}: a fox.` }], stream: true, max_tokens: 256, ignore_eos: true }),
        });
        const reader = r.body.getReader();
        for (;;) {
          const { done: end, value } = await reader.read();
          if (end) break;
          done.chunks += new TextDecoder().decode(value).split('data: ').length - 1;
        }
        done.requests++;
      } catch {
        done.errors++;
      }
    }
  };
  const clients = [client(), client(), client(), client()];
  try {
    // Every slot busy: the map shows several slots filling.
    await until('cells on 3 or more slots', async () => {
      const slots = new Set(Object.keys(await mapCells()).map((k) => k.split('/')[0]));
      return slots.size >= 3;
    }, 30000);
    const p0 = Number(await page.getAttribute('[data-testid=cache-map]', 'data-polls'));
    const t0 = Date.now();
    await sleep(3000);
    const p1 = Number(await page.getAttribute('[data-testid=cache-map]', 'data-polls'));
    const rate = (p1 - p0) / ((Date.now() - t0) / 1000);
    console.log(`under load: the map polled ${p1 - p0} times in 3 s (${rate.toFixed(1)}/s)`);
    assert.ok(p1 > p0, 'the map stopped updating under load');
    // A chat message from the page is answered (it waits for a free slot).
    const replies = await page.locator('[data-testid=reply]').count();
    await page.evaluate(() => { document.getElementById('settings').open = true; });
    await page.fill('#set-max_tokens', '24');
    await page.fill('[data-testid=chat-input]', 'Hello again.');
    const tSend = Date.now();
    await page.click('[data-testid=send]');
    await page.waitForSelector(`[data-testid=reply][aria-busy=false] >> nth=${replies}`, { timeout: 120000 });
    const text = await page.locator('[data-testid=reply]').nth(replies).textContent();
    console.log(`under load: the page's reply finished after ${Date.now() - tSend} ms: ${JSON.stringify(text.slice(0, 160))}`);
    assert.doesNotMatch(text, /Error:/);
    // The controls still answer: a dry run.
    await page.selectOption('#rq-k', 'q8_0');
    await page.selectOption('#rq-v', '');
    await page.click('[data-testid=requantize-preview]');
    await until('the dry run under load', async () => /would free|Preview/.test(await page.textContent('#rq-result')) &&
      (await page.getAttribute('#rq-result', 'data-dry-run')) === 'true', 30000);
    await page.screenshot({ path: path.join(artifacts, 'webui-load.png') });
  } finally {
    stop = true;
    await Promise.all(clients);
  }
  console.log(`4 API clients: ${done.requests} streamed requests, ${done.chunks} events, ${done.errors} errors`);
  assert.equal(done.errors, 0);
  assert.deepEqual(pageErrors, [], 'JavaScript errors on the page');
});

test('narrow (phone) layout renders the chat and the map', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(base + '/');
  await until('the map on a phone', async () => (await page.locator('[data-testid=cache-map] .cell').count()) > 0);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 1, `the page scrolls sideways on a phone by ${overflow}px`);
  assert.ok(await page.locator('[data-testid=chat-input]').isVisible());
  await page.screenshot({ path: path.join(artifacts, 'webui-phone.png'), fullPage: true });
});

// The hooks for what the server does not send yet, fed through an
// intercepted response (the page's rendering is what is tested here).
test('a layer kind/window field, when present, is shown on its row', async () => {
  await page.setViewportSize({ width: 1280, height: 860 });
  await page.route('**/cache/usage?pages=1', async (route) => {
    const r = await route.fetch();
    const u = await r.json();
    for (const s of u.slots) { s.layers[1].kind = 'swa'; s.layers[1].window = 512; }
    await route.fulfill({ response: r, json: u });
  });
  try {
    await page.goto(base + '/');
    const row = page.locator('[data-testid=cache-map] .slot[data-slot="0"] .layer-row[data-layer="1"]');
    await until('the kind on layer 1', async () => (await row.count()) === 1 && (await row.getAttribute('data-kind')) === 'swa');
    assert.equal(await row.getAttribute('data-window'), '512');
    assert.match(await row.locator('.layer-label').textContent(), /L1 swa w512/);
    const other = page.locator('[data-testid=cache-map] .slot[data-slot="0"] .layer-row[data-layer="0"]');
    // Layer 0 keeps what the server sends ("full"); its label says only "L0".
    assert.equal(await other.getAttribute('data-kind'), 'full');
    assert.equal((await other.locator('.layer-label').textContent()).trim(), 'L0');
  } finally {
    await page.unroute('**/cache/usage?pages=1');
  }
});

test('reasoning (reasoning_content deltas or <think> in content) is shown folded', async () => {
  const sse = (chunks) => chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`).join('') + 'data: [DONE]\n\n';
  const delta = (d) => ({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: d, finish_reason: null }] });
  const bodies = [
    sse([delta({ role: 'assistant', content: '' }), delta({ reasoning_content: 'First I think.' }), delta({ content: 'The **answer**.' })]),
    sse([delta({ content: '<think>Hidden steps' }), delta({ content: '</think>Shown <b>text</b>' })]),
  ];
  let n = 0;
  await page.route('**/v1/chat/completions', (route) => route.fulfill({ status: 200, contentType: 'text/event-stream', body: bodies[n++] }));
  try {
    for (const want of [{ reasoning: 'First I think.', answer: 'The answer.', strong: 1 }, { reasoning: 'Hidden steps', answer: 'Shown <b>text</b>', strong: 0 }]) {
      const replies = await page.locator('[data-testid=reply]').count();
      await page.fill('[data-testid=chat-input]', 'Think first.');
      await page.click('[data-testid=send]');
      const reply = page.locator('[data-testid=reply]').nth(replies);
      await until('the reply', async () => (await reply.getAttribute('aria-busy')) === 'false');
      const details = reply.locator('details.reasoning');
      assert.equal(await details.count(), 1);
      assert.equal(await details.getAttribute('open'), null, 'reasoning is folded');
      assert.match(await details.textContent(), new RegExp(want.reasoning));
      const body = await reply.locator('.body > :not(details)').allTextContents();
      assert.equal(body.join('').trim(), want.answer);
      assert.equal(await reply.locator('.body strong').count(), want.strong);
      assert.equal(await reply.locator('.body b').count(), 0, 'model text never becomes markup');
    }
  } finally {
    await page.unroute('**/v1/chat/completions');
  }
});
