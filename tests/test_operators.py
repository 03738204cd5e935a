"""Inversion operators: pure checks on a hand-made probe, then real breakages of a real gold image.

The real part builds python-dotenv's gold image once, then for each case: builds gold + the breakage's
Dockerfile lines, checks in a container that the intended thing is broken, runs the breakage's own
solution script there, and checks that the thing works again.
"""

from __future__ import annotations

import importlib.util
import marshal
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import docker
import pytest

from cligym_env.generator.gold import build_gold
from cligym_env.generator.operators import OPERATORS, REGISTRY, propose
from cligym_env.generator.operators._base import APT, RUNNER
from cligym_env.generator.operators.source import MUTATOR
from cligym_env.generator.types import Breakage, Distribution, GoldEnvironment, GoldProbe
from cligym_env.images.build import build_image, environment_tag
from cligym_env.images.conceal import conceal
from cligym_env.runtime.sandbox import Sandbox
from cligym_env.runtime.shell import script_command
from cligym_env.tasks.task import CATEGORIES, Environment

SITE = "/opt/venv/lib/python3.11/site-packages"


def _dist(name: str, top: str, modules: list[str], scripts: tuple[str, ...] = (),
          extra: tuple[str, ...] = ()) -> Distribution:
    info = f"{SITE}/{name}-1.2.3.dist-info"
    files = [f"{SITE}/{top}/{m}.py" for m in modules]
    files += [f"{SITE}/{top}/__pycache__/{m}.cpython-311.pyc" for m in modules]
    files += [f"{info}/{n}" for n in ("METADATA", "RECORD", "WHEEL", "entry_points.txt")]
    return Distribution(name, "1.2.3", (top,), tuple(files) + tuple(f"/opt/venv/bin/{s}" for s in scripts) + extra)


def fake_probe(**changes: object) -> GoldProbe:
    """A gold layout like build_gold's: the project, a dependency with a compiled module, the runner."""
    so = f"{SITE}/fastdep/_speed.cpython-311-x86_64-linux-gnu.so"
    probe = GoldProbe(
        python="/opt/venv/bin/python", python_version="3.11.2", site_packages=SITE, stdlib="/usr/lib/python3.11",
        project_module="proj",
        distributions=(_dist("proj", "proj", ["__init__", "core", "cli", "util"], ("proj",)),
                       _dist("fastdep", "fastdep", ["__init__", "api"], extra=(so,)),
                       _dist("certifi", "certifi", ["__init__", "core"], extra=(f"{SITE}/certifi/cacert.pem",)),
                       _dist("pytest", "pytest", ["__init__"], ("pytest", "py.test")),
                       _dist("pluggy", "pluggy", ["__init__"]), _dist("pip", "pip", ["__init__"], ("pip",))),
        test_imports=("proj", "fastdep", "pytest", "json", "sqlite3", "ssl", "multiprocessing", "datetime"),
        extension_modules=(so,),
        shared_libraries=tuple(f"/lib/x86_64-linux-gnu/{lib}" for lib in (
            "libc.so.6", "libm.so.6", "libz.so.1", "libexpat.so.1", "libffi.so.8", "libsqlite3.so.0", "libssl.so.3",
            "libcrypto.so.3", "libuuid.so.1")) + ("/lib64/ld-linux-x86-64.so.2",),
        wheelhouse="/opt/wheelhouse", apt_archives="/var/cache/apt/archives")
    used = {  # the gold run used everything here (the aiming tests take parts away)
        "used_modules": tuple(sorted({t for d in probe.distributions for t in d.top_level} | set(probe.test_imports)
                                     | {"_ssl", "_hashlib", "_multiprocessing", "_posixshmem", "_sqlite3", "subprocess",
                                        "socket", "urllib.request", "zoneinfo", "encodings.idna", "encodings.cp437",
                                        "_contextvars", "termios"})),
        "used_files": tuple(sorted(f for d in probe.distributions for f in d.files)) + ("/tmp",),
        "used_libraries": probe.shared_libraries, "used_executables": ("/opt/venv/bin/proj",)}
    return GoldProbe(**{**vars(probe), **used, **changes})


def all_breakages(probe: GoldProbe) -> list[Breakage]:
    return [b for op in OPERATORS for b in op.breakages(probe, random.Random(0))]


