#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hold dotproxyd's documentation to its option table.

    check_docs.py DOTPROXYD README.md docs/dotproxyd.8 deploy/dotproxyd.conf.example
    check_docs.py --self-test DOTPROXYD README.md docs/dotproxyd.8 deploy/dotproxyd.conf.example

The table (cli/option_table.c) is read from `dotproxyd --dump-options`: one line
per option, tab-separated name, short flag, kind, min, max, flags, default.
Then:

- dotproxyd(8): every option has an entry in OPTIONS; an entry with a default
  says "default VALUE" (each item, for a list), a number's entry states its
  range "MIN to MAX", a list's "up to MAX"; the page names no option the table
  lacks; the SIGHUP entry's restart-only list and the file section's
  repeatable keys are the table's.
- the example configuration: every file key appears (as "#key = value"), with
  its default among the values shown; a number's paragraph states "MIN..MAX";
  no key the table lacks (or a command-line-only one).
- README.md: every line of the option summary is a line of `dotproxyd --help`
  (which prints the table); the "dotproxyd options" and "Limits and memory"
  parts name no option the table lacks, and the limits table's defaults are
  the table's.

Beyond the option table, one truth each (issue 16), read from the files
beside README.md in the source tree:

- the answer cache is shared by the workers unless --cache-per-worker: a
  sentence of --help, dotproxyd(8), the example config, README.md or
  docs/deployment.md that calls the cache per worker names that option;
- what a reload leaves for a restart: the lists in docs/deployment.md and in
  the example configuration are the table's restart-only options (as the
  man page's SIGHUP entry already is), and none says the cache settings wait
  for a restart (a reload starts a new, empty cache);
- the health checks' environment: the variables each probe script documents
  are the ones it reads, and every DOTPROXY_HEALTH_* / DOTPROXY_PROBE_*
  variable dotproxyd(8), docs/deployment.md or the Dockerfile names belongs
  to the probe the sentence is about;
- include/dotproxy/proxy.h: the thread rules in the top comment list exactly
  the functions whose own comment says "Safe from any thread";
