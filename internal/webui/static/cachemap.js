// The cache pane: polls GET /cache/usage?pages=1 (about 3 times a
// second; less often when an answer takes long to fetch and draw) and
// draws one cell per cache page (rows per slot and layer, a K and a V
// lane), coloured by type, marked for rotation and for the policy's zone
// (sink, hot, or cold = old enough to be demoted) and tier; bytes against
// capacity and budget; a chart of bytes over time; and the requantize and policy
// controls (POST /cache/requantize, GET/POST /cache/policy).
//
// The JSON is used as the server sends it. A layer's optional "kind" or
// "window" field (e.g. sliding-window layers) is shown beside the layer
// when present, and set on its row as data-kind / data-window.

import { getJSON, postJSON, formatBytes, ApiError } from './api.js';

const $ = (id) => document.getElementById(id);
const POLL_MS = 330;
const HISTORY_MS = 120000;

// Types in order of precision, for the legend and the selects.
export const TYPE_ORDER = ['f32', 'f16', 'bf16', 'q8_0', 'q5_1', 'q5_0', 'q4_1', 'iq4_nl', 'q4_0'];

// zoneOf tells where page index of a slot holding n tokens stands under
// a multistage policy: 'sink' (holds one of the first sink tokens), 'hot'
// (holds one of the last hot tokens) or 'cold' (older: demoted as it
// ages); '' without a multistage policy. It follows the rule documented
// in internal/cachepolicy.
export function zoneOf(index, pageTokens, n, policy) {
  if (!policy || !policy.enabled || !(policy.hot > 0)) return '';
  const first = index * pageTokens;
  const last = Math.min(first + pageTokens, n) - 1;
  if (first < (policy.sink || 0)) return 'sink';
  if (last >= n - policy.hot) return 'hot';
  return 'cold';
}

export class CacheView {
  constructor() {
    this.lanes = new Map(); // "slot/layer/kv" → {el, cells: []}
    this.slotEls = new Map(); // slot id → {sec, head, rows: Map(layer → row)}
    this.history = [];
    this.usage = null;
    this.policy = null;
    this.paused = false;
    this.timer = 0;
    this.polls = 0;
    this.typesFilled = false;
    this.busySlots = new Set();
    $('cache-pause').addEventListener('change', (e) => { this.paused = e.target.checked; if (!this.paused) this.poll(); });
    document.addEventListener('visibilitychange', () => { if (!document.hidden) this.poll(); });
    window.addEventListener('resize', () => this.drawChart());
    this.bindRequantize();
    this.bindPolicy();
  }

  start() { this.poll(); this.loadPolicy(); }

  async poll() {
    clearTimeout(this.timer);
    if (this.inflight) return;
    if (this.paused || document.hidden) { this.timer = setTimeout(() => this.poll(), 1000); return; }
    this.inflight = true;
    const t0 = performance.now();
    try {
      const u = await getJSON('/cache/usage?pages=1');
      this.usage = u;
      this.polls++;
      this.render(u);
      $('cache-live').textContent = `live · ${new Date().toLocaleTimeString()}`;
      this.error = null;
    } catch (e) {
      $('cache-live').textContent = e.status === 401 ? 'needs the API key' : 'not updating: ' + e.message;
    } finally {
      this.inflight = false;
      // A big cache (many pages) makes a big answer: poll less often
      // rather than spend more than a quarter of the time on the map.
      this.timer = setTimeout(() => this.poll(), Math.max(POLL_MS, 4 * (performance.now() - t0)));
    }
  }