def test_every_category_is_covered_by_several_operators() -> None:
    for category in CATEGORIES:
        assert len([op for op in OPERATORS if op.category == category]) >= 2, category


def test_propose_is_deterministic_under_a_seed_and_varies_with_it() -> None:
    probe = fake_probe()
    first, again = propose(probe, random.Random(7)), propose(probe, random.Random(7))
    assert first == again and first
    assert [(b.operator, b.target) for b in first] != [(b.operator, b.target) for b in propose(probe, random.Random(8))]
    assert {b.category for b in first} == set(CATEGORIES)


def test_propose_deduplicates_and_filters_by_category() -> None:
    probe = fake_probe()
    proposals = propose(probe, random.Random(1), per_operator=50)
    keys = [(b.operator, b.target) for b in proposals]
    assert len(keys) == len(set(keys))
    assert {b.category for b in propose(probe, random.Random(1), categories=["concurrency"])} == {"concurrency"}
    with pytest.raises(ValueError, match="unknown categories"):
        propose(probe, random.Random(1), categories=["plumbing"])


def test_each_operator_yields_many_distinct_breakages() -> None:
    probe = fake_probe()
    for op in OPERATORS:
        targets = [b.target for b in op.breakages(probe, random.Random(0))]
        assert len(targets) == len(set(targets)), op.name
        assert len(targets) >= 2, f"{op.name} yields {len(targets)}"


