// The official openai and ollama npm clients, and curl, against `swapmoe serve`.
// Generated text comes from a random-weight model, so the checks compare the server with
// itself where a reference is needed: a fixed seed must reproduce the same text, streamed
// text must equal the non-streamed text, a stop string must cut the text exactly there.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { startServer, metrics } from './harness.mjs';

const run = promisify(execFile);
let srv;
let openai;
let ollama;
const msgs = [{ role: 'user', content: 'Hello there' }];

before(async () => {
  srv = await startServer(['--alias', 'tiny']);
  openai = new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'unused', maxRetries: 0 });
  ollama = new Ollama({ host: srv.url });
});
after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0, 'server exits cleanly on SIGTERM:\n' + srv.log());
});

test('openai: models.list names the served model', async () => {
  const list = await openai.models.list();
  assert.deepEqual(list.data.map((m) => m.id), ['tiny']);
});

test('openai: chat completion, usage, seed reproduces, stream equals non-stream', async () => {
  const req = { model: 'tiny', messages: msgs, max_tokens: 12, seed: 42, temperature: 0.9 };
  const a = await openai.chat.completions.create(req);
  const b = await openai.chat.completions.create(req);
  assert.equal(a.object, 'chat.completion');
  assert.equal(a.choices.length, 1);
  assert.equal(typeof a.choices[0].message.content, 'string');
  assert.equal(a.choices[0].message.role, 'assistant');
  assert.ok(['length', 'stop'].includes(a.choices[0].finish_reason));
  assert.ok(a.usage.prompt_tokens > 5);
  assert.ok(a.usage.completion_tokens >= 1 && a.usage.completion_tokens <= 12);
  assert.equal(a.usage.total_tokens, a.usage.prompt_tokens + a.usage.completion_tokens);
  if (a.choices[0].finish_reason === 'length') assert.equal(a.usage.completion_tokens, 12);
  assert.equal(b.choices[0].message.content, a.choices[0].message.content, 'same seed, same text');

  const stream = await openai.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish = null;
  let usage = null;
  let first = true;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    if (!chunk.choices.length) continue;
    if (first) assert.equal(chunk.choices[0].delta.role, 'assistant');
    first = false;
    text += chunk.choices[0].delta.content ?? '';
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  assert.equal(text, a.choices[0].message.content, 'streamed text equals the non-streamed text');
  assert.equal(finish, a.choices[0].finish_reason);
  assert.deepEqual(usage, a.usage);

  const c = await openai.chat.completions.create({ ...req, seed: 43 });
  assert.notEqual(c.choices[0].message.content, a.choices[0].message.content, 'another seed, other text');
});

test('non-streaming answers that take over a second parse (connection probes before the body)', async () => {
  const t0 = Date.now();
  const a = await openai.chat.completions.create({ model: 'tiny', messages: msgs, max_tokens: 500, seed: 1, temperature: 1.5 });
  assert.ok(a.usage.completion_tokens > 0);
  const raw = await (await fetch(srv.url + '/api/generate', { method: 'POST', headers: { 'Content-Type': 'application/json' }, 
    body: JSON.stringify({ prompt: 'x', stream: false, options: { num_predict: 500, seed: 1, temperature: 1.5 } }) })).text();
  const g = JSON.parse(raw);
  assert.equal(g.done, true);
  if (Date.now() - t0 > 1200) assert.match(raw, /^ +\{/, 'probes were sent');
});

test('openai: stop string cuts the text where it first occurs', async () => {
  // Find a seed whose text has an ASCII-letter pair in its second half to stop at.
  let req, full, stop = null;
  for (let seed = 7; seed < 40 && !stop; seed++) {
    req = { model: 'tiny', messages: msgs, max_tokens: 24, seed };
    full = (await openai.chat.completions.create(req)).choices[0].message.content;
    for (let i = Math.floor(full.length / 2); i + 2 <= full.length; i++) {
      const w = full.slice(i, i + 2);
      if (/^[A-Za-z]{2}$/.test(w)) { stop = w; break; }
    }
  }
  assert.ok(stop, 'found a stop string to test with');
  const expected = full.slice(0, full.indexOf(stop));
  const cut = await openai.chat.completions.create({ ...req, stop: [stop, 'NEVER-SEEN'] });
  assert.equal(cut.choices[0].message.content, expected);
  assert.equal(cut.choices[0].finish_reason, 'stop');
  let streamed = '';
  for await (const ch of await openai.chat.completions.create({ ...req, stop, stream: true }))
    streamed += ch.choices[0]?.delta?.content ?? '';
  assert.equal(streamed, expected);
});

test('openai: completions, streaming and not', async () => {
  const req = { model: 'tiny', prompt: 'Once upon a time', max_tokens: 10, seed: 5 };
  const a = await openai.completions.create(req);
  assert.equal(a.object, 'text_completion');
  assert.equal(typeof a.choices[0].text, 'string');
  assert.ok(a.usage.prompt_tokens >= 3);
  let text = '';
  for await (const ch of await openai.completions.create({ ...req, stream: true })) text += ch.choices[0]?.text ?? '';
  assert.equal(text, a.choices[0].text);
});

test('openai: errors are typed 4xx', async () => {
  await assert.rejects(
    openai.chat.completions.create({ model: 'tiny', messages: [], max_tokens: 3 }),
    (e) => e.status === 400 && /messages/.test(e.message),
  );
  await assert.rejects(
    openai.chat.completions.create({ model: 'tiny', messages: msgs, temperature: 'hot' }),
    (e) => e.status === 400 && /temperature/.test(e.message),
  );
  await assert.rejects(
    openai.chat.completions.create({ model: 'tiny', messages: msgs, bogus_field: 1 }),
    (e) => e.status === 400 && /bogus_field/.test(e.message),
  );
});

test('openai: prompt longer than the context is a 400', async () => {
  const long = 'word '.repeat(6000);
  await assert.rejects(
    openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: long }], max_tokens: 2 }),
    (e) => e.status === 400 && /context/.test(e.message),
  );
});

