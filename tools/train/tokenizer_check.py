#!/usr/bin/python3
"""Checks that bpe.py (training), swapmoe and llama.cpp tokenize a text identically with the
demo model's vocabulary. The text is cut into ~30,000-character pieces at blank lines (a command
line argument has a size limit); each piece must give the same ids (BOS included) in all three.

Usage: tokenizer_check.py MODEL.gguf TEXT --merges WORK/merges.json --swapmoe BUILD/swapmoe
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402

CONF = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "tests", "conformance")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("text")
    ap.add_argument("--merges", required=True)
    ap.add_argument("--swapmoe", required=True)
    args = ap.parse_args()
    model = os.path.abspath(args.model)
    with open(args.merges) as f:
        tok = bpe.Tokenizer([tuple(m) for m in json.load(f)])
    with open(args.text, encoding="utf-8") as f:
        docs = f.read().split("\n\n")
    chunks, cur = [], ""
    for d in docs:
        if len(cur) + len(d) > 30000:
            chunks.append(cur)
            cur = ""
        cur += d + "\n\n"
    chunks.append(cur)
    bad, total = 0, 0
    for i, c in enumerate(chunks):
        py = [tok.eot] + tok.encode(c)
        sw = json.loads(subprocess.run([args.swapmoe, "tokenize", model, c], capture_output=True, text=True,
                                       check=True).stdout)
        ll = json.loads(subprocess.run(["node", "llama_ref.mjs", "tokenize", model, c], capture_output=True,
                                       text=True, check=True, cwd=CONF).stdout.strip().splitlines()[-1])
        ok = py == sw == ll
        bad += not ok
        total += len(py)
        print(f"piece {i}: {len(c)} chars, {len(py)} tokens: {'same' if ok else 'DIFFERENT'}", flush=True)
    print(f"{total} tokens in {len(chunks)} pieces, {bad} pieces differ")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
