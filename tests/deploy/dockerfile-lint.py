#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""dockerfile-lint.py [--self-test] DOCKERFILE

House rules for the project's Dockerfile, checked without a container engine:
  * every RUN that installs with apt-get also runs `apt-get update` (no stale index
    from an earlier layer), passes --no-install-recommends, and removes
    /var/lib/apt/lists and clears /var/cache/apt (apt-get clean) in the same RUN (so
    neither the index nor downloaded packages are in any layer);
  * no ADD from a URL (unpinned, uncached downloads; use a package or COPY);
  * the final stage sets a USER that is not root, has a HEALTHCHECK (not NONE) with
    an explicit --timeout, EXPOSEs 53/udp and 53/tcp, uses exec-form ENTRYPOINT and
    CMD, and installs no compiler or build tool;
  * the HEALTHCHECK's program is one the build stage installs into the image;
  * when the HEALTHCHECK is deploy/docker/health-probe (GET /health), CMD runs
    --metrics on a loopback address (not published by default) and on the port the
    probe asks by default (read from the probe script beside the Dockerfile).
Exit 0 clean, 1 with one line per problem.
"""
import ipaddress
import json
import os
import re
import sys

# Where the probe script lives relative to the Dockerfile, and the name it has in the
# image; its default port is read from it so the two cannot drift.
HEALTH_PROBE_SRC = os.path.join("deploy", "docker", "health-probe")
HEALTH_PROBE_NAME = "health-probe"

BUILD_TOOLS = {"gcc", "clang", "cc", "meson", "ninja-build", "make", "build-essential",
               "pkg-config", "libgnutls28-dev", "check", "g++"}


def instructions(text):
    """Yield (lineno, KEYWORD, args) with continuation lines joined and comments dropped."""
    buf, start = "", None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue  # comment lines inside a continuation are skipped by Docker too
        if start is None:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        kw, _, args = buf.strip().partition(" ")
        yield start, kw.upper(), args.strip()
        buf, start = "", None
    if buf:
        kw, _, args = buf.strip().partition(" ")
        yield start, kw.upper(), args.strip()


def apt_install_packages(cmd):
    pkgs = []
    for m in re.finditer(r"apt-get\s+(?:-\S+\s+)*install\s+([^&;|]*)", cmd):
        pkgs += [w for w in m.group(1).split() if not w.startswith("-")]
    return pkgs


def probe_default_port(dockerfile_path):
    """The port deploy/docker/health-probe asks when DOTPROXY_HEALTH_PORT is unset."""
    path = os.path.join(os.path.dirname(os.path.abspath(dockerfile_path)), HEALTH_PROBE_SRC)
    try:
        with open(path, encoding="utf-8") as f:
            m = re.search(r"DOTPROXY_HEALTH_PORT:-(\d+)", f.read())
    except OSError:
        return None
    return int(m.group(1)) if m else None


def exec_form(args):
    try:
        v = json.loads(args)
    except ValueError:
        return None
    return v if isinstance(v, list) and all(isinstance(x, str) for x in v) else None


def check_metrics(final, probe_port, problems):
    """CMD's --metrics must be where health-probe looks, and on loopback only."""
    cmds = [args for _, kw, args in final if kw == "CMD"]
    cmd = exec_form(cmds[-1]) if cmds else None
    if cmd is None:
        problems.append("final stage has no exec-form CMD")
        return
    envs = " ".join(args for _, kw, args in final if kw == "ENV")
    if "DOTPROXY_HEALTH_PORT" in envs or "DOTPROXY_HEALTH_ADDR" in envs:
        return  # the image moves the probe itself; not this file's convention
    values = [cmd[i + 1] for i, a in enumerate(cmd[:-1]) if a == "--metrics"]
    values += [a.split("=", 1)[1] for a in cmd if a.startswith("--metrics=")]
    if not values:
        problems.append("HEALTHCHECK asks GET /health but CMD has no --metrics")
        return
    addr, _, port = values[-1].rpartition("@")
    addr = addr.strip("[]") or "127.0.0.1"
    if probe_port is not None and port != str(probe_port):
        problems.append(f"CMD --metrics port {port} is not the port health-probe asks ({probe_port})")
    try:
        loop = ipaddress.ip_address(addr).is_loopback
    except ValueError:
        loop = False
    if not loop:
        problems.append(f"CMD --metrics {values[-1]} is not loopback: the unauthenticated "
                        "metrics and status page would be reachable by default")