  render(u) {
    const map = $('cache-map');
    map.dataset.polls = String(this.polls);
    const pol = u.policy || {};
    // Summary, meter and budget.
    const budget = pol.enabled && pol.budget_bytes > 0 ? pol.budget_bytes : 0;
    const byType = Object.entries(u.bytes_by_type || {}).sort((a, b) => rank(a[0]) - rank(b[0]))
      .map(([t, b]) => `${t} ${formatBytes(b)}`).join(', ');
    $('cache-summary').textContent = `${formatBytes(u.total_bytes)} used of ${formatBytes(u.capacity_bytes)} capacity` +
      (budget ? ` · budget ${formatBytes(budget)}` : '') + (byType ? ` · ${byType}` : '') +
      ` · pages of ${u.page_tokens} tokens · rotation ${u.rotate ? 'on' : 'off'}`;
    const meter = $('cache-meter');
    const cap = Math.max(u.capacity_bytes || 1, budget);
    meter.setAttribute('aria-valuemax', String(cap));
    meter.setAttribute('aria-valuenow', String(u.total_bytes));
    meter.setAttribute('aria-valuetext', `${formatBytes(u.total_bytes)} of ${formatBytes(u.capacity_bytes)}`);
    $('cache-meter-fill').style.width = Math.min(100, 100 * u.total_bytes / cap).toFixed(2) + '%';
    const bm = $('cache-meter-budget');
    bm.hidden = !budget;
    if (budget) bm.style.left = Math.min(100, 100 * budget / cap).toFixed(2) + '%';

    // History for the chart.
    const now = Date.now();
    this.history.push({ t: now, bytes: u.total_bytes, budget });
    while (this.history.length && this.history[0].t < now - HISTORY_MS) this.history.shift();
    this.drawChart();

    this.fillTypeSelects(u.estimates || []);
    this.renderLegend(u, pol);
    for (const s of u.slots || []) this.renderSlot(s, u, pol);
    if (pol.stats) this.showStats(pol.stats);
  }

  renderLegend(u, pol) {
    const present = new Set(Object.keys(u.bytes_by_type || {}));
    for (const t of pol.ladder_k || []) present.add(t);
    for (const t of pol.ladder_v || []) present.add(t);
    const key = [...present].sort((a, b) => rank(a) - rank(b)).join(',') + '|' + !!pol.enabled + pol.hot + '/' + pol.sink;
    if (key === this.legendKey) return;
    this.legendKey = key;
    const items = [...present].sort((a, b) => rank(a) - rank(b)).map((t) => swatch('cell', { type: t }, t));
    items.push(swatch('cell', { rotated: 'true' }, 'rotated'));
    if (pol.enabled && pol.hot > 0) {
      items.push(swatch('cell', { zone: 'sink' }, `sink (first ${pol.sink} tokens)`));
      items.push(swatch('cell', { zone: 'hot' }, `hot (last ${pol.hot} tokens)`));
      items.push(swatch('cell', { zone: 'cold' }, 'cold (steps down the ladder as it ages)'));
    }
    $('cache-legend').replaceChildren(...items);
  }

  slotEl(id) {
    let s = this.slotEls.get(id);
    if (s) return s;
    const sec = document.createElement('section');
    sec.className = 'slot';
    sec.dataset.slot = String(id);
    const head = document.createElement('h3');
    head.className = 'slot-head';
    const rows = document.createElement('div');
    rows.className = 'rows';
    for (const t of ['layer', 'K pages', 'V pages']) {
      const h = document.createElement('span');
      h.className = 'lane-head';
      h.setAttribute('aria-hidden', 'true');
      h.textContent = t;
      rows.appendChild(h);
    }
    sec.append(head, rows);
    // Keep slots in id order.
    const map = $('cache-map');
    const next = [...map.children].find((c) => Number(c.dataset.slot) > id);
    map.insertBefore(sec, next || null);
    s = { sec, head, rows, layerRows: new Map() };
    this.slotEls.set(id, s);
    return s;
  }

  renderSlot(slot, u, pol) {
    const s = this.slotEl(slot.id);
    const busy = this.busySlots.has(slot.id) ? ' · generating' : '';
    setText(s.head, `Slot ${slot.id} · ${slot.tokens} tokens · ${slot.pages} pages · ${formatBytes(slot.bytes)} ` +
      `(K ${formatBytes(slot.bytes_k)}, V ${formatBytes(slot.bytes_v)})${busy}`);
    s.sec.classList.toggle('slot-empty', !slot.pages);
    // Group the page list by layer and side.
    const groups = new Map();
    for (const p of slot.pages_list || []) {
      const k = p.layer + '/' + p.kv;
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(p);
    }
    for (const layer of slot.layers || []) {
      let row = s.layerRows.get(layer.layer);
      if (!row) {
        row = document.createElement('div');
        row.className = 'layer-row';
        row.dataset.layer = String(layer.layer);
        const label = document.createElement('span');
        label.className = 'layer-label';
        row.appendChild(label);
        for (const kv of ['k', 'v']) {
          const lane = document.createElement('div');
          lane.className = 'lane ' + kv;
          lane.dataset.kv = kv;
          lane.setAttribute('role', 'img');
          row.appendChild(lane);
          this.lanes.set(`${slot.id}/${layer.layer}/${kv}`, { el: lane, cells: [] });
        }
        s.rows.appendChild(row);
        s.layerRows.set(layer.layer, row);
      }
      // Window/kind hook: set on the row as the server reports it; the
      // label names only what differs from full causal attention.
      const kind = layer.kind ?? '';
      const shown = kind === 'full' ? '' : kind;
      const win = layer.window ?? '';
      if ((row.dataset.kind || '') !== String(kind)) { if (kind) row.dataset.kind = kind; else delete row.dataset.kind; }
      if ((row.dataset.window || '') !== String(win)) { if (win) row.dataset.window = win; else delete row.dataset.window; }
      setText(row.firstChild, `L${layer.layer}` + (shown ? ` ${shown}` : '') + (win ? ` w${win}` : ''));
      for (const kv of ['k', 'v']) {
        const lane = this.lanes.get(`${slot.id}/${layer.layer}/${kv}`);
        const pages = groups.get(layer.layer + '/' + kv) || [];
        this.renderLane(lane, pages, slot, layer, kv, u, pol);
      }
    }
  }