- README.md's first two commands: no sudo (they say who runs apt-get), and
  the second reconfigures the first's build directory (`meson setup
  --reconfigure build`: a plain `meson setup build` only says "already
  configured", and tests whose tools the second installs, Chromium's, would
  silently not be registered), installing every package the first does;
- bench/: no script reaches outside the repository by default (the rig is
  bench/rig/).

--self-test breaks the documents in memory, one rule at a time, and checks
that each break is reported. Exit status 0, 1 (a mismatch), 2 (usage).
"""
import os
import re
import subprocess
import sys


class Option:
    def __init__(self, line):
        f = line.rstrip("\n").split("\t")
        if len(f) != 7:
            raise ValueError("bad --dump-options line: %r" % line)
        self.name, short, self.kind, lo, hi, flags, self.default = f
        self.short = None if short == "-" else short
        self.min = None if lo == "-" else int(lo)
        self.max = None if hi == "-" else int(hi)
        self.flags = set() if flags == "-" else set(flags.split(","))

    @property
    def defaults(self):
        """The default as a list of values ([] when none is stated)."""
        if self.default == "":
            return []
        return self.default.split(", ") if "repeat" in self.flags else [self.default]

    def is_number(self):
        return self.kind == "uint"


def load_table(exe):
    out = subprocess.run([exe, "--dump-options"], check=True, capture_output=True, text=True,
                         timeout=20).stdout
    table, shorts = {}, set()
    for line in out.splitlines():
        o = Option(line)
        if o.name in table or (o.short and o.short in shorts):
            raise SystemExit("the option table has --%s (or -%s) twice" % (o.name, o.short))
        table[o.name] = o
        shorts.add(o.short)
    if len(table) < 10:
        raise SystemExit("dotproxyd --dump-options printed only %d options" % len(table))
    return table


def help_text(exe):
    return subprocess.run([exe, "--help"], check=True, capture_output=True, text=True,
                          timeout=20).stdout


def visible(table):
    return [o for o in table.values() if "hidden" not in o.flags]


OPTION_RE = re.compile(r"--([a-z][a-z0-9-]*)")

# ---- roff ----------------------------------------------------------------------


def roff_args(rest):
    """The arguments of a macro line: words, or "quoted strings"."""
    return [a[1:-1] if a.startswith('"') else a for a in re.findall(r'"[^"]*"|\S+', rest)]


def roff_inline(text):
    text = re.sub(r"\\f[BIRP]", "", text)
    text = re.sub(r"\\\(lq|\\\(rq", '"', text)
    return text.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "")


def roff_line(line):
    """One source line as plain text (font macros resolved)."""
    if not line.startswith("."):
        return roff_inline(line)
    macro, _, rest = line[1:].partition(" ")
    args = roff_args(rest)
    if macro in ("B", "I"):
        return roff_inline(" ".join(args))
    if macro in ("BR", "RB", "BI", "IB", "IR", "RI"):
        return roff_inline("".join(args))
    return ""


def man_sections(src):
    """{section name: [source lines]}"""
    sections, name = {}, None
    for line in src.splitlines():
        m = re.match(r'^\.SH\s+"?([^"]*)"?\s*$', line)
        if m:
            name = m.group(1)
            sections[name] = []
        elif name is not None:
            sections[name].append(line)
    return sections


def man_entries(lines):
    """.TP entries of a section: [(tag text, body text)]; .TQ adds a tag."""
    entries, tag, body, in_tag = [], None, [], False
    for line in lines:
        if line in (".TP", ".TQ"):
            if line == ".TP" and tag is not None:
                entries.append((tag, " ".join(body)))
                tag, body = None, []
            tag = (tag or "") + " "
            in_tag = True
        elif line.startswith(".SS") or line.startswith(".PP"):
            if tag is not None:
                entries.append((tag, " ".join(body)))
            tag, body, in_tag = None, [], False
        elif in_tag:
            tag += roff_line(line)
            in_tag = False
        elif tag is not None:
            body.append(roff_line(line))
    if tag is not None:
        entries.append((tag, " ".join(body)))
    return [(t, re.sub(r"\s+", " ", b).strip()) for t, b in entries]


def says_default(text, value):
    """"default VALUE" or "Default: VALUE", VALUE ending at a word boundary."""
    return re.search(r"(?i)\bdefaults?:?\s+" + re.escape(value) + r"(?![\w@#-])", text) is not None


def check_man(table, src):
    errors = []
    sections = man_sections(src)
    if "OPTIONS" not in sections:
        return ["dotproxyd(8): no OPTIONS section"]
    entries = man_entries(sections["OPTIONS"])
    by_option = {}
    for tag, body in entries:
        for name in OPTION_RE.findall(tag):
            by_option.setdefault(name, (tag, body))
    for name in sorted(set(OPTION_RE.findall(roff_inline(src)))):
        if name not in table or "hidden" in table[name].flags:
            errors.append("dotproxyd(8) names --%s, which dotproxyd does not have" % name)
    for o in visible(table):
        if o.name not in by_option:
            errors.append("dotproxyd(8): no entry for --%s in OPTIONS" % o.name)
            continue
        body = by_option[o.name][1]
        # "default A" for a list's first item, the others anywhere in the entry.
        values = o.defaults if "flag" not in o.flags else []
        if values and not says_default(body, values[0]):
            errors.append("dotproxyd(8): --%s does not say 'default %s'" % (o.name, values[0]))
        for value in values[1:]:
            if value not in body:
                errors.append("dotproxyd(8): --%s does not name its default %s" % (o.name, value))
        if o.is_number() and "%d to %d" % (o.min, o.max) not in body:
            errors.append("dotproxyd(8): --%s does not state its range '%d to %d'"
                          % (o.name, o.min, o.max))
        if "repeat" in o.flags and o.max and "up to %d" % o.max not in body:
            errors.append("dotproxyd(8): --%s does not say 'up to %d'" % (o.name, o.max))
    # SIGHUP: which changes need a restart.
    signals = " ".join(roff_line(l) for l in sections.get("SIGNALS", []))
    m = re.search(r"Changes to (.*?) need a restart", re.sub(r"\s+", " ", signals))
    restart = {o.name for o in visible(table) if "restart" in o.flags}
    if m is None:
        errors.append("dotproxyd(8): SIGNALS does not list the changes that need a restart")
    else:
        listed = set(re.split(r",\s*|\s+and\s+|\s+", m.group(1).strip())) - {""}
        if listed != restart:
            errors.append("dotproxyd(8): SIGHUP says %s need a restart; the table says %s"
                          % (", ".join(sorted(listed)), ", ".join(sorted(restart))))
    # The file section: which keys repeat.
    cfile = re.sub(r"\s+", " ", " ".join(roff_line(l) for l in sections.get("CONFIGURATION FILE", [])))
    m = re.search(r"The repeatable keys \((.*?)\)", cfile)
    repeat = {o.name for o in visible(table) if "repeat" in o.flags}
    if m is None:
        errors.append("dotproxyd(8): CONFIGURATION FILE does not list the repeatable keys")
    else:
        listed = set(re.split(r",\s*", m.group(1).strip()))
        if listed != repeat:
            errors.append("dotproxyd(8): the repeatable keys are %s; the table says %s"
                          % (", ".join(sorted(listed)), ", ".join(sorted(repeat))))
    return errors


# ---- the example configuration ----------------------------------------------------


def check_example(table, src):
    errors, keys, paragraphs = [], {}, []
    paragraph = []
    for line in src.splitlines() + [""]:
        if line.strip() == "":
            if paragraph:
                paragraphs.append(paragraph)
            paragraph = []
            continue
        paragraph.append(line)
    for para in paragraphs:
        text = "\n".join(para)
        for line in para:
            m = re.match(r"^#?([a-z][a-z0-9-]*) = (.*)$", line)
            if m:
                keys.setdefault(m.group(1), []).append((m.group(2).strip(), text))
    for key in sorted(keys):
        o = table.get(key)
        if o is None or "hidden" in o.flags:
            errors.append("example config: key '%s' is no option of dotproxyd" % key)
        elif "cli" in o.flags:
            errors.append("example config: '%s' is a command-line option, not a file key" % key)
    for o in visible(table):
        if "cli" in o.flags:
            continue
        if o.name not in keys:
            errors.append("example config: no '#%s = ...' line" % o.name)
            continue
        values = [v for v, _ in keys[o.name]]
        for value in o.defaults:
            if value not in values:
                errors.append("example config: %s shows %s, not the default %s"
                              % (o.name, " / ".join(values), value))
        if o.is_number():
            rng = "%d..%d" % (o.min, o.max)
            if not any(re.search(r"(?<![\d.])" + re.escape(rng) + r"(?![\d.]*\d)", t)
                       for _, t in keys[o.name]):
                errors.append("example config: %s's comment does not state its range %s"
                              % (o.name, rng))
    return errors


# ---- README -------------------------------------------------------------------------


def readme_parts(src):
    """The "## dotproxyd options" section and the "### Limits and memory" one."""
    parts, keep, level = [], False, 0
    for line in src.splitlines():
        m = re.match(r"^(#+) (.*)$", line)
        if m:
            depth = len(m.group(1))
            if m.group(2) in ("dotproxyd options", "Limits and memory"):
                keep, level = True, depth
            elif keep and depth <= level:
                keep = False
        if keep:
            parts.append(line)
    return parts


def check_readme(table, help_out, src):
    errors = []
    parts = readme_parts(src)
    if not parts:
        return ["README.md: no 'dotproxyd options' section"]
    help_lines = {l.rstrip() for l in help_out.splitlines()}
    # The summary block: the first fenced block of the section.
    try:
        start = parts.index("```") + 1
        end = parts.index("```", start)
    except ValueError:
        return ["README.md: the 'dotproxyd options' section has no ``` block"]
    for line in parts[start:end]:
        if line.strip() and line != "dotproxyd [OPTIONS]" and line.rstrip() not in help_lines:
            errors.append("README.md: summary line is not in dotproxyd --help: %r" % line)
    for name in sorted(set(OPTION_RE.findall("\n".join(parts)))):
        if name not in table or "hidden" in table[name].flags:
            errors.append("README.md names --%s, which dotproxyd does not have" % name)
    # The limits table: | what | default | `--option`[, `--option`] |
    for line in parts:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not OPTION_RE.search(cells[2]):
            continue
        names = OPTION_RE.findall(cells[2])
        stated = [s.strip() for s in cells[1].split(" / ")]
        for name, text in zip(names, stated):
            o = table.get(name)
            if o is None or not o.defaults:
                continue
            m = re.match(r"^(\d+)\s*(s\b)?|^(off|no cap)\b", text)
            if m is None:
                errors.append("README.md limits: cannot read a default for --%s in %r"
                              % (name, cells[1]))
                continue
            value = "0" if m.group(3) else m.group(1)
            if m.group(2):
                value = str(int(value) * 1000) if name.endswith("timeout") else value
            if value != o.defaults[0]:
                errors.append("README.md limits: --%s default %s, the table says %s"
                              % (name, text, o.defaults[0]))
    return errors


