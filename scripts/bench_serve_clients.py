#!/usr/bin/env python3
"""N concurrent streaming clients against an OpenAI-compatible /v1/completions endpoint
(swapmoe serve or llama-server), for scripts/bench_serve.sh.

Each client sends one prompt (client i takes line i of the prompt file, cycling) with
stream=true and reads the server-sent events, noting the arrival time of every streamed
chunk that carries text. Output: one JSON line with
  clients, tokens (chunks with text, all clients), wall_s (first request to last chunk),
  agg_decode_tps = sum(tokens_i - 1) / (max(last_i) - min(first_i)), i.e. the tokens after
  each client's first one over the span in which any client was decoding,
  per_client_tps (each client's (tokens_i - 1) / (last_i - first_i)), ttft_s (mean time to
  first token), errors.
A client stops at --max-tokens or when --deadline seconds have passed since the start
(then it closes its connection, which cancels the request on both servers).
Only the standard library is used."""
import argparse
import http.client
import json
import sys
import threading
import time
from urllib.parse import urlparse


def client(i, url, prompt, max_tokens, deadline, t0, out, llama):
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    body = {
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
    }
    if llama:  # llama-server's extensions (swapmoe refuses unknown fields)
        body.update({"n_predict": max_tokens, "ignore_eos": True, "cache_prompt": False})
    times = []
    err = None
    try:
        conn.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            err = f"HTTP {resp.status}: {resp.read()[:200]!r}"
        else:
            while True:
                line = resp.readline()
                if not line:
                    break
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    break
                try:
                    ev = json.loads(data)
                except ValueError:
                    continue
                ch = (ev.get("choices") or [{}])[0]
                if ch.get("text"):
                    times.append(time.monotonic())
                if len(times) >= max_tokens or time.monotonic() - t0 > deadline:
                    break
    except Exception as e:  # noqa: BLE001 - reported in the JSON line
        err = repr(e)
    finally:
        conn.close()
    out[i] = {"times": times, "error": err}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--clients", type=int, required=True)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--prompts", required=True, help="file, one prompt per line")
    ap.add_argument("--deadline", type=float, default=600.0)
    ap.add_argument("--llama", action="store_true", help="add llama-server's fields (ignore_eos, n_predict)")
    a = ap.parse_args()
    prompts = [p for p in open(a.prompts, encoding="utf-8").read().splitlines() if p.strip()]
    out = [None] * a.clients
    t0 = time.monotonic()
    th = [threading.Thread(target=client, args=(i, a.url, prompts[i % len(prompts)], a.max_tokens, a.deadline, t0, out, a.llama))
          for i in range(a.clients)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    firsts = [o["times"][0] for o in out if o["times"]]
    lasts = [o["times"][-1] for o in out if o["times"]]
    tokens = sum(len(o["times"]) for o in out)
    after_first = sum(max(0, len(o["times"]) - 1) for o in out)
    span = (max(lasts) - min(firsts)) if firsts else 0.0
    per = []
    for o in out:
        t = o["times"]
        per.append(round((len(t) - 1) / (t[-1] - t[0]), 3) if len(t) > 1 and t[-1] > t[0] else None)
    res = {
        "clients": a.clients,
        "tokens": tokens,
        "wall_s": round((max(lasts) - t0) if lasts else 0.0, 3),
        "agg_decode_tps": round(after_first / span, 3) if span > 0 else None,
        "per_client_tps": per,
        "ttft_s": round(sum(f - t0 for f in firsts) / len(firsts), 3) if firsts else None,
        "errors": [o["error"] for o in out if o["error"]],
    }
    print(json.dumps(res))
    return 0 if not res["errors"] and tokens > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