def lint(text, probe_port=None):
    problems = []
    stages = []  # list of lists of (lineno, kw, args)
    for ins in instructions(text):
        if ins[1] == "FROM":
            stages.append([])
        if not stages:
            if ins[1] != "ARG":
                problems.append(f"line {ins[0]}: {ins[1]} before the first FROM")
            continue
        stages[-1].append(ins)
    if not stages:
        return ["no FROM: not a Dockerfile"]

    for stage in stages:
        for n, kw, args in stage:
            if kw == "RUN" and re.search(r"apt-get\s+(?:-\S+\s+)*install", args):
                if "--no-install-recommends" not in args:
                    problems.append(f"line {n}: apt-get install without --no-install-recommends")
                if not re.search(r"rm\s+-(?:rf|fr)\s+/var/lib/apt/lists", args):
                    problems.append(f"line {n}: RUN installs packages but does not rm -rf /var/lib/apt/lists")
                if not re.search(r"apt-get\s+clean|rm\s+-(?:rf|fr)\s+/var/cache/apt", args):
                    problems.append(f"line {n}: RUN installs packages but does not clear /var/cache/apt"
                                    " (apt-get clean)")
                if "apt-get update" not in args:
                    problems.append(f"line {n}: apt-get install without apt-get update in the same RUN")
            if kw == "ADD" and re.search(r"(?:^|\s)(?:https?|ftp)://|git@", args):
                problems.append(f"line {n}: ADD from a URL")

    final = stages[-1]
    users = [args for _, kw, args in final if kw == "USER"]
    if not users:
        problems.append("final stage sets no USER (would run as root)")
    else:
        user = users[-1].split(":")[0].strip()
        if user in ("root", "0", ""):
            problems.append(f"final stage USER is root ('{users[-1]}')")
    checks = [args for _, kw, args in final if kw == "HEALTHCHECK"]
    if not checks:
        problems.append("final stage has no HEALTHCHECK")
    elif checks[-1].upper().startswith("NONE"):
        problems.append("final stage disables HEALTHCHECK")
    else:
        hc = checks[-1]
        if not re.search(r"--timeout=\d", hc):
            problems.append("HEALTHCHECK has no explicit --timeout")
        m = re.search(r"\bCMD\s+(.*)$", hc)
        argv = exec_form(m.group(1)) if m else None
        if not argv:
            problems.append("HEALTHCHECK CMD is not exec form")
        else:
            prog = argv[0]
            installed = any(kw == "RUN" and re.search(r"(?:/rootfs)?" + re.escape(prog) + r"(?:\s|$)", args)
                            and "/rootfs" in args
                            for st in stages[:-1] for _, kw, args in st)
            if not installed:
                problems.append(f"HEALTHCHECK runs {prog}, which no build stage installs into /rootfs")
            if os.path.basename(prog) == HEALTH_PROBE_NAME:
                check_metrics(final, probe_port, problems)
    exposed = set()
    for _, kw, args in final:
        if kw == "EXPOSE":
            for p in args.split():
                exposed.add(p if "/" in p else p + "/tcp")
    for want in ("53/udp", "53/tcp"):
        if want not in exposed:
            problems.append(f"final stage does not EXPOSE {want}")
    entry = [args for _, kw, args in final if kw == "ENTRYPOINT"]
    if not entry:
        problems.append("final stage has no ENTRYPOINT")
    else:
        try:
            ok = isinstance(json.loads(entry[-1]), list)
        except ValueError:
            ok = False
        if not ok:
            problems.append("ENTRYPOINT is not exec form (signals would go to a shell)")
    for n, kw, args in final:
        if kw == "RUN":
            tools = BUILD_TOOLS.intersection(apt_install_packages(args))
            if tools:
                problems.append(f"line {n}: final stage installs build tools {sorted(tools)}")
    return problems


