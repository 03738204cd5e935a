#!/bin/bash
# Written by cligym's Harbor export: runs this task's hidden tests with cligym's isolated pytest runner and
# writes /logs/verifier/reward.txt (1 or 0) and reward.json ({"reward": ..., "tests": {test id: outcome}}).
# Protections carried over from cligym's grader: every other process in the container is killed first, so
# nothing the agent left running can write a reward (under an init, the container's own command is only
# stopped); the verifier and tests folders are made anew; the runner is the environment's Python with -I -B and
# an empty bytecode prefix, pytest from lib.zip beside this script, plugin auto-loading off and only the
# recorded plugins; the reward stays 0 unless the verdict (same rule as the grader) says 1.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/cligym
source "$HERE/settings.sh"  # PYTHON WORKDIR ROOTDIR PLUGINS DIRECTORY TIMEOUT ARGS (written at export)

sweep() {  # SIGSTOP then SIGKILL every process but PID 1, this script and its ancestors (bash builtins only)
  local keep=" 1 " pid=$$ stat p round found main="" oldest="" comm=""
  while [ "$pid" -gt 1 ] 2>/dev/null; do
    keep+="$pid "
    read -r stat 2>/dev/null < "/proc/$pid/stat" || break
    stat=${stat##*) }; set -- $stat; pid=$2
  done
  read -r comm 2>/dev/null < /proc/1/comm
  case "$comm" in docker-init|tini|dumb-init|catatonit|init)  # the container's command is init's oldest child:
    for p in /proc/[0-9]*; do                                  # stopped, not killed (the container lives on it)
      read -r stat 2>/dev/null < "$p/stat" || continue
      stat=${stat##*) }; set -- $stat
      if [ "$2" = 1 ] && { [ -z "$oldest" ] || [ "${20}" -lt "$oldest" ]; }; then oldest=${20}; main=${p#/proc/}; fi
    done ;;
  esac
  for round in 1 2 3 4 5; do
    found=0
    for p in /proc/[0-9]*; do
      pid=${p#/proc/}
      case "$keep" in *" $pid "*) continue ;; esac
      kill -STOP "$pid" 2>/dev/null && [ "$pid" != "$main" ] && found=1
    done
    for p in /proc/[0-9]*; do
      pid=${p#/proc/}
      case "$keep" in *" $pid "*) continue ;; esac
      [ "$pid" = "$main" ] || kill -KILL "$pid" 2>/dev/null
    done
    [ "$found" = 0 ] && break
  done
}

sweep
V=/logs/verifier
if [ -L "$V" ] || { [ -e "$V" ] && [ ! -d "$V" ]; }; then rm -rf "$V"; fi
mkdir -p "$V"
for f in "$V"/* "$V"/.[!.]* "$V"/..?*; do
  [ "$f" = "$V/test-stdout.txt" ] || rm -rf -- "$f"  # Harbor may be writing this script's output there
done
echo 0 > "$V/reward.txt"
W=$(mktemp -d /tmp/.cligym-verify-XXXXXXXX) || exit 0
rm -rf "$DIRECTORY" && mkdir -p "$DIRECTORY" && cp -a "$HERE/../cases/." "$DIRECTORY/" || exit 0
PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 PYTEST_ADDOPTS= PYTEST_PLUGINS= PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1 \
PYTHONPYCACHEPREFIX="$W/no-bytecode" CLIGYM_TESTS="$DIRECTORY" CLIGYM_JUNIT="$W/junit.xml" \
  timeout -s KILL "$TIMEOUT" "$PYTHON" -I -B -X "pycache_prefix=$W/no-bytecode" "$HERE/pytest_runner.py" \
  "$W/summary.json" "$W/junit.xml" "$WORKDIR" "$ROOTDIR" "$PLUGINS" -- "${ARGS[@]}" "$DIRECTORY"
code=$?
sweep  # whatever the tests started is gone before the verdict is written
"$PYTHON" -I -B "$HERE/verdict.py" "$W/summary.json" "$W/junit.xml" "$code" "$HERE/selected.json" "$V"
rm -rf "$W"
exit 0