  renderLane(lane, pages, slot, layer, kv, u, pol) {
    pages.sort((a, b) => a.index - b.index);
    while (lane.cells.length > pages.length) lane.cells.pop().remove();
    const counts = {};
    for (let i = 0; i < pages.length; i++) {
      const p = pages[i];
      let c = lane.cells[i];
      if (!c) {
        c = document.createElement('span');
        c.className = 'cell';
        c.dataset.slot = String(slot.id);
        c.dataset.layer = String(layer.layer);
        c.dataset.kv = kv;
        lane.el.appendChild(c);
        lane.cells.push(c);
      }
      const zone = zoneOf(p.index, u.page_tokens, slot.tokens, pol);
      setData(c, 'page', String(p.index));
      setData(c, 'type', p.type);
      setData(c, 'rotated', p.rotated ? 'true' : 'false');
      setData(c, 'tier', p.tier == null ? '' : String(p.tier));
      setData(c, 'zone', zone);
      const title = `slot ${slot.id} · layer ${layer.layer} ${kv.toUpperCase()} · page ${p.index} ` +
        `(tokens ${p.index * u.page_tokens}–${p.index * u.page_tokens + p.tokens - 1}) · ${p.type}` +
        (p.rotated ? ' · rotated' : '') + (p.tier != null ? ` · tier ${p.tier}` : '') + (zone ? ` · ${zone}` : '') +
        ` · ${formatBytes(p.bytes)}`;
      if (c.title !== title) c.title = title;
      counts[p.type] = (counts[p.type] || 0) + 1;
    }
    const desc = `Slot ${slot.id} layer ${layer.layer} ${kv.toUpperCase()}: ${pages.length} pages` +
      (pages.length ? ': ' + Object.entries(counts).map(([t, n]) => `${n} ${t}`).join(', ') : '') +
      `; new tokens written as ${layer[kv].write_type}`;
    if (lane.el.getAttribute('aria-label') !== desc) lane.el.setAttribute('aria-label', desc);
    setData(lane.el, 'writeType', layer[kv].write_type);
  }

