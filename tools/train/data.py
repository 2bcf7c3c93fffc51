"""Corpus: the fortune-cookie databases of six languages, as Debian packages install them.

Each language is read from the files its Debian packages own (`dpkg -L`), so the corpus is
exactly what `apt-get install fortunes fortunes-de ...` puts on disk. A fortune database is a
plain text file whose entries are separated by lines holding a single "%"; every entry is one
document. Documents are deduplicated per language (the databases repeat some entries across
files), then split into train and test with a seeded shuffle, so that the held-out split never
overlaps the training split and is the same on every machine.
"""

import os
import random
import subprocess

# Language -> Debian packages. fortunes-min holds the core English "fortunes" file that the
# "fortunes" package depends on.
LANG_PACKAGES = {
    "en": ["fortunes-min", "fortunes"],
    "de": ["fortunes-de"],
    "es": ["fortunes-es"],
    "it": ["fortunes-it"],
    "ru": ["fortunes-ru"],
    "pl": ["fortunes-pl"],
}

# ASCII-art collections are skipped: pictures made of punctuation teach a language model nothing
# about language and would spend experts on layout.
SKIP_NAMES = {"ascii-art", "asciiart", "art", "banner"}

# Held-out share per language, capped so that the committed test text stays small.
TEST_FRACTION = 0.03
TEST_MAX_DOCS = 250
# Documents longer than this many characters are dropped (a few databases hold whole stories
# or tables; they would dominate the token count of a language).
MAX_DOC_CHARS = 2000


def package_files(pkg):
    """Regular fortune database files owned by a Debian package, sorted (symlinks and .dat
    index files excluded)."""
    try:
        out = subprocess.run(["dpkg", "-L", pkg], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"package {pkg} is not installed (run scripts/train-deps.sh): {e}")
    files = []
    for line in out.splitlines():
        if "/games/fortunes" not in line or line.endswith((".dat", ".u8")):
            continue
        if os.path.islink(line) or not os.path.isfile(line):
            continue
        if os.path.basename(line) in SKIP_NAMES:
            continue
        files.append(line)
    return sorted(set(files))


def decode(raw):
    """UTF-8 if valid, else Latin-1 (a few old databases are not UTF-8)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def split_entries(text):
    """Entries of a fortune database: the text between lines that hold only "%"."""
    docs, cur = [], []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.strip() == "%":
            docs.append("\n".join(cur))
            cur = []
        else:
            cur.append(line)
    docs.append("\n".join(cur))
    out = []
    for d in docs:
        d = d.strip("\n")
        # Tabs and trailing blanks are kept; only empty entries and control-heavy junk go.
        if d.strip() and len(d) <= MAX_DOC_CHARS:
            out.append(d + "\n")
    return out


def load_language(lang):
    seen, docs = set(), []
    for pkg in LANG_PACKAGES[lang]:
        for path in package_files(pkg):
            with open(path, "rb") as f:
                for d in split_entries(decode(f.read())):
                    key = " ".join(d.split())
                    if key not in seen:
                        seen.add(key)
                        docs.append(d)
    return docs


def load_corpus(seed):
    """{lang: (train_docs, test_docs)}, deterministic for a seed."""
    corpus = {}
    for lang in LANG_PACKAGES:
        docs = load_language(lang)
        idx = list(range(len(docs)))
        random.Random(f"split-{seed}-{lang}").shuffle(idx)
        n_test = min(TEST_MAX_DOCS, max(1, int(len(docs) * TEST_FRACTION)))
        test = [docs[i] for i in idx[:n_test]]
        train = [docs[i] for i in idx[n_test:]]
        corpus[lang] = (train, test)
    return corpus


def test_text(corpus, seed):
    """The committed held-out text: all test documents, languages interleaved by a seeded
    shuffle (so that the first context window already spans languages), one blank line between
    documents."""
    items = [(lang, d) for lang in corpus for d in corpus[lang][1]]
    random.Random(f"testtext-{seed}").shuffle(items)
    return "\n".join(d for _, d in items), items
