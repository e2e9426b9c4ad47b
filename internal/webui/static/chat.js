// The chat pane: conversations kept in localStorage, replies streamed
// from /v1/chat/completions, a stop button, the system prompt and
// sampling settings, Markdown rendering (md.js), reasoning folded, and
// token counts and speed per reply.

import { request, events, ApiError } from './api.js';
import { parse, toDOM, splitThink } from './md.js';

const CONV_KEY = 'kvserve.conversations';
const SET_KEY = 'kvserve.settings';
const FIELDS = ['temperature', 'top_k', 'top_p', 'min_p', 'repeat_penalty', 'max_tokens', 'seed', 'id_slot'];
const $ = (id) => document.getElementById(id);

function load(key, fallback) {
  try { return JSON.parse(localStorage.getItem(key)) ?? fallback; } catch { return fallback; }
}
function save(key, v) {
  try { localStorage.setItem(key, JSON.stringify(v)); } catch { /* full or disabled */ }
}
const newId = () => Date.now().toString(36) + Math.random().toString(36).slice(2, 6);

export class Chat {
  constructor() {
    this.convs = load(CONV_KEY, []).filter((c) => c && Array.isArray(c.messages));
    for (const c of this.convs) for (const m of c.messages) m.streaming = false; // a reload ended them
    if (!this.convs.length) this.convs.push(this.blank());
    this.cur = this.convs[0].id;
    this.settings = load(SET_KEY, {});
    this.abort = null;
    this.bindSettings();
    this.bindForm();
    this.renderList();
    this.renderAll();
  }

  blank() { return { id: newId(), title: 'New conversation', messages: [] }; }
  conv() { return this.convs.find((c) => c.id === this.cur) || this.convs[0]; }
  persist() { save(CONV_KEY, this.convs.slice(0, 50)); }

  bindSettings() {
    const sys = $('set-system');
    sys.value = this.settings.system ?? '';
    sys.addEventListener('input', () => { this.settings.system = sys.value; save(SET_KEY, this.settings); });
    for (const f of FIELDS) {
      const inp = $('set-' + f);
      if (this.settings[f] != null) inp.value = this.settings[f];
      inp.addEventListener('input', () => {
        if (inp.value === '') delete this.settings[f]; else this.settings[f] = inp.value;
        save(SET_KEY, this.settings);
      });
    }
  }

  // setDefaults shows the server's sampling defaults as placeholders.
  setDefaults(params) {
    if (!params) return;
    const map = { max_tokens: 'n_predict' };
    for (const f of FIELDS) {
      const v = params[map[f] || f];
      if (v != null && f !== 'seed' && f !== 'id_slot' && !(f === 'max_tokens' && v < 0)) $('set-' + f).placeholder = String(v);
    }
  }

