#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every exported symbol has its reference in the man3 pages.

    check_man3.py VERSION_SCRIPT MAN3_DIR [MAN]

Each global symbol of lib/libdotproxy.sym must have a function entry (a .SS
subsection naming "symbol()") in one of MAN3_DIR/*.3, and every page named
in libdotproxy.3 must exist. With MAN (man-db's man), each page must also
render without warnings (man --warnings -l). Exit 0, 1 (something missing),
2 (usage).
"""
import glob
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True


def exported(path):
    text = re.sub(r"/\*.*?\*/", " ", open(path).read(), flags=re.S)
    syms = set()
    for m in re.finditer(r"\{(.*?)\}", text, re.S):
        scope = "global"
        for tok in m.group(1).split(";"):
            tok = tok.strip()
            if tok.endswith(":"):
                scope = tok[:-1]
                continue
            if tok.startswith(("global:", "local:")):
                scope, _, tok = tok.partition(":")
                tok = tok.strip()
            if tok and scope == "global" and tok != "*":
                syms.add(tok)
    return syms


def main(argv):
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    syms = exported(argv[1])
    pages = sorted(glob.glob(os.path.join(argv[2], "*.3")))
    documented = {}
    for p in pages:
        for m in re.finditer(r"(?m)^\.SS (.*)$", open(p, encoding="utf-8").read()):
            for name in re.findall(r"(dotproxy_\w+)\(\)", m.group(1)):
                documented[name] = os.path.basename(p)
    errors = ["%s is exported but documented in no man3 page (run docs/man3/gen-man3.py "
              "after declaring it in a public header with its comment)" % s
              for s in sorted(syms - set(documented))]
    errors += ["man3 documents %s(), which the library does not export" % s
               for s in sorted(set(documented) - syms)]
    overview = os.path.join(argv[2], "libdotproxy.3")
    if not os.path.exists(overview):
        errors.append("no libdotproxy.3 overview page")
    else:
        for name in re.findall(r"\\fB(dotproxy_\w+)\\fP\(3\)", open(overview).read()):
            if not os.path.exists(os.path.join(argv[2], name + ".3")):
                errors.append("libdotproxy.3 names %s(3), which does not exist" % name)
    if len(argv) == 4:
        for p in pages:
            r = subprocess.run([argv[3], "--warnings", "-l", p], capture_output=True, text=True,
                               env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8"))
            warn = [l for l in r.stderr.splitlines() if l.strip()]
            if r.returncode != 0 or warn:
                errors.append("%s does not render cleanly: %s"
                              % (os.path.basename(p), "; ".join(warn[:3]) or r.returncode))
    for e in errors:
        print("FAIL: " + e)
    if not errors:
        print("ok: %d exported symbols documented in %d man3 pages" % (len(syms), len(pages)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