# ---- one truth each (issue 16) ---------------------------------------------------------

PER_WORKER_RE = re.compile(r"\bcaches?\b[^.;)]{0,60}?\b(one per worker|per worker|each worker|"
                           r"its own)\b", re.I)


def sentences(text):
    text = re.sub(r"(?m)^\s*#+ ?", "", text)  # comment markers of the config and Dockerfile
    return re.split(r"(?<=[.;:])\s+(?=[A-Z(`-])", re.sub(r"\s+", " ", text))


def man_text(src):
    return " ".join(roff_line(l) for l in src.splitlines())


def check_cache_sharing(docs):
    """A sentence that calls the answer cache per worker names --cache-per-worker."""
    errors = []
    for where, text in docs.items():
        for sent in sentences(text):
            bare = re.sub(r"\([^()]*\)", "", sent)  # asides: "(RFC 2308 ...)"
            if not PER_WORKER_RE.search(bare) or "cache-per-worker" in sent:
                continue
            errors.append("%s calls the cache per worker without --cache-per-worker (shared "
                          "by default): %r" % (where, sent[:160]))
    return errors


def restart_lists(table, deployment, example):
    errors = []
    restart = {o.name for o in visible(table) if "restart" in o.flags}
    m = re.search(r"((?:`[a-z-]+`(?:,\s*|\s+and\s+))+`[a-z-]+`)([^.]*?) take effect only at",
                  re.sub(r"\s+", " ", deployment))
    if m is None:
        errors.append("docs/deployment.md: no list of what takes effect only at a restart")
    else:
        listed = set(re.findall(r"`([a-z-]+)`", m.group(1)))
        if "cache" in m.group(2) or "cache" in m.group(1):
            errors.append("docs/deployment.md: says the cache settings wait for a restart; a "
                          "reload starts a new, empty cache")
        if listed != restart:
            errors.append("docs/deployment.md: restart-only %s; the table says %s"
                          % (", ".join(sorted(listed)), ", ".join(sorted(restart))))
    comments = " ".join(l.lstrip("# ").rstrip() for l in example.splitlines() if l.startswith("#"))
    m = re.search(r"SIGHUP re-reads this file[^.]*\. ([a-z, -]+?) take effect only after a restart",
                  re.sub(r"\s+", " ", comments))
    if m is None:
        errors.append("example config: no list of what takes effect only after a restart")
    else:
        listed = set(re.split(r",\s*|\s+and\s+", m.group(1).strip())) - {""}
        if listed != restart:
            errors.append("example config: restart-only %s; the table says %s"
                          % (", ".join(sorted(listed)), ", ".join(sorted(restart))))
    return errors


