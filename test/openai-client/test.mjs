// Drives a running `kvserve serve` with the official openai npm client,
// unchanged: chat (plain and streaming), legacy completions (plain and
// streaming), logprobs, errors, tool calling (a round trip, streamed
// tool-call deltas), response_format json_schema, embeddings and the Responses API. .ci/run starts the server (embedded
// model, --api-key) and passes its address in KVSERVE_URL and the key in
// KVSERVE_API_KEY.
//
// Run: KVSERVE_URL=http://127.0.0.1:PORT KVSERVE_API_KEY=KEY node --test test.mjs

import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = (process.env.KVSERVE_URL ?? 'http://127.0.0.1:8080') + '/v1';
const apiKey = process.env.KVSERVE_API_KEY ?? 'no-key';
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120_000 });

const messages = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'Tell me a story about a fox.' },
];
const greedy = { temperature: 0, seed: 1 };

// The server loads its model in the background: wait for /health.
before(async () => {
  const health = baseURL.replace(/\/v1$/, '') + '/health';
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(health)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${health} did not answer 200 within 60 s`);
});

test('models.list', async () => {
  const page = await client.models.list();
  assert.equal(page.data.length, 1);
  assert.equal(page.data[0].object, 'model');
  assert.ok(page.data[0].id.length > 0);
});

test('chat completion, then the same streamed', async () => {
  const r = await client.chat.completions.create({ model: 'kvserve', messages, max_tokens: 16, ...greedy });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.index, 0);
  assert.equal(c.message.role, 'assistant');
  assert.equal(typeof c.message.content, 'string');
  assert.ok(c.message.content.length > 0, 'empty content');
  assert.ok(['stop', 'length'].includes(c.finish_reason), `finish_reason ${c.finish_reason}`);
  assert.equal(r.usage.completion_tokens, c.finish_reason === 'length' ? 16 : r.usage.completion_tokens);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  assert.ok(r.usage.prompt_tokens > 10);

  const stream = await client.chat.completions.create({
    model: 'kvserve', messages, max_tokens: 16, ...greedy, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let role = null;
  let finish = null;
  let usage = null;
  let chunks = 0;
  let id = null;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    id ??= chunk.id;
    assert.equal(chunk.id, id, 'chunk ids differ');
    if (chunk.usage) usage = chunk.usage;
    if (chunk.choices.length === 0) continue;
    const d = chunk.choices[0].delta;
    if (d.role) role = d.role;
    if (d.content) text += d.content;
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.equal(role, 'assistant');
  assert.equal(text, c.message.content, 'streamed text differs from the non-streamed completion');
  assert.equal(finish, c.finish_reason);
  assert.ok(usage, 'no usage chunk with include_usage');
  assert.equal(usage.completion_tokens, r.usage.completion_tokens);
  assert.ok(chunks >= 3);
});

test('chat completion with logprobs', async () => {
  const r = await client.chat.completions.create({
    model: 'kvserve', messages, max_tokens: 8, ...greedy, logprobs: true, top_logprobs: 3,
  });
  const lp = r.choices[0].logprobs;
  assert.ok(lp && Array.isArray(lp.content), 'no logprobs.content');
  assert.equal(lp.content.length, r.usage.completion_tokens);
  let joined = '';
  for (const e of lp.content) {
    assert.equal(typeof e.token, 'string');
    assert.ok(e.logprob <= 0, `logprob ${e.logprob}`);
    assert.ok(Array.isArray(e.bytes));
    if (!e.token.includes('\uFFFD')) assert.deepEqual(e.bytes, [...Buffer.from(e.token, 'utf8')]);
    assert.equal(e.top_logprobs.length, 3);
    for (let i = 1; i < 3; i++) assert.ok(e.top_logprobs[i].logprob <= e.top_logprobs[i - 1].logprob, 'top_logprobs not sorted');
    // Greedy: the chosen token is the most probable one.
    assert.equal(e.top_logprobs[0].token, e.token);
    joined += e.token;
  }
  assert.equal(joined, r.choices[0].message.content);

  // Streaming logprobs: one entry per generated token overall.
  const stream = await client.chat.completions.create({
    model: 'kvserve', messages, max_tokens: 8, ...greedy, logprobs: true, top_logprobs: 1, stream: true,
  });
  let n = 0;
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (c?.logprobs?.content) n += c.logprobs.content.length;
  }
  assert.equal(n, r.usage.completion_tokens);
});

test('completions (legacy), plain, streamed and with logprobs', async () => {
  const prompt = 'Once upon a time';
  const r = await client.completions.create({ model: 'kvserve', prompt, max_tokens: 12, ...greedy, logprobs: 2 });
  assert.equal(r.object, 'text_completion');
  assert.match(r.id, /^cmpl-/);
  const c = r.choices[0];
  assert.equal(typeof c.text, 'string');
  assert.ok(c.text.length > 0);
  assert.equal(c.finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 12);
  assert.equal(c.logprobs.tokens.length, 12);
  assert.equal(c.logprobs.token_logprobs.length, 12);
  assert.equal(c.logprobs.top_logprobs.length, 12);
  assert.equal(c.logprobs.tokens.join(''), c.text);
  for (const top of c.logprobs.top_logprobs) assert.equal(Object.keys(top).length, 2);

  const stream = await client.completions.create({ model: 'kvserve', prompt, max_tokens: 12, ...greedy, stream: true });
  let text = '';
  let finish = null;
  for await (const chunk of stream) {
    if (chunk.choices.length === 0) continue;
    text += chunk.choices[0].text;
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.equal(text, c.text);
  assert.equal(finish, 'length');

  // A stop sequence ends the text before it.
  const stop = c.text.slice(4, 9);
  const s = await client.completions.create({ model: 'kvserve', prompt, max_tokens: 12, ...greedy, stop: [stop] });
  assert.equal(s.choices[0].finish_reason, 'stop');
  assert.equal(s.choices[0].text, c.text.slice(0, c.text.indexOf(stop)));
});

test('n > 1 streamed, and several prompts to completions', async () => {
  const body = { model: 'kvserve', messages, max_tokens: 6, n: 2, temperature: 1, seed: 3 };
  const whole = await client.chat.completions.create(body);
  assert.equal(whole.choices.length, 2);
  const stream = await client.chat.completions.create({ ...body, stream: true });
  const text = ['', ''];
  for await (const chunk of stream) {
    for (const c of chunk.choices) text[c.index] += c.delta.content ?? '';
  }
  for (const c of whole.choices) assert.equal(text[c.index], c.message.content);

  const prompts = ['Once upon a time', 'The fox'];
  const many = await client.completions.create({ model: 'kvserve', prompt: prompts, max_tokens: 5, ...greedy });
  assert.equal(many.choices.length, 2);
  for (const [i, p] of prompts.entries()) {
    const one = await client.completions.create({ model: 'kvserve', prompt: p, max_tokens: 5, ...greedy });
    assert.equal(many.choices[i].index, i);
    assert.equal(many.choices[i].text, one.choices[0].text);
  }
});

test('errors surface as the client\'s typed errors', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'kvserve', messages, max_tokens: 4, n: 17, stream: true }),
    (err) => err instanceof OpenAI.BadRequestError && err.status === 400 && /n/.test(err.message),
  );
  await assert.rejects(
    client.chat.completions.create({ model: 'kvserve', messages: [], max_tokens: 4 }),
    (err) => err instanceof OpenAI.BadRequestError,
  );
  const wrong = new OpenAI({ baseURL, apiKey: 'wrong-key', maxRetries: 0 });
  await assert.rejects(
    wrong.chat.completions.create({ model: 'kvserve', messages, max_tokens: 4 }),
    (err) => err instanceof OpenAI.AuthenticationError && err.status === 401,
  );
});

test('abandoning a stream early frees the server', async () => {
  const stream = await client.chat.completions.create({ model: 'kvserve', messages, max_tokens: 2000, stream: true });
  let n = 0;
  for await (const chunk of stream) {
    if (++n >= 3) break; // the client aborts the request
  }
  // The server cancels the request: every slot is soon idle.
  const root = baseURL.replace(/\/v1$/, '');
  let busy = true;
  for (let i = 0; i < 100 && busy; i++) {
    const res = await fetch(root + '/slots', { headers: { Authorization: `Bearer ${apiKey}` } });
    assert.equal(res.status, 200);
    busy = (await res.json()).some((s) => s.is_processing);
    if (busy) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(!busy, 'a slot is still busy 10 s after the client abandoned its stream');
  const r = await client.chat.completions.create({ model: 'kvserve', messages, max_tokens: 2, ...greedy });
  assert.equal(r.choices.length, 1);
});

// The tool of the tool-calling tests and a check of its arguments against
// its schema.
const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Get the current weather in a city',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string', maxLength: 20 },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
      },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
  },
};

function checkWeatherArgs(text) {
  const args = JSON.parse(text);
  assert.equal(typeof args, 'object');
  assert.deepEqual(Object.keys(args).sort(), ['city', 'unit']);
  assert.equal(typeof args.city, 'string');
  assert.ok([...args.city].length <= 20, `city ${args.city} longer than maxLength`);
  assert.ok(['celsius', 'fahrenheit'].includes(args.unit), `unit ${args.unit}`);
  return args;
}

test('tool round trip: required call, tool result, streamed reply', async () => {
  const convo = [{ role: 'user', content: 'What is the weather in Paris?' }];
  const r = await client.chat.completions.create({
    model: 'kvserve', messages: convo, tools: [weatherTool], tool_choice: 'required', max_tokens: 120, ...greedy,
  });
  const c = r.choices[0];
  assert.equal(c.finish_reason, 'tool_calls');
  assert.equal(c.message.role, 'assistant');
  assert.equal(c.message.tool_calls.length, 1);
  const call = c.message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.match(call.id, /^call_/);
  const args = checkWeatherArgs(call.function.arguments);

  // The call and its result go back; the reply streams.
  convo.push(c.message);
  convo.push({ role: 'tool', tool_call_id: call.id, content: JSON.stringify({ city: args.city, temperature: 21 }) });
  const stream = await client.chat.completions.create({
    model: 'kvserve', messages: convo, tools: [weatherTool], max_tokens: 24, ...greedy, stream: true,
  });
  let text = '';
  let chunks = 0;
  let finish = null;
  for await (const chunk of stream) {
    const ch = chunk.choices[0];
    if (!ch) continue;
    if (ch.delta.content) {
      text += ch.delta.content;
      chunks++;
    }
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  assert.ok(['stop', 'length', 'tool_calls'].includes(finish), `finish_reason ${finish}`);
  if (finish !== 'tool_calls') assert.ok(chunks >= 2 && text.length > 0, `reply streamed in ${chunks} chunks: ${text}`);
});

test('streamed tool-call deltas and a named tool_choice', async () => {
  const stream = await client.chat.completions.create({
    model: 'kvserve', messages: [{ role: 'user', content: 'Weather in Oslo?' }], tools: [weatherTool],
    tool_choice: { type: 'function', function: { name: 'get_weather' } }, max_tokens: 120, ...greedy, stream: true,
  });
  const calls = [];
  let finish = null;
  let argChunks = 0;
  for await (const chunk of stream) {
    const ch = chunk.choices[0];
    if (!ch) continue;
    for (const d of ch.delta.tool_calls ?? []) {
      calls[d.index] ??= { id: '', name: '', args: '' };
      if (d.id) calls[d.index].id = d.id;
      if (d.function?.name) calls[d.index].name = d.function.name;
      if (d.function?.arguments) {
        calls[d.index].args += d.function.arguments;
        argChunks++;
      }
    }
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(calls.length, 1);
  assert.equal(calls[0].name, 'get_weather');
  assert.match(calls[0].id, /^call_/);
  assert.ok(argChunks >= 2, `arguments in ${argChunks} chunks`);
  checkWeatherArgs(calls[0].args);
});

test('response_format json_schema output validates', async () => {
  const schema = {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 16 },
      age: { type: 'integer', minimum: 0, maximum: 120 },
      tags: { type: 'array', items: { type: 'string', enum: ['a', 'b', 'c'] }, maxItems: 3 },
    },
    required: ['name', 'age', 'tags'],
    additionalProperties: false,
  };
  const r = await client.chat.completions.create({
    model: 'kvserve', messages: [{ role: 'user', content: 'Describe a person as JSON.' }], max_tokens: 150, ...greedy,
    response_format: { type: 'json_schema', json_schema: { name: 'person', strict: true, schema } },
  });
  const c = r.choices[0];
  assert.equal(c.finish_reason, 'stop');
  const v = JSON.parse(c.message.content);
  assert.deepEqual(Object.keys(v).sort(), ['age', 'name', 'tags']);
  assert.equal(typeof v.name, 'string');
  assert.ok([...v.name].length <= 16);
  assert.ok(Number.isInteger(v.age) && v.age >= 0 && v.age <= 120, `age ${v.age}`);
  assert.ok(Array.isArray(v.tags) && v.tags.length <= 3 && v.tags.every((t) => ['a', 'b', 'c'].includes(t)));

  // An unsupported schema construct is a 400 naming it.
  await assert.rejects(
    client.chat.completions.create({
      model: 'kvserve', messages: [{ role: 'user', content: 'x' }], max_tokens: 4,
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', not: {} } } },
    }),
    (err) => err instanceof OpenAI.BadRequestError && /"not" is not supported/.test(err.message),
  );
});

test('embeddings: batched, float and base64, normalized', async () => {
  const input = ['The cat sat on the mat.', 'A dog ran in the park.'];
  const res = await client.embeddings.create({ model: 'kvserve', input, encoding_format: 'float' });
  assert.equal(res.object, 'list');
  assert.equal(res.data.length, 2);
  assert.ok(res.usage.prompt_tokens > 0);
  for (const [i, d] of res.data.entries()) {
    assert.equal(d.index, i);
    const n = Math.hypot(...d.embedding);
    assert.ok(Math.abs(n - 1) < 1e-4, `norm ${n}`);
  }
  // The client's default asks for base64 and decodes it: the same vectors.
  const b64 = await client.embeddings.create({ model: 'kvserve', input: input[0] });
  assert.equal(b64.data[0].embedding.length, res.data[0].embedding.length);
  for (const [j, x] of b64.data[0].embedding.entries()) {
    assert.ok(Math.abs(x - res.data[0].embedding[j]) < 1e-6);
  }
});

test('responses: text, then the same streamed', async () => {
  const req = { model: 'kvserve', instructions: 'You are a helpful assistant.', input: 'Tell me a story about a fox.', max_output_tokens: 16, temperature: 0 };
  const res = await client.responses.create(req);
  assert.equal(res.object, 'response');
  assert.equal(res.status, 'incomplete');
  assert.equal(res.incomplete_details.reason, 'max_output_tokens');
  assert.ok(res.output_text.length > 0);
  assert.equal(res.usage.output_tokens, 16);

  const stream = await client.responses.create({ ...req, stream: true });
  let text = '';
  let final;
  for await (const ev of stream) {
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    if (ev.type === 'response.incomplete' || ev.type === 'response.completed') final = ev.response;
  }
  assert.equal(text, res.output_text);
  assert.equal(final.status, 'incomplete');
});