  drawChart() {
    const cv = $('cache-chart');
    const w = cv.clientWidth;
    const h = cv.clientHeight || 110;
    if (!w) return;
    const dpr = window.devicePixelRatio || 1;
    if (cv.width !== Math.round(w * dpr)) cv.width = Math.round(w * dpr);
    if (cv.height !== Math.round(h * dpr)) cv.height = Math.round(h * dpr);
    const g = cv.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const css = getComputedStyle(cv);
    const fg = css.getPropertyValue('--chart-line').trim() || '#2c728e';
    const axis = css.getPropertyValue('--chart-axis').trim() || '#888';
    const budgetColor = css.getPropertyValue('--chart-budget').trim() || '#d33';
    const hs = this.history;
    if (!hs.length) return;
    const now = Date.now();
    const maxB = Math.max(1, ...hs.map((p) => Math.max(p.bytes, p.budget))) * 1.15;
    const pad = { l: 62, r: 6, t: 8, b: 16 };
    const X = (t) => pad.l + (w - pad.l - pad.r) * (1 - (now - t) / HISTORY_MS);
    const Y = (b) => h - pad.b - (h - pad.t - pad.b) * (b / maxB);
    g.font = '11px system-ui, sans-serif';
    g.fillStyle = axis;
    g.strokeStyle = axis;
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(pad.l, pad.t);
    g.lineTo(pad.l, h - pad.b);
    g.lineTo(w - pad.r, h - pad.b);
    g.stroke();
    g.textAlign = 'right';
    g.fillText(formatBytes(maxB / 1.15), pad.l - 4, Y(maxB / 1.15) + 4);
    g.fillText('0', pad.l - 4, h - pad.b + 4);
    g.textAlign = 'left';
    g.fillText('−2 min', pad.l + 2, h - 3);
    g.textAlign = 'right';
    g.fillText('now', w - pad.r, h - 3);
    const last = hs[hs.length - 1];
    if (last.budget) {
      g.strokeStyle = budgetColor;
      g.setLineDash([4, 3]);
      g.beginPath();
      g.moveTo(pad.l, Y(last.budget));
      g.lineTo(w - pad.r, Y(last.budget));
      g.stroke();
      g.setLineDash([]);
    }
    g.strokeStyle = fg;
    g.lineWidth = 2;
    g.beginPath();
    hs.forEach((p, i) => {
      // A step line: bytes change in page-sized jumps.
      if (i === 0) g.moveTo(X(p.t), Y(p.bytes));
      else { g.lineTo(X(p.t), Y(hs[i - 1].bytes)); g.lineTo(X(p.t), Y(p.bytes)); }
    });
    g.lineTo(X(now), Y(last.bytes));
    g.stroke();
    const label = `Cache bytes over the last two minutes: now ${formatBytes(last.bytes)}, peak ${formatBytes(Math.max(...hs.map((p) => p.bytes)))}` +
      (last.budget ? `, budget ${formatBytes(last.budget)}` : '');
    if (Math.round(now / 2000) !== this.labelTick) { this.labelTick = Math.round(now / 2000); cv.setAttribute('aria-label', label); }
    $('chart-budget-note').textContent = last.budget ? ' (dashed: budget)' : '';
  }

  fillTypeSelects(estimates) {
    if (this.typesFilled || !estimates.length) return;
    this.typesFilled = true;
    for (const id of ['rq-k', 'rq-v']) {
      const sel = $(id);
      const keep = document.createElement('option');
      keep.value = '';
      keep.textContent = 'unchanged';
      sel.appendChild(keep);
      for (const e of estimates) {
        if (!e.fits) continue;
        const o = document.createElement('option');
        o.value = e.type;
        o.textContent = `${e.type} (${e.bits_per_value} bits)`;
        sel.appendChild(o);
      }
    }
  }

  requantizeBody(dry) {
    const body = { dry_run: dry };
    const k = $('rq-k').value;
    const v = $('rq-v').value;
    if (k) body.type_k = k;
    if (v) body.type_v = v;
    const layers = $('rq-layers').value.trim();
    if (layers) body.layers = layers;
    const slots = $('rq-slots').value.trim();
    if (slots) {
      const ids = slots.split(/[\s,]+/).filter(Boolean).map(Number);
      if (ids.some((n) => !Number.isInteger(n))) throw new Error('slots: give slot numbers such as 0,1');
      body.slots = ids;
    }
    const rot = $('rq-rotate').value;
    if (rot) body.rotate = rot === 'true';
    return body;
  }

  bindRequantize() {
    const out = $('rq-result');
    const run = async (dry) => {
      out.classList.remove('error');
      let body;
      try { body = this.requantizeBody(dry); } catch (e) { out.classList.add('error'); out.textContent = e.message; return; }
      if (!body.type_k && !body.type_v) { out.classList.add('error'); out.textContent = 'Choose a K and/or V type.'; return; }
      out.textContent = dry ? 'Computing the saving…' : 'Converting…';
      for (const b of [$('rq-preview'), $('rq-apply')]) b.disabled = true;
      try {
        const r = await postJSON('/cache/requantize', body);
        const what = [body.type_k && 'K → ' + body.type_k, body.type_v && 'V → ' + body.type_v].filter(Boolean).join(', ');
        const change = (past) => r.bytes_freed >= 0 ? `${past ? 'freed' : 'would free'} ${formatBytes(r.bytes_freed)}`
          : `${past ? 'grew' : 'would grow'} by ${formatBytes(-r.bytes_freed)}`;
        out.textContent = (r.dry_run ? `Preview (${what}): ${formatBytes(r.bytes_before)} → ${formatBytes(r.bytes_after)}, ` +
          `${change(false)} (${r.pages_converted} pages). Nothing changed yet.`
          : `Done (${what}): ${formatBytes(r.bytes_before)} → ${formatBytes(r.bytes_after)}, ${change(true)}, ` +
          `${r.pages_converted} pages in ${r.elapsed_ms.toFixed(1)} ms.`);
        out.dataset.dryRun = String(r.dry_run);
        if (!dry) this.poll();
      } catch (e) {
        out.classList.add('error');
        out.textContent = e instanceof ApiError && e.status === 409 ? 'Another requantization is running: try again.' : 'Error: ' + e.message;
      } finally {
        for (const b of [$('rq-preview'), $('rq-apply')]) b.disabled = false;
      }
    };
    $('rq-preview').addEventListener('click', () => run(true));
    $('rq-form').addEventListener('submit', (e) => { e.preventDefault(); run(false); });
  }