VAR_RE = re.compile(r"DOTPROXY_(?:HEALTH|PROBE)_[A-Z]+")


def probe_vars(script):
    """(documented in its Environment comment, read by the script)."""
    doc = set(re.findall(r"(?m)^#\s{2,}(DOTPROXY_[A-Z_]+)\s", script))
    read = set(re.findall(r"\$\{(DOTPROXY_[A-Z_]+):-", script))
    return doc, read


def check_probe_vars(probes, docs, dockerfile):
    errors = []
    owner = {}
    # "the image's health check", with no probe named, is the Dockerfile's HEALTHCHECK.
    m = re.search(r"(?m)^HEALTHCHECK .*(?:\\\n.*)*?CMD \[\"[^\"]*/([a-z-]+)\"", dockerfile)
    image_probe = m.group(1) if m else None
    for name, script in probes.items():
        doc, read = probe_vars(script)
        if doc != read - {"DOTPROXY_PROBE_ID"}:  # the test-only ID is not for users
            errors.append("deploy/docker/%s documents %s but reads %s"
                          % (name, ", ".join(sorted(doc)), ", ".join(sorted(read))))
        for v in read:
            owner[v] = name
    for where, text in docs.items():
        for sent in sentences(text):
            named = set(VAR_RE.findall(sent))
            if not named:
                continue
            for v in sorted(named - set(owner)):
                errors.append("%s names %s, which no probe reads" % (where, v))
            probes_named = {p for p in probes if p in sent}
            if not probes_named and image_probe and re.search(r"health ?check|HEALTHCHECK", sent, re.I):
                probes_named = {image_probe}
            if not probes_named:
                probes_named = {owner[v] for v in named if v in owner}
                if len(probes_named) > 1:
                    errors.append("%s mixes the probes' variables: %r" % (where, sent[:160]))
            for v in named & set(owner):
                if owner[v] not in probes_named:
                    errors.append("%s: %s belongs to %s, not %s: %r"
                                  % (where, v, owner[v], ", ".join(sorted(probes_named)),
                                     sent[:160]))
    return errors


