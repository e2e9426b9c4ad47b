// Unit tests of the page's Markdown renderer (internal/webui/static/md.js):
// model text never becomes markup, and the usual constructs render.
// Run: node --test md.test.mjs (no browser needed).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, toHTML, splitThink, safeURL } from '../../internal/webui/static/md.js';

const html = (s) => toHTML(parse(s));

test('HTML in model text is escaped, everywhere', () => {
  assert.equal(html('<script>alert(1)</script>'), '<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>');
  assert.equal(html('<img src=x onerror=alert(1)>'), '<p>&lt;img src=x onerror=alert(1)&gt;</p>');
  assert.equal(html('**<b>bold</b>**'), '<p><strong>&lt;b&gt;bold&lt;/b&gt;</strong></p>');
  assert.equal(html('```html\n<div onclick="x">\n```'),
    '<pre data-lang="html"><code class="lang-html">&lt;div onclick=&quot;x&quot;&gt;</code></pre>');
  assert.equal(html('`<i>`'), '<p><code>&lt;i&gt;</code></p>');
  assert.equal(html('| a | <b> |\n|---|---|\n| 1 | 2 |'),
    '<table><thead><tr><th>a</th><th>&lt;b&gt;</th></tr></thead><tbody><tr><td>1</td><td>2</td></tr></tbody></table>');
});

test('links keep only http(s) and mailto targets', () => {
  assert.equal(html('[x](javascript:alert(1))'), '<p>x</p>');
  assert.equal(html('[x](data:text/html,hi)'), '<p>x</p>');
  assert.equal(html('[x](https://example.org/a?b=1&c=2)'),
    '<p><a href="https://example.org/a?b=1&amp;c=2" rel="noopener noreferrer nofollow" target="_blank">x</a></p>');
  assert.equal(html('see https://example.org/x.'),
    '<p>see <a href="https://example.org/x" rel="noopener noreferrer nofollow" target="_blank">https://example.org/x</a>.</p>');
  assert.equal(html('[x](https://a.org/"onmouseover="y)'), '<p>x</p>');
  assert.equal(safeURL(' javascript:x'), null);
  assert.equal(safeURL('mailto:a@b.org'), 'mailto:a@b.org');
});

test('blocks and inline styles', () => {
  assert.equal(html('# Title\n\ntext *it* and **bold** ~~old~~'),
    '<h1>Title</h1><p>text <em>it</em> and <strong>bold</strong> <del>old</del></p>');
  assert.equal(html('- one\n- two\n\n1. a\n2. b'), '<ul><li>one</li><li>two</li></ul><ol><li>a</li><li>b</li></ol>');
  assert.equal(html('3. c\n4. d'), '<ol start="3"><li>c</li><li>d</li></ol>');
  assert.equal(html('> quoted\n> more'), '<blockquote><p>quoted<br>more</p></blockquote>');
  assert.equal(html('line one\nline two'), '<p>line one<br>line two</p>');
  assert.equal(html('a\n\n---\n\nb'), '<p>a</p><hr><p>b</p>');
  assert.equal(html('snake_case_name and a * b * c'), '<p>snake_case_name and a * b * c</p>');
  assert.equal(html('[wiki](https://en.wikipedia.org/wiki/Fox_(disambiguation))'),
    '<p><a href="https://en.wikipedia.org/wiki/Fox_(disambiguation)" rel="noopener noreferrer nofollow" target="_blank">wiki</a></p>');
  assert.equal(html('\\*not italic\\*'), '<p>*not italic*</p>');
});

test('an unterminated code fence (a reply still streaming) runs to the end', () => {
  assert.equal(html('Here:\n```go\nfunc main() {\n'),
    '<p>Here:</p><pre data-lang="go" data-open="true"><code class="lang-go">func main() {\n</code></pre>');
  assert.equal(html('```\na\n```\nafter'), '<pre><code>a</code></pre><p>after</p>');
});

test('reasoning in <think> tags is split from the answer', () => {
  assert.deepEqual(splitThink('<think>step 1</think>\n\nThe answer'), { reasoning: 'step 1', answer: 'The answer', open: false });
  assert.deepEqual(splitThink('<think>still thinking'), { reasoning: 'still thinking', answer: '', open: true });
  assert.deepEqual(splitThink('thought</think>answer'), { reasoning: 'thought', answer: 'answer', open: false });
  assert.deepEqual(splitThink('plain'), { reasoning: '', answer: 'plain', open: false });
});
