"""Source logic: a wrong comparison, operator or constant in the code an installed module runs.

The edit happens at build time by a small program that parses the installed file, lists its mutable sites
(comparisons, +/-, and/or, int and bool literals), picks one kind and one site with a seed and changes that
one token, so formatting and comments stay exactly as shipped. Either the file itself is edited, or the file stays
byte for byte as shipped and a start-up hook (a .pth line) makes the import system compile the module with that one
token changed: the source, RECORD and a reinstall all say nothing is wrong, and only asking what code really runs
finds it. (A lie only in the bytecode cache cannot be a task: the grader reads no bytecode.)
"""

from __future__ import annotations

import random
from pathlib import PurePosixPath

from cligym_env.generator.operators._base import (
    PTH_NAMES, Draft, Operator, Target, python_program, q, reinstall_wheel, source_targets)
from cligym_env.generator.types import GoldProbe

CATEGORY = "source-logic"

# What the .pth line runs at every interpreter start: a finder, first on sys.meta_path, that hands the module's own
# spec to a loader compiling the file's text with one token changed (never from a bytecode cache).
HOOK = r'''
import importlib.machinery as _machinery, sys as _sys
_v = VALUES
class _Loader(_machinery.SourceFileLoader):
    def get_code(self, fullname):
        lines = self.get_data(self.path).decode("utf-8").splitlines(keepends=True)
        line, col = lines[_v["row"] - 1], _v["col"]
        if line[col:col + len(_v["old"])] == _v["old"]:
            lines[_v["row"] - 1] = line[:col] + _v["new"] + line[col + len(_v["old"]):]
        return compile("".join(lines), self.path, "exec", dont_inherit=True)
class _Finder:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != _v["module"]:
            return None
        spec = _machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.origin == _v["path"]:
            spec.loader = _Loader(name, spec.origin)
        return spec
_sys.meta_path.insert(0, _Finder)
'''


MUTATOR = r'''
import ast, io, py_compile, sys, tokenize
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
else:  # mode "hook:<module>:<pth file>": the file stays as shipped; the import system gets the changed token
    _, module, pth = mode.split(":", 2)
    compile(mutated, path, "exec", dont_inherit=True)  # the mutant must compile, as the edited file would
    values = dict(module=module, path=path, row=row, col=col, old=site.string, new=new)
    HOOK = __HOOK__
    code = HOOK.replace("VALUES", repr(values))
    with open(pth, "a", encoding="utf-8") as sink:
        sink.write(f"import sys; exec({code!r}, {{}})\n")
'''.replace("__HOOK__", repr(HOOK))


def _mutate(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    dist, path = target.data
    seed = str(rng.randrange(1 << 30))
    return Draft(target.key, f"one-token mutation (seed {seed}) in {path} of {dist.name}",
                 [python_program(probe.python, MUTATOR, path, seed, "source")], [reinstall_wheel(probe, dist)],
                 f"Some results computed by {dist.name} are subtly wrong.", {"seed": seed})


def _patch_on_import(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    dist, path = target.data
    seed = str(rng.randrange(1 << 30))
    pth = f"{probe.site_packages}/{rng.choice(PTH_NAMES)}"
    module = module_name(probe, path)
    return Draft(target.key, f"{pth} makes every import of {module} ({dist.name}) compile {path} with one token "
                             f"changed (seed {seed}); the file itself is as shipped",
                 [python_program(probe.python, MUTATOR, path, seed, f"hook:{module}:{pth}")], [f"rm -f {q(pth)}"],
                 f"Some results computed by {dist.name} are subtly wrong, although its installed files are intact.",
                 {"seed": seed, "hook": pth})


def module_name(probe: GoldProbe, path: str) -> str:
    """`site-packages/pkg/sub/mod.py` -> `pkg.sub.mod`; a package's `__init__.py` -> the package."""
    parts = PurePosixPath(path).relative_to(probe.site_packages).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


OPERATORS = [
    Operator("mutate-installed-source", CATEGORY, source_targets, _mutate),
    Operator("patched-on-import", CATEGORY, source_targets, _patch_on_import),
]
