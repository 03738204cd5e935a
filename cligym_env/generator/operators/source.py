"""Source logic: a wrong comparison, operator or constant in an installed module, or only in its bytecode.

The edit happens at build time by a small program that parses the installed file, lists its mutable sites
(comparisons, +/-, and/or, int and bool literals), picks one kind and one site with a seed and changes that
one token, so formatting and comments stay exactly as shipped.
"""

from __future__ import annotations

import random

from cligym_env.generator.operators._base import (
    Draft, Operator, Target, python_program, reinstall_wheel, source_targets)
from cligym_env.generator.types import GoldProbe

CATEGORY = "source-logic"

MUTATOR = r'''
import ast, importlib.util, io, os, py_compile, sys, tokenize
path, seed, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
text = open(path, encoding="utf-8").read()
lines = text.splitlines(keepends=True)
tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
def at(line, col):  # ast columns count UTF-8 bytes, tokenize columns count characters
    return (line, len(lines[line - 1].encode()[:col].decode(errors="ignore")))
def between(a, b, strings):
    lo, hi = at(a.end_lineno, a.end_col_offset), at(b.lineno, b.col_offset)
    return [t for t in tokens if lo <= t.start and t.end <= hi and t.string in strings]
SWAP = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">", "+": "-", "-": "+",
        "and": "or", "or": "and", "True": "False", "False": "True"}
sites = {"compare": set(), "arith": set(), "boolean": set(), "constant": set()}
for node in ast.walk(ast.parse(text)):
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        sites["compare"].update(between(node.left, node.comparators[0], {"==", "!=", "<", "<=", ">", ">="})[:1])
    elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        sites["arith"].update(between(node.left, node.right, {"+", "-"})[-1:])
    elif isinstance(node, ast.BoolOp):
        sites["boolean"].update(between(node.values[0], node.values[1], {"and", "or"})[:1])
    elif isinstance(node, ast.Constant) and type(node.value) in (int, bool):
        start = at(node.lineno, node.col_offset)
        sites["constant"].update(t for t in tokens if t.start == start and (t.string.isdigit() or t.string in SWAP))
kinds = [kind for kind in sites if sites[kind]]
if not kinds:
    sys.exit(f"nothing to mutate in {path}")
kind = kinds[seed % len(kinds)]
site = sorted(sites[kind], key=lambda t: t.start)[seed // len(kinds) % len(sites[kind])]
new = SWAP.get(site.string) or str(int(site.string) + 1)
(row, col), (_, end) = site.start, site.end
lines[row - 1] = lines[row - 1][:col] + new + lines[row - 1][end:]
mutated = "".join(lines)
print(f"{path}:{row}: {kind}: {site.string!r} -> {new!r}")
if mode == "source":
    open(path, "w", encoding="utf-8").write(mutated)
    py_compile.compile(path, doraise=True)
else:  # only the bytecode lies: an unchecked-hash .pyc is trusted without looking at the source
    scratch = path + ".mutating"
    open(scratch, "w", encoding="utf-8").write(mutated)
    py_compile.compile(scratch, cfile=importlib.util.cache_from_source(path), dfile=path, doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    os.remove(scratch)
'''


def _mutation(mode: str):
    def make(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
        dist, path = target.data
        seed = str(rng.randrange(1 << 30))
        where = "its source" if mode == "source" else "its compiled bytecode only (unchecked-hash .pyc)"
        return Draft(target.key, f"one-token mutation (seed {seed}) in {path} of {dist.name}, in {where}",
                     [python_program(probe.python, MUTATOR, path, seed, mode)], [reinstall_wheel(probe, dist)],
                     f"Some results computed by {dist.name} are subtly wrong.", {"seed": seed})
    return make


OPERATORS = [
    Operator("mutate-installed-source", CATEGORY, source_targets, _mutation("source")),
    Operator("stale-bytecode", CATEGORY, source_targets, _mutation("bytecode")),
]
