#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every public header compiles on its own, in the given language mode.

Usage: check_headers.py --lang c|c++ --src-include DIR --build-include DIR
                        --version-script FILE [--nm NM] -- COMPILER [ARGS...]

One translation unit per header includes that header alone (twice, so a
missing include guard shows too). A header that leans on something only
another header declares, on a GNU extension, or on C11/C++-only syntax fails
here rather than in a user's build. The preprocessed text must also be free
of GnuTLS: the public API promises not to expose it.

One more unit includes <dotproxy/dotproxy.h> and takes the address of every
name in the version script, so each exported symbol is declared by the
public headers; in C++ its object file must then reference only unmangled
names (every declaration sits inside extern "C"). And every declaration
marked DOTPROXY_EXPORT must be listed in the version script, or the
'local: *' there would hide it.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
from check_exports import parse_version_script  # noqa: E402

FLAGS = {
    'c': ['-x', 'c', '-std=c99', '-pedantic', '-Werror', '-Wall', '-Wextra',
          '-Wstrict-prototypes', '-Wundef', '-Wshadow'],
    'c++': ['-x', 'c++', '-std=c++11', '-pedantic', '-Werror', '-Wall', '-Wextra',
            '-Wundef', '-Wshadow', '-Wold-style-cast'],
}


def public_headers(src_include, build_include):
    """dotproxy/*.h from the source tree plus the generated ones."""
    names = set()
    for root in (src_include, build_include):
        for path in glob.glob(os.path.join(root, 'dotproxy', '*.h')):
            names.add(os.path.basename(path))
    return sorted(names)


EXPORT_DECL = re.compile(r'DOTPROXY_EXPORT\b[^;{]*?\b(dotproxy_\w+)\s*\(')


def exported_declarations(src_include, build_include, headers):
    names = set()
    for h in headers:
        for root in (src_include, build_include):
            path = os.path.join(root, 'dotproxy', h)
            if os.path.exists(path):
                with open(path) as f:
                    text = re.sub(r'/\*.*?\*/', ' ', f.read(), flags=re.S)
                names.update(EXPORT_DECL.findall(text))
    return names


def symbols_unit(lang, symbols):
    if lang == 'c':
        cast = '(void (*)(void))&{}'
        decl = 'void (*const dotproxy_symbol_refs[])(void)'
    else:
        cast = 'reinterpret_cast<void (*)()>(&{})'
        decl = 'extern void (*const dotproxy_symbol_refs[])();\nvoid (*const dotproxy_symbol_refs[])()'
    refs = ',\n'.join('    ' + cast.format(s) for s in sorted(symbols))
    return f'#include <dotproxy/dotproxy.h>\n{decl} = {{\n{refs}\n}};\n'


def check_symbols(args, tmp, headers):
    """Problems found with the version script against the headers."""
    wanted, _ = parse_version_script(args.version_script)
    problems = []
    for name in sorted(exported_declarations(args.src_include, args.build_include, headers) -
                       set(wanted)):
        problems.append(f'{name} is declared DOTPROXY_EXPORT but missing from '
                        f'{args.version_script}')
    suffix = '.c' if args.lang == 'c' else '.cpp'
    tu = os.path.join(tmp, 'all_symbols' + suffix)
    with open(tu, 'w') as f:
        f.write(symbols_unit(args.lang, wanted))
    cmd = args.compiler + FLAGS[args.lang] + [
        '-I' + args.src_include, '-I' + args.build_include, '-c', tu, '-o', tu + '.o']
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        problems.append('the version script names symbols the public headers do not '
                        f'declare ({args.lang}):\n  {" ".join(cmd)}\n{p.stdout}')
        return problems
    if args.lang == 'c++':
        out = subprocess.run([args.nm, '-u', tu + '.o'], check=True, stdout=subprocess.PIPE,
                             text=True).stdout
        undefined = {line.split()[-1] for line in out.splitlines() if line.strip()}
        for name in sorted(n for n in undefined if n.startswith('_Z')):
            problems.append(f'{name} has C++ linkage: a declaration lacks extern "C"')
        for name in sorted(set(wanted) - undefined):
            problems.append(f'{name} is not referenced with C linkage from C++')
    if not problems:
        print(f'ok  {len(wanted)} exported names declared by the headers ({args.lang})')
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--lang', choices=sorted(FLAGS), required=True)
    ap.add_argument('--src-include', required=True)
    ap.add_argument('--build-include', required=True)
    ap.add_argument('--version-script', required=True)
    ap.add_argument('--nm', default='nm')
    ap.add_argument('compiler', nargs='+')
    args = ap.parse_args()

    headers = public_headers(args.src_include, args.build_include)
    # Generated headers must be there too, or the list above is incomplete.
    for must in ('dotproxy.h', 'version.h'):
        if must not in headers:
            print(f'public header dotproxy/{must} not found', file=sys.stderr)
            return 1

    suffix = '.c' if args.lang == 'c' else '.cpp'
    failures = []
    with tempfile.TemporaryDirectory(prefix='dotproxy-abi-hdr-') as tmp:
        jobs = []
        for h in headers:
            tu = os.path.join(tmp, 'only_' + h.replace('.', '_') + suffix)
            with open(tu, 'w') as f:
                f.write(f'#include <dotproxy/{h}>\n#include <dotproxy/{h}>\n'
                        'int dotproxy_header_check_anchor;\n')
            base = args.compiler + FLAGS[args.lang] + [
                '-I' + args.src_include, '-I' + args.build_include]
            compile_cmd = base + ['-c', tu, '-o', tu + '.o']
            pp_cmd = base + ['-E', '-P', tu]
            jobs.append((h, compile_cmd,
                         subprocess.Popen(compile_cmd, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True),
                         subprocess.Popen(pp_cmd, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True)))
        for h, cmd, comp, pp in jobs:
            out, _ = comp.communicate()
            pp_out, _ = pp.communicate()
            if comp.returncode != 0:
                failures.append(f'dotproxy/{h} does not compile alone as {args.lang}:\n'
                                f'  {" ".join(cmd)}\n{out}')
            elif re.search(r'\bgnutls', pp_out, re.IGNORECASE):
                failures.append(f'dotproxy/{h} pulls GnuTLS into the public API')
            else:
                print(f'ok  dotproxy/{h} ({args.lang})')
        failures += check_symbols(args, tmp, headers)

    for msg in failures:
        print('FAIL ' + msg, file=sys.stderr)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
