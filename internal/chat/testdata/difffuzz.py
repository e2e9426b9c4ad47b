#!/usr/bin/env python3
"""Differential fuzzing against Python jinja2: writes random templates and
jinja2's rendering of each (with gen_golden.py's environment and the
snippets' context) as JSON lines; difffuzz_test.go renders them with this
package and reports every difference.

    python3 difffuzz.py expr 1 3000 /tmp/d1.jsonl     # expressions, seed 1
    python3 difffuzz.py stmt 1 3000 /tmp/w1.jsonl     # statements and whitespace control
    DIFF_FILE=/tmp/d1.jsonl go test -tags difffuzz -run TestDiffJinja2 ./internal/chat

Known differences: reprs with object addresses (generators, methods),
complex numbers and integers beyond 64 bits, json.dumps of a namespace, and a
call block calling a macro that never uses caller (see README.md).
"""
import copy, json, random, sys
from pathlib import Path

import gen_golden as g

HERE = Path(__file__).resolve().parent
MODE = sys.argv[1]
R = random.Random(int(sys.argv[2]))
N = int(sys.argv[3])

STRS = ["''", "'a'", "'abc'", "'A b C'", "' x '", "'é日'", "'a,b'", "'%s'", "'{}'", "'user'", "'3'", "'1.5'", "'\\n'", "'ß'", "'-'"]
NAMES = ["messages", "d", "n", "x", "nope", "messages[0]", "messages[-1]", "d.b", "d.a", "messages[1].role", "messages[0].content"]
FILTERS = [("length", []), ("list", []), ("string", []), ("upper", []), ("lower", []), ("title", []), ("capitalize", []), ("trim", []),
           ("first", []), ("last", []), ("reverse", []), ("sort", []), ("unique", []), ("join", ["', '"]), ("join", []), ("default", ["'D'"]),
           ("default", ["'D'", "true"]), ("tojson", []), ("tojson", ["indent=2"]), ("items", []), ("dictsort", []), ("int", []), ("float", []),
           ("abs", []), ("round", []), ("round", ["1"]), ("replace", ["'a'", "'b'"]), ("map", ["attribute='role'"]), ("map", ["'upper'"]),
           ("selectattr", ["'role'", "'equalto'", "'user'"]), ("rejectattr", ["'role'"]), ("select", []), ("reject", ["'none'"]),
           ("batch", ["2"]), ("sum", []), ("min", []), ("max", []), ("count", []), ("center", ["7"]), ("indent", ["2"]), ("wordcount", []),
           ("format", ["1"]), ("e", []), ("safe", []), ("attr", ["'a'"]), ("d", []), ("string", []), ("tojson", ["sort_keys=true"])]
TESTS = ["defined", "undefined", "none", "string", "number", "integer", "float", "mapping", "iterable", "sequence", "boolean", "true",
         "false", "odd", "even", "callable", "lower", "upper", "divisibleby 2", "eq 1", "in [1, 'a']", "sameas none", "gt 1", "filter", "test"]
METHODS = [("strip", []), ("split", []), ("split", ["','"]), ("upper", []), ("lower", []), ("startswith", ["'a'"]), ("endswith", ["'c'"]),
           ("replace", ["'a'", "'z'"]), ("title", []), ("find", ["'b'"]), ("count", ["'a'"]), ("lstrip", []), ("rstrip", ["'c'"]),
           ("get", ["'a'"]), ("get", ["'zz'", "0"]), ("items", []), ("keys", []), ("values", []), ("index", ["1"]), ("format", ["1", "2"]),
           ("join", ["['x', 'y']"]), ("splitlines", []), ("capitalize", []), ("rsplit", ["None", "1"]), ("partition", ["'b'"])]
BINOPS = ["+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", ">", "<=", ">=", "in", "not in", "and", "or"]

def lit(d):
    c = R.randrange(10)
    if c == 0: return str(R.choice([0, 1, 2, -1, 3, 10, 255]))
    if c == 1: return R.choice(["1.5", "0.1", "2.0", "-0.5", "1e3", "3.0"])
    if c == 2: return R.choice(STRS)
    if c == 3: return R.choice(["true", "false", "none"])
    if c == 4 and d > 0: return "[" + ", ".join(expr(d - 1) for _ in range(R.randrange(4))) + "]"
    if c == 5 and d > 0:
        n = R.randrange(3)
        return "(" + ", ".join(expr(d - 1) for _ in range(n)) + ("," if n == 1 else "") + ")"
    if c == 6 and d > 0: return "{" + ", ".join(f"{R.choice(STRS + ['1', 'none'])}: {expr(d - 1)}" for _ in range(R.randrange(3))) + "}"
    if c == 7: return R.choice(["range(3)", "range(1, 5, 2)", "namespace(a=1)", "dict(a=1, b=2)"])
    return R.choice(NAMES)

