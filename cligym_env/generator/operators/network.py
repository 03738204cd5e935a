"""Network & security: name resolution, OpenSSL configuration, TLS libraries and modules, CA bundles, proxies.

/etc/hosts, /etc/resolv.conf and /etc/hostname are bind-mounted by Docker at run time, so breakages live in
/etc/nsswitch.conf, OpenSSL's files and start-up hooks instead.
"""

from __future__ import annotations

import random

from cligym_env.generator.operators._base import (
    APT, LOOKUP_EVENTS, NO_ARCHIVES, SOCKET_EVENTS, Draft, Operator, Target, breakable, hook_draft, hook_targets,
    lib_dir, q, reinstall_wheel, restore_conffile, used_event, used_module, used_path)
from cligym_env.generator.operators.infrastructure import (LIBRARY_DAMAGE, damage_extension, damage_library,
                                                           extension_targets)
from cligym_env.generator.types import GoldProbe

CATEGORY = "network-security"
NSSWITCH = "/etc/nsswitch.conf"
HOSTS_LINES = ("dns", "nis", "myhostname", "hesiod", "files [SUCCESS=continue] dns")  # each loses `localhost`


def _hosts_targets(probe: GoldProbe) -> list[Target]:
    if not used_event(probe, *LOOKUP_EVENTS, *SOCKET_EVENTS):
        return []  # the suite never resolves a name
    return [Target(f"{NSSWITCH}:hosts={line}", line) for line in HOSTS_LINES]