# Each mutation of a clean Dockerfile must be reported with the given message part;
# this is what shows the lint can fail.
MUTATIONS = [
    ("drop --no-install-recommends", lambda t: t.replace("--no-install-recommends", ""),
     "without --no-install-recommends"),
    ("keep the apt lists", lambda t: t.replace("rm -rf /var/lib/apt/lists/*", "true"),
     "does not rm -rf /var/lib/apt/lists"),
    ("keep the apt caches", lambda t: t.replace("apt-get clean", "true"),
     "does not clear /var/cache/apt"),
    ("install from a stale index", lambda t: t.replace("apt-get update", "true"),
     "without apt-get update"),
    ("run as root", lambda t: re.sub(r"(?m)^USER .*$", "USER root", t), "USER is root"),
    ("no USER", lambda t: re.sub(r"(?m)^USER .*$", "", t), "sets no USER"),
    ("no HEALTHCHECK", lambda t: re.sub(r"(?m)^HEALTHCHECK .*(\\\n.*)*$", "", t),
     "no HEALTHCHECK"),
    ("HEALTHCHECK NONE", lambda t: t + "\nHEALTHCHECK NONE\n", "disables HEALTHCHECK"),
    ("TCP only", lambda t: t.replace("53/udp", ""), "EXPOSE 53/udp"),
    ("UDP only", lambda t: t.replace("53/tcp", ""), "EXPOSE 53/tcp"),
    ("ADD a URL", lambda t: t + "\nADD https://example.invalid/x.tar.gz /x\n", "ADD from a URL"),
    ("shell-form ENTRYPOINT", lambda t: re.sub(r"(?m)^ENTRYPOINT .*$", "ENTRYPOINT /usr/sbin/dotproxyd", t),
     "not exec form"),
    ("HEALTHCHECK without --timeout", lambda t: re.sub(r"--timeout=\S+ ", "", t),
     "no explicit --timeout"),
    ("HEALTHCHECK runs a program the image lacks",
     lambda t: t.replace('CMD ["/usr/libexec/dotproxyd/health-probe"]',
                         'CMD ["/usr/libexec/dotproxyd/healthprobe"]'),
     "which no build stage installs"),
    ("no --metrics in CMD",
     lambda t: re.sub(r'(?m)^(CMD \[.*), "--metrics", "[^"]*"', r"\1", t), "CMD has no --metrics"),
    ("--metrics on another port",
     lambda t: re.sub(r'(?m)^(CMD \[.*"--metrics", ")[^"]*"', r'\g<1>127.0.0.1@9154"', t),
     "is not the port health-probe asks"),
    ("--metrics published by default",
     lambda t: re.sub(r'(?m)^(CMD \[.*"--metrics", ")[^"]*"', r'\g<1>0.0.0.0@9153"', t),
     "is not loopback"),
    ("--metrics with the port only is loopback (accepted), on another port (reported)",
     lambda t: re.sub(r'(?m)^(CMD \[.*"--metrics", ")[^"]*"', r'\g<1>9999"', t),
     "is not the port health-probe asks"),
    ("compiler in the final stage",
     lambda t: t + "\nRUN apt-get update && apt-get install -y --no-install-recommends gcc"
                   " && apt-get clean && rm -rf /var/lib/apt/lists/*\n", "installs build tools"),
]


def self_test(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    failures = 0
    port = probe_default_port(path)
    if port is None:
        print(f"self-test: no DOTPROXY_HEALTH_PORT default found in {HEALTH_PROBE_SRC}")
        return 1
    base = lint(text, port)
    if base:
        print(f"self-test: {path} is not clean to start with: {base}")
        return 1
    for name, mutate, expect in MUTATIONS:
        mutated = mutate(text)
        if mutated == text:
            print(f"self-test: mutation '{name}' changed nothing; update it for the Dockerfile")
            failures += 1
            continue
        found = lint(mutated, port)
        if any(expect in p for p in found):
            print(f"ok: mutation '{name}' reported")
        else:
            print(f"self-test: mutation '{name}' NOT reported (got {found})")
            failures += 1
    return 1 if failures else 0


def main(argv):
    if len(argv) == 3 and argv[1] == "--self-test":
        return self_test(argv[2])
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        problems = lint(f.read(), probe_default_port(argv[1]))
    for p in problems:
        print(f"{argv[1]}: {p}")
    if problems:
        return 1
    print(f"{argv[1]}: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
