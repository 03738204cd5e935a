"""Hide when and how a breakage was made, so a policy has to diagnose the machine instead of reading the trail.

Without this, the newest modification times in a broken image (`find / -newer`, `ls -lt`) point straight at what
the breakage changed, and the package managers' logs and caches (/var/log/dpkg.log, /var/log/apt/*, dpkg's
status-old, /root/.cache/pip...) record it command by command. A real broken machine carries no such trail.

`conceal` turns the breakage's RUN lines into ONE RUN instruction, so the breakage and its clean-up share one
image layer: no record is ever committed and nothing is copied up twice (measured: 0 bytes more per task):

1. prelude (the gold image is healthy here): in /dev/.cligym-pre (/dev is an exec-able 64 MiB tmpfs in every build
   container, so nothing written there reaches the image) it touches a marker, records the mtime of every path of
   the root file system, copies the package-manager logs and state backups (`TRAILS`), and copies bash, find,
   touch, cp and rm with their shared libraries and the dynamic loader;
2. each breakage line runs as Docker would run it, `/bin/sh -c '<line>'`;
3. epilogue, run by the copied bash through the copied loader, so it works whatever the breakage removed or
   damaged (python, coreutils, shared libraries, /bin/sh, /tmp, /etc/ld.so.preload): a changed TRAIL gets its old
   content and mtime back (one that did not exist is removed); then, deepest first, every path newer than the
   marker gets its recorded mtime back (`touch -h`, so symlinks too), except that what the breakage created in
   `CACHES` is removed and what it created elsewhere gets the newest mtime among its old siblings (it ties with
   them). A changed .py file whose .pyc existed is compiled again (best effort, `python3 -I -S`), since with its
   old mtime the old .pyc could look valid and undo the change, and a stale .pyc rewritten at the first import
   would point at the file.

Residual leaks: ctime cannot be set, so `find / -ctime`/`-cnewer` or `stat` still find what changed (touched
paths get the epilogue's ctime); access times equal the restored mtimes; inode numbers of rewritten files are
new ones; the breakage's own effects (a .pyc gone beside a truncated module, dpkg's status after `dpkg -r`) stay,
as they would on a real machine. A breakage whose effect IS an mtime, or lives in `CACHES`, is undone (validation
then rejects it: breaks nothing). Only shell-form RUN lines can be wrapped. Cost: about 1-2 s of build time (4 s
on an image of 110k files); the record must fit the 64 MiB /dev (about 90 bytes a path).
"""

from __future__ import annotations

import re
import shlex

STAGE = "/dev/.cligym-pre"
# Files that log package-manager runs or back up the previous state: restored to what they were before.
TRAILS = ("/var/log/dpkg.log", "/var/log/alternatives.log", "/var/log/apt/history.log", "/var/log/apt/term.log",
          "/var/log/apt/eipp.log.xz", "/var/lib/dpkg/status-old", "/var/lib/dpkg/diversions-old",
          "/var/lib/dpkg/statoverride-old", "/var/cache/debconf/config.dat-old",
          "/var/cache/debconf/templates.dat-old", "/var/cache/debconf/passwords.dat-old", "/etc/passwd-",
          "/etc/group-", "/etc/shadow-", "/etc/gshadow-")
# What the breakage's commands created here is removed (a pip or apt cache, shell and editor histories).
CACHES = ("/root/.cache", "/root/.python_history", "/root/.bash_history", "/root/.lesshst", "/root/.viminfo",
          "/root/.wget-hsts")
