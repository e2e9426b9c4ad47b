// A small Markdown renderer for model replies. It never produces HTML
// from the text: parse builds a tree of plain nodes, and toDOM turns it
// into elements with textContent, so nothing the model writes can become
// markup. Links keep only http(s) and mailto targets.
//
// Supported: fenced code blocks (``` with a language; an unterminated
// fence, as while a reply streams, runs to the end), indented code,
// headings, block quotes, lists (ordered and not, one level with
// continuation lines), rules, tables, paragraphs with line breaks, and
// inline code, **bold**, *italic*, ~~strike~~, [links](url) and bare
// URLs.
//
// Node shapes: {t: 'text', v} and {t: 'el', tag, attrs, c: [nodes]}.

const text = (v) => ({ t: 'text', v });
const el = (tag, c = [], attrs = {}) => ({ t: 'el', tag, attrs, c });

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)\s*$/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;
const ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])\s+(.*)$/;
const TABLE_SEP = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

// parse returns the block nodes of a Markdown text.
export function parse(src) {
  return blocks(String(src ?? '').replace(/\r\n?/g, '\n').split('\n'));
}

function blocks(lines) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) { i++; continue; }
    let m;
    if ((m = FENCE.exec(line))) {
      const fence = m[1];
      const body = [];
      i++;
      const close = new RegExp('^ {0,3}' + fence[0] + '{' + fence.length + ',}\\s*$');
      while (i < lines.length && !close.test(lines[i])) {
        body.push(lines[i]);
        i++;
      }
      const closed = i < lines.length;
      i++;
      const attrs = m[2] ? { 'data-lang': m[2] } : {};
      if (!closed) attrs['data-open'] = 'true';
      out.push(el('pre', [el('code', [text(body.join('\n'))], m[2] ? { class: 'lang-' + m[2] } : {})], attrs));
      continue;
    }
    if (/^( {4}|\t)/.test(line) && (out.length === 0 || out[out.length - 1].tag !== 'p')) {
      const body = [];
      while (i < lines.length && (/^( {4}|\t)/.test(lines[i]) || !lines[i].trim())) {
        body.push(lines[i].replace(/^( {4}|\t)/, ''));
        i++;
      }
      while (body.length && !body[body.length - 1].trim()) body.pop();
      out.push(el('pre', [el('code', [text(body.join('\n'))])]));
      continue;
    }
    if ((m = HEADING.exec(line))) {
      out.push(el('h' + m[1].length, inline(m[2])));
      i++;
      continue;
    }
    if (RULE.test(line)) { out.push(el('hr')); i++; continue; }
    if (QUOTE.test(line)) {
      const body = [];
      while (i < lines.length && (m = QUOTE.exec(lines[i]))) { body.push(m[1]); i++; }
      out.push(el('blockquote', blocks(body)));
      continue;
    }
    if ((m = ITEM.exec(line))) {
      const ordered = /\d/.test(m[2]);
      const items = [];
      let cur = null;
      while (i < lines.length) {
        const l = lines[i];
        const im = ITEM.exec(l);
        if (im && /\d/.test(im[2]) === ordered) {
          cur = [im[3]];
          items.push({ lines: cur, start: parseInt(im[2], 10) });
          i++;
        } else if (l.trim() && cur && (/^\s+/.test(l) || !isBlockStart(l))) {
          cur.push(l.replace(/^\s{1,4}/, ''));
          i++;
        } else if (!l.trim() && i + 1 < lines.length && /^\s+\S/.test(lines[i + 1]) && cur) {
          cur.push('');
          i++;
        } else {
          break;
        }
      }
      const attrs = ordered && items[0].start !== 1 ? { start: String(items[0].start) } : {};
      out.push(el(ordered ? 'ol' : 'ul', items.map((it) => {
        const inner = blocks(it.lines);
        // A tight item is its paragraph's content.
        const c = inner.length === 1 && inner[0].tag === 'p' ? inner[0].c : inner;
        return el('li', c);
      }), attrs));
      continue;
    }
    if (line.includes('|') && i + 1 < lines.length && TABLE_SEP.test(lines[i + 1]) && lines[i + 1].includes('-')) {
      const head = cells(line);
      i += 2;
      const rows = [];
      while (i < lines.length && lines[i].includes('|') && lines[i].trim()) { rows.push(cells(lines[i])); i++; }
      out.push(el('table', [
        el('thead', [el('tr', head.map((h) => el('th', inline(h))))]),
        el('tbody', rows.map((r) => el('tr', head.map((_, k) => el('td', inline(r[k] ?? '')))))),
      ]));
      continue;
    }
    // A paragraph: lines up to a blank line or another block's start.
    const para = [line];
    i++;
    while (i < lines.length && lines[i].trim() && !isBlockStart(lines[i])) { para.push(lines[i]); i++; }
    const c = [];
    para.forEach((l, k) => {
      if (k > 0) c.push(el('br'));
      c.push(...inline(l.trim()));
    });
    out.push(el('p', c));
  }
  return out;
}

function isBlockStart(l) {
  return FENCE.test(l) || HEADING.test(l) || RULE.test(l) || QUOTE.test(l) || ITEM.test(l);
}

function cells(l) {
  let s = l.trim();
  if (s.startsWith('|')) s = s.slice(1);
  if (s.endsWith('|')) s = s.slice(0, -1);
  return s.split('|').map((x) => x.trim());
}

