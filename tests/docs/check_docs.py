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

--self-test breaks the documents in memory, one rule at a time, and checks
that each break is reported. Exit status 0, 1 (a mismatch), 2 (usage).
"""
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


# ---- main -----------------------------------------------------------------------------


def check_all(table, help_out, readme, man, example):
    return check_man(table, man) + check_example(table, example) + \
        check_readme(table, help_out, readme)


def self_test(table, help_out, readme, man, example):
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
    ]
    base = check_all(table, help_out, readme, man, example)
    failed = 0
    if base:
        print("FAIL: the documents as they are do not pass:\n  " + "\n  ".join(base))
        failed += 1
    for what, doc, mutate, expect in breaks:
        docs = {"readme": readme, "man": man, "example": example}
        broken = mutate(docs[doc])
        if broken == docs[doc]:
            print("FAIL: %s: the mutation did not apply (test out of date)" % what)
            failed += 1
            continue
        docs[doc] = broken
        errs = check_all(table, help_out, docs["readme"], docs["man"], docs["example"])
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
    if selftest:
        return self_test(table, help_out, readme, man, example)
    errors = check_all(table, help_out, readme, man, example)
    for e in errors:
        print("FAIL: " + e)
    if not errors:
        print("ok: README.md, dotproxyd(8) and the example config agree with the %d options"
              % len(visible(table)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
