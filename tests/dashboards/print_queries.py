#!/usr/bin/env python3
"""Prints every panel query of the dashboards in dashboards/, one PromQL expression per line,
ready to send to Prometheus' /api/v1/query (python3 standard library only).

Grafana's variables are replaced the way Grafana would with the defaults selected:
  $__rate_interval, $__interval, $__range (and the ${...} / [[...]] spellings) -> 5m
  ${datasource} / $datasource                                                -> removed
  any other template variable (e.g. $instance, $route, $device with "All")    -> its allValue, else .*
Newlines inside an expression are folded into spaces. Panels inside collapsed rows are included.

Usage: python3 tests/dashboards/print_queries.py [--with-source] [DASHBOARD.json ...]
  default files: every dashboards/*.json of this repository
  --with-source: prefix each line with "FILE<TAB>PANEL TITLE<TAB>REFID<TAB>"
"""
import glob
import json
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILTIN = {"__rate_interval": "5m", "__interval": "5m", "__range": "5m", "datasource": ""}


def all_panels(panels):
    for p in panels or []:
        yield p
        if p.get("type") == "row":
            yield from all_panels(p.get("panels"))


def substitute(expr, values):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        name = name.split(":")[0]  # ${var:regex} formats
        return values.get(name, m.group(0))
    expr = re.sub(r"\$\{([A-Za-z0-9_:]+)\}|\[\[([A-Za-z0-9_:]+)\]\]|\$([A-Za-z_][A-Za-z0-9_]*)", repl, expr)
    return " ".join(expr.split())


def main(argv):
    with_source = "--with-source" in argv
    files = [a for a in argv if not a.startswith("--")] or sorted(glob.glob(os.path.join(ROOT, "dashboards", "*.json")))
    for path in files:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        values = dict(BUILTIN)
        for v in (d.get("templating") or {}).get("list") or []:
            name = v.get("name")
            if not name or name in BUILTIN:
                continue
            values[name] = v.get("allValue") or ".*"
        for p in all_panels(d.get("panels")):
            if p.get("type") == "row":
                continue
            for t in p.get("targets") or []:
                expr = t.get("expr")
                if not expr or not expr.strip():
                    continue
                line = substitute(expr, values)
                if with_source:
                    line = "%s\t%s\t%s\t%s" % (os.path.basename(path), p.get("title"), t.get("refId"), line)
                print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
