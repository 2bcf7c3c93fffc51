#!/usr/bin/python3
"""Trains the project's demo Mixture-of-Experts model (qwen3moe) on the Debian fortune corpora.

Steps: read the corpora (data.py) and split off the held-out documents; train a byte-level BPE
vocabulary on the training documents (bpe.py); tokenize; train the model (model.py) on packed
sequences; export an F32 GGUF (gguf_writer.py). scripts/train.sh runs this, quantizes the GGUF
with `swapmoe quantize` and computes the statistics (stats.py).

Reproducible from --seed: the split, the BPE merges, the data order and the initialisation all
derive from it, and PyTorch runs with deterministic algorithms on a fixed number of threads.
Runs in about 45 minutes on two (shared) CPU cores with the defaults (39 min of training steps).

Training stream: documents in a seeded random order, each preceded by <|endoftext|> (the
vocabulary's BOS and EOS). Every fourth boundary (seeded) is a blank line instead, which is how
the held-out text file separates its documents (a plain text file cannot hold the special token),
so the held-out perplexity measures the model on a format it knows.
"""

import argparse
import json
import math
import os
import random
import sys
import time

# Under CPU contention (shared machines), OpenMP threads that spin while waiting for a descheduled
# sibling burn the process's share: PASSIVE waiting made training 25x faster on a loaded 2-core box.
# It must be set before numpy loads OpenBLAS (and with it the OpenMP runtime).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import data  # noqa: E402
import gguf_writer  # noqa: E402
from model import Config, MoeLM  # noqa: E402

NAME = "fortunes-moe"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def tokenizer_kv(tok):
    types = [1] * tok.n_normal + [3] * (len(tok.tokens) - tok.n_normal)  # 1 normal, 3 control
    return [
        ("tokenizer.ggml.model", "gpt2"),
        ("tokenizer.ggml.pre", "gpt-2"),
        ("tokenizer.ggml.tokens", tok.tokens),
        ("tokenizer.ggml.token_type", [gguf_writer.I32(t) for t in types]),
        ("tokenizer.ggml.merges", [a + " " + b for a, b in tok.merges]),
        ("tokenizer.ggml.bos_token_id", tok.eot),
        ("tokenizer.ggml.eos_token_id", tok.eot),
        ("tokenizer.ggml.padding_token_id", tok.eot),
        ("tokenizer.ggml.add_bos_token", True),
        ("tokenizer.ggml.add_eos_token", False),
    ]


def export_gguf(model, tok, path):
    kv = [("general.name", NAME)] + model.gguf_kv() + tokenizer_kv(tok)
    gguf_writer.write_gguf(path, kv, model.gguf_tensors())


def build_tokenizer(train_docs, n_vocab, work):
    path = os.path.join(work, "merges.json")
    n_merges = n_vocab - 256 - 1
    if os.path.exists(path):
        with open(path) as f:
            merges = [tuple(m) for m in json.load(f)]
        if len(merges) == n_merges:
            log(f"bpe: reusing {path}")
            return bpe.Tokenizer(merges)
    log(f"bpe: training {n_merges} merges on {len(train_docs)} documents")
    merges = bpe.train_bpe(train_docs, n_merges, log=log)
    with open(path, "w") as f:
        json.dump(merges, f, ensure_ascii=False)
    return bpe.Tokenizer(merges)


def epoch_stream(docs_ids, eot, nl, rng):
    """One pass over the training documents in a random order as a flat token array."""
    order = list(range(len(docs_ids)))
    rng.shuffle(order)
    parts = []
    for i in order:
        parts.append([nl] if rng.random() < 0.25 else [eot])
        parts.append(docs_ids[i])
    return np.fromiter((t for p in parts for t in p), dtype=np.int64)


class Batches:
    """Non-overlapping windows of n_ctx + 1 tokens over successive epochs, batch_size at a time."""

    def __init__(self, docs_ids, eot, nl, n_ctx, batch_size, seed):
        self.docs_ids, self.eot, self.nl = docs_ids, eot, nl
        self.L, self.B = n_ctx + 1, batch_size
        self.rng = random.Random(f"order-{seed}")
        self.epoch = 0
        self._new_epoch()

    def _new_epoch(self):
        s = epoch_stream(self.docs_ids, self.eot, self.nl, self.rng)
        n = len(s) // self.L
        self.windows = torch.from_numpy(s[: n * self.L].reshape(n, self.L).copy())
        self.pos = 0
        self.epoch += 1

    def next(self):
        if self.pos + self.B > len(self.windows):
            self._new_epoch()
        b = self.windows[self.pos:self.pos + self.B]
        self.pos += self.B
        return b[:, :-1], b[:, 1:]