def check_thread_rules(header):
    body = re.sub(r"\s*\n\s*\*\s*", " ", header)
    m = re.search(r"which are safe from any thread:\s*(.*?)\.\s", body)
    if m is None:
        return ["proxy.h: the top comment does not list the functions safe from any thread"]
    listed = set(re.findall(r"dotproxy_\w+", m.group(1)))
    said = set()
    for cm in re.finditer(r"/\*((?:(?!\*/).)*?)\*/\s*(?:#define[^\n]*\n\s*)?"
                          r"DOTPROXY_EXPORT[^;]*?\b(dotproxy_\w+)\s*\(", header, re.S):
        if re.search(r"Safe\s+from\s+(?:\*\s+)?any\s+(?:\*\s+)?thread", cm.group(1)):
            said.add(cm.group(2))
    errors = []
    for f in sorted(said - listed):
        errors.append("proxy.h: %s says it is safe from any thread; the top comment does not "
                      "list it" % f)
    for f in sorted(listed - said):
        errors.append("proxy.h: the top comment lists %s as safe from any thread; its own "
                      "comment does not say so" % f)
    return errors


def check_readme_commands(readme):
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.S)
    if len(blocks) < 2:
        return ["README.md: fewer than two sh blocks (install and build; run the tests)"]
    first, second = blocks[0], blocks[1]
    errors = []
    for n, b in ((1, first), (2, second)):
        if re.search(r"\bsudo\b", b):
            errors.append("README.md: command %d uses sudo; say who runs apt-get instead" % n)
    m = re.search(r"meson setup (\S+)", first)
    if m is None:
        errors.append("README.md: the first command makes no build directory")
    else:
        d = re.escape(m.group(1))
        if not re.search(r"meson setup --reconfigure %s\b|meson setup %s --reconfigure\b|"
                         r"meson configure %s\b" % (d, d, d), second):
            errors.append("README.md: the second command does not reconfigure %s (meson setup "
                          "--reconfigure), so tests its packages enable stay unregistered"
                          % m.group(1))
    pk = [set(re.findall(r"apt-get install -y ([^&]*)", b)[0].split()) if "apt-get install" in b
          else set() for b in (first, second)]
    missing = pk[0] - pk[1]
    if missing:
        errors.append("README.md: the second command does not install %s"
                      % ", ".join(sorted(missing)))
    return errors


def check_bench(scripts):
    errors = []
    for name, text in sorted(scripts.items()):
        for n, line in enumerate(text.splitlines(), 1):
            if re.search(r"/work/shared|\.\./shared\b|\$SRC/\.\.|\"\$SRC\"/\.\.", line):
                errors.append("bench/%s:%d reaches outside the repository: %s"
                              % (name, n, line.strip()[:100]))
    return errors


# ---- main -----------------------------------------------------------------------------