test('ollama: generate and chat, streaming equals non-streaming', async () => {
  const opts = { seed: 11, num_predict: 10, temperature: 0.7 };
  const g = await ollama.generate({ model: 'tiny', prompt: 'Why is the sky blue?', options: opts });
  assert.equal(g.done, true);
  assert.ok(['length', 'stop'].includes(g.done_reason));
  assert.ok(g.eval_count >= 1 && g.eval_count <= 10);
  assert.ok(g.prompt_eval_count > 3);
  assert.ok(Array.isArray(g.context) && g.context.length === g.prompt_eval_count + g.eval_count);
  let text = '';
  let last = null;
  for await (const part of await ollama.generate({ model: 'tiny', prompt: 'Why is the sky blue?', options: opts, stream: true })) {
    text += part.response;
    last = part;
  }
  assert.equal(text, g.response);
  assert.equal(last.done, true);
  assert.equal(last.eval_count, g.eval_count);

  const c = await ollama.chat({ model: 'tiny', messages: msgs, options: opts });
  assert.equal(c.message.role, 'assistant');
  let ctext = '';
  for await (const part of await ollama.chat({ model: 'tiny', messages: msgs, options: opts, stream: true }))
    ctext += part.message.content;
  assert.equal(ctext, c.message.content);
  // The chat endpoints of both APIs render the same prompt; same seed and sampling, same text.
  const o = await openai.chat.completions.create({ model: 'tiny', messages: msgs, seed: 11, max_tokens: 10, temperature: 0.7 });
  assert.equal(o.choices[0].message.content, c.message.content);
});

test('tools offered: both APIs answer, streamed text equals non-streamed (tool-call parsing holds back nothing else)', async () => {
  // A random-weight model does not write <tool_call> blocks; the parser itself is tested in
  // tests/unit/server/test_tool_calls.cpp. Here: requests with tools go through both
  // clients, and the streamed content equals the non-streamed content.
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
  const req = { model: 'tiny', messages: msgs, tools, max_tokens: 24, seed: 5, temperature: 1 };
  const a = await openai.chat.completions.create(req);
  assert.ok(['length', 'stop', 'tool_calls'].includes(a.choices[0].finish_reason));
  let text = '';
  for await (const chunk of await openai.chat.completions.create({ ...req, stream: true }))
    text += chunk.choices[0]?.delta?.content ?? '';
  assert.equal(text, a.choices[0].message.content ?? '');
  const opts = { seed: 5, num_predict: 24, temperature: 1 };
  const c = await ollama.chat({ model: 'tiny', messages: msgs, tools, options: opts });
  let ctext = '';
  for await (const part of await ollama.chat({ model: 'tiny', messages: msgs, tools, options: opts, stream: true }))
    ctext += part.message.content;
  assert.equal(ctext, c.message.content);
});

test('ollama: list, show, ps, version; errors', async () => {
  const list = await ollama.list();
  assert.equal(list.models[0].name, 'tiny');
  assert.equal(list.models[0].details.family, 'qwen3moe');
  const show = await ollama.show({ model: 'tiny' });
  assert.match(show.template, /im_start/);
  assert.equal(show.model_info['general.architecture'], 'qwen3moe');
  const ps = await ollama.ps();
  assert.equal(ps.models.length, 1);
  const v = await (await fetch(srv.url + '/api/version')).json();
  assert.equal(typeof v.version, 'string');
  await assert.rejects(ollama.generate({ model: 'tiny', prompt: 'x', options: { num_predict: 'many' } }),
    (e) => /num_predict/.test(e.message));
});

