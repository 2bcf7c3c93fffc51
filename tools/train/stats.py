#!/usr/bin/python3
"""Evidence that the demo model learned: held-out perplexity against a unigram baseline, and
how specialised its experts are, per language of the corpus.

Reads WORK/checkpoint.pt and WORK/merges.json as train.py leaves them, rebuilds the same
train/test split from the seed, and prints Markdown tables (also saved as WORK/stats.json).

* Perplexity: each language's held-out documents are joined as in the committed test text (a
  blank line between documents) and scored in windows of the model's context: every window is
  <|endoftext|> (BOS) followed by the next n_ctx - 1 tokens, all of which are scored, so every
  held-out token is scored exactly once. "all" pools the negative log-likelihoods of all
  languages.
* Unigram baseline: token frequencies of the training split (add-one smoothing), scored on the
  very same tokens.
* Routing: for every held-out token and layer, the top-k experts the router picks. Usage
  entropy is the entropy (bits) of the distribution of those picks over the experts (uniform
  use of 64 experts = 6 bits); top-25% share is the share of picks that go to the busiest quarter
  of the experts (uniform = 25%). Both per language and layer: low entropy / high share within
  a language, with different busy experts across languages, is specialisation.
"""

import argparse
import json
import math
import os
import sys


# See train.py: passive OpenMP waiting keeps a shared, loaded machine usable.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import data  # noqa: E402
from model import Config, MoeLM  # noqa: E402


def windows(ids, n_ctx, bos):
    step = n_ctx - 1
    return [[bos] + ids[i:i + step] for i in range(0, len(ids), step)]


@torch.no_grad()
def score(model, ids, bos, batch=16):
    """Returns (sum NLL, token count, per-layer expert pick counts (n_layer, n_expert))."""
    c = model.c
    ws = windows(ids, c.n_ctx, bos)
    nll, n = 0.0, 0
    picks = torch.zeros(c.n_layer, c.n_expert, dtype=torch.float64)
    for i in range(0, len(ws), batch):
        group = ws[i:i + batch]
        # Only the last window of a text is shorter; it runs on its own.
        L = max(len(w) for w in group)
        same = [w for w in group if len(w) == L]
        rest = [w for w in group if len(w) != L]
        for part in ([same] if same else []) + [[w] for w in rest]:
            x = torch.tensor(part)
            logits, _, routes = model(x, return_routes=True)
            lp = torch.log_softmax(logits[:, :-1].double(), -1)
            tgt = x[:, 1:]
            nll -= lp.gather(-1, tgt.unsqueeze(-1)).sum().item()
            n += tgt.numel()
            # Routing of the scored positions' inputs, BOS excluded.
            for li, r in enumerate(routes):
                picks[li] += torch.bincount(r[:, 1:].reshape(-1), minlength=c.n_expert).double()
    return nll, n, picks


def usage_stats(picks):
    """Per layer: usage entropy in bits and share of the busiest 25% of experts."""
    out = []
    for row in picks:
        p = row / row.sum()
        ent = -(p[p > 0] * p[p > 0].log2()).sum().item()
        k = max(1, len(row) // 4)
        share = p.sort(descending=True).values[:k].sum().item()
        out.append((ent, share, p.sort(descending=True).indices[:k].tolist()))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="build-train")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="debug: score only this many tokens per language")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    ck = torch.load(os.path.join(args.work, "checkpoint.pt"))
    model = MoeLM(Config(**ck["config"]))
    model.load_state_dict(ck["model"])
    model.eval()
    with open(os.path.join(args.work, "merges.json")) as f:
        tok = bpe.Tokenizer([tuple(m) for m in json.load(f)])
    corpus = data.load_corpus(args.seed)

    counts = torch.zeros(len(tok.tokens), dtype=torch.float64)
    for lang in corpus:
        for d in corpus[lang][0][: 200 if args.limit else None]:
            counts += torch.bincount(torch.tensor(tok.encode(d) + [tok.id[bpe.BYTE_ENC[10]]]),
                                     minlength=len(tok.tokens)).double()
    logp_uni = ((counts + 1) / (counts.sum() + len(counts))).log()

    res = {"step": ck["step"], "config": ck["config"], "lang": {}}
    tot = {"nll": 0.0, "uni": 0.0, "n": 0}
    all_picks = torch.zeros(model.c.n_layer, model.c.n_expert, dtype=torch.float64)
    for lang in corpus:
        text = "\n".join(corpus[lang][1])
        ids = tok.encode(text)
        if args.limit:
            ids = ids[: args.limit]
        nll, n, picks = score(model, ids, tok.eot)
        # The unigram model scores exactly the tokens the windows score (all of ids).
        uni = -logp_uni[torch.tensor(ids)].sum().item()
        assert n == len(ids)
        res["lang"][lang] = {"tokens": n, "ppl": math.exp(nll / n), "unigram_ppl": math.exp(uni / n),
                             "routing": usage_stats(picks)}
        tot["nll"] += nll
        tot["uni"] += uni
        tot["n"] += n
        all_picks += picks
        print(f"{lang}: {n} tokens, ppl {math.exp(nll / n):.2f}, unigram {math.exp(uni / n):.2f}", flush=True)
    res["all"] = {"tokens": tot["n"], "ppl": math.exp(tot["nll"] / tot["n"]),
                  "unigram_ppl": math.exp(tot["uni"] / tot["n"]), "routing": usage_stats(all_picks)}
    with open(os.path.join(args.work, "stats.json"), "w") as f:
        json.dump(res, f, indent=1)

    langs = list(corpus)
    print(f"\n## Held-out perplexity (step {ck['step']})\n")
    print("| language | tokens | model ppl | unigram ppl | ratio |\n|---|---|---|---|---|")
    for lang in langs + ["all"]:
        r = res["lang"][lang] if lang != "all" else res["all"]
        print(f"| {lang} | {r['tokens']} | {r['ppl']:.2f} | {r['unigram_ppl']:.2f} | {r['unigram_ppl'] / r['ppl']:.2f}x |")
    nl = model.c.n_layer
    print("\n## Routing: usage entropy in bits (uniform = %.2f) / share of picks on the busiest 25%% of experts\n"
          % math.log2(model.c.n_expert))
    print("| language | " + " | ".join(f"layer {i}" for i in range(nl)) + " |\n|---|" + "---|" * nl)
    for lang in langs + ["all"]:
        r = res["lang"][lang] if lang != "all" else res["all"]
        print(f"| {lang} | " + " | ".join(f"{e:.2f} / {100 * s:.0f}%" for e, s, _ in r["routing"]) + " |")
    print("\n## Busiest 25% of experts per language (layer: expert ids)\n")
    for lang in langs:
        r = res["lang"][lang]["routing"]
        print(f"- {lang}: " + "; ".join(f"L{i}: {sorted(r[i][2])}" for i in range(nl)))


if __name__ == "__main__":
    main()
