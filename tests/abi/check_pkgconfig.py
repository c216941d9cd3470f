#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A program builds and runs against the installed library through pkg-config.

Usage: check_pkgconfig.py --meson MESON --pkg-config PKGCONFIG --builddir DIR
                          --version VERSION --consumer consumer.c
                          [--sanitize B_SANITIZE] -- COMPILER [ARGS...]

Installs the build into a throwaway staging directory (meson install
--destdir), finds dotproxy.pc there wherever the libdir happens to be,
compiles the consumer with nothing but what pkg-config prints, checks that
the staged libdotproxy.so.0 is the one the loader picks, runs it and compares
its output. The staging directory is removed in every case.
"""
import argparse
import os
import subprocess
import sys
import tempfile


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, **kw)


def fail(msg, proc=None):
    print('FAIL ' + msg, file=sys.stderr)
    if proc is not None:
        print('  $ ' + ' '.join(proc.args), file=sys.stderr)
        print(proc.stdout, file=sys.stderr)
    return 1


def find_file(root, name):
    hits = []
    for dirpath, _, files in os.walk(root):
        if name in files:
            hits.append(os.path.join(dirpath, name))
    return hits


def check(args, tmp):
    stage = os.path.join(tmp, 'stage')
    p = run([args.meson, 'install', '-C', args.builddir, '--destdir', stage,
             '--no-rebuild', '--quiet'])
    if p.returncode != 0:
        return fail('meson install into the staging directory failed', p)

    pcs = find_file(stage, 'dotproxy.pc')
    if len(pcs) != 1:
        return fail(f'expected one installed dotproxy.pc, found {pcs}')
    pcdir = os.path.dirname(pcs[0])
    env = dict(os.environ)
    # The .pc names the final prefix (/usr/local/...); the sysroot re-roots
    # its -I/-L into the stage. The system path stays searchable for gnutls,
    # named in Requires.private.
    env['PKG_CONFIG_PATH'] = pcdir + os.pathsep + env.get('PKG_CONFIG_PATH', '')
    env['PKG_CONFIG_SYSROOT_DIR'] = stage

    p = run([args.pkg_config, '--modversion', 'dotproxy'], env=env)
    if p.returncode != 0 or p.stdout.strip() != args.version:
        return fail(f'pkg-config --modversion is not {args.version}', p)
    p = run([args.pkg_config, '--cflags', '--libs', 'dotproxy'], env=env)
    if p.returncode != 0:
        return fail('pkg-config --cflags --libs dotproxy failed', p)
    flags = p.stdout.split()
    if not any(f.startswith('-I' + stage) for f in flags) or \
       not any(f.startswith('-L' + stage) for f in flags) or '-ldotproxy' not in flags:
        return fail(f'pkg-config flags do not point into the stage: {flags}')

    exe = os.path.join(tmp, 'consumer')
    extra = []
    if args.sanitize and args.sanitize != 'none':
        # An instrumented library wants its runtime loaded first.
        extra = ['-fsanitize=' + args.sanitize]
    p = run(args.compiler + ['-std=c99', '-pedantic', '-Wall', '-Wextra', '-Werror'] + extra +
            [args.consumer, '-o', exe] + flags)
    if p.returncode != 0:
        return fail('the consumer does not build from pkg-config flags', p)

    libs = find_file(stage, 'libdotproxy.so.0')
    if len(libs) != 1:
        return fail(f'expected one installed libdotproxy.so.0, found {libs}')
    run_env = dict(os.environ)
    run_env['LD_LIBRARY_PATH'] = os.path.dirname(libs[0])

    # Ask the dynamic loader which file it binds, without running main().
    p = run([exe], env=dict(run_env, LD_TRACE_LOADED_OBJECTS='1'))
    bound = [line.split('=>')[1].split()[0] for line in p.stdout.splitlines()
             if 'libdotproxy.so' in line and '=>' in line]
    if p.returncode != 0 or len(bound) != 1 or \
       os.path.realpath(bound[0]) != os.path.realpath(libs[0]):
        return fail(f'the consumer does not load the staged {libs[0]}', p)

    p = run([exe], env=run_env)
    if p.returncode != 0:
        return fail('the consumer exited with an error', p)
    want = [
        f'version {args.version} {args.version}',
        'strerror distinct',
        'config_new 0 object',
        'endpoint_parse 0',
        'endpoint_format [2606:4700::1111]@853#cloudflare-dns.com',
        'endpoint_bad_port 1',
    ]
    got = p.stdout.splitlines()
    if got != want:
        return fail('consumer output differs:\n  want:\n    ' + '\n    '.join(want) +
                    '\n  got:\n    ' + '\n    '.join(got))
    print('ok  consumer built with pkg-config and ran against ' + libs[0][len(stage):])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--meson', required=True)
    ap.add_argument('--pkg-config', required=True)
    ap.add_argument('--builddir', required=True)
    ap.add_argument('--version', required=True)
    ap.add_argument('--consumer', required=True)
    ap.add_argument('--sanitize', default='none')
    ap.add_argument('compiler', nargs='+')
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix='dotproxy-abi-pc-') as tmp:
        return check(args, tmp)


if __name__ == '__main__':
    sys.exit(main())
