#!/usr/bin/env python3
"""Renders every chat template in templates/ against every conversation in
cases.json, and every snippet in snippets.json, with Python jinja2 configured
exactly as Hugging Face transformers' apply_chat_template does, and writes the
results to golden.json. The Go tests compare against that file, so they need
no Python.

Run from this directory:  python3 gen_golden.py   (jinja2 3.1.x)
"""
import json
from datetime import datetime
from pathlib import Path

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = Path(__file__).resolve().parent
FIXED_NOW = datetime(2024, 7, 26, 9, 5, 3)  # what Go tests set Template.Now to


# ---- the environment of transformers' _compile_jinja_template ----

class AssistantTracker(jinja2.ext.Extension):
    """transformers' {% generation %} tag: a call block that renders its body."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

    def _generation_support(self, caller):
        return caller()


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return FIXED_NOW.strftime(format)


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, source, ctx):
    try:
        return {"output": env.from_string(source).render(**ctx)}
    except Exception as e:  # compile or render error: Go must fail too
        return {"error": f"{type(e).__name__}: {e}"}


def main():
    env = make_env()
    manifest = json.loads((HERE / "templates.json").read_text(encoding="utf-8"))
    cases = json.loads((HERE / "cases.json").read_text(encoding="utf-8"))
    snippets = json.loads((HERE / "snippets.json").read_text(encoding="utf-8"))
    out = {}
    for name, meta in sorted(manifest.items()):
        source = (HERE / "templates" / f"{name}.jinja").read_text(encoding="utf-8")
        for case_name, case in sorted(cases.items()):
            for agp in (True, False):
                ctx = {"messages": case["messages"], "tools": None, "documents": None,
                       "add_generation_prompt": agp, "bos_token": meta["bos"], "eos_token": meta["eos"]}
                ctx.update(case.get("extra", {}))
                out[f"{name}/{case_name}/{'gen' if agp else 'nogen'}"] = render(env, source, ctx)
    snippet_ctx = {"messages": cases["multi_turn"]["messages"], "d": {"a": 1, "b": [1, 2]}, "n": None, "x": 3,
                   "tools": None, "documents": None, "add_generation_prompt": True, "bos_token": "<s>", "eos_token": "</s>"}
    for name, source in sorted(snippets.items()):
        out[f"snippet/{name}"] = render(env, source, snippet_ctx)
    (HERE / "golden.json").write_text(json.dumps(out, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    errors = sum(1 for v in out.values() if "error" in v)
    print(f"wrote {len(out)} renderings ({errors} errors) to golden.json with jinja2 {jinja2.__version__}")


if __name__ == "__main__":
    main()
