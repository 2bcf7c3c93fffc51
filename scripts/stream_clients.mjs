#!/usr/bin/env node
// N concurrent streaming clients against a running `swapmoe serve` (or any OpenAI-style
// server): each streams a chat completion of --tokens tokens from its own prompt at once;
// prints the aggregate decode rate (tokens after each client's first, over the time from
// the first token any client got to the last client's end: prompt processing is left out) and, from
// swapmoe's /metrics, the decode batch size and the experts / MiB read per generated token.
//
//   node scripts/stream_clients.mjs --url http://127.0.0.1:8080 --clients 4 --tokens 64
//
// Options: --url, --clients N (1), --tokens N (64), --prompt TEXT (client i adds " (i)"),
// --json (one JSON line instead of text).
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf('--' + name);
  return i >= 0 ? args[i + 1] : def;
};
const url = opt('url', 'http://127.0.0.1:8080');
const clients = Number(opt('clients', '1'));
const tokens = Number(opt('tokens', '64'));
const prompt = opt('prompt', 'Tell me a story about the sea.');
const asJson = args.includes('--json');

async function metrics() {
  try {
    const r = await fetch(url + '/metrics');
    const out = {};
    for (const line of (await r.text()).split('\n')) {
      const m = line.match(/^(\w+) ([-+0-9.eE]+|nan|inf)$/);
      if (m) out[m[1]] = Number(m[2]);
    }
    return out;
  } catch {
    return {};
  }
}

async function stream(i) {
  const content = i === 0 ? prompt : `${prompt} (${i})`;
  const r = await fetch(url + '/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content }], max_tokens: tokens, temperature: 0, stream: true,
                           stream_options: { include_usage: true } }),
  });
  if (r.status !== 200) throw new Error(`client ${i}: HTTP ${r.status}: ${await r.text()}`);
  const dec = new TextDecoder();
  let buf = '', first = 0, completion = 0;
  for await (const part of r.body) {
    buf += dec.decode(part, { stream: true });
    let k;
    while ((k = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, k);
      buf = buf.slice(k + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const j = JSON.parse(ev.slice(6));
      if (!first && j.choices?.[0]?.delta?.content) first = performance.now();
      if (j.usage) completion = j.usage.completion_tokens;
    }
  }
  return { first, end: performance.now(), completion };
}

const m0 = await metrics();
const t0 = performance.now();
const res = await Promise.all(Array.from({ length: clients }, (_, i) => stream(i)));
// The decode window: from the first token any client received (the prompts are prefilled
// together in the first steps) to the last client's end; the tokens after each client's
// first one.
const start = Math.min(...res.map((r) => r.first || t0));
const end = Math.max(...res.map((r) => r.end));
const m1 = await metrics();
const d = (k) => (m1[k] ?? 0) - (m0[k] ?? 0);
const generated = res.reduce((a, r) => a + r.completion, 0);
const inWindow = res.reduce((a, r) => a + Math.max(0, r.completion - 1), 0);
const secs = (end - start) / 1000;
const out = {
  clients, tokens_per_client: tokens, generated,
  wall_seconds: (end - t0) / 1000,
  aggregate_tok_s: secs > 0 ? inWindow / secs : 0,
  decode_batch_avg: m1.swapmoe_decode_batch_size_avg ?? null,
  expert_reads_per_token: m1.swapmoe_expert_reads_per_token ?? null,
  mib_read_per_token: m1.swapmoe_expert_read_mib_per_token ?? null,
  expert_reads_per_step: m1.swapmoe_expert_reads_per_step ?? null,
  hit_rate: m1.swapmoe_decode_hit_rate ?? null,
  steps: d('swapmoe_steps_total'),
};
if (asJson) console.log(JSON.stringify(out));
else console.log(`${clients} clients x ${tokens} tokens: ${out.aggregate_tok_s.toFixed(2)} tok/s aggregate ` +
                 `(${generated} generated in ${out.wall_seconds.toFixed(1)} s); decode batch ${out.decode_batch_avg?.toFixed(2)}, ` +
                 `${out.expert_reads_per_token?.toFixed(1)} experts and ${out.mib_read_per_token?.toFixed(2)} MiB read per token, ` +
                 `hit rate ${out.hit_rate?.toFixed(3)} (metrics since the server started)`);
