# SPDX-License-Identifier: MIT
"""A strict checker for the Prometheus text exposition format, version 0.0.4.

parse(text) returns {family: Family} or raises FormatError naming the line.
Beyond the grammar it enforces what a scraper relies on:
  - metric and label names are valid; no label name starts with "__";
  - label values use only the \\\\, \\" and \\n escapes;
  - values are floats (or +Inf, -Inf, NaN); an optional integer timestamp;
  - HELP and TYPE at most once per family, TYPE before the family's samples;
  - the samples of a family are contiguous, and no series appears twice;
  - counters are named *_total and are never negative;
  - histograms have only _bucket (with le), _count and _sum samples; per
    label set the buckets grow with le, end with le="+Inf", and that bucket
    equals _count;
  - the text ends with a line feed.
Usable as a program too: `promcheck.py < metrics.txt` exits 1 on an error.
"""
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class FormatError(Exception):
    pass


class Family:
    def __init__(self, name):
        self.name = name
        self.type = None
        self.help = None
        self.samples = []  # (sample name, {label: value}, float)

    def value(self, sample=None, **labels):
        """The value of the one sample with exactly these labels."""
        sample = sample or self.name
        hits = [v for (n, l, v) in self.samples if n == sample and l == labels]
        if len(hits) != 1:
            raise KeyError("%s%r: %d samples" % (sample, labels, len(hits)))
        return hits[0]


def _parse_float(s, where):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", s):
        raise FormatError("%s: bad value %r" % (where, s))
    return float(s)


def _parse_labels(s, i, where):
    """Parse '{a="x",b="y"}' starting at s[i] == '{'; return (dict, next i)."""
    labels = {}
    i += 1
    while True:
        if i < len(s) and s[i] == "}":
            return labels, i + 1
        m = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").match(s, i)
        if not m:
            raise FormatError("%s: bad label name at column %d" % (where, i))
        lname = m.group(0)
        if lname.startswith("__"):
            raise FormatError("%s: reserved label name %r" % (where, lname))
        if lname in labels:
            raise FormatError("%s: label %r twice" % (where, lname))
        i = m.end()
        if s[i:i + 2] != '="':
            raise FormatError("%s: expected =\" after label %r" % (where, lname))
        i += 2
        val = []
        while True:
            if i >= len(s):
                raise FormatError("%s: unterminated label value" % where)
            c = s[i]
            if c == "\\":
                nxt = s[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise FormatError("%s: bad escape \\%s" % (where, nxt))
                val.append("\n" if nxt == "n" else nxt)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise FormatError("%s: raw line feed in label value" % where)
            else:
                val.append(c)
                i += 1
        labels[lname] = "".join(val)
        if i < len(s) and s[i] == ",":
            i += 1
        elif i < len(s) and s[i] == "}":
            continue
        else:
            raise FormatError("%s: expected , or } after label %r" % (where, lname))


def _family_of(sample, families):
    """The family a sample name belongs to (histogram/summary suffixes)."""
    for suffix in ("_bucket", "_count", "_sum"):
        if sample.endswith(suffix):
            base = sample[: -len(suffix)]
            f = families.get(base)
            if f is not None and f.type in ("histogram", "summary"):
                return base
    return sample


def parse(text):
    if not text.endswith("\n"):
        raise FormatError("the text does not end with a line feed")
    families = {}
    order = []  # family names in order of first sample
    series = set()
    current = None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d" % n
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME.match(name):
                    raise FormatError("%s: bad metric name %r" % (where, name))
                f = families.setdefault(name, Family(name))
                rest = parts[3] if len(parts) > 3 else ""
                if parts[1] == "HELP":
                    if f.help is not None:
                        raise FormatError("%s: second HELP for %s" % (where, name))
                    if re.search(r"\\[^\\n]", rest.replace("\\\\", "")):
                        raise FormatError("%s: bad escape in HELP" % where)
                    f.help = rest
                else:
                    if f.type is not None:
                        raise FormatError("%s: second TYPE for %s" % (where, name))
                    if f.samples:
                        raise FormatError("%s: TYPE after samples of %s" % (where, name))
                    if rest not in TYPES:
                        raise FormatError("%s: unknown type %r" % (where, rest))
                    f.type = rest
            continue
        m = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*").match(line)
        if not m:
            raise FormatError("%s: bad sample line %r" % (where, line))
        sample = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = _parse_labels(line, i, where)
        rest = line[i:]
        if not rest.startswith(" "):
            raise FormatError("%s: expected a space before the value" % where)
        fields = rest.split()
        if len(fields) not in (1, 2):
            raise FormatError("%s: expected value [timestamp]" % where)
        value = _parse_float(fields[0], where)
        if len(fields) == 2 and not re.fullmatch(r"-?\d+", fields[1]):
            raise FormatError("%s: bad timestamp %r" % (where, fields[1]))
        fname = _family_of(sample, families)
        f = families.setdefault(fname, Family(fname))
        if fname != current:
            if fname in order:
                raise FormatError("%s: samples of %s are not contiguous" % (where, fname))
            order.append(fname)
            current = fname
        key = (sample, tuple(sorted(labels.items())))
        if key in series:
            raise FormatError("%s: series %s%r twice" % (where, sample, labels))
        series.add(key)
        ftype = f.type or "untyped"
        if ftype == "counter":
            if sample != fname:
                raise FormatError("%s: counter sample %s" % (where, sample))
            if not fname.endswith("_total"):
                raise FormatError("%s: counter %s not named *_total" % (where, fname))
            if not value >= 0:
                raise FormatError("%s: negative counter" % where)
        elif ftype == "gauge" and sample != fname:
            raise FormatError("%s: gauge sample %s" % (where, sample))
        elif ftype == "histogram":
            if sample == fname + "_bucket":
                if "le" not in labels:
                    raise FormatError("%s: bucket without le" % where)
                _parse_float(labels["le"], where)
            elif sample not in (fname + "_count", fname + "_sum"):
                raise FormatError("%s: histogram sample %s" % (where, sample))
            elif "le" in labels:
                raise FormatError("%s: le on %s" % (where, sample))
        f.samples.append((sample, labels, value))
    for f in families.values():
        if f.type == "histogram":
            _check_histogram(f)
    return families


def _check_histogram(f):
    groups = {}
    for (sample, labels, value) in f.samples:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        g = groups.setdefault(rest, {"buckets": [], "count": None})
        if sample.endswith("_bucket"):
            g["buckets"].append((_parse_float(labels["le"], f.name), value))
        elif sample.endswith("_count"):
            g["count"] = value
    for rest, g in groups.items():
        b = g["buckets"]
        if not b:
            raise FormatError("%s%r: no buckets" % (f.name, rest))
        les = [le for le, _ in b]
        if les != sorted(les) or len(set(les)) != len(les):
            raise FormatError("%s%r: le not strictly increasing" % (f.name, rest))
        if les[-1] != math.inf:
            raise FormatError("%s%r: no le=\"+Inf\" bucket" % (f.name, rest))
        counts = [c for _, c in b]
        if counts != sorted(counts):
            raise FormatError("%s%r: buckets not cumulative" % (f.name, rest))
        if g["count"] is None or g["count"] != counts[-1]:
            raise FormatError("%s%r: _count differs from the +Inf bucket" % (f.name, rest))


if __name__ == "__main__":
    try:
        fams = parse(sys.stdin.read())
    except FormatError as e:
        print("promcheck: %s" % e, file=sys.stderr)
        sys.exit(1)
    print("promcheck: %d families OK" % len(fams))