def expr(d=3):
    if d <= 0: return lit(0)
    c = R.randrange(12)
    if c <= 2: return lit(d)
    if c == 3:
        f, a = R.choice(FILTERS)
        return f"{atom(d - 1)}|{f}" + (f"({', '.join(a)})" if a else "")
    if c == 4: return f"{atom(d - 1)} is {'not ' if R.random() < .3 else ''}{R.choice(TESTS)}"
    if c == 5:
        m, a = R.choice(METHODS)
        return f"{atom(d - 1)}.{m}({', '.join(a)})"
    if c == 6: return f"{atom(d - 1)} {R.choice(BINOPS)} {atom(d - 1)}"
    if c == 7: return atom(d - 1) + "[" + R.choice(['0', '-1', '1:', ':2', '::-1', 'x', "'a'", '1:3', '-2:']) + "]"
    if c == 8: return f"{atom(d - 1)} if {atom(d - 1)} else {atom(d - 1)}"
    if c == 9: return f"not {atom(d - 1)}"
    if c == 10: return f"{atom(d - 1)}.{R.choice(['a', 'b', 'role', 'content', 'items', 'upper', 'zz', '0'])}"
    if R.random() < .5:
        return "'%s|%d' % (" + atom(d - 1) + ", " + R.choice(['1', '2.5', 'x']) + ")"
    return "'{}-{}'.format(" + atom(d - 1) + ", " + atom(d - 1) + ")"

def atom(d):
    e = expr(d)
    return e if R.random() < 0.3 and not any(ch in e for ch in " |") else "(" + e + ")"

def stmt(d=2):
    c = R.randrange(9)
    if c <= 2 or d <= 0: return "{{ " + expr(3) + " }}"
    if c == 3: return "{% if " + expr(2) + " %}" + body(d - 1) + ("{% else %}" + body(d - 1) if R.random() < .5 else "") + "{% endif %}"
    if c == 4:
        tgt = R.choice(["v", "k, v"])
        it = R.choice(["messages", "d.items()", "d|dictsort", "range(3)", "'ab'", "d", "[[1, 2], [3, 4]]", expr(2)])
        flt = (" if " + expr(1)) if R.random() < .25 else ""
        inner = R.choice(["{{ loop.index }}", "{{ v }}", "{{ loop.last }}", "{% if loop.first %}{% continue %}{% endif %}", "{{ loop.cycle('a', 'b') }}", "{% break %}", ""])
        return "{% for " + tgt + " in " + it + flt + " %}" + inner + body(d - 1) + ("{% else %}E" if R.random() < .3 else "") + "{% endfor %}"
    if c == 5: return "{% set y = " + expr(2) + " %}{{ y }}"
    if c == 6: return "{% set ns = namespace(a=" + expr(1) + ") %}{% set ns.a = " + expr(1) + " %}{{ ns.a }}"
    if c == 7: return "{% macro m(a, b=" + expr(1) + ") %}" + body(d - 1) + "{{ a }}{{ b }}{% endmacro %}{{ m(" + expr(1) + ") }}"
    return "{% filter " + R.choice(["upper", "trim", "lower"]) + " %}" + body(d - 1) + "{% endfilter %}"

def body(d):
    return "".join(stmt(d) for _ in range(R.randrange(1, 3)))


WS = ["", " ", "\n", "  \n", "\n  ", "\t", "\n\n", " \n\t ", "x\n", "\n y "]
def ws(): return R.choice(WS)
def mod(): return R.choice(["", "", "-", "+"])
def tag(body): return "{%" + mod() + " " + body + " " + mod() + "%}"
def var(e): return "{{" + R.choice(["", "-"]) + " " + e + " " + R.choice(["", "-"]) + "}}"
STMT_EXPRS = ["m.role", "m.content|trim", "loop.index", "x", "ns.n", "caller() if caller is defined else 'c'", "'<' ~ loop.index0 ~ '>'", "k", "v", "a", "b|default('B')", "loop.length", "d.b|join(',')"]
def sblock(d):
    out = ""
    for _ in range(R.randrange(1, 4)):
        out += ws()
        c = R.randrange(10)
        if c < 3 or d <= 0:
            out += var(R.choice(STMT_EXPRS))
        elif c == 3:
            out += tag("if " + R.choice(["loop.first", "x > 2", "m.role == 'user'", "not ns.n", "a"])) + sblock(d-1) + (tag("else") + sblock(d-1) if R.random() < .5 else "") + tag("endif")
        elif c == 4:
            out += tag("for m in messages" + R.choice(["", " if m.role != 'system'"])) + sblock(d-1) + tag("endfor")
        elif c == 5:
            out += tag("for k, v in d.items()") + sblock(d-1) + tag("endfor")
        elif c == 6:
            out += tag("set ns.n = ns.n + 1") 
        elif c == 7:
            out += "{#" + mod() + " comment " + ws() + mod() + "#}"
        elif c == 8:
            out += tag("macro mac(a, b=none)") + sblock(d-1) + var("caller is defined") + tag("endmacro") + var("mac(1)") + ws() + tag("call mac(2)") + sblock(d-1) + tag("endcall")
        else:
            out += tag("raw") + ws() + "{{ x }}" + ws() + tag("endraw")
        out += ws()
    return out

env = g.make_env()
cases = json.loads((HERE / "cases.json").read_text(encoding="utf-8"))
ctx = {"messages": cases["multi_turn"]["messages"], "d": {"a": 1, "b": [1, 2]}, "n": None, "x": 3,
       "tools": None, "documents": None, "add_generation_prompt": True, "bos_token": "<s>", "eos_token": "</s>"}
with open(sys.argv[4], "w", encoding="utf-8") as out:
    for _ in range(N):
        src = body(2) if MODE == "expr" else tag("set ns = namespace(n=0)") + sblock(3)
        r = g.render(env, src, copy.deepcopy(ctx))  # jinja2 can mutate its context
        r["src"] = src
        out.write(json.dumps(r, ensure_ascii=False) + "\n")