def _hosts(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    line = f"hosts:          {target.data}"
    return Draft(target.key, f"set `{line}` in {NSSWITCH}",
                 [f"grep -q '^hosts: *files dns$' {NSSWITCH}", f"sed -i {q(f's/^hosts:.*/{line}/')} {NSSWITCH}"],
                 [f"sed -i 's/^hosts:.*/hosts:          files dns/' {NSSWITCH}"],
                 "Connecting to services on this very machine by name fails.")


OPENSSL_CNF = "/etc/ssl/openssl.cnf"
PROVIDERS = ("legacy", "fips", "base")  # activating only one of these leaves TLS without ciphers


def _openssl_targets(probe: GoldProbe) -> list[Target]:
    if not (used_module(probe, "_ssl") or used_module(probe, "_hashlib")):
        return []  # OpenSSL's configuration is read only by what loads libcrypto
    return [Target(f"{OPENSSL_CNF}:providers={p}", p) for p in PROVIDERS]


def _openssl(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    provider = target.data
    section = "\\n".join(["providers = provider_sect", "[provider_sect]", f"{provider} = {provider}_sect",
                           f"[{provider}_sect]", "activate = 1"])
    return Draft(target.key, f"made OpenSSL load only the {provider} provider",
                 [f"grep -q '^# providers = provider_sect' {OPENSSL_CNF}",
                  f"sed -i {q(f's/^# providers = provider_sect/{section}/')} {OPENSSL_CNF}"],
                 restore_conffile(probe, OPENSSL_CNF), "Creating TLS contexts fails with an OpenSSL error.")


def _tls_library_targets(probe: GoldProbe) -> list[Target]:
    paths = {f"{lib_dir(probe)}/{name}" for name in ("libssl.so.3", "libcrypto.so.3")}
    paths |= {p for p in probe.shared_libraries if "/libssl.so" in p or "/libcrypto.so" in p}
    return [Target(f"{p}:{mode}", (p, mode)) for p in sorted(paths) if used_path(probe, p) for mode in LIBRARY_DAMAGE]


def _tls_library(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    description, commands, repair = damage_library(probe, *target.data)
    return Draft(target.key, description, commands, repair, "Anything that uses TLS or OpenSSL hashes fails to load.")


CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
BUNDLE_DAMAGE = {"empty": "truncate -s 0 {path}", "corrupt": "sed -i '/^-----/!s/A/B/g' {path}",
                 "half": "truncate -s $(( $(stat -c %s {path}) / 2 )) {path}"}


def _bundle_targets(probe: GoldProbe) -> list[Target]:
    if not used_module(probe, "ssl"):
        return []  # nothing in the gold run verifies a certificate
    bundles = [(CA_BUNDLE, None, 1.0)]
    if probe.wheelhouse:
        bundles += [(f, d, w) for d, w in breakable(probe) for f in d.files if f.endswith("certifi/cacert.pem")]
    return [Target(f"{path}:{kind}", (path, dist, kind), w) for path, dist, w in bundles for kind in BUNDLE_DAMAGE]


def _bundle(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    path, dist, kind = target.data
    repair = [reinstall_wheel(probe, dist)] if dist else ["update-ca-certificates --fresh"]
    return Draft(target.key, f"damaged the CA bundle {path} ({kind})",
                 [f"test -s {q(path)}", BUNDLE_DAMAGE[kind].format(path=q(path))], repair,
                 "Certificate verification cannot find valid trusted authorities.")


PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "all_proxy", "ALL_PROXY")


def _proxy_targets(probe: GoldProbe) -> list[Target]:
    return hook_targets(probe, PROXY_VARIABLES, modules=("urllib.request", "http.client", "requests", "httpx",
                                                         "urllib3", "aiohttp"), events=SOCKET_EVENTS)


def _proxy(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    """Every Python process exports a dead proxy, so even HTTP to localhost is sent to it."""
    variable = target.data[0]
    proxy = rng.choice(["http://10.255.255.1:3128", "http://proxy.internal:8080", "socks5://127.0.0.1:1"])
    return hook_draft(probe, rng, target, f"import os; os.environ[\"{variable}\"] = \"{proxy}\"",
                      f"sets {variable}={proxy} in every Python process",
                      "HTTP requests made from Python, even to local servers, go somewhere unexpected.")


POLICIES = {  # a "hardening" audit hook that denies these events to every Python process
    "processes": ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.system", "os.fork"),
    "sockets": ("socket.connect", "socket.bind"),
    "name-lookups": ("socket.getaddrinfo", "socket.gethostbyname"),
}


def _policy_targets(probe: GoldProbe) -> list[Target]:
    needs = {"processes": ("subprocess", "multiprocessing"), "sockets": ("socket",), "name-lookups": ("socket",)}
    return [t for kind in sorted(POLICIES) for t in hook_targets(probe, [kind], modules=needs[kind],
                                                                  events=POLICIES[kind])]


def _policy(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    """A leftover security policy: an audit hook that raises PermissionError for process or network events."""
    kind = target.data[0]
    body = ("def _policy(event, args):\\n    if event in BLOCKED:\\n        raise PermissionError("
            "'operation not permitted by the local security policy: ' + event)\\nsys.addaudithook(_policy)")
    code = f"import sys; exec(\"{body}\", {{\"sys\": sys, \"BLOCKED\": {set(POLICIES[kind])!r}}})"
    return hook_draft(probe, rng, target, code,
                      f"installs an audit hook denying {kind}",
                      "Python programs on this machine are refused some operating-system operations.")


OPERATORS = [
    Operator("nsswitch-hosts", CATEGORY, _hosts_targets, _hosts, NO_ARCHIVES),
    Operator("openssl-providers", CATEGORY, _openssl_targets, _openssl, APT),
    Operator("damage-tls-module", CATEGORY, lambda p: extension_targets(p, [("ssl", "_ssl"), ("hashlib", "_hashlib")]),
             damage_extension, APT),
    Operator("damage-tls-library", CATEGORY, _tls_library_targets, _tls_library, APT),
    Operator("damage-ca-bundle", CATEGORY, _bundle_targets, _bundle, NO_ARCHIVES),
    Operator("proxy-hook", CATEGORY, _proxy_targets, _proxy, NO_ARCHIVES),
    Operator("security-policy-hook", CATEGORY, _policy_targets, _policy, NO_ARCHIVES),
]
