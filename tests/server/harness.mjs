// Starts `swapmoe serve` on a free loopback port for a test and stops it afterwards.
// Environment (set by run_tests.sh): SWAPMOE_BIN (the swapmoe binary), SWAPMOE_MODEL (a
// small forged GGUF), SWAPMOE_TEMPLATES (this folder, for the .jinja files).
import { spawn } from 'node:child_process';
import path from 'node:path';

export const BIN = process.env.SWAPMOE_BIN;
export const MODEL = process.env.SWAPMOE_MODEL;
export const TEMPLATES = process.env.SWAPMOE_TEMPLATES ?? path.dirname(new URL(import.meta.url).pathname);

export async function startServer(extraArgs = [], { template = 'qwen3.jinja' } = {}) {
  if (!BIN || !MODEL) throw new Error('set SWAPMOE_BIN and SWAPMOE_MODEL (see run_tests.sh)');
  const args = ['serve', MODEL, '--host', '127.0.0.1', '--port', '0', '-t', '2'];
  if (template) args.push('--chat-template-file', path.join(TEMPLATES, template));
  args.push(...extraArgs);
  const proc = spawn(BIN, args, { stdio: ['ignore', 'inherit', 'pipe'] });
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start in 60 s:\n' + log)), 60000);
    proc.stderr.on('data', (d) => {
      log += d.toString();
      const m = log.match(/on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${log}`));
    });
  });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    log: () => log,
    proc,
    async stop() {
      if (proc.exitCode !== null) return { code: proc.exitCode, signal: null };
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 15000);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
    // Resolves with the exit status if the server dies (used to assert it never does).
    exited,
  };
}

export async function metrics(url) {
  const text = await (await fetch(url + '/metrics')).text();
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [k, v] = line.split(' ');
    out[k] = Number(v);
  }
  return out;
}
