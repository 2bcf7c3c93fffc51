// `swapmoe serve` without MODEL, with the official ollama and openai clients: an ollama
// store in a temporary folder holds the test model under two names (one with a params
// layer), and the server lists them and loads one when a request names it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { BIN, MODEL } from './harness.mjs';

let dir;
let proc;
let url;
let log = '';

function writeStore(root) {
  const blobs = path.join(root, 'blobs');
  fs.mkdirSync(blobs, { recursive: true });
  const hex = crypto.createHash('sha256').update(fs.readFileSync(MODEL)).digest('hex');
  fs.copyFileSync(MODEL, path.join(blobs, 'sha256-' + hex));
  const params = JSON.stringify({ stop: ['\n'], temperature: 0 });
  const phex = crypto.createHash('sha256').update(params).digest('hex');
  fs.writeFileSync(path.join(blobs, 'sha256-' + phex), params);
  const layer = (mediaType, digest) => ({ mediaType, digest: 'sha256:' + digest, size: 1 });
  const manifest = (layers) => JSON.stringify({ schemaVersion: 2, layers });
  const lib = path.join(root, 'manifests', 'registry.ollama.ai', 'library');
  fs.mkdirSync(path.join(lib, 'tiny'), { recursive: true });
  fs.writeFileSync(path.join(lib, 'tiny', 'latest'), manifest([layer('application/vnd.ollama.image.model', hex)]));
  fs.mkdirSync(path.join(lib, 'tiny-greedy'), { recursive: true });
  fs.writeFileSync(
    path.join(lib, 'tiny-greedy', 'v1'),
    manifest([layer('application/vnd.ollama.image.model', hex), layer('application/vnd.ollama.image.params', phex)]),
  );
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swapmoe-stores-'));
  writeStore(path.join(dir, 'ollama'));
  const env = { ...process.env, OLLAMA_MODELS: path.join(dir, 'ollama'), HF_HUB_CACHE: path.join(dir, 'hub') };
  proc = spawn(BIN, ['serve', '--host', '127.0.0.1', '--port', '0', '-t', '2'], { env, stdio: ['ignore', 'inherit', 'pipe'] });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start:\n' + log)), 60000);
    proc.stderr.on('data', (d) => {
      log += d.toString();
      const m = log.match(/on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${log}`)));
  });
  url = `http://127.0.0.1:${port}`;
});

after(async () => {
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  proc.kill('SIGTERM');
  assert.equal(await exited, 0, 'server exits cleanly:\n' + log);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('ollama: list shows the store; generate loads on demand; the params layer applies', async () => {
  const ollama = new Ollama({ host: url });
  const list = await ollama.list();
  assert.deepEqual(list.models.map((m) => m.name), ['tiny:latest', 'tiny-greedy:v1']);
  assert.equal((await ollama.ps()).models.length, 0);
  const a = await ollama.generate({ model: 'tiny-greedy:v1', prompt: 'Hello', raw: true, options: { num_predict: 24 } });
  assert.equal(a.model, 'tiny-greedy:v1');
  assert.ok(!a.response.includes('\n'), 'the params layer stop word ends the text');
  // temperature 0 from the params layer: the same answer again, without a seed.
  const b = await ollama.generate({ model: 'tiny-greedy:v1', prompt: 'Hello', raw: true, options: { num_predict: 24 } });
  assert.equal(b.response, a.response);
  assert.deepEqual((await ollama.ps()).models.map((m) => m.name), ['tiny-greedy:v1']);
  const show = await ollama.show({ model: 'tiny-greedy:v1' });
  assert.match(show.parameters, /temperature\s+0/);
  await assert.rejects(ollama.generate({ model: 'nope', prompt: 'x' }), (e) => e.status_code === 404);
});

test('openai: models.list, another name of the same blob reuses the load, 404 for a missing one', async () => {
  const openai = new OpenAI({ baseURL: url + '/v1', apiKey: 'unused', maxRetries: 0 });
  const ids = (await openai.models.list()).data.map((m) => m.id);
  assert.deepEqual(ids, ['tiny:latest', 'tiny-greedy:v1']);
  const c = await openai.completions.create({ model: 'tiny', prompt: 'Hello', max_tokens: 4, temperature: 0 });
  assert.equal(c.model, 'tiny:latest');
  const ollama = new Ollama({ host: url });
  // /api/ps shows the load, made under the first name.
  assert.deepEqual((await ollama.ps()).models.map((m) => m.name), ['tiny-greedy:v1']);
  await assert.rejects(openai.completions.create({ model: 'gone:7b', prompt: 'x', max_tokens: 2 }), (e) => e.status === 404);
  // Both names are the same blob with the same context: one load serves both, each with its
  // own name and defaults.
  assert.doesNotMatch(log, /unloading/);
});