// safeURL returns the URL if its scheme is http, https or mailto.
export function safeURL(u) {
  const s = String(u).trim();
  return /^(https?:\/\/|mailto:)[^\s<>"']+$/i.test(s) ? s : null;
}

const DELIMS = [
  ['**', 'strong'], ['__', 'strong'], ['~~', 'del'], ['*', 'em'], ['_', 'em'],
];

// inline returns the inline nodes of one line.
export function inline(s) {
  const out = [];
  let buf = '';
  const flush = () => { if (buf) { out.push(text(buf)); buf = ''; } };
  let i = 0;
  outer: while (i < s.length) {
    const ch = s[i];
    if (ch === '\\' && i + 1 < s.length && /[\\`*_{}[\]()#+\-.!|~<>]/.test(s[i + 1])) {
      buf += s[i + 1];
      i += 2;
      continue;
    }
    if (ch === '`') {
      let n = 1;
      while (s[i + n] === '`') n++;
      const tick = '`'.repeat(n);
      const end = s.indexOf(tick, i + n);
      if (end > 0) {
        flush();
        let code = s.slice(i + n, end);
        if (/^ .* $/.test(code)) code = code.slice(1, -1);
        out.push(el('code', [text(code)]));
        i = end + n;
        continue;
      }
      buf += tick;
      i += n;
      continue;
    }
    for (const [d, tag] of DELIMS) {
      if (!s.startsWith(d, i)) continue;
      const after = s[i + d.length];
      if (!after || /\s/.test(after)) continue;
      if (d[0] === '_' && i > 0 && /\w/.test(s[i - 1])) continue;
      let end = s.indexOf(d, i + d.length + 1);
      while (end > 0 && (/\s/.test(s[end - 1]) || (d[0] === '_' && /\w/.test(s[end + d.length] || '')) ||
        (d === '*' && s[end + 1] === '*'))) {
        end = s.indexOf(d, end + d.length);
      }
      if (end < 0) continue;
      flush();
      out.push(el(tag, inline(s.slice(i + d.length, end))));
      i = end + d.length;
      continue outer;
    }
    if (ch === '[') {
      const m = /^\[([^\]]+)\]\(\s*((?:[^()\s]|\([^()\s]*\))+)(?:\s+"[^"]*")?\s*\)/.exec(s.slice(i));
      if (m) {
        const url = safeURL(m[2]);
        flush();
        if (url) out.push(el('a', inline(m[1]), { href: url, rel: 'noopener noreferrer nofollow', target: '_blank' }));
        else out.push(...inline(m[1]));
        i += m[0].length;
        continue;
      }
    }
    if ((ch === 'h' || ch === 'H') && /^https?:\/\//i.test(s.slice(i, i + 8)) && (i === 0 || /[\s(]/.test(s[i - 1]))) {
      let m = /^https?:\/\/[^\s<>"]+/i.exec(s.slice(i))[0];
      m = m.replace(/[.,;:!?)]+$/, '');
      flush();
      out.push(el('a', [text(m)], { href: m, rel: 'noopener noreferrer nofollow', target: '_blank' }));
      i += m.length;
      continue;
    }
    buf += ch;
    i++;
  }
  flush();
  return out;
}

const ATTRS = new Set(['href', 'rel', 'target', 'class', 'start', 'data-lang', 'data-open']);

// toDOM appends the nodes to parent (a DOM element) as elements and text
// nodes; only known attributes are set, and href only when safe.
export function toDOM(nodes, parent) {
  const doc = parent.ownerDocument;
  for (const n of nodes) {
    if (n.t === 'text') { parent.appendChild(doc.createTextNode(n.v)); continue; }
    const e = doc.createElement(n.tag);
    for (const [k, v] of Object.entries(n.attrs)) {
      if (!ATTRS.has(k)) continue;
      if (k === 'href' && !safeURL(v)) continue;
      e.setAttribute(k, v);
    }
    toDOM(n.c, e);
    parent.appendChild(e);
  }
  return parent;
}

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHTML = (s) => String(s).replace(/[&<>"']/g, (c) => ESC[c]);
const VOID = new Set(['br', 'hr']);

// toHTML serialises the nodes with every text and attribute escaped (for
// tests and copying; the page itself uses toDOM).
export function toHTML(nodes) {
  return nodes.map((n) => {
    if (n.t === 'text') return escapeHTML(n.v);
    const attrs = Object.entries(n.attrs).filter(([k, v]) => ATTRS.has(k) && (k !== 'href' || safeURL(v)))
      .map(([k, v]) => ` ${k}="${escapeHTML(v)}"`).join('');
    return VOID.has(n.tag) ? `<${n.tag}${attrs}>` : `<${n.tag}${attrs}>${toHTML(n.c)}</${n.tag}>`;
  }).join('');
}

// splitThink separates reasoning written as <think>…</think> in the
// content from the answer. An unclosed <think> (still streaming) makes
// the rest reasoning; open tells whether it is still open.
export function splitThink(content) {
  let reasoning = '';
  let answer = '';
  let open = false;
  let s = content;
  for (;;) {
    const a = s.indexOf('<think>');
    if (a < 0) { answer += s; break; }
    answer += s.slice(0, a);
    const b = s.indexOf('</think>', a + 7);
    if (b < 0) { reasoning += s.slice(a + 7); open = true; break; }
    reasoning += s.slice(a + 7, b);
    s = s.slice(b + 8);
  }
  // Some templates open the think block in the prompt: a lone </think>.
  const lone = answer.indexOf('</think>');
  if (lone >= 0 && !reasoning) {
    reasoning = answer.slice(0, lone);
    answer = answer.slice(lone + 8);
  }
  return { reasoning: reasoning.trim(), answer: answer.replace(/^\s+/, ''), open };
}