test('ollama: abort stops a stream and the server cancels the generation', async () => {
  const before = await metrics(srv.url);
  const client = new Ollama({ host: srv.url });
  const stream = await client.generate({ model: 'tiny', prompt: 'go', options: { num_predict: 3000 }, stream: true });
  let n = 0;
  try {
    for await (const part of stream) {
      if (++n === 3) client.abort();
    }
  } catch (e) {
    assert.equal(e.name, 'AbortError');
  }
  // The generation is cancelled long before 3000 tokens.
  for (let i = 0; i < 100; i++) {
    const m = await metrics(srv.url);
    if (m.swapmoe_requests_cancelled_total > before.swapmoe_requests_cancelled_total) {
      assert.ok(m.swapmoe_tokens_generated_total - before.swapmoe_tokens_generated_total < 3000);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail('the aborted generation was not cancelled');
});

test('curl: SSE ends with [DONE], NDJSON lines parse, /health and /metrics', async () => {
  const sse = await run('curl', ['-sN', srv.url + '/v1/chat/completions', '-H', 'Content-Type: application/json', '-d',
    JSON.stringify({ messages: msgs, max_tokens: 4, stream: true })]);
  const events = sse.stdout.split('\n\n').filter((e) => e.length);
  assert.equal(events.at(-1), 'data: [DONE]');
  for (const e of events.slice(0, -1)) JSON.parse(e.replace(/^data: /, ''));
  const nd = await run('curl', ['-s', srv.url + '/api/generate', '-d', JSON.stringify({ prompt: 'hi', options: { num_predict: 3 } })]);
  const lines = nd.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.at(-1).done, true);
  const health = await run('curl', ['-s', '-w', '%{http_code}', srv.url + '/health']);
  assert.match(health.stdout, /"status":"ok".*200$/);
  const m = await metrics(srv.url);
  for (const k of ['swapmoe_tokens_generated_total', 'swapmoe_tokens_per_second', 'swapmoe_expert_cache_hit_rate',
    'swapmoe_bytes_read_total', 'swapmoe_queue_depth']) assert.ok(k in m, k);
  assert.ok(m.swapmoe_tokens_generated_total > 0);
});

test('reasoning: a template that opens <think> sends reasoning_content apart from content', async () => {
  const r1 = await startServer([], { template: 'deepseek-r1.jinja' });
  try {
    const client = new OpenAI({ baseURL: r1.url + '/v1', apiKey: 'x', maxRetries: 0 });
    const a = await client.chat.completions.create({ model: 'm', messages: msgs, max_tokens: 8, seed: 3 });
    // Random weights never close </think>: everything generated is reasoning.
    assert.ok(a.choices[0].message.reasoning_content.length > 0);
    assert.equal(a.choices[0].message.content, '');
    let reasoning = '';
    for await (const ch of await client.chat.completions.create({ model: 'm', messages: msgs, max_tokens: 8, seed: 3, stream: true })) {
      reasoning += ch.choices[0]?.delta?.reasoning_content ?? '';
      assert.ok(!ch.choices[0]?.delta?.content);
    }
    assert.equal(reasoning, a.choices[0].message.reasoning_content);
  } finally {
    await r1.stop();
  }
});

test('gpt-oss (harmony template): a tool-call turn with null content renders; thinking is a capability', async () => {
  const oss = await startServer([], { template: '../data/templates/openai-gpt-oss-120b.jinja' });
  try {
    const client = new OpenAI({ baseURL: oss.url + '/v1', apiKey: 'x', maxRetries: 0 });
    const tools = [{ type: 'function', function: { name: 'add', parameters: { type: 'object',
      properties: { a: { type: 'integer' }, b: { type: 'integer' } } } } }];
    // The template tests `"..." in message.content`, which fails on null (in Jinja2 too); the
    // server renders such a turn with "" instead, as llama.cpp does.
    const convo = [{ role: 'user', content: 'Add 2 and 3.' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function',
        function: { name: 'add', arguments: '{"a": 2, "b": 3}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: '5' }];
    const a = await client.chat.completions.create({ model: 'm', messages: convo, tools, max_tokens: 4, seed: 3 });
    // Random weights write no harmony markup: the text is content.
    assert.equal(typeof a.choices[0].message.content, 'string');
    assert.ok(a.usage.prompt_tokens > 100);
    const show = await (await fetch(oss.url + '/api/show', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ model: 'm' }) })).json();
    assert.ok(show.capabilities.includes('thinking'), JSON.stringify(show.capabilities));
  } finally {
    await oss.stop();
  }
});

test('api key: required everywhere but /health', async () => {
  const k = await startServer(['--api-key', 'sekrit']);
  try {
    const good = new OpenAI({ baseURL: k.url + '/v1', apiKey: 'sekrit', maxRetries: 0 });
    const bad = new OpenAI({ baseURL: k.url + '/v1', apiKey: 'wrong', maxRetries: 0 });
    assert.equal((await good.models.list()).data.length, 1);
    await assert.rejects(bad.models.list(), (e) => e.status === 401);
    assert.equal((await fetch(k.url + '/metrics')).status, 401);
    assert.equal((await fetch(k.url + '/api/tags')).status, 401);
    assert.equal((await fetch(k.url + '/health')).status, 200);
    const ol = new Ollama({ host: k.url, headers: { Authorization: 'Bearer sekrit' } });
    assert.equal((await ol.list()).models.length, 1);
  } finally {
    await k.stop();
  }
});
