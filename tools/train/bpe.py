"""Byte-level BPE, GPT-2 style: train merges on a corpus and encode text with them.

The vocabulary is written into GGUF with tokenizer.ggml.model = "gpt2" and
tokenizer.ggml.pre = "gpt-2", so inference engines split text with the GPT-2 pre-tokenizer
regex before applying merges. Training must split with exactly that regex, otherwise the merges
would be learned on different words than the engines see. llama.cpp (src/llama-vocab.cpp,
LLAMA_VOCAB_PRE_TYPE_GPT2) lists the pattern without the final "|\\s+" alternative, but its
hand-written matcher for this pattern (unicode_regex_split_custom_gpt2) implements the full
original GPT-2 pattern, which is the one used here.

Tokens are byte strings shown through GPT-2's byte -> printable-unicode table (space is "Ġ",
newline "Ċ"), as GGUF gpt2 vocabularies store them. Ids: 0..255 are the single bytes in byte
order, then one token per merge in merge order, then the special tokens.
"""

import heapq

import regex

GPT2_PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")

EOT = "<|endoftext|>"


def bytes_to_unicode():
    """GPT-2's reversible map from the 256 byte values to printable code points."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_ENC = bytes_to_unicode()
BYTE_DEC = {c: b for b, c in BYTE_ENC.items()}


def pretokenize(text):
    """Words of a text as byte-unicode strings."""
    return ["".join(BYTE_ENC[b] for b in w.encode("utf-8")) for w in GPT2_PATTERN.findall(text)]


def train_bpe(texts, n_merges, log=None):
    """Learns n_merges merges from an iterable of texts. Ties between equally frequent pairs go
    to the lexicographically smallest pair, so the result depends only on the corpus.
    Returns the merges as a list of (left, right) token strings."""
    counts = {}
    for t in texts:
        for w in pretokenize(t):
            counts[w] = counts.get(w, 0) + 1
    words = [list(w) for w in sorted(counts)]
    freq = [counts[w] for w in sorted(counts)]

    pair_count = {}
    where = {}  # pair -> set of word indices that contain it
    for i, syms in enumerate(words):
        for p in zip(syms, syms[1:]):
            pair_count[p] = pair_count.get(p, 0) + freq[i]
            where.setdefault(p, set()).add(i)
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)

    merges = []
    while len(merges) < n_merges and heap:
        negc, p = heapq.heappop(heap)
        if pair_count.get(p, 0) != -negc or negc == 0:
            continue  # stale heap entry
        merges.append(p)
        a, b = p
        ab = a + b
        changed = set()
        for i in sorted(where.pop(p, ())):
            syms = words[i]
            f = freq[i]
            # Take the word's pairs out, merge, put the new pairs in.
            for q in zip(syms, syms[1:]):
                pair_count[q] -= f
                changed.add(q)
            out, j = [], 0
            while j < len(syms):
                if j + 1 < len(syms) and syms[j] == a and syms[j + 1] == b:
                    out.append(ab)
                    j += 2
                else:
                    out.append(syms[j])
                    j += 1
            words[i] = out
            for q in zip(out, out[1:]):
                pair_count[q] = pair_count.get(q, 0) + f
                where.setdefault(q, set()).add(i)
                changed.add(q)
        pair_count.pop(p, None)
        changed.discard(p)
        for q in changed:
            c = pair_count.get(q, 0)
            if c > 0:
                heapq.heappush(heap, (-c, q))
        if log and len(merges) % 500 == 0:
            log(f"bpe: {len(merges)} merges, last {ab!r} x{-negc}")
    return merges


class Tokenizer:
    """Vocabulary and encoder built from a merge list."""

    def __init__(self, merges, specials=(EOT,)):
        self.merges = list(merges)
        self.tokens = [BYTE_ENC[b] for b in range(256)] + [a + b for a, b in self.merges]
        self.n_normal = len(self.tokens)
        self.tokens += list(specials)
        self.id = {}
        for i, t in enumerate(self.tokens):
            self.id.setdefault(t, i)
        self.rank = {p: r for r, p in enumerate(self.merges)}
        self.eot = self.id[EOT]
        self.cache = {}

    def _bpe(self, word):
        """Applies merges to one pre-token, lowest rank first (llama.cpp and GPT-2 order)."""
        syms = list(word)
        while len(syms) > 1:
            best = None
            for i in range(len(syms) - 1):
                r = self.rank.get((syms[i], syms[i + 1]))
                if r is not None and (best is None or r < best):
                    best = r
            if best is None:
                break
            a, b = self.merges[best]
            out, j = [], 0
            while j < len(syms):
                if j + 1 < len(syms) and syms[j] == a and syms[j + 1] == b:
                    out.append(a + b)
                    j += 2
                else:
                    out.append(syms[j])
                    j += 1
            syms = out
        return [self.id[s] for s in syms]

    def encode(self, text):
        ids = []
        for w in pretokenize(text):
            r = self.cache.get(w)
            if r is None:
                r = self._bpe(w)
                self.cache[w] = r
            ids.extend(r)
        return ids

    def decode(self, ids):
        out = bytearray()
        for i in ids:
            t = self.tokens[i]
            if i >= self.n_normal:
                out += t.encode("utf-8")
            else:
                out += bytes(BYTE_DEC[c] for c in t)
        return out.decode("utf-8", errors="replace")
