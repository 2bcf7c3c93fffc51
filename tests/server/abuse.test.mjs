// Abuse (with 1, 2 and 4 slots): many concurrent clients mixing valid requests, malformed requests and
// disconnects. Every bad request must get a 4xx JSON error, valid ones must succeed, the
// server must not die, and afterwards it must answer exactly as before (same seed, same
// text), with nothing left queued and its memory back near where it started.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, metrics } from './harness.mjs';

const ROUNDS = 3;
const CLIENTS = 24;  // concurrent tasks per round

// Sends raw bytes and returns {status, body} (status 0 when the server closed early).
function raw(port, data, { closeAfterMs = null } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    sock.on('data', (d) => (buf += d.toString('latin1')));
    sock.on('error', () => {});
    sock.on('close', () => {
      const m = buf.match(/^HTTP\/1\.1 (\d+)/);
      resolve({ status: m ? Number(m[1]) : 0, body: buf.split('\r\n\r\n').slice(1).join('\r\n\r\n') });
    });
    sock.on('connect', () => {
      sock.write(data);
      if (closeAfterMs !== null) setTimeout(() => sock.destroy(), closeAfterMs);
    });
  });
}

function post(path, body, extraHeaders = '') {
  const b = Buffer.from(body);
  return Buffer.concat([Buffer.from(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${b.length}\r\nConnection: close\r\n${extraHeaders}\r\n`), b]);
}

async function expectJsonError(url, path, body, status) {
  const r = await fetch(url + path, { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
  assert.equal(r.status, status, `${path} ${String(body).slice(0, 60)}`);
  const j = await r.json();
  assert.ok(j.error, 'error body');
}

const chatReq = (extra = {}) => JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 6, seed: 1, ...extra });

// With one slot, and with several (each its own KV cache, interleaved generation).
for (const parallel of [1, 2, 4]) {
test(`abuse (--parallel ${parallel}): concurrent valid, malformed and disconnecting clients`, { timeout: 240000 }, async () => {
  const srv = await startServer(['--ctx', String(512 * parallel), '--max-queue', '256', '--parallel', String(parallel)]);
  let died = null;
  srv.exited.then((r) => (died = r));
  try {
    const baseline = await (await fetch(srv.url + '/v1/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: chatReq() })).json();
    const text0 = baseline.choices[0].message.content;
    const rss0 = (await metrics(srv.url)).swapmoe_resident_memory_bytes;

    const kinds = [
      async () => { // valid, non-streaming: same text as the baseline
        const r = await fetch(srv.url + '/v1/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: chatReq() });
        assert.equal(r.status, 200);
        assert.equal((await r.json()).choices[0].message.content, text0);
      },
      async () => { // valid ollama stream, read to the end
        const r = await fetch(srv.url + '/api/chat', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'yo' }], options: { num_predict: 5 } }) });
        const lines = (await r.text()).trim().split('\n').map((l) => JSON.parse(l));
        assert.equal(lines.at(-1).done, true);
      },
      async () => { // stream, then disconnect after the first bytes
        const ac = new AbortController();
        const r = await fetch(srv.url + '/v1/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: chatReq({ stream: true, max_tokens: 400 }), signal: ac.signal });
        const reader = r.body.getReader();
        await reader.read();
        ac.abort();
      },
      async () => { // non-streaming, disconnect while queued or generating
        await raw(srv.port, post('/api/generate', JSON.stringify({ prompt: 'x', stream: false, options: { num_predict: 400 } })), { closeAfterMs: 30 });
      },
      () => expectJsonError(srv.url, '/v1/chat/completions', '{"messages": [', 400),
      () => expectJsonError(srv.url, '/v1/chat/completions', '[1,2,3]', 400),
      () => expectJsonError(srv.url, '/v1/chat/completions', chatReq({ max_tokens: 'ten' }), 400),
      () => expectJsonError(srv.url, '/v1/chat/completions', chatReq({ temperature: -1 }), 400),
      () => expectJsonError(srv.url, '/v1/chat/completions', chatReq({ what: true }), 400),
      () => expectJsonError(srv.url, '/v1/chat/completions', JSON.stringify({ messages: [{ role: 7, content: 'a' }] }), 400),
      () => expectJsonError(srv.url, '/v1/completions', JSON.stringify({ prompt: { a: 1 } }), 400),
      () => expectJsonError(srv.url, '/api/chat', JSON.stringify({ messages: 'hello' }), 400),
      () => expectJsonError(srv.url, '/api/generate', JSON.stringify({ prompt: 'x', options: { nonsense: 1 } }), 400),
      () => expectJsonError(srv.url, '/api/generate', '\u0000\u00ff garbage', 400),
      () => expectJsonError(srv.url, '/v1/chat/completions', '['.repeat(100000), 400),
      () => expectJsonError(srv.url, '/v1/completions', JSON.stringify({ prompt: 'lorem ipsum '.repeat(2000), max_tokens: 2 }), 400),
      () => expectJsonError(srv.url, '/v1/chat/completions', 'x'.repeat(9 << 20), 413),
      async () => { // truncated body, then hang up
        await raw(srv.port, Buffer.from('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"mess'), { closeAfterMs: 20 });
      },
      async () => { // not HTTP at all
        const r = await raw(srv.port, Buffer.from('\x16\x03\x01 hello?\r\n\r\n'), { closeAfterMs: 500 });
        assert.ok(r.status === 0 || (r.status >= 400 && r.status < 500));
      },
      async () => { // health is always answered
        const r = await fetch(srv.url + '/health');
        assert.equal(r.status, 200);
      },
    ];

    for (let round = 0; round < ROUNDS; round++) {
      const tasks = [];
      for (let i = 0; i < CLIENTS; i++) tasks.push(kinds[(i * 7 + round) % kinds.length]());
      const results = await Promise.allSettled(tasks);
      for (const r of results) if (r.status === 'rejected' && r.reason?.name !== 'AbortError') throw r.reason;
      assert.equal(died, null, 'server died:\n' + srv.log());
    }

    // Everything drains: nothing queued or running once the cancelled work is dropped.
    let m;
    for (let i = 0; i < 200; i++) {
      m = await metrics(srv.url);
      if (m.swapmoe_queue_depth === 0 && m.swapmoe_requests_active === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(m.swapmoe_queue_depth, 0);
    assert.equal(m.swapmoe_requests_active, 0);
    assert.ok(m.swapmoe_requests_cancelled_total > 0, 'disconnects cancelled generations');
    // Cancelled requests stopped early: far fewer tokens than 400 per disconnecting client.
    assert.ok(m.swapmoe_tokens_generated_total < ROUNDS * CLIENTS * 100, `tokens ${m.swapmoe_tokens_generated_total}`);

    const after = await (await fetch(srv.url + '/v1/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: chatReq() })).json();
    assert.equal(after.choices[0].message.content, text0, 'same answer after the abuse');
    const rss1 = m.swapmoe_resident_memory_bytes;
    // Sanitizer builds keep freed memory in quarantine: CMake gives them extra slack
    // (SWAPMOE_SANITIZER_SLACK_MB), still far below the GiBs of a real leak or blow-up.
    const slackMiB = Number(process.env.SWAPMOE_RSS_SLACK_MB ?? 64) + Number(process.env.SWAPMOE_SANITIZER_SLACK_MB ?? 0);
    console.log(`resident memory: ${(rss0 / 2 ** 20).toFixed(1)} MiB before, ${(rss1 / 2 ** 20).toFixed(1)} MiB after`);
    assert.ok(rss1 < rss0 + slackMiB * 2 ** 20, `memory grew from ${rss0} to ${rss1}`);
  } finally {
    const r = await srv.stop();
    assert.equal(r.code, 0, 'clean exit:\n' + srv.log());
  }
});
}