def lr_at(step, total, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", default="build-train", help="directory for merges, checkpoint and F32 GGUF")
    ap.add_argument("--test-out", default=None, help="where to write the held-out text (default WORK/NAME-test.txt)")
    ap.add_argument("--steps", type=int, default=560)
    ap.add_argument("--batch", type=int, default=16, help="sequences per step")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=40)
    ap.add_argument("--aux", type=float, default=0.01, help="load-balancing loss coefficient")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--n-ctx", type=int, default=256)
    ap.add_argument("--n-embd", type=int, default=192)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-expert", type=int, default=64)
    ap.add_argument("--n-expert-used", type=int, default=2)
    ap.add_argument("--n-ff-exp", type=int, default=128)
    ap.add_argument("--stop-after", type=int, default=0,
                    help="stop after this many steps (the schedule still spans --steps); for a time-limited run")
    ap.add_argument("--ckpt-every", type=int, default=20)
    ap.add_argument("--export-only", action="store_true", help="export WORK/checkpoint.pt to GGUF and stop")
    ap.add_argument("--max-docs", type=int, default=0, help="debug: use only this many training documents per language")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    os.makedirs(args.work, exist_ok=True)

    corpus = data.load_corpus(args.seed)
    if args.max_docs:
        corpus = {k: (tr[: args.max_docs], te) for k, (tr, te) in corpus.items()}
    test_text, _ = data.test_text(corpus, args.seed)
    test_out = args.test_out or os.path.join(args.work, f"{NAME}-test.txt")
    with open(test_out, "w", encoding="utf-8") as f:
        f.write(test_text)
    train_docs = [d for lang in corpus for d in corpus[lang][0]]
    for lang, (tr, te) in corpus.items():
        log(f"data: {lang}: {len(tr)} train / {len(te)} test documents")

    tok = build_tokenizer(train_docs, args.vocab, args.work)

    cfg = Config(n_vocab=len(tok.tokens), n_ctx=args.n_ctx, n_embd=args.n_embd, n_layer=args.n_layer,
                 n_head=args.n_embd // 32, n_head_kv=max(1, args.n_embd // 64), head_dim=32,
                 n_expert=args.n_expert, n_expert_used=args.n_expert_used, n_ff_exp=args.n_ff_exp)
    model = MoeLM(cfg)
    if args.export_only:
        ck = torch.load(os.path.join(args.work, "checkpoint.pt"))
        model.load_state_dict(ck["model"])
        path = os.path.join(args.work, f"{NAME}-f32.gguf")
        export_gguf(model, tok, path)
        log(f"exported step {ck['step']} to {path}")
        return
    t0 = time.time()
    docs_ids = [tok.encode(d) for d in train_docs]
    n_tok = sum(map(len, docs_ids))
    log(f"data: {n_tok} training tokens ({len(test_text)} held-out chars), tokenized in {time.time() - t0:.0f}s")
    n_par = sum(p.numel() for p in model.parameters())
    n_exp = sum(p.numel() for L in model.layers for p in (L.gate, L.up, L.down))
    log(f"model: {cfg.to_dict()}  params {n_par / 1e6:.2f}M, routed experts {100 * n_exp / n_par:.1f}%")

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    batches = Batches(docs_ids, tok.eot, tok.id[bpe.BYTE_ENC[10]], args.n_ctx, args.batch, args.seed)
    nl_tokens = args.batch * args.n_ctx
    log(f"train: {args.steps} steps x {nl_tokens} tokens = {args.steps * nl_tokens / n_tok:.2f} epochs")

    t0 = time.time()
    ema = None
    last = min(args.steps, args.stop_after) if args.stop_after else args.steps
    for step in range(last):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        x, y = batches.next()
        logits, aux = model(x)
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.n_vocab), y.reshape(-1))
        loss = ce + args.aux * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = ce.item() if ema is None else 0.98 * ema + 0.02 * ce.item()
        if step % 10 == 0 or step == last - 1:
            el = time.time() - t0
            log(f"step {step}/{args.steps} ce {ce.item():.3f} (ema {ema:.3f}, ppl {math.exp(ema):.1f}) "
                f"aux {aux.item():.3f} lr {g['lr']:.2e} epoch {batches.epoch} "
                f"{(step + 1) * nl_tokens / el:.0f} tok/s, eta {el / (step + 1) * (args.steps - step - 1) / 60:.1f} min")
        if (step + 1) % args.ckpt_every == 0 or step + 1 == last:
            torch.save({"config": cfg.to_dict(), "model": model.state_dict(), "step": step + 1, "args": vars(args)},
                       os.path.join(args.work, "checkpoint.pt"))

    path = os.path.join(args.work, f"{NAME}-f32.gguf")
    export_gguf(model, tok, path)
    log(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB) after {(time.time() - t0) / 60:.1f} min of training")


if __name__ == "__main__":
    main()
