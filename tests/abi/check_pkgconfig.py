#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What `meson install` ships works for a consumer and for a packager.

Usage: check_pkgconfig.py --meson MESON --pkg-config PKGCONFIG --builddir DIR
                          --version VERSION --consumer consumer.c
                          --soname SONAME --src-include DIR
                          --prefix P --libdir D --includedir D --sbindir D
                          --mandir D --datadir D
                          --example-config FILE --systemd-unit FILE
                          [--example SRC ...]
                          [--sanitize B_SANITIZE] -- COMPILER [ARGS...]

Installs the build once into a throwaway staging directory (meson install
--destdir), then:
  - checks the staged tree holds what a package needs: the shared library
    under its soname (and the unversioned link -ldotproxy needs), exactly the
    public headers (include/dotproxy/*.h plus the generated version.h),
    dotproxy.pc, sbin/dotproxyd, the man page, the example configuration and
    the systemd unit, the last two identical to their sources;
  - compiles the consumer and every example with nothing but what pkg-config
    prints for the staged .pc, as strict C99 and C11 with warnings as errors;
  - checks that the staged library is the one the loader binds for each
    program (and for the staged dotproxyd), then runs each one in a way that
    needs no network beyond an unused loopback socket and checks its output.
The staging directory is removed in every case.
"""
import argparse
import filecmp
import glob
import os
import re
import stat
import subprocess
import sys
import tempfile

# A program under test that hangs must fail this check, not stall the suite
# until meson's own timeout; tools (install, compiler) get more room on a
# loaded machine.
RUN_TIMEOUT = 15
TOOL_TIMEOUT = 45


def run(cmd, timeout=RUN_TIMEOUT, **kw):
    kw.setdefault('stdin', subprocess.DEVNULL)
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors='replace') if isinstance(e.stdout, bytes) else (e.stdout or '')
        return subprocess.CompletedProcess(cmd, -1, out + f'\n(timed out after {timeout} s)')


def fail(msg, proc=None):
    print('FAIL ' + msg, file=sys.stderr)
    if proc is not None:
        print('  $ ' + ' '.join(proc.args), file=sys.stderr)
        print(proc.stdout, file=sys.stderr)
    return 1


def find_file(root, name):
    hits = []
    for dirpath, dirs, files in os.walk(root):
        if name in files or name in dirs:
            hits.append(os.path.join(dirpath, name))
    return hits


def staged(stage, prefix, subdir, *names):
    # An absolute option (libdir=/usr/lib64) wins over the prefix, as in meson.
    return os.path.join(stage + os.path.join(prefix, subdir), *names)


def check_layout(args, stage):
    """The staged tree holds everything the packaging requirement lists."""
    libdir = staged(stage, args.prefix, args.libdir)
    problems = []

    soname = os.path.join(libdir, args.soname)
    devlink = os.path.join(libdir, 'libdotproxy.so')
    if not os.path.islink(soname):
        problems.append(f'{soname}: not a symbolic link (the soname link ldconfig keeps)')
    elif not os.path.isfile(soname):
        problems.append(f'{soname}: dangling link')
    elif os.path.dirname(os.path.realpath(soname)) != os.path.realpath(libdir):
        problems.append(f'{soname}: points outside {libdir}')
    if not os.path.islink(devlink) or os.path.realpath(devlink) != os.path.realpath(soname):
        problems.append(f'{devlink}: missing, or not a link to the same object as the soname')

    incdir = staged(stage, args.prefix, args.includedir, 'dotproxy')
    want = sorted({f for f in os.listdir(os.path.join(args.src_include, 'dotproxy'))
                   if f.endswith('.h')} | {'version.h'})
    got = sorted(os.listdir(incdir)) if os.path.isdir(incdir) else []
    if got != want:
        problems.append(f'{incdir}: headers {got}, want exactly {want}')
    version_h = os.path.join(incdir, 'version.h')
    if os.path.isfile(version_h):
        with open(version_h, encoding='utf-8') as f:
            if f'"{args.version}"' not in f.read():
                problems.append(f'{version_h}: does not carry "{args.version}"')

    pc = staged(stage, args.prefix, args.libdir, 'pkgconfig', 'dotproxy.pc')
    if not os.path.isfile(pc):
        problems.append(f'{pc}: missing')

    daemon = staged(stage, args.prefix, args.sbindir, 'dotproxyd')
    if not os.path.isfile(daemon) or not os.stat(daemon).st_mode & stat.S_IXOTH:
        problems.append(f'{daemon}: missing or not executable by everyone')

    # meson installs man pages as given, uncompressed; a packager compresses.
    man = staged(stage, args.prefix, args.mandir, 'man8', 'dotproxyd.8')
    if not os.path.isfile(man):
        problems.append(f'{man}: missing')
    else:
        with open(man, encoding='utf-8') as f:
            if not re.search(r'^\.TH DOTPROXYD 8 ', f.read(), re.M):
                problems.append(f'{man}: no ".TH DOTPROXYD 8" title line')

    # The library's reference pages (docs/man3), installed as they are.
    man3_src = os.path.join(os.path.dirname(args.example_config), '..', 'docs', 'man3')
    for src in sorted(glob.glob(os.path.join(man3_src, '*.3'))):
        page = staged(stage, args.prefix, args.mandir, 'man3', os.path.basename(src))
        if not os.path.isfile(page):
            problems.append(f'{page}: missing')
        elif not filecmp.cmp(page, src, shallow=False):
            problems.append(f'{page}: differs from {src}')
    if not glob.glob(os.path.join(man3_src, 'libdotproxy.3')):
        problems.append(f'{man3_src}: no libdotproxy.3 to install')

    conf = staged(stage, args.prefix, args.datadir, 'doc', 'dotproxyd',
                  os.path.basename(args.example_config))
    unit = staged(stage, args.prefix, 'lib', 'systemd', 'system',
                  os.path.basename(args.systemd_unit))
    if not os.path.isfile(conf):
        problems.append(f'{conf}: missing')
    elif not filecmp.cmp(conf, args.example_config, shallow=False):
        problems.append(f'{conf}: differs from {args.example_config}')
    # The unit is the source with ExecStart naming the daemon where this
    # prefix installs it (not /usr/sbin for a /usr/local install).
    daemon = os.path.join(args.prefix, args.sbindir, 'dotproxyd')
    if not os.path.isfile(unit):
        problems.append(f'{unit}: missing')
    else:
        with open(args.systemd_unit, encoding='utf-8') as f:
            want = f.read().replace('\nExecStart=/usr/sbin/dotproxyd ',
                                    f'\nExecStart={daemon} ')
        with open(unit, encoding='utf-8') as f:
            got = f.read()
        if f'\nExecStart={daemon} ' not in got:
            problems.append(f'{unit}: ExecStart does not run {daemon}')
        elif got != want:
            problems.append(f'{unit}: differs from {args.systemd_unit} beyond ExecStart')

    if problems:
        return fail('the staged install is incomplete:\n  ' + '\n  '.join(
            p[len(stage):] if p.startswith(stage) else p for p in problems))
    print('ok  staged tree: library, headers, .pc, dotproxyd, man page, '
          'example config, systemd unit')
    return 0


def pkg_flags(args, stage, pcdir):
    env = dict(os.environ)
    # The .pc names the final prefix (/usr/local/...); the sysroot re-roots
    # its -I/-L into the stage. The system path stays searchable for gnutls,
    # named in Requires.private.
    env['PKG_CONFIG_PATH'] = pcdir + os.pathsep + env.get('PKG_CONFIG_PATH', '')
    env['PKG_CONFIG_SYSROOT_DIR'] = stage

    p = run([args.pkg_config, '--modversion', 'dotproxy'], env=env)
    if p.returncode != 0 or p.stdout.strip() != args.version:
        return fail(f'pkg-config --modversion is not {args.version}', p), None
    p = run([args.pkg_config, '--cflags', '--libs', 'dotproxy'], env=env)
    if p.returncode != 0:
        return fail('pkg-config --cflags --libs dotproxy failed', p), None
    flags = p.stdout.split()
    if not any(f.startswith('-I' + stage) for f in flags) or \
       not any(f.startswith('-L' + stage) for f in flags) or '-ldotproxy' not in flags:
        return fail(f'pkg-config flags do not point into the stage: {flags}'), None
    return 0, flags


def build(args, flags, src, exe, std):
    extra = []
    if args.sanitize and args.sanitize != 'none':
        # An instrumented library wants its runtime loaded first.
        extra = ['-fsanitize=' + args.sanitize]
    p = run(args.compiler + ['-std=' + std, '-pedantic', '-Wall', '-Wextra', '-Werror'] +
            extra + [src, '-o', exe] + flags, timeout=TOOL_TIMEOUT)
    if p.returncode != 0:
        return fail(f'{os.path.basename(src)} does not build as {std} from pkg-config flags', p)
    return 0


def binds_staged(exe, run_env, lib):
    """Ask the dynamic loader which file it binds, without running main()."""
    p = run([exe], env=dict(run_env, LD_TRACE_LOADED_OBJECTS='1'))
    bound = [line.split('=>')[1].split()[0] for line in p.stdout.splitlines()
             if 'libdotproxy.so' in line and '=>' in line]
    if p.returncode != 0 or len(bound) != 1 or \
       os.path.realpath(bound[0]) != os.path.realpath(lib):
        return fail(f'{os.path.basename(exe)} does not load the staged {lib}', p)
    return 0


def check_consumer(args, flags, run_env, lib, tmp):
    exe = os.path.join(tmp, 'consumer')
    if build(args, flags, args.consumer, exe, 'c99') or binds_staged(exe, run_env, lib):
        return 1
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
    print('ok  consumer built with pkg-config and ran against ' + os.path.relpath(lib, tmp))
    return 0


def expect(p, status, pattern, what):
    """Exit status and a line matching pattern; returns 0 when both hold."""
    if p.returncode != status or not re.search(pattern, p.stdout, re.M):
        return fail(f'{what}: want exit {status} and output matching /{pattern}/, '
                    f'got exit {p.returncode}', p)
    return 0


# Each example: how to run it without a network, and what it must say. The
# upstream is a loopback address nothing listens on: nothing is queried, so
# nothing connects to it.
def example_runs(tmp):
    missing_ca = os.path.join(tmp, 'no-such-ca.pem')
    return {
        'query_once': [
            ([], 2, r'^usage: query_once ', 'query_once without arguments'),
            (['--upstream', '127.0.0.1@853', '--ca-file', missing_ca, 'example.org'], 1,
             r'^query_once: \S', 'query_once with a CA file that does not exist'),
            (['--upstream', '127.0.0.1@853', 'example.org', 'NOSUCHTYPE'], 2,
             r"^query_once: unknown type 'NOSUCHTYPE'$", 'query_once with an unknown type'),
        ],
        # End of input on stdin is its "quit": it opens the listener, prints
        # the port the kernel chose, then stops cleanly with zero counters.
        'embed_poll': [
            ([], 2, r'^usage: embed_poll ', 'embed_poll without arguments'),
            (['--listen', '127.0.0.1@0', '--upstream', '127.0.0.1@853'], 0,
             r'^listening on port [1-9][0-9]*\n(.*\n)*queries udp=0 tcp=0 answers=0 ',
             'embed_poll on loopback with stdin closed'),
        ],
    }


def check_examples(args, flags, run_env, lib, tmp):
    runs = example_runs(tmp)
    for src in args.example:
        name = os.path.splitext(os.path.basename(src))[0]
        if name not in runs:
            return fail(f'{src}: no runs defined for this example in {__file__}')
        exe = None
        for std in ('c99', 'c11'):
            exe = os.path.join(tmp, f'{name}-{std}')
            if build(args, flags, src, exe, std):
                return 1
        if binds_staged(exe, run_env, lib):
            return 1
        for argv, status, pattern, what in runs[name]:
            if expect(run([exe] + argv, env=run_env), status, pattern, what):
                return 1
        print(f'ok  example {name} built as C99 and C11 from pkg-config, '
              f'ran {len(runs[name])} ways against the staged library')
    return 0


def check_daemon(args, stage, run_env, lib):
    daemon = staged(stage, args.prefix, args.sbindir, 'dotproxyd')
    if binds_staged(daemon, run_env, lib):
        return 1
    if expect(run([daemon, '--version'], env=run_env), 0,
              rf'^dotproxyd {re.escape(args.version)}$', 'staged dotproxyd --version'):
        return 1
    print('ok  staged dotproxyd runs against the staged library')
    return 0


def check(args, tmp):
    stage = os.path.join(tmp, 'stage')
    p = run([args.meson, 'install', '-C', args.builddir, '--destdir', stage,
             '--no-rebuild', '--quiet'], timeout=TOOL_TIMEOUT)
    if p.returncode != 0:
        return fail('meson install into the staging directory failed', p)

    if check_layout(args, stage):
        return 1

    # Found by name rather than computed: it must be the one pkg-config
    # would find, wherever the libdir happens to be.
    pcs = find_file(stage, 'dotproxy.pc')
    if len(pcs) != 1:
        return fail(f'expected one installed dotproxy.pc, found {pcs}')
    rc, flags = pkg_flags(args, stage, os.path.dirname(pcs[0]))
    if rc:
        return rc

    libs = find_file(stage, args.soname)
    if len(libs) != 1:
        return fail(f'expected one installed {args.soname}, found {libs}')
    run_env = dict(os.environ)
    run_env['LD_LIBRARY_PATH'] = os.path.dirname(libs[0])

    if check_consumer(args, flags, run_env, libs[0], tmp) or \
       check_examples(args, flags, run_env, libs[0], tmp) or \
       check_daemon(args, stage, run_env, libs[0]):
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--meson', required=True)
    ap.add_argument('--pkg-config', required=True)
    ap.add_argument('--builddir', required=True)
    ap.add_argument('--version', required=True)
    ap.add_argument('--consumer', required=True)
    ap.add_argument('--soname', required=True)
    ap.add_argument('--src-include', required=True)
    for d in ('prefix', 'libdir', 'includedir', 'sbindir', 'mandir', 'datadir'):
        ap.add_argument('--' + d, required=True)
    ap.add_argument('--example-config', required=True)
    ap.add_argument('--systemd-unit', required=True)
    ap.add_argument('--example', action='append', default=[])
    ap.add_argument('--sanitize', default='none')
    ap.add_argument('compiler', nargs='+')
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix='dotproxy-abi-pc-') as tmp:
        return check(args, tmp)


if __name__ == '__main__':
    sys.exit(main())
