#!/usr/bin/python3
"""swapmoe against llama.cpp (node-llama-cpp 3.21.1, tests/conformance/llama_ref.mjs) on the
exported demo model: held-out perplexity and greedy continuations.

Perplexity: both engines score a text in one context window (BOS + at most the model's trained
context), so the held-out text is cut into consecutive pieces (whole documents, about one window
each); both engines score the first --max-tokens tokens of every piece. Reported per piece and
pooled (mean NLL over all scored tokens), with the relative perplexity difference.
Greedy: the ids of N greedy tokens after each prompt must be identical. As in the conformance
tests (tests/conformance/compare.mjs, --tie-eps-quant), a divergence at a step where llama.cpp's
top-2 logit gap is below 0.03 nats is a tie that the quantized kernels' last-bit rounding
decides: it is printed as TIE@k with the gap, never silently, and does not fail the check.

Usage: engine_check.py MODEL TEXT --swapmoe BUILD/swapmoe [--pieces 8] [--json OUT]
"""

import argparse
import json
import math
import os
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONF = os.path.join(ROOT, "tests", "conformance")

TIE_NATS = 0.03  # as tests/conformance/compare.mjs accepts for quantized models

PROMPTS = ["The only way to", "A computer is", "Der Computer ist", "La vida es", "Il problema",
           "Жизнь — это", "Nie ma"]


def sh(cmd, cwd=None):
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({r.returncode}): {r.stderr[-2000:]}")
    return r.stdout


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def pieces(text, n, chars):
    docs = text.split("\n\n")
    out, cur = [], ""
    for d in docs:
        cur += d + "\n\n"
        if len(cur) >= chars:
            out.append(cur)
            cur = ""
            if len(out) == n:
                break
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("text")
    ap.add_argument("--swapmoe", required=True)
    ap.add_argument("--pieces", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--n-greedy", type=int, default=32)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    model = os.path.abspath(args.model)
    with open(args.text, encoding="utf-8") as f:
        text = f.read()

    res = {"pieces": [], "greedy": []}
    tot = {"sw": 0.0, "ll": 0.0, "n": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for i, p in enumerate(pieces(text, args.pieces, 900)):
            path = os.path.join(tmp, f"piece{i}.txt")
            with open(path, "w", encoding="utf-8") as f:
                f.write(p)
            sw = last_json(sh([args.swapmoe, "eval", model, "--text", path, "--max-tokens", str(args.max_tokens)]))
            ll = last_json(sh(["node", "llama_ref.mjs", "eval", model, path, "--max-tokens", str(args.max_tokens)], CONF))
            if sw["tokens"] != ll["tokens"]:
                raise SystemExit(f"piece {i}: swapmoe scored {sw['tokens']} tokens, llama.cpp {ll['tokens']}")
            rel = sw["ppl"] / ll["ppl"] - 1
            res["pieces"].append({"tokens": sw["tokens"], "swapmoe_ppl": sw["ppl"], "llama_ppl": ll["ppl"], "rel": rel})
            print(f"piece {i}: {sw['tokens']} tokens  swapmoe ppl {sw['ppl']:.3f}  llama.cpp ppl {ll['ppl']:.3f}  "
                  f"diff {100 * rel:+.3f}%", flush=True)
            tot["sw"] += sw["nll"] * sw["tokens"]
            tot["ll"] += ll["nll"] * ll["tokens"]
            tot["n"] += sw["tokens"]
    res["pooled"] = {"tokens": tot["n"], "swapmoe_ppl": math.exp(tot["sw"] / tot["n"]),
                     "llama_ppl": math.exp(tot["ll"] / tot["n"])}
    res["pooled"]["rel"] = res["pooled"]["swapmoe_ppl"] / res["pooled"]["llama_ppl"] - 1
    print(f"pooled: {tot['n']} tokens  swapmoe ppl {res['pooled']['swapmoe_ppl']:.3f}  "
          f"llama.cpp ppl {res['pooled']['llama_ppl']:.3f}  diff {100 * res['pooled']['rel']:+.3f}%")

    for p in PROMPTS:
        sw_ids = json.loads(sh([args.swapmoe, "run", model, "-p", p, "-n", str(args.n_greedy), "--temp", "0",
                                "--print-ids"]).strip().splitlines()[-1])
        ll = last_json(sh(["node", "llama_ref.mjs", "greedy", model, p, str(args.n_greedy)], CONF))
        same = sw_ids == ll["ids"][: len(sw_ids)] and len(sw_ids) == len(ll["ids"])
        k = next((i for i, (a, b) in enumerate(zip(sw_ids, ll["ids"])) if a != b), min(len(sw_ids), len(ll["ids"])))
        gap = (ll.get("margins") or [None] * (k + 1))[k] if not same and k < len(ll["ids"]) else None
        tie = not same and len(sw_ids) == len(ll["ids"]) and gap is not None and gap < TIE_NATS
        verdict = "SAME" if same else (f"TIE@{k} (top-2 gap {gap:.4f} nats)" if tie else f"DIFFERENT@{k}")
        res["greedy"].append({"prompt": p, "same": same, "tie": tie, "first_diff": None if same else k, "gap": gap,
                              "text": ll["text"], "swapmoe_ids": sw_ids, "llama_ids": ll["ids"]})
        print(f"greedy {verdict}: {p!r} -> {ll['text']!r}"
              + ("" if same else f" (swapmoe {sw_ids}, llama.cpp {ll['ids']})"), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, ensure_ascii=False)
    bad = [g["prompt"] for g in res["greedy"] if not g["same"] and not g["tie"]]
    if bad or abs(res["pooled"]["rel"]) > 0.01:
        raise SystemExit(f"disagreement: greedy differs for {bad}, pooled ppl diff {100 * res['pooled']['rel']:+.3f}%")


if __name__ == "__main__":
    main()
