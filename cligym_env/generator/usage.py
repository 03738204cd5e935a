"""Record what the gold suite really uses: modules, files, shared libraries, programs (less what pytest alone uses).

Only in the probe's own container, a `.pth` file installs a Python audit hook (PEP 578) in every interpreter the
suite starts. It notes `open`, `import`, `subprocess.Popen`/`os.exec`/`os.posix_spawn` and `ctypes.dlopen` events,
the names of every audit event raised (`os.fork`, `socket.connect`, ...: what the code really did, where a module
list only says what pytest imported), and at exit the loaded modules and `/proc/self/maps` (the shared libraries
really mapped). A first run of pytest on an empty folder says what the runner alone loads; that is left out
(breaking it breaks the runner, not the suite). Operators then aim at
those targets, so far fewer candidates break something the tests never touch. The gold image is not changed.
"""

from __future__ import annotations

import json
import logging
import shlex

from cligym_env.runtime.sandbox import Sandbox
from cligym_env.tasks.task import Tests

logger = logging.getLogger(__name__)

OUT = "/tmp/cligym-usage"
HOOK_MODULE = "_cligym_usage_hook"
MAX_PATHS = 20000

# Imported by the .pth line at every interpreter start; keeps sets in memory and writes one JSON per process.
HOOK = r'''
import atexit, os, sys
_OUT = "/tmp/cligym-usage"
_files, _modules, _programs, _events, _busy = set(), set(), set(), set(), [False]
def _path(value):
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    if not isinstance(value, str) or not value:
        return None
    if not value.startswith("/"):
        try:
            value = os.path.join(os.getcwd(), value)
        except OSError:
            return None
    return value
def _dump():
    if _busy[0]:
        return
    _busy[0] = True
    try:
        import json
        modules = _modules | set(sys.modules)
        files = _files | {m.__file__ for m in list(sys.modules.values())
                          if isinstance(getattr(m, "__file__", None), str)}
        with open("/proc/self/maps", errors="surrogateescape") as maps:  # names need not be UTF-8
            mapped = {line.split(None, 5)[5].strip() for line in maps if len(line.split(None, 5)) == 6}
        os.makedirs(_OUT, exist_ok=True)
        with open(os.path.join(_OUT, "%d-%d.json" % (os.getpid(), id(_files))), "w") as sink:
            json.dump({"modules": sorted(modules), "files": sorted(files), "programs": sorted(_programs),
                       "events": sorted(_events),
                       "mapped": sorted(p for p in mapped if p.startswith("/")), "cwd": os.getcwd()}, sink)
    except Exception:
        pass
    finally:
        _busy[0] = False
def _hook(event, args):
    if _busy[0]:
        return
    _events.add(event)
    if event == "open":
        path = _path(args[0])
        if path:
            _files.add(path)
    elif event == "import":
        _modules.add(args[0])
    elif event == "ctypes.dlopen":
        path = _path(args[0]) if "/" in str(args[0]) else str(args[0])
        if path:
            _files.add(path)
    elif event in ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn"):
        program = args[0] if args[0] else (list(args[1])[:1] or [None])[0]
        if isinstance(program, (str, bytes)):
            _programs.add(os.fsdecode(program))
        if event == "os.exec":
            _dump()  # the process image is replaced: atexit never runs
atexit.register(_dump)
sys.addaudithook(_hook)
'''