TOOLS = ("bash", "find", "touch", "cp", "rm")
# Made by the container runtime for every container, build or not, and never committed to the image.
RUNTIME = ("/proc", "/sys", "/dev", "/.dockerenv", "/etc/mtab", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf")
SKIP = f"\\( {' -o '.join(f'-path {path}' for path in RUNTIME)} \\) -prune -o"
WALK = f"find / -xdev {SKIP}"

PRELUDE = f"""set -e; D={STAGE}; mkdir -p $D/bin $D/lib $D/logs; touch $D/marker;
for t in {' '.join(TOOLS)}; do cp "$(command -v $t)" $D/bin/; done;
ldd $D/bin/* | sed -n 's|^[^/]*\\(/[^ ]*\\) (0x.*|\\1|p' | sort -u | xargs cp -L -t $D/lib;
ln -s "lib/$(ldd $D/bin/bash | sed -n 's|^[[:space:]]*/[^ ]*/\\([^/ ]*\\) (0x.*|\\1|p')" $D/ld.so;
for f in {' '.join(TRAILS)}; do if [ -e $f ]; then mkdir -p $D/logs${{f%/*}}; cp -a $f $D/logs$f;
 find $f -printf '%i %s %T@' > $D/logs$f.id; fi; done;
python3 -I -S -c 'import sys; print(sys.implementation.cache_tag)' > $D/tag || :;
{WALK} -printf '%T@ %p\\0' > $D/mtimes"""

EPILOGUE = f"""set -e; D={STAGE}; x() {{ "$D/ld.so" --library-path "$D/lib" "$D/bin/$@"; }};
for f in {' '.join(TRAILS)}; do if [[ ! -e $D/logs$f ]]; then if [[ -e $f || -L $f ]]; then x rm -f "$f"; fi;
 elif [[ $(x find "$f" -printf "%i %s %T@" 2>/dev/null) != "$(< $D/logs$f.id)" ]]; then
 x cp -a "$D/logs$f" "$f"; fi; done;
declare -A T N; mapfile -d "" R < $D/mtimes; for r in "${{R[@]}}"; do T[${{r#* }}]=${{r%% *}}; done;
settle() {{ x {WALK} -newer $D/marker -printf "%T@ %p\\0" > $D/changed; mapfile -d "" C < $D/changed;
 for ((i = ${{#C[@]}} - 1; i >= 0; i--)); do t=${{C[i]%% *}}; p=${{C[i]#* }};
  if [[ -n ${{T[$p]+1}} ]]; then [[ ${{T[$p]}} == "$t" ]] || x touch -h -d "@${{T[$p]}}" "$p";
  elif [[ $p == @({'|'.join(CACHES)})?(/*) ]]; then x rm -rf "$p"; fi; done;
 for ((i = ${{#C[@]}} - 1; i >= 0; i--)); do p=${{C[i]#* }}; if [[ -z ${{T[$p]+1}} && ( -e $p || -L $p ) ]]; then
  a=${{p%/*}}; a=${{a:-/}}; while [[ -z ${{T[$a]+1}} ]]; do a=${{a%/*}}; a=${{a:-/}}; done;
  if [[ -z ${{N[$a]+1}} ]]; then N[$a]=${{T[$a]}}; m=-1;
   x find "$a" -mindepth 1 -maxdepth 1 {SKIP} ! -newer $D/marker -printf "%T@\\0" > $D/s;
   mapfile -d "" S < $D/s; for t in "${{S[@]}}"; do f=${{t#*.}}000000000; n=${{t%.*}}; n=$((10#${{n#-}}${{f:0:9}}));
   if ((n > m)); then m=$n; N[$a]=$t; fi; done; fi;
  x touch -h -d "@${{N[$a]}}" "$p"; fi; done; }};
settle; Y=(); g=$(< $D/tag);
for c in "${{C[@]}}"; do p=${{c#* }}; y=${{p%/*}}/__pycache__/${{p##*/}}; y=${{y%.py}}.$g.pyc;
 if [[ $p == *.py && -f $p && -n ${{T[$y]+1}} ]]; then Y+=("$p"); fi; done;
if ((${{#Y[@]}})); then
 python3 -I -S -B -c "import py_compile, sys; [py_compile.compile(f) for f in sys.argv[1:]]" "${{Y[@]}}"
 >/dev/null 2>&1 || :;
 settle; fi;
x rm -rf $D"""


def conceal(lines: str) -> str:
    """The breakage's Dockerfile lines (shell-form RUN instructions) as one RUN between the prelude and epilogue."""
    commands = []
    for instruction in _instructions(lines):
        match = re.fullmatch(r"RUN\s+(.*)", instruction, flags=re.S | re.I)
        if not match or match.group(1).lstrip().startswith(("[", "--")):
            raise ValueError(f"only shell-form RUN lines can be concealed, not: {instruction[:80]}")
        commands.append(f"/bin/sh -c {shlex.quote(match.group(1).strip())}")
    if not commands:
        return lines
    assert "'" not in EPILOGUE
    steps = [_one_line(PRELUDE), *commands, f"$D/ld.so --library-path $D/lib $D/bin/bash -c '{_one_line(EPILOGUE)}'"]
    return "RUN " + " \\\n && ".join(steps) + "\n"


def _one_line(script: str) -> str:
    return " ".join(line.strip() for line in script.splitlines())


def _instructions(lines: str) -> list[str]:
    """Logical Dockerfile instructions: comment lines dropped, backslash continuations joined as Docker does."""
    instructions, current = [], ""
    for line in lines.splitlines():
        if line.lstrip().startswith("#") or not (current or line.strip()):
            continue
        if re.search(r"\\\s*$", line):
            current += re.sub(r"\\\s*$", "", line)
            continue
        instructions.append(current + line)
        current = ""
    return [*instructions, current] if current.strip() else instructions