def test_dockerfile_lines_are_plain_run_instructions_that_spare_bind_mounts() -> None:
    for breakage in all_breakages(fake_probe()):
        logical = breakage.dockerfile.replace("\\\n", " ").strip().splitlines()
        assert len(logical) == 1 and logical[0].startswith("RUN "), breakage
        for forbidden in ("/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "ENV ", "<<"):
            assert forbidden not in breakage.dockerfile, (forbidden, breakage)
        assert breakage.solution.startswith("#!/usr/bin/env bash\nset -euo pipefail\n")
        assert breakage.category in CATEGORIES and breakage.hint and breakage.description
        assert not any(word in breakage.hint for word in ("pip install", "dpkg", "chmod", "rm ")), breakage.hint


def test_the_runner_is_never_a_dependency_target() -> None:
    probe = fake_probe()
    for breakage in all_breakages(probe):
        if breakage.category == "dependencies-runtime":
            assert breakage.target.split("@")[0].split(":")[0] not in RUNNER, breakage.target


def test_without_archives_only_self_contained_breakages_are_offered() -> None:
    probe = fake_probe(apt_archives="", wheelhouse="")
    breakages = all_breakages(probe)
    assert breakages
    assert not any("dpkg" in b.solution or "pip install" in b.solution for b in breakages)
    assert all(not REGISTRY[b.operator].requires for b in breakages)
    assert not [op.name for op in OPERATORS if op.requires == APT and list(op.breakages(probe, random.Random(0)))]


def test_start_up_hooks_go_in_a_pth_file_or_debian_sitecustomize() -> None:
    hooks = [b for b in all_breakages(fake_probe()) if "hook" in b.extra and "@" in b.target]  # `hook_targets`'s
    assert {b.target.rsplit("@", 1)[1] for b in hooks} == {"pth", "sitecustomize"}
    for breakage in hooks:
        in_pth = breakage.extra["hook"].endswith(".pth")
        assert in_pth == breakage.target.endswith("@pth")
        assert "'import " in breakage.dockerfile  # a .pth file runs only lines that start with `import`
        assert ("--force-confmiss" in breakage.solution) != in_pth


CLAMP = "# keep me\ndef clamp(x, lo=0, hi=10):\n    if x < lo:\n        return lo\n    return hi if x > hi else x\n"


def test_mutator_changes_one_token_in_the_source(tmp_path: Path) -> None:
    module = tmp_path / "calc.py"
    module.write_text(CLAMP)
    subprocess.run([sys.executable, "-", str(module), "0", "source"], input=MUTATOR, text=True, check=True,
                   capture_output=True)  # seed 0: the first kind present (a comparison), its first site
    after = module.read_text()
    changed = [(a, b) for a, b in zip(CLAMP.splitlines(), after.splitlines()) if a != b]
    assert changed == [("    if x < lo:", "    if x >= lo:")]
    pyc = Path(importlib.util.cache_from_source(str(module))).read_bytes()
    assert marshal.loads(pyc[16:]) == compile(after, str(module), "exec", dont_inherit=True)  # recompiled to match


def test_patched_on_import_leaves_the_file_and_changes_what_every_import_runs(tmp_path: Path) -> None:
    """The file, its bytecode cache and a reinstall all look right; only the code an import compiles is wrong,
    in every interpreter (isolated ones, as the grader's, included), and removing the hook's line undoes it."""
    module, pth = tmp_path / "calc.py", tmp_path / "site" / "zz_runtime.pth"
    module.write_text(CLAMP)
    pth.parent.mkdir()
    subprocess.run([sys.executable, "-", str(module), "0", f"hook:calc:{pth}"], input=MUTATOR, text=True,
                   check=True, capture_output=True)
    assert module.read_text() == CLAMP and pth.read_text().startswith("import sys; exec(")
    assert pth.read_text().count("\n") == 1  # one line, as .pth files need
    run = f"import site, sys; sys.path.insert(0, {str(tmp_path)!r}); site.addsitedir({str(pth.parent)!r}); " \
          "import calc; print(calc.clamp(5))"
    answer = subprocess.run([sys.executable, "-I", "-B", "-c", run], capture_output=True, text=True, check=True)
    assert answer.stdout.split() == ["0"]  # `x >= lo` now: 5 is clamped to 0
    pth.unlink()
    answer = subprocess.run([sys.executable, "-I", "-B", "-c", run], capture_output=True, text=True, check=True)
    assert answer.stdout.split() == ["5"]


# --- real breakages of a real gold image ---------------------------------------------------------------------

CHECKS = r'''
import base64, hashlib, importlib.metadata as md, importlib.util, marshal, sys
kind, name = sys.argv[1], sys.argv[2]
if kind == "record":  # every installed file still matches the hash in the distribution's RECORD
    bad = [str(f) for f in md.distribution(name).files if f.hash and base64.urlsafe_b64encode(
        hashlib.sha256(f.locate().read_bytes()).digest()).rstrip(b"=").decode() != f.hash.value]
    sys.exit(f"differs from RECORD: {bad}" if bad else 0)
spec = importlib.util.find_spec(name)  # "loaded": what an import runs is the module's file as it reads
code = spec.loader.get_code(name)
sys.exit(0 if code == compile(open(spec.origin).read(), spec.origin, "exec", dont_inherit=True) else "not its file")
'''


def py(code: str) -> str:
    return f"python -c '{code}'"


CASES = [  # operator, target key ({site}, {lib} filled from the probe), a check that fails while broken
    ("delete-module-file", "{site}/dotenv/main.py", py("import dotenv")),
    ("missing-execute-bit", "/opt/venv/bin/dotenv", "dotenv --help"),
    ("damage-shared-library", "{lib}/libsqlite3.so.0:bad-header", py("import sqlite3")),
    ("broken-virtualenv", "/opt/venv:no-pyvenv-cfg", py("import dotenv")),
    ("broken-shebang", "/opt/venv/bin/dotenv:crlf", "dotenv --help"),
    ("stale-ld-preload", "/etc/ld.so.preload:/usr/local/lib/libfaketime.so.1", 'test -z "$(python -c pass 2>&1)"'),
    ("half-removed-package", "click", py("import click")),
    ("pip-config-misroute", "click@/opt/venv/pip.conf:target",  # a plain reinstall goes astray
     "pip install -q --no-index --find-links /opt/wheelhouse click; " + py("import click")),
    ("nsswitch-hosts", "/etc/nsswitch.conf:hosts=dns", py('import socket; socket.getaddrinfo("localhost", 80)')),
    ("openssl-providers", "/etc/ssl/openssl.cnf:providers=legacy", py("import ssl; ssl.create_default_context()")),
    ("security-policy-hook", "processes@pth", py('import subprocess; subprocess.run(["true"], check=True)')),
    ("mutate-installed-source", "{site}/dotenv/parser.py", "python /root/checks.py record python-dotenv"),
    ("patched-on-import", "{site}/dotenv/parser.py", "python /root/checks.py loaded dotenv.parser"),
    ("newer-python-syntax", "{site}/dotenv/main.py:pep695-alias", py("import dotenv")),
    ("signal-hook", "ignore-sigchld@sitecustomize",
     py('import subprocess, sys; sys.exit(subprocess.run(["false"]).returncode != 1)')),
    ("damage-multiprocessing-module", "_multiprocessing:truncate", py("import multiprocessing.connection")),
    ("damage-async-module", "_contextvars:truncate", py("import asyncio")),
    ("blocked-import-hook", "click@pth", py("import click")),
    ("missing-timezone-data", "/usr/share/zoneinfo/Europe", py('import zoneinfo; zoneinfo.ZoneInfo("Europe/Paris")')),
    ("missing-codec", "/usr/lib/python3.11/encodings/idna.py", py('"x".encode("idna")')),
]


@pytest.fixture(scope="module")
def gold(docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> GoldEnvironment:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLIGYM_HOME", str(tmp_path_factory.mktemp("gold-home")))
        return build_gold("python-dotenv", client=docker_client)


def unaimed(probe: GoldProbe) -> GoldProbe:
    """The probe without the gold run's usage: every target is offered, as for recipes saved before it."""
    return replace(probe, used_modules=(), used_files=(), used_libraries=(), used_executables=(), used_events=())


def pick(probe: GoldProbe, operator: str, key: str) -> Breakage:
    """The mechanics of one breakage and its repair, whether or not this suite would notice it."""
    op, probe = REGISTRY[operator], unaimed(probe)
    target = next((t for t in op.available(probe) if t.key == key), None)
    assert target is not None, f"{operator} offers no {key} on this probe"
    return op.breakage(probe, target, random.Random(0))


def test_operators_offer_many_breakages_on_the_real_probe(gold: GoldEnvironment) -> None:
    """Aimed at what the gold suite used: every category keeps targets, modules it never imported are spared."""
    counts = {op.name: len(op.available(gold.probe)) for op in OPERATORS}
    everything = {op.name: len(op.available(unaimed(gold.probe))) for op in OPERATORS}
    # compiled modules come only with test requirements (discovered now), which this suite may never load
    assert counts["abi-tag-mismatch"] <= everything["abi-tag-mismatch"]
    assert all(n >= 2 for name, n in everything.items() if name not in ("abi-tag-mismatch", "damage-package-data"))
    for category in CATEGORIES:
        assert any(counts[op.name] >= 2 for op in OPERATORS if op.category == category), (category, counts)
    ours = [d for d in gold.probe.distributions  # not pytest, its own, nor its plugins (their files are spared)
            if d.name.lower() not in RUNNER and not d.name.lower().startswith("pytest")]
    assert {"python-dotenv", "click"} <= {d.name for d in ours}
    modules = [f for d in ours for f in d.files if f.endswith(".py")]
    used = [f for f in modules if f in set(gold.probe.used_files)]
    assert everything["mutate-installed-source"] == len(modules) > 20, everything
    assert counts["mutate-installed-source"] == counts["delete-module-file"] == len(used) > 5, counts
    assert len(used) < len(modules) and sum(counts.values()) < sum(everything.values())


@pytest.mark.parametrize("operator,key,check", CASES, ids=[case[0] for case in CASES])
def test_breakage_breaks_and_its_solution_repairs(gold: GoldEnvironment, docker_client: docker.DockerClient,
                                                  operator: str, key: str, check: str) -> None:
    lib = next(p for p in gold.probe.shared_libraries if p.endswith("/libc.so.6")).rsplit("/", 1)[0]
    breakage = pick(gold.probe, operator, key.format(site=gold.probe.site_packages, lib=lib))
    environment = Environment(f"FROM {gold.image}\n{conceal(breakage.dockerfile)}")  # as validation builds it
    image = build_image(docker_client, environment_tag(environment, "cligym/operator-test"), environment.dockerfile,
                        what=f"{operator} breakage")
    with Sandbox(image, task_id="operator-test", client=docker_client) as box:
        box.put_files("/root", {"checks.py": CHECKS.encode()})
        broken = box.run(check, timeout=60)
        assert broken.exit_code != 0, f"not broken: {broken.output}"
        repair = box.run(script_command(breakage.solution), timeout=300)
        assert repair.exit_code == 0, repair.output[-2000:]
        repaired = box.run(check, timeout=60)
        assert repaired.exit_code == 0, f"still broken after the solution: {repaired.output[-2000:]}"