  bindForm() {
    const input = $('chat-input');
    $('chat-form').addEventListener('submit', (e) => { e.preventDefault(); this.send(); });
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.send(); }
    });
    document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && this.abort) this.stop(); });
    $('stop').addEventListener('click', () => this.stop());
    $('conv-new').addEventListener('click', () => {
      if (this.abort) return;
      const c = this.blank();
      this.convs.unshift(c);
      this.cur = c.id;
      this.persist();
      this.renderList();
      this.renderAll();
      input.focus();
    });
    $('conv-delete').addEventListener('click', () => {
      if (this.abort) return;
      this.convs = this.convs.filter((c) => c.id !== this.cur);
      for (const c of this.convs) for (const m of c.messages) m.streaming = false; // a reload ended them
    if (!this.convs.length) this.convs.push(this.blank());
      this.cur = this.convs[0].id;
      this.persist();
      this.renderList();
      this.renderAll();
    });
    $('conv-select').addEventListener('change', (e) => {
      if (this.abort) { e.target.value = this.cur; return; }
      this.cur = e.target.value;
      this.renderAll();
    });
  }

  renderList() {
    const sel = $('conv-select');
    sel.replaceChildren(...this.convs.map((c) => {
      const o = document.createElement('option');
      o.value = c.id;
      o.textContent = c.title;
      return o;
    }));
    sel.value = this.cur;
  }

  renderAll() {
    const box = $('messages');
    box.replaceChildren();
    for (const m of this.conv().messages) box.appendChild(this.messageEl(m));
    if (!this.conv().messages.length) {
      const p = document.createElement('p');
      p.className = 'empty muted';
      p.textContent = 'Send a message to start. The cache map shows the slot filling as the reply streams.';
      box.appendChild(p);
    }
    box.scrollTop = box.scrollHeight;
  }

  messageEl(m) {
    const art = document.createElement('article');
    art.className = 'msg ' + m.role;
    if (m.role === 'assistant') art.dataset.testid = 'reply'; else art.dataset.testid = 'user-message';
    const who = document.createElement('h3');
    who.className = 'who';
    who.textContent = m.role === 'assistant' ? 'kvserve' : 'You';
    art.appendChild(who);
    const body = document.createElement('div');
    body.className = 'body';
    art.appendChild(body);
    const stats = document.createElement('p');
    stats.className = 'stats muted';
    stats.dataset.testid = 'reply-stats';
    art.appendChild(stats);
    this.fill(art, m);
    return art;
  }

  // fill renders a message's content (and reasoning, stats) into its element.
  fill(art, m) {
    const body = art.querySelector('.body');
    body.replaceChildren();
    if (m.role !== 'assistant') {
      const p = document.createElement('p');
      p.className = 'plain';
      p.textContent = m.content;
      body.appendChild(p);
      return;
    }
    const th = splitThink(m.content || '');
    const reasoning = ((m.reasoning || '') + (th.reasoning ? (m.reasoning ? '\n' : '') + th.reasoning : '')).trim();
    if (reasoning) {
      const d = document.createElement('details');
      d.className = 'reasoning';
      d.open = !!m.reasoningOpen;
      d.addEventListener('toggle', () => { m.reasoningOpen = d.open; });
      const s = document.createElement('summary');
      s.textContent = (m.streaming && (th.open || (!th.answer && m.reasoning)) ? 'Reasoning…' : 'Reasoning') +
        ` (${reasoning.length} characters)`;
      d.appendChild(s);
      const inner = document.createElement('div');
      toDOM(parse(reasoning), inner);
      d.appendChild(inner);
      body.appendChild(d);
    }
    toDOM(parse(th.answer), body);
    if (m.error) {
      const e = document.createElement('p');
      e.className = 'error';
      e.setAttribute('role', 'alert');
      e.textContent = m.error;
      body.appendChild(e);
    }
    art.querySelector('.stats').textContent = m.stats || (m.streaming ? 'generating…' : '');
    art.setAttribute('aria-busy', m.streaming ? 'true' : 'false');
  }

  params() {
    const p = {};
    for (const f of FIELDS) {
      const v = this.settings[f];
      if (v === undefined || v === '') continue;
      const n = Number(v);
      if (!Number.isFinite(n)) continue;
      if (f === 'id_slot' && n < 0) continue;
      p[f] = n;
    }
    return p;
  }

  async send() {
    const input = $('chat-input');
    const text = input.value.trim();
    if (!text || this.abort) return;
    const conv = this.conv();
    if (!conv.messages.length) conv.title = text.slice(0, 40);
    conv.messages.push({ role: 'user', content: text });
    const reply = { role: 'assistant', content: '', reasoning: '', streaming: true };
    conv.messages.push(reply);
    input.value = '';
    this.renderList();
    this.renderAll();
    const box = $('messages');
    const art = box.lastElementChild;

    const messages = [];
    if (this.settings.system) messages.push({ role: 'system', content: this.settings.system });
    for (const m of conv.messages.slice(0, -1)) {
      if (m.role === 'user' || (m.role === 'assistant' && !m.error)) {
        messages.push({ role: m.role, content: m.role === 'assistant' ? splitThink(m.content).answer : m.content });
      }
    }
    const ctl = new AbortController();
    this.abort = ctl;
    this.busy(true);
    const t0 = performance.now();
    let tFirst = 0;
    let chunks = 0;
    let timings = null;
    let usage = null;
    let finish = '';
    let pending = false;
    const paint = () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        const stick = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
        this.fill(art, reply);
        if (stick) box.scrollTop = box.scrollHeight;
      });
    };
    try {
      const r = await request('/v1/chat/completions', {
        method: 'POST', signal: ctl.signal,
        body: { messages, stream: true, stream_options: { include_usage: true }, ...this.params() },
      });
      for await (const ev of events(r)) {
        if (ev === '[DONE]') break;
        if (ev.error) throw new ApiError(ev.error.code || 500, ev.error.message || 'error');
        if (ev.timings) timings = ev.timings;
        if (ev.usage) usage = ev.usage;
        for (const c of ev.choices || []) {
          const d = c.delta || {};
          if (d.content) { reply.content += d.content; chunks++; }
          if (d.reasoning_content) { reply.reasoning += d.reasoning_content; chunks++; }
          if ((d.content || d.reasoning_content) && !tFirst) tFirst = performance.now();
          if (c.finish_reason) finish = c.finish_reason;
        }
        paint();
      }
    } catch (e) {
      if (e.name === 'AbortError') finish = 'stopped';
      else reply.error = e.status === 401 ? 'The server needs an API key: enter it above and send again.' : 'Error: ' + e.message;
    } finally {
      this.abort = null;
      reply.streaming = false;
      reply.stats = stats(timings, usage, finish, chunks, t0, tFirst);
      this.fill(art, reply);
      this.persist();
      this.busy(false);
      box.scrollTop = box.scrollHeight;
      input.focus();
    }
  }

  stop() { if (this.abort) this.abort.abort(); }

  busy(on) {
    $('send').disabled = on;
    $('stop').disabled = !on;
    $('conv-select').disabled = on;
  }
}

// stats describes a finished reply: tokens and speed from the server's
// timings and usage, else counted here (a stopped stream has neither).
function stats(t, u, finish, chunks, t0, tFirst) {
  const parts = [];
  const end = performance.now();
  if (t && t.predicted_n != null) {
    parts.push(`${t.predicted_n} tokens`, `${t.predicted_per_second.toFixed(1)} tokens/s`);
    const cached = t.cache_n ? `, ${t.cache_n} cached` : '';
    parts.push(`prompt ${t.prompt_n} tokens${cached} at ${t.prompt_per_second.toFixed(0)} tokens/s`);
    if (t.draft_n) {
      // Speculative decoding: drafted tokens the model accepted.
      parts.push(`draft ${t.draft_n_accepted}/${t.draft_n} accepted (${Math.round(100 * t.draft_n_accepted / t.draft_n)}%)`);
    }
  } else if (u) {
    parts.push(`${u.completion_tokens} tokens`, `prompt ${u.prompt_tokens} tokens`);
  } else if (chunks) {
    const secs = (end - (tFirst || t0)) / 1000;
    parts.push(`~${chunks} chunks`, secs > 0 ? `${(chunks / secs).toFixed(1)} chunks/s` : '');
  }
  if (tFirst) parts.push(`first text after ${Math.round(tFirst - t0)} ms`);
  if (finish) parts.push(finish === 'length' ? 'stopped at max tokens' : finish === 'stopped' ? 'stopped by you' : `finish: ${finish}`);
  return parts.filter(Boolean).join(' · ');
}