# Run after the suite: merges the per-process records, resolves names to real files, keeps what operators aim at.
MERGE = r'''
import glob, json, os, shutil, sys
out, tests_dir, libraries, result = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
site, keep = sys.argv[5], set(json.loads(sys.argv[6]))  # the project and what the tests import: never left out
def text(path):  # file names that are not UTF-8 cannot be aimed at (nor written to a recipe)
    return not any("\udc80" <= c <= "\udcff" for c in path)
def collect(folder):
    modules, files, programs, mapped, events = set(), set(), set(), set(), set()
    for name in glob.glob(os.path.join(folder, "*.json")):
        try:
            record = json.load(open(name))
        except ValueError:
            continue
        modules |= set(record["modules"]); events |= set(record["events"])
        mapped |= set(filter(text, record["mapped"]))
        files |= {os.path.normpath(f) for f in record["files"] if text(f)}
        for program in record["programs"]:
            found = program if "/" in program else \
                shutil.which(program, path=os.environ.get("PATH", "") + ":/opt/venv/bin")
            found = found and os.path.normpath(os.path.join(record["cwd"], found))
            if found and os.path.isfile(found):  # os.execvp tries every PATH folder: keep the program that exists
                programs.add(found)
    files |= {os.path.realpath(f) for f in list(files)}
    return modules, files, programs, {os.path.realpath(p) for p in mapped}, events
modules, files, programs, real_mapped, events = collect(out)
# what pytest needs to start with no tests at all: breaking it breaks the runner, not the suite
runner_modules, runner_files, _, runner_mapped, _ = collect(out + "-baseline")
runner_modules = {m for m in runner_modules if m.split(".")[0] not in keep}  # the graders' pytest has its own
runner_files = {f for f in runner_files if not any(f.startswith(os.path.join(site, top)) for top in keep)}
modules, files, real_mapped = modules - runner_modules, files - runner_files, real_mapped - runner_mapped
scratch = any(f.startswith("/tmp/") and "cligym-usage" not in f for f in files)
files |= {"/tmp"} if scratch else set()  # the suite used the temporary folder (its files are not kept)
skip = (tests_dir.rstrip("/") + "/", "/proc/", "/dev/", "/sys/", "/tmp/")
files = sorted(f for f in files if not f.startswith(skip) and "_cligym_usage" not in f)
used_libraries = sorted(p for p in libraries if os.path.realpath(p) in real_mapped)
used_libraries += sorted(p for p in real_mapped if ".so" in os.path.basename(p) and p not in used_libraries
                         and not any(os.path.realpath(q) == p for q in libraries))
json.dump({"used_modules": sorted(m for m in modules if not m.startswith("_cligym_usage")),
           "used_files": files[:%d], "used_libraries": used_libraries, "used_executables": sorted(programs),
           "used_events": sorted(events)},
          open(result, "w"))
''' % MAX_PATHS


def record_usage(sandbox: Sandbox, tests: Tests, site_packages: str, shared_libraries: tuple[str, ...],
                 keep: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """One hooked run of the suite in `sandbox` (a throwaway gold container); {} if it cannot be recorded.

    `keep`: top-level modules never left out as the runner's own (the project, what the tests import): the graders'
    pytest runs from the harness with its dependencies renamed, so breaking the environment's copy bites the tests."""
    if tests.runner != "pytest" or not tests.files:
        return {}
    sandbox.put_files(site_packages, {f"{HOOK_MODULE}.py": HOOK.encode(),
                                      "zz_cligym_usage.pth": f"import {HOOK_MODULE}\n".encode()})
    sandbox.put_files(tests.directory, dict(tests.files))
    sandbox.put_files(OUT + "-merge", {"merge.py": MERGE.encode()})
    plugins = " ".join(f"-p {shlex.quote(p)}" for p in tests.plugins)
    args = " ".join(shlex.quote(a) for a in tests.pytest_args)
    pytest = f"{shlex.quote(tests.python)} -m pytest -p no:cacheprovider {plugins}"
    empty = f"{OUT}-empty"  # the runner alone: what it uses is left out of what the suite uses
    sandbox.run(f"export PYTEST_DISABLE_PLUGIN_AUTOLOAD=1; mkdir -p {empty} && cd {empty} && "
                f"timeout 120 {pytest} {empty} >/dev/null 2>&1; "
                f"mv {OUT} {OUT}-baseline; cd /", timeout=180)
    suite = (f"cd {shlex.quote(tests.workdir)} && timeout {int(tests.timeout)} {pytest} "
             f"--continue-on-collection-errors "
             f"--rootdir={shlex.quote(tests.rootdir or tests.workdir)} {args} "
             f"{shlex.quote(tests.directory)} >/dev/null 2>&1; cd /")
    sandbox.run(suite, timeout=tests.timeout + 60)
    sandbox.run(f"rm -f {shlex.quote(site_packages)}/zz_cligym_usage.pth", timeout=30)  # the merge runs unhooked
    result = f"{OUT}-merge/usage.json"
    merged = sandbox.run(f"{shlex.quote(tests.python)} {OUT}-merge/merge.py {OUT} {shlex.quote(tests.directory)} "
                         f"{shlex.quote(json.dumps(list(shared_libraries)))} {result} {shlex.quote(site_packages)} "
                         f"{shlex.quote(json.dumps(list(keep)))}", timeout=120)
    report = sandbox.read_file(result)
    if merged.exit_code != 0 or report is None:
        logger.warning("usage of the gold suite could not be recorded: %s", merged.output[-500:])
        return {}
    usage = {key: tuple(value) for key, value in json.loads(report).items()}
    logger.info("the gold suite used %d modules, %d files, %d shared libraries, %d programs",
                *(len(usage[k]) for k in ("used_modules", "used_files", "used_libraries", "used_executables")))
    return usage
