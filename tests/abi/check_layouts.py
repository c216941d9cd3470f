#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The public structs keep their released layout.

Usage: check_layouts.py --golden FILE --src-include DIR --build-include DIR
                        [--write] -- COMPILER [ARGS...]

tests/abi/layouts.txt lists every public struct (typedef struct NAME {...}
in include/dotproxy/*.h) as released: each field's offset and size, and the
struct's size, and whether it is 'frozen' (a value type the caller
allocates: its size never changes) or 'growable' (fields may only be
appended: dotproxy_upstream_stats, dotproxy_query_log). A compiled probe
prints the layout the headers give today; the check fails when a released
field moved, changed size or vanished, when a frozen struct changed size,
when a growable one shrank, or when a public struct is not in the file
(a new struct gets its line with --write, deliberately, in the commit that
releases it).
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile


def public_structs(src_include):
    """{name: [field, ...]} for every typedef'd struct of the public headers."""
    out = {}
    for h in sorted(glob.glob(os.path.join(src_include, 'dotproxy', '*.h'))):
        text = open(h).read()
        text = re.sub(r'/\*.*?\*/', '', text, flags=re.S)
        for m in re.finditer(r'typedef struct (dotproxy_\w+) \{(.*?)\} \1;', text, re.S):
            fields = []
            for decl in m.group(2).split(';'):
                decl = ' '.join(decl.split())
                if not decl:
                    continue
                for part in decl.split(','):
                    f = re.search(r'(\w+)\s*(\[[^\]]*\])?\s*$', part)
                    if f:
                        fields.append(f.group(1))
            out[m.group(1)] = fields
    return out


def probe(structs, compiler, src_include, build_include):
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include <dotproxy/dotproxy.h>',
             'int main(void) {']
    for name, fields in structs.items():
        lines.append('printf("%s sizeof %%zu\\n", sizeof(%s));' % (name, name))
        for f in fields:
            lines.append('printf("%s %s %%zu %%zu\\n", offsetof(%s, %s), sizeof(((%s *)0)->%s));'
                         % (name, f, name, f, name, f))
    lines += ['return 0;', '}']
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, 'probe.c')
        exe = os.path.join(tmp, 'probe')
        open(src, 'w').write('\n'.join(lines) + '\n')
        subprocess.run(compiler + ['-I', src_include, '-I', build_include, src, '-o', exe],
                       check=True)
        res = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
    layout = {}
    for line in res.splitlines():
        w = line.split()
        if w[1] == 'sizeof':
            layout.setdefault(w[0], {})['sizeof'] = int(w[2])
        else:
            layout.setdefault(w[0], {})[w[1]] = (int(w[2]), int(w[3]))
    return layout


def read_golden(path):
    golden, kinds = {}, {}
    for raw in open(path):
        line = raw.split('#', 1)[0].strip()
        if not line:
            continue
        w = line.split()
        if w[0] in ('frozen', 'growable'):
            kinds[w[1]] = w[0]
            golden[w[1]] = {'sizeof': int(w[2])}
        else:
            golden[w[0]][w[1]] = (int(w[2]), int(w[3]))
    return golden, kinds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--golden', required=True)
    ap.add_argument('--src-include', required=True)
    ap.add_argument('--build-include', required=True)
    ap.add_argument('--write', action='store_true')
    ap.add_argument('compiler', nargs='+')
    a = ap.parse_args()
    structs = public_structs(a.src_include)
    now = probe(structs, a.compiler, a.src_include, a.build_include)
    golden, kinds = (read_golden(a.golden) if os.path.exists(a.golden) else ({}, {}))
    if a.write:
        growable = {'dotproxy_upstream_stats', 'dotproxy_query_log', 'dotproxy_tap_event'}
        with open(a.golden, 'w') as f:
            f.write('# SPDX-License-Identifier: MIT\n# Released layouts of the public structs '
                    '(tests/abi/check_layouts.py).\n# frozen|growable NAME SIZEOF, then '
                    'NAME FIELD OFFSET SIZE per field.\n')
            for name in structs:
                kind = kinds.get(name, 'growable' if name in growable else 'frozen')
                f.write('%s %s %d\n' % (kind, name, now[name]['sizeof']))
                for field in structs[name]:
                    f.write('%s %s %d %d\n' % ((name, field) + now[name][field]))
        return 0
    errors = []
    for name in structs:
        if name not in golden:
            errors.append('%s: public struct not in %s (add it with --write when released)'
                          % (name, os.path.basename(a.golden)))
    for name, fields in golden.items():
        if name not in now:
            errors.append('%s: released struct is gone' % name)
            continue
        for field, where in fields.items():
            if field == 'sizeof':
                continue
            if now[name].get(field) != where:
                errors.append('%s.%s: released at offset %d size %d, now %s'
                              % (name, field, where[0], where[1], now[name].get(field, 'gone')))
        size, was = now[name]['sizeof'], fields['sizeof']
        if kinds[name] == 'frozen' and size != was:
            errors.append('%s: frozen struct changed size %d -> %d' % (name, was, size))
        if kinds[name] == 'growable' and size < was:
            errors.append('%s: growable struct shrank %d -> %d' % (name, was, size))
    for e in errors:
        print('FAIL:', e)
    if not errors:
        print('%d public structs keep their released layout' % len(golden))
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
