#!/usr/bin/env python3
"""Renders cases.json through every template with Jinja2 configured the way Hugging Face
transformers configures it for chat templates (transformers/utils/chat_template_utils.py):
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]),
tojson = json.dumps(ensure_ascii=False, ...), raise_exception, strftime_now.
strftime_now is pinned to 2026-01-01 00:00:00 UTC (the C++ test passes now_unix=1767225600).

Writes expected/<template stem>/<case>.txt, or <case>.error holding the raise_exception message,
or <case>.typeerror when Python itself fails (the C++ engine must throw TemplateError too).
Every file it wrote was then read against its template by hand (see README.md) before commit;
rerun it only to add cases, and review the diff the same way.
Usage: python3 make_expected.py   (needs python3-jinja2; run from anywhere)
"""
import datetime
import json
import os

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
NOW = datetime.datetime(2026, 1, 1, 0, 0, 0)


class Raised(Exception):
    pass


def raise_exception(message):
    raise Raised(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def strftime_now(fmt):
    return NOW.strftime(fmt)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                    extensions=[jinja2.ext.loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = strftime_now

with open(os.path.join(HERE, "cases.json"), encoding="utf-8") as f:
    cases = json.load(f)["cases"]

for name in sorted(os.listdir(HERE)):
    if not name.endswith(".jinja"):
        continue
    stem = name[: -len(".jinja")]
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        tmpl = env.from_string(f.read())
    outdir = os.path.join(HERE, "expected", stem)
    os.makedirs(outdir, exist_ok=True)
    for case in cases:
        if "only" in case and stem not in case["only"]:
            continue
        try:
            text, ext = tmpl.render(**case["context"]), ".txt"
        except Raised as e:
            text, ext = str(e), ".error"
        except Exception as e:
            # The template cannot render this case (Python TypeError etc.): the C++ engine must
            # fail too, with a TemplateError (a Jinja generator from map() is the exception:
            # ours returns a list, so those cases are not recorded).
            print(f"{stem}/{case['name']}: {type(e).__name__}: {e}")
            if "generator" in str(e):
                continue
            text, ext = f"{type(e).__name__}: {e}", ".typeerror"
        with open(os.path.join(outdir, case["name"] + ext), "w", encoding="utf-8", newline="") as f:
            f.write(text)
