// HTTP helpers: the API key (sessionStorage), JSON requests with OpenAI
// error bodies turned into Errors, and a server-sent-events reader.

const KEY = 'kvserve.apiKey';

export function apiKey() {
  try { return sessionStorage.getItem(KEY) || ''; } catch { return ''; }
}

export function setApiKey(k) {
  try {
    if (k) sessionStorage.setItem(KEY, k); else sessionStorage.removeItem(KEY);
  } catch { /* storage disabled: the key lives until reload */ }
  memoryKey = k;
}

let memoryKey = '';
let onAuth = () => {};

// onAuthNeeded sets the function called when the server answers 401.
export function onAuthNeeded(f) { onAuth = f; }

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// request sends method+path with an optional JSON body and the API key.
export async function request(path, { method = 'GET', body, signal } = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const k = apiKey() || memoryKey;
  if (k) headers.Authorization = 'Bearer ' + k;
  const r = await fetch(path, {
    method, headers, signal, cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!r.ok) {
    let msg = r.status + ' ' + r.statusText;
    try {
      const j = await r.json();
      if (j && j.error && j.error.message) msg = j.error.message;
    } catch { /* not JSON */ }
    // Ask for a key unless it changed while this request was out.
    if (r.status === 401 && k === (apiKey() || memoryKey)) onAuth();
    throw new ApiError(r.status, msg);
  }
  return r;
}

// getJSON / postJSON return the decoded body or throw an ApiError.
export async function getJSON(path, opts = {}) {
  return (await request(path, opts)).json();
}

export async function postJSON(path, body, opts = {}) {
  return (await request(path, { ...opts, method: 'POST', body })).json();
}

// events yields the data of each server-sent event of a response: the
// parsed JSON, or the string '[DONE]'.
export async function* events(response) {
  const reader = response.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    buf = buf.replace(/\r\n?/g, '\n');
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = block.split('\n').filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
      if (!data) continue;
      if (data === '[DONE]') { yield data; continue; }
      yield JSON.parse(data);
    }
  }
}

// formatBytes gives 1536 as "1.5 KiB".
export function formatBytes(n) {
  if (n == null || !isFinite(n)) return '–';
  const neg = n < 0;
  let v = Math.abs(n);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  const s = u === 0 ? String(v) : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0);
  return (neg ? '-' : '') + s + ' ' + units[u];
}
