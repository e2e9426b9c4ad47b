// Entry point of the page: server status and model name, the API key
// form, the chat pane and the cache pane.

import { getJSON, setApiKey, onAuthNeeded } from './api.js';
import { Chat } from './chat.js';
import { CacheView } from './cachemap.js';

const $ = (id) => document.getElementById(id);

function showKeyForm(reason) {
  const f = $('key-form');
  if (!f.hidden) return;
  f.hidden = false;
  f.querySelector('label').textContent = reason || 'This server needs an API key (kept in this tab only):';
  $('key-input').focus();
}

function bindKey(onKey) {
  onAuthNeeded(() => showKeyForm());
  $('key-button').addEventListener('click', () => showKeyForm('API key for this server (kept in this tab only; empty to forget it):'));
  $('key-cancel').addEventListener('click', () => { $('key-form').hidden = true; });
  $('key-input').required = false;
  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    setApiKey($('key-input').value.trim());
    $('key-input').value = '';
    $('key-form').hidden = true;
    onKey();
  });
}

async function status() {
  // /health is public: it tells loading from ready without the key.
  try {
    const r = await fetch('/health', { cache: 'no-store' });
    const ok = r.status === 200;
    $('status').textContent = ok ? 'ready' : r.status === 503 ? 'loading the model…' : 'error ' + r.status;
    $('status').dataset.state = ok ? 'ready' : 'wait';
    return ok;
  } catch {
    $('status').textContent = 'server unreachable';
    $('status').dataset.state = 'down';
    return false;
  }
}

async function props(chat) {
  try {
    const p = await getJSON('/props');
    $('model').textContent = `${p.model_alias || p.model_path} · ${p.total_slots} slot${p.total_slots === 1 ? '' : 's'} × ${p.n_ctx_slot} tokens`;
    chat.setDefaults(p.default_generation_settings && p.default_generation_settings.params);
    return true;
  } catch {
    return false;
  }
}

async function slots(view) {
  try {
    const s = await getJSON('/slots');
    view.busySlots = new Set(s.filter((x) => x.is_processing).map((x) => x.id));
  } catch { /* no key yet, or not ready */ }
}

async function main() {
  const chat = new Chat();
  const view = new CacheView();
  let haveProps = false;
  bindKey(async () => {
    haveProps = await props(chat);
    view.loadPolicy();
    view.poll();
  });
  while (!(await status())) await new Promise((r) => setTimeout(r, 500));
  haveProps = await props(chat);
  view.start();
  setInterval(async () => {
    if (document.hidden) return;
    if (await status()) {
      if (!haveProps) haveProps = await props(chat);
      slots(view);
    }
  }, 1000);
}

main();
