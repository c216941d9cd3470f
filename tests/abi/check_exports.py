#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The shared library exports exactly the symbols of the version script.

Usage: check_exports.py LIBRARY VERSION_SCRIPT [NM]

Every global name in VERSION_SCRIPT must be defined in LIBRARY's dynamic
symbol table under the node that lists it, and LIBRARY must define no other
symbol: a name missing from the script would leak an unversioned (or
accidental) export, a name missing from the library breaks every program
linked against an older build.
"""
import re
import subprocess
import sys


def parse_version_script(path):
    """{symbol: node} for the global: sections; the node names as a set."""
    with open(path) as f:
        text = f.read()
    text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
    text = re.sub(r'#[^\n]*', ' ', text)
    wanted = {}
    nodes = set()
    # NODE { global: a; b; local: *; } [PARENT];
    for m in re.finditer(r'([A-Za-z_][\w.]*)\s*\{(.*?)\}\s*[\w.]*\s*;', text, flags=re.S):
        node, body = m.group(1), m.group(2)
        nodes.add(node)
        scope = 'global'
        for tok in re.split(r';', body):
            tok = tok.strip()
            if not tok:
                continue
            label = re.match(r'(global|local)\s*:\s*(.*)$', tok, flags=re.S)
            if label:
                scope, tok = label.group(1), label.group(2).strip()
                if not tok:
                    continue
            if scope != 'global':
                continue
            if any(c in tok for c in '*?['):
                raise SystemExit(f'{path}: wildcard {tok!r} in a global section; '
                                 'list exported names one by one')
            if tok in wanted:
                raise SystemExit(f'{path}: {tok} listed twice')
            wanted[tok] = node
    if not wanted:
        raise SystemExit(f'{path}: no global symbols found')
    return wanted, nodes


def dynamic_symbols(lib, nm):
    """{symbol: version} for symbols the library defines, version nodes left out."""
    out = subprocess.run([nm, '-D', '--defined-only', '--with-symbol-versions', lib],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        kind, name = parts[-2], parts[-1]
        version = ''
        for sep in ('@@', '@'):
            if sep in name:
                name, version = name.split(sep, 1)
                break
        # 'A' entries are the version definitions themselves (DOTPROXY_0.1).
        if kind == 'A' and version in ('', name):
            continue
        found[name] = version
    return found


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    lib, script = sys.argv[1], sys.argv[2]
    nm = sys.argv[3] if len(sys.argv) == 4 else 'nm'
    wanted, nodes = parse_version_script(script)
    found = dynamic_symbols(lib, nm)

    problems = []
    for name in sorted(set(wanted) - set(found)):
        problems.append(f'missing: {name} (listed in {wanted[name]}, not defined)')
    for name in sorted(set(found) - set(wanted)):
        problems.append(f'extra:   {name} (exported, not in the version script)')
    for name in sorted(set(wanted) & set(found)):
        if found[name] != wanted[name]:
            problems.append(f'version: {name} is {found[name] or "unversioned"}, '
                            f'script says {wanted[name]}')

    if problems:
        print(f'{lib} does not match {script}:', file=sys.stderr)
        for p in problems:
            print('  ' + p, file=sys.stderr)
        return 1
    print(f'ok  {len(found)} symbols in {len(nodes)} version node(s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
