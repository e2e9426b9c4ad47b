// Drives a running `kvserve serve` with the official @anthropic-ai/sdk npm
// client, unchanged: a message (plain and streamed, with the SDK's stream
// helper), stop sequences, token counting, errors, and a tool round trip
// (a forced tool_use whose input validates, the tool_result back, a streamed
// reply). .ci/run starts the server (embedded model, --api-key) and passes
// its address in KVSERVE_URL and the key in KVSERVE_API_KEY.
//
// Run: KVSERVE_URL=http://127.0.0.1:PORT KVSERVE_API_KEY=KEY node --test test.mjs

import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';

const baseURL = process.env.KVSERVE_URL ?? 'http://127.0.0.1:8080';
const apiKey = process.env.KVSERVE_API_KEY ?? 'no-key';
const client = new Anthropic({ baseURL, apiKey, maxRetries: 0, timeout: 120_000 });

const model = 'kvserve';
const system = 'You are a helpful assistant.';
const messages = [{ role: 'user', content: 'Tell me a story about a fox.' }];
const greedy = { temperature: 0 };

before(async () => {
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(baseURL + '/health')).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${baseURL}/health did not answer 200 within 60 s`);
});

test('message, then the same streamed', async () => {
  const msg = await client.messages.create({ model, system, messages, max_tokens: 16, ...greedy });
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.equal(msg.stop_reason, 'max_tokens');
  assert.equal(msg.content.length, 1);
  assert.equal(msg.content[0].type, 'text');
  assert.ok(msg.content[0].text.length > 0);
  assert.equal(msg.usage.output_tokens, 16);

  const stream = client.messages.stream({ model, system, messages, max_tokens: 16, ...greedy });
  let text = '';
  stream.on('text', (t) => { text += t; });
  const final = await stream.finalMessage();
  assert.equal(text, msg.content[0].text);
  assert.equal(final.content[0].text, msg.content[0].text);
  assert.equal(final.stop_reason, 'max_tokens');
  assert.equal(final.usage.output_tokens, 16);
});

test('stop sequences and token counting', async () => {
  const msg = await client.messages.create({ model, system, messages, max_tokens: 16, ...greedy });
  const words = msg.content[0].text.trim().split(/\s+/);
  if (words.length > 2) {
    const stopped = await client.messages.create({ model, system, messages, max_tokens: 16, stop_sequences: [words[2]], ...greedy });
    assert.equal(stopped.stop_reason, 'stop_sequence');
    assert.equal(stopped.stop_sequence, words[2]);
  }
  const count = await client.messages.countTokens({ model, system, messages });
  assert.equal(count.input_tokens, msg.usage.input_tokens + (msg.usage.cache_read_input_tokens ?? 0));
});

test('errors surface as the client\'s typed errors', async () => {
  await assert.rejects(
    client.messages.create({ model, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } }] }], max_tokens: 4 }),
    (e) => e instanceof Anthropic.BadRequestError && e.status === 400 && /not supported/.test(e.message),
  );
  const noKey = new Anthropic({ baseURL, apiKey: 'wrong-key', maxRetries: 0 });
  await assert.rejects(noKey.messages.create({ model, messages, max_tokens: 4 }), (e) => e instanceof Anthropic.AuthenticationError);
});

const weatherTool = {
  name: 'get_weather',
  description: 'Get the current weather in a city',
  input_schema: {
    type: 'object',
    properties: {
      city: { type: 'string', maxLength: 20 },
      unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
    },
    required: ['city', 'unit'],
    additionalProperties: false,
  },
};

test('tool round trip: forced tool_use, tool_result, streamed reply', async () => {
  const convo = [{ role: 'user', content: 'What is the weather in Oslo?' }];
  const msg = await client.messages.create({ model, messages: convo, tools: [weatherTool], tool_choice: { type: 'any' }, max_tokens: 120, ...greedy });
  assert.equal(msg.stop_reason, 'tool_use');
  const use = msg.content.find((b) => b.type === 'tool_use');
  assert.ok(use, JSON.stringify(msg.content));
  assert.equal(use.name, 'get_weather');
  assert.equal(typeof use.input.city, 'string');
  assert.ok(use.input.city.length <= 20);
  assert.ok(['celsius', 'fahrenheit'].includes(use.input.unit));
  assert.deepEqual(Object.keys(use.input).sort(), ['city', 'unit']);

  // Streamed, the SDK assembles the same input from input_json_delta events.
  const s = client.messages.stream({ model, messages: convo, tools: [weatherTool], tool_choice: { type: 'tool', name: 'get_weather' }, max_tokens: 120, ...greedy });
  const streamed = await s.finalMessage();
  const suse = streamed.content.find((b) => b.type === 'tool_use');
  assert.ok(suse, JSON.stringify(streamed.content));
  assert.deepEqual(suse.input, use.input);

  convo.push({ role: 'assistant', content: msg.content });
  convo.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '12 degrees and raining' }] });
  const reply = client.messages.stream({ model, messages: convo, tools: [weatherTool], max_tokens: 24, ...greedy });
  let text = '';
  reply.on('text', (t) => { text += t; });
  const final = await reply.finalMessage();
  assert.ok(['end_turn', 'max_tokens', 'tool_use'].includes(final.stop_reason));
  assert.ok(final.content.length > 0);
});
