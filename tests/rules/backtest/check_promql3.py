#!/usr/bin/env python3
"""Static check of rules/*.yml and dashboards/*.json for the PromQL forms that change meaning
in Prometheus 3 (no Prometheus 3 promtool can be installed on Debian 12 here; see README.md):

  - `le` and `quantile` values are floats in 3.x ("1" is stored as "1.0"): a matcher on an
    integer-looking value (le="1") matches nothing there. Use le=~"1(\\.0)?" or a value with
    a decimal point that both versions write alike (le="2.5").
  - Range selectors are left-open in 3.x (a sample exactly at the window's start is no longer
    in it): windows must hold enough scrapes to lose one. Rules use windows of 2 minutes or
    more (at least 3 samples at a 30 s scrape interval in 3.x).
  - In 3.x the regex `.` also matches a newline: rules use no unescaped `.` in =~ / !~.

Prints one line per finding and "N passed, M failed"; exits 1 on any finding."""
import glob
import json
import os
import re
import sys

import yaml

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", ".."))
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
BUCKET = re.compile(r'\b(le|quantile)\s*(=|!=)\s*"([^"]*)"')
REGEX = re.compile(r'\b\w+\s*(=~|!~)\s*"((?:[^"\\]|\\.)*)"')
RANGE = re.compile(r'\[\s*(\d+)(ms|s|m|h|d|w|y)\s*(?::[^\]]*)?\]')
UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def exprs():
    for path in sorted(glob.glob(os.path.join(ROOT, "rules", "*.yml"))):
        for g in (yaml.safe_load(open(path)) or {}).get("groups", []):
            for r in g.get("rules", []):
                yield "rule", "%s: %s" % (os.path.relpath(path, ROOT), r.get("alert") or r.get("record")), r["expr"]
    for path in sorted(glob.glob(os.path.join(ROOT, "dashboards", "*.json"))):
        def walk(node, title):
            if isinstance(node, dict):
                title = node.get("title", title)
                if isinstance(node.get("expr"), str):
                    yield "dashboard", "%s: %s" % (os.path.relpath(path, ROOT), title), node["expr"]
                for v in node.values():
                    yield from walk(v, title)
            elif isinstance(node, list):
                for v in node:
                    yield from walk(v, title)
        yield from walk(json.load(open(path)), "")


def check(kind, where, expr, findings):
    for m in BUCKET.finditer(expr):
        value = m.group(3)
        if value not in ("+Inf", "-Inf") and "." not in value:
            findings.append('%s: %s%s"%s" matches nothing in Prometheus 3 (stored as "%s.0")'
                            % (where, m.group(1), m.group(2), value, value))
    if kind == "rule":
        for m in REGEX.finditer(expr):
            if re.search(r'(?<!\\)\.', m.group(2)):
                findings.append('%s: regex "%s" uses `.`, which matches newlines in Prometheus 3'
                                % (where, m.group(2)))
        for m in RANGE.finditer(STRING.sub('""', expr)):
            if int(m.group(1)) * UNIT[m.group(2)] < 120:
                findings.append("%s: range [%s%s] is under 2 minutes: left-open in Prometheus 3, it "
                                "loses a sample" % (where, m.group(1), m.group(2)))


def main():
    # The check itself must catch each form (a check that cannot fail proves nothing).
    for bad in ('sum(rate(x_bucket{le="1"}[5m]))', 'rate(x[1m])', 'x{state=~"a.b"}'):
        found = []
        check("rule", "self-test", bad, found)
        if not found:
            print("FAIL - check_promql3.py does not flag %s" % bad)
            return 1
    findings, checked = [], 0
    for kind, where, expr in exprs():
        checked += 1
        check(kind, where, expr, findings)
    for f in findings:
        print("FAIL - " + f)
    print("ok   - %d PromQL expressions of rules/ and dashboards/ checked for Prometheus 3 forms" % checked
          if not findings else "")

    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