  async loadPolicy() {
    try {
      this.fillPolicy(await getJSON('/cache/policy'));
    } catch (e) {
      $('pol-result').textContent = e.status === 401 ? '' : 'Error: ' + e.message;
    }
  }

  fillPolicy(p) {
    this.policy = p;
    const steps = (l) => (l || []).map((s) => `${s.at}:${s.type}`).join(',');
    $('pol-ladder_k').value = p.enabled ? (p.ladder_k || []).join(',') : '';
    $('pol-ladder_v').value = p.enabled ? (p.ladder_v || []).join(',') : '';
    $('pol-hot').value = p.enabled ? p.hot : '';
    $('pol-sink').value = p.enabled ? p.sink : '';
    $('pol-warm').value = p.enabled ? p.warm : '';
    $('pol-budget').value = p.enabled && p.budget_bytes ? String(p.budget_bytes) : '';
    $('pol-dynamic_k').value = p.enabled ? steps(p.dynamic_k) : '';
    $('pol-dynamic_v').value = p.enabled ? steps(p.dynamic_v) : '';
    $('pol-result').textContent = p.enabled ? 'A policy is on.' : 'No policy: pages stay in the type they were written in.';
    if (p.stats) this.showStats(p.stats);
  }

  showStats(st) {
    setText($('pol-stats'), `Policy conversions: ${st.conversions_by_age} by age, ${st.conversions_by_length} by length, ` +
      `${st.conversions_by_budget} by budget; ${formatBytes(st.bytes_freed)} freed; ${st.budget_rejections} requests refused over budget.`);
  }

  bindPolicy() {
    const out = $('pol-result');
    $('pol-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      out.classList.remove('error');
      const body = {};
      const list = (id) => $(id).value.split(/[\s,]+/).filter(Boolean);
      if ($('pol-ladder_k').value.trim()) body.ladder_k = list('pol-ladder_k');
      if ($('pol-ladder_v').value.trim()) body.ladder_v = list('pol-ladder_v');
      for (const f of ['hot', 'sink', 'warm']) {
        const v = $('pol-' + f).value;
        if (v !== '') body[f] = Number(v);
      }
      body.dynamic_k = $('pol-dynamic_k').value.trim();
      body.dynamic_v = $('pol-dynamic_v').value.trim();
      const b = $('pol-budget').value.trim();
      body.budget = /^\d+$/.test(b) ? Number(b) : b;
      try {
        this.fillPolicy(await postJSON('/cache/policy', body));
        out.textContent = 'Policy applied: it acts from the next scheduler step.';
        this.poll();
      } catch (err) {
        out.classList.add('error');
        out.textContent = 'Error: ' + err.message;
      }
    });
    $('pol-off').addEventListener('click', async () => {
      try {
        this.fillPolicy(await postJSON('/cache/policy', { enabled: false }));
        this.poll();
      } catch (err) {
        out.classList.add('error');
        out.textContent = 'Error: ' + err.message;
      }
    });
    $('pol-reload').addEventListener('click', () => this.loadPolicy());
  }
}

function rank(t) {
  const i = TYPE_ORDER.indexOf(t);
  return i < 0 ? TYPE_ORDER.length : i;
}

function swatch(cls, data, label) {
  const item = document.createElement('span');
  item.className = 'legend-item';
  const c = document.createElement('span');
  c.className = cls;
  c.setAttribute('aria-hidden', 'true');
  for (const [k, v] of Object.entries(data)) c.dataset[k] = v;
  item.append(c, document.createTextNode(label));
  return item;
}

function setData(e, k, v) {
  if (v === '') { if (k in e.dataset) delete e.dataset[k]; return; }
  if (e.dataset[k] !== v) e.dataset[k] = v;
}

function setText(e, s) {
  if (e.textContent !== s) e.textContent = s;
}