def check_all(table, help_out, readme, man, example, extra=None):
    errors = check_man(table, man) + check_example(table, example) + \
        check_readme(table, help_out, readme)
    if extra is None:
        return errors
    errors += check_cache_sharing({"dotproxyd --help": help_out, "dotproxyd(8)": man_text(man),
                                   "example config": example, "README.md": readme,
                                   "docs/deployment.md": extra["deployment"]})
    errors += restart_lists(table, extra["deployment"], example)
    errors += check_probe_vars(extra["probes"], {"dotproxyd(8)": man_text(man),
                                                 "docs/deployment.md": extra["deployment"],
                                                 "Dockerfile": extra["dockerfile"]},
                               extra["dockerfile"])
    errors += check_thread_rules(extra["proxy_h"])
    errors += check_readme_commands(readme)
    errors += check_bench(extra["bench"])
    return errors


def read_extra(readme_path):
    root = os.path.dirname(os.path.abspath(readme_path))

    def rd(*p):
        with open(os.path.join(root, *p), encoding="utf-8") as f:
            return f.read()
    bench = {}
    for d, _, files in os.walk(os.path.join(root, "bench")):
        for f in files:
            if f.endswith((".sh", ".py", ".gp")):
                path = os.path.join(d, f)
                bench[os.path.relpath(path, os.path.join(root, "bench"))] = open(
                    path, encoding="utf-8").read()
    return {"bench": bench, "deployment": rd("docs", "deployment.md"), "dockerfile": rd("Dockerfile"),
            "proxy_h": rd("include", "dotproxy", "proxy.h"),
            "probes": {"health-probe": rd("deploy", "docker", "health-probe"),
                       "dns-probe": rd("deploy", "docker", "dns-probe")}}


