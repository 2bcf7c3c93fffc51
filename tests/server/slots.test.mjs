// Slots (--parallel N): concurrent requests are generated interleaved, token by token, each
// in its own KV cache. Checked end to end: two streaming clients both make progress while
// the other runs (chunk arrival times and the server's shared-step counter), each gets
// exactly the text it gets alone (greedy), a third request waits in the queue while both
// slots are busy (/metrics), and a client that disconnects frees its slot for it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, metrics } from './harness.mjs';

// Streams a chat completion; returns {text, finish, times: [ms of each content chunk], end}.
// `sampling`: e.g. {temperature: 0.8, seed: 5} (default greedy).
async function streamChat(url, content, maxTokens, { signal, onChunk, sampling } = {}) {
  const r = await fetch(url + '/v1/chat/completions', {
    method: 'POST', signal, headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content }], max_tokens: maxTokens, temperature: 0, stream: true,
                           ...(sampling ?? {}) }),
  });
  assert.equal(r.status, 200);
  const dec = new TextDecoder();
  let buf = '';
  const out = { text: '', finish: null, times: [], end: 0 };
  for await (const part of r.body) {
    buf += dec.decode(part, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const j = JSON.parse(ev.slice(6));
      const c = j.choices?.[0];
      if (!c) continue;
      if (c.delta?.content) {
        out.text += c.delta.content;
        out.times.push(performance.now());
        onChunk?.();
      }
      if (c.finish_reason) out.finish = c.finish_reason;
    }
  }
  out.end = performance.now();
  return out;
}

async function waitFor(cond, what, ms = 20000) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail('timed out waiting for ' + what);
}

test('two streaming clients interleave and each gets its text from running alone', { timeout: 240000 }, async () => {
  const srv = await startServer(['--parallel', '2', '--ctx', '2048']);
  try {
    assert.match(srv.log(), /2 slots, context 1024 tokens each/);
    const LONG = 400, SHORT = 40;
    const a0 = await streamChat(srv.url, 'Tell me a long story about the sea.', LONG);
    const b0 = await streamChat(srv.url, 'hi', SHORT);
    assert.equal(a0.finish, 'length', 'the long reply must not end early for this test to mean anything');
    const m0 = await metrics(srv.url);
    assert.equal(m0.swapmoe_decode_steps_shared_total, 0, 'one at a time: no shared steps');

    // A starts; once its text flows, B starts. B must finish while A is still streaming,
    // and A must receive text while B runs (not wait for B).
    let started;
    const aStarted = new Promise((r) => (started = r));
    const aP = streamChat(srv.url, 'Tell me a long story about the sea.', LONG, { onChunk: () => started() });
    await aStarted;
    const b = await streamChat(srv.url, 'hi', SHORT);
    const a = await aP;
    assert.equal(a.text, a0.text, 'A: same text as alone');
    assert.equal(b.text, b0.text, 'B: same text as alone');
    assert.ok(b.end < a.end, 'B finished before A');
    const bStart = b.times[0];
    const aDuringB = a.times.filter((t) => t >= bStart && t <= b.end).length;
    assert.ok(aDuringB >= 2, `A received ${aDuringB} chunks while B streamed`);
    const m1 = await metrics(srv.url);
    assert.ok(m1.swapmoe_decode_steps_shared_total >= SHORT - 1, `shared steps ${m1.swapmoe_decode_steps_shared_total}`);
    assert.equal(m1.swapmoe_slots, 2);
    // Continuous batching: the two slots decoded in the same forward passes.
    assert.ok(m1.swapmoe_decode_batch_size_avg > 1, `decode batch ${m1.swapmoe_decode_batch_size_avg}`);
    assert.ok(m1.swapmoe_steps_total < m1.swapmoe_decode_steps_total, 'fewer steps than decode tokens');
    console.log(`A: ${a.times.length} chunks, ${aDuringB} of them while B streamed; shared steps ${m1.swapmoe_decode_steps_shared_total}`);
  } finally {
    const r = await srv.stop();
    assert.equal(r.code, 0, 'clean exit:\n' + srv.log());
  }
});

test('a third request queues while both slots are busy; a disconnect frees a slot', { timeout: 240000 }, async () => {
  const srv = await startServer(['--parallel', '2', '--ctx', '4096']);
  try {
    const acA = new AbortController();
    const acB = new AbortController();
    const endless = (signal) => streamChat(srv.url, 'Go on forever.', 1800, { signal }).catch((e) => e);
    const aP = endless(acA.signal);
    const bP = endless(acB.signal);
    await waitFor(async () => (await metrics(srv.url)).swapmoe_requests_active === 2, 'two busy slots');
    const cP = streamChat(srv.url, 'hi', 8);
    await waitFor(async () => (await metrics(srv.url)).swapmoe_queue_depth === 1, 'the third request queued');
    const h = await (await fetch(srv.url + '/health')).json();
    assert.equal(h.slots, 2);
    assert.equal(h.active, 2);
    assert.equal(h.queue_depth, 1);
    acA.abort();  // A's client goes away: its slot is freed and C runs while B goes on
    const c = await cP;
    assert.ok(c.finish === 'length' || c.finish === 'stop');
    const m = await metrics(srv.url);
    assert.equal(m.swapmoe_queue_depth, 0);
    assert.equal(m.swapmoe_requests_active, 1, 'B still running');
    assert.ok(m.swapmoe_requests_cancelled_total >= 1);
    acB.abort();
    await Promise.all([aP, bP]);
    await waitFor(async () => (await metrics(srv.url)).swapmoe_requests_active === 0, 'all slots free');
  } finally {
    const r = await srv.stop();
    assert.equal(r.code, 0, 'clean exit:\n' + srv.log());
  }
});

// Continuous batching with four clients at once: prompts of different lengths (one long
// enough to be prefilled over several steps while the others decode), greedy and seeded
// sampling; each text must be the one the same request gets alone.
test('four concurrent clients, batched, each get the text they get alone', { timeout: 240000 }, async () => {
  const srv = await startServer(['--parallel', '4', '--ctx', '4096']);
  try {
    const long = Array.from({ length: 60 }, (_, i) => `line ${i}: the tide came in over the rocks.`).join(' ');
    const reqs = [
      ['Tell me a long story about the sea.', 120, undefined],
      ['hi', 40, { temperature: 0.9, seed: 7 }],
      [long, 30, undefined],
      ['Count to twenty, please, slowly.', 80, { temperature: 0.7, seed: 123 }],
    ];
    const alone = [];
    for (const [c, n, sampling] of reqs) alone.push(await streamChat(srv.url, c, n, { sampling }));
    const m0 = await metrics(srv.url);
    const together = await Promise.all(reqs.map(([c, n, sampling]) => streamChat(srv.url, c, n, { sampling })));
    for (let i = 0; i < reqs.length; ++i) assert.equal(together[i].text, alone[i].text, `client ${i}: same text as alone`);
    const m1 = await metrics(srv.url);
    const steps = m1.swapmoe_decode_only_steps_total - m0.swapmoe_decode_only_steps_total;
    assert.ok(steps > 0);
    assert.ok(m1.swapmoe_decode_batch_size_avg > m0.swapmoe_decode_batch_size_avg, 'decode steps held several slots');
    console.log(`4 clients: decode batch ${m1.swapmoe_decode_batch_size_avg.toFixed(2)} tokens per step on average`);
  } finally {
    const r = await srv.stop();
    assert.equal(r.code, 0, 'clean exit:\n' + srv.log());
  }
});