def self_test(table, help_out, readme, man, example, extra):
    """Each break must be reported; the unbroken documents must pass."""
    breaks = [
        ("man: a wrong default", "man",
         lambda s: s.replace("default 4000", "default 4001", 1), "default 4000"),
        ("man: an entry missing", "man",
         lambda s: re.sub(r"\.TP\n\.BI \\-\\-padding[^\n]*\n", ".TP\n.B gone\n", s), "--padding"),
        ("man: a range missing", "man",
         lambda s: s.replace("1 to 64, default 2", "default 2", 1), "'1 to 64'"),
        ("man: an unknown option", "man",
         lambda s: s + "\n.B \\-\\-no\\-such\\-option\n", "--no-such-option"),
        ("man: restart list", "man",
         lambda s: s.replace(".BR workers ,\n", "", 1), "need a restart"),
        ("example: a wrong default", "example",
         lambda s: s.replace("#timeout = 4000", "#timeout = 5000", 1), "not the default 4000"),
        ("example: a key missing", "example",
         lambda s: s.replace("#padding = 128\n", "", 1), "'#padding = ...'"),
        ("example: an unknown key", "example",
         lambda s: s + "\n#no-such-key = 1\n", "no-such-key"),
        ("example: a range missing", "example",
         lambda s: s.replace("(1..600000)", "", 1), "range 1..600000"),
        ("README: a line not from --help", "readme",
         lambda s: s.replace("default 4000)", "default 3000)", 1), "not in dotproxyd --help"),
        ("README: an unknown option", "readme",
         lambda s: s.replace("## dotproxyd options\n", "## dotproxyd options\n\n--frobnicate\n", 1),
         "--frobnicate"),
        ("README: a limit default", "readme",
         lambda s: s.replace("| 5 s |", "| 6 s |", 1), "--handshake-timeout default 6 s"),
        ("man: the cache per worker again", "man",
         lambda s: s.replace("shared by the workers (one per worker with\n"
                             ".BR \\-\\-cache\\-per\\-worker ).", "one per worker.", 1),
         "calls the cache per worker"),
        ("deployment: cache settings at restart", "deployment",
         lambda s: re.sub(r"(`[a-z-]+`) take\s+effect only at",
                          r"\1 and the cache settings take effect only at", s, count=1),
         "cache settings wait for a restart"),
        ("deployment: restart list", "deployment",
         lambda s: s.replace("`metrics-host`, ", "", 1), "docs/deployment.md: restart-only"),
        ("example: restart list", "example",
         lambda s: re.sub(r"(?m)^(# listen, .*?)workers, ", r"\1", s, count=1),
         "example config: restart-only"),
        ("man: the other probe's variables", "man",
         lambda s: s.replace(".BR DOTPROXY_HEALTH_ADDR ,", ".BR DOTPROXY_PROBE_ADDR ,", 1),
         "belongs to dns-probe"),
        ("man: the image's health check, unnamed, with the other probe's variables", "man",
         lambda s: s.replace("(GET /health on", "(GET /heath on", 1).replace(
             ".I /usr/libexec/dotproxyd/health\\-probe\n", "", 1).replace(
             ".BR DOTPROXY_HEALTH_ADDR ,", ".BR DOTPROXY_PROBE_ADDR ,", 1),
         "belongs to dns-probe"),
        ("probe: a variable read but not documented", "health-probe",
         lambda s: s.replace("#   DOTPROXY_HEALTH_TIMEOUT", "#   (timeout)", 1),
         "health-probe documents"),
        ("README: the second command sets up the build again", "readme",
         lambda s: s.replace("meson setup --reconfigure build", "meson setup build", 1),
         "does not reconfigure build"),
        ("README: sudo", "readme",
         lambda s: s.replace("```sh\napt-get install", "```sh\nsudo apt-get install", 1),
         "command 1 uses sudo"),
        ("README: a package only the first command installs", "readme",
         lambda s: s.replace("ca-certificates publicsuffix &&", "ca-certificates publicsuffix valgrind &&", 1),
         "valgrind"),
        ("bench: the shared rig outside the repository", "bench",
         lambda s: s.replace("${SHARED_BENCH:-$SRC/bench/rig}",
                             '${SHARED_BENCH:-$(cd "$SRC/.." && pwd)/shared/bench}', 1),
         "reaches outside the repository"),
        ("proxy.h: thread rules", "proxy_h",
         lambda s: s.replace(" *   dotproxy_ctx_upstream_count,", " *", 1),
         "the top comment does not list it"),
    ]
    base = check_all(table, help_out, readme, man, example, extra)
    failed = 0
    if base:
        print("FAIL: the documents as they are do not pass:\n  " + "\n  ".join(base))
        failed += 1
    for what, doc, mutate, expect in breaks:
        docs = {"readme": readme, "man": man, "example": example,
                "deployment": extra["deployment"], "proxy_h": extra["proxy_h"],
                "health-probe": extra["probes"]["health-probe"],
                "bench": extra["bench"]["peers-run.sh"]}
        broken = mutate(docs[doc])
        if broken == docs[doc]:
            print("FAIL: %s: the mutation did not apply (test out of date)" % what)
            failed += 1
            continue
        docs[doc] = broken
        ext = {"bench": dict(extra["bench"], **{"peers-run.sh": docs["bench"]}),
               "deployment": docs["deployment"], "dockerfile": extra["dockerfile"],
               "proxy_h": docs["proxy_h"],
               "probes": dict(extra["probes"], **{"health-probe": docs["health-probe"]})}
        errs = check_all(table, help_out, docs["readme"], docs["man"], docs["example"], ext)
        if any(expect in e for e in errs):
            print("ok: %s is reported" % what)
        else:
            print("FAIL: %s not reported (got: %s)" % (what, errs))
            failed += 1
    return 1 if failed else 0


def main(argv):
    selftest = argv[1:2] == ["--self-test"]
    args = argv[2:] if selftest else argv[1:]
    if len(args) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    exe, readme_path, man_path, example_path = args
    table = load_table(exe)
    help_out = help_text(exe)
    with open(readme_path, encoding="utf-8") as f:
        readme = f.read()
    with open(man_path, encoding="utf-8") as f:
        man = f.read()
    with open(example_path, encoding="utf-8") as f:
        example = f.read()
    extra = read_extra(readme_path)
    if selftest:
        return self_test(table, help_out, readme, man, example, extra)
    errors = check_all(table, help_out, readme, man, example, extra)
    for e in errors:
        print("FAIL: " + e)
    if not errors:
        print("ok: README.md, dotproxyd(8) and the example config agree with the %d options"
              % len(visible(table)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
