#!/usr/bin/env python3
"""Static checks of the Grafana dashboards in dashboards/ (python3 standard library only).

For every dashboards/*.json:
  - it parses; it has a uid and a title; uids are unique across files;
  - no `__inputs` (provisioning does not substitute them); a `datasource` template variable of
    type datasource with query "prometheus"; every other variable's datasource is ${datasource};
  - every panel, including the panels inside (collapsed) rows, has a title; every non-row panel
    has fieldConfig.defaults.unit, a datasource whose uid is ${datasource} (and so has every
    target that names one), at least one target, and every target a non-empty expr;
  - panel ids are unique within a dashboard and every panel has a gridPos;
  - every rate( / irate( / increase( (and the other range-vector functions) uses
    [$__rate_interval];
  - every metric name in an expr exists: apphealth_* names from README.md's metric table and
    from "apphealth_..." string literals in exporter/src (histograms also as _bucket, _count,
    _sum), recorded names (level:metric:operations) from `record:` in rules/*.yml;
  - Web Vitals p75 panels colour by the official thresholds (LCP 2.5/4 s, INP 0.2/0.5 s,
    CLS 0.1/0.25, FCP 1.8/3 s, TTFB 0.8/1.8 s);
  - the provisioning files exist and point at the datasource uid and a dashboards path.
Prints one line per failure and a final line "N passed, M failed"; exits 1 when M > 0.

Usage: python3 tests/dashboards/check.py [REPO_ROOT]
"""
import glob
import json
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))
DS_REF = "${datasource}"
RANGE_FUNCS = ("rate", "irate", "increase", "delta", "idelta", "deriv")
VITAL_THRESHOLDS = {  # metric base -> (good, poor), web.dev
    "apphealth_web_vitals_lcp_seconds": (2.5, 4.0),
    "apphealth_web_vitals_inp_seconds": (0.2, 0.5),
    "apphealth_web_vitals_cls": (0.1, 0.25),
    "apphealth_web_vitals_fcp_seconds": (1.8, 3.0),
    "apphealth_web_vitals_ttfb_seconds": (0.8, 1.8),
}

passed = 0
failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL: " + what)
    return ok


# ----------------------------------------------------------------------------------------------
# Known metric names
# ----------------------------------------------------------------------------------------------
def readme_metrics():
    """(names, histograms) from the README's metric table rows: | `name`, `_suffix` | type | ..."""
    names, hist = set(), set()
    path = os.path.join(ROOT, "README.md")
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("| `apphealth_"):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            kind = cells[1] if len(cells) > 1 else ""
            prev = None
            for tok in re.findall(r"`([a-z0-9_]+)`", cells[0]):
                if tok.startswith("apphealth_"):
                    name = tok
                elif tok.startswith("_") and prev:
                    # `apphealth_queue_pattern_keys`, `_truncated`: the suffix replaces as many
                    # trailing segments of the previous name as it has.
                    n = tok.count("_")
                    name = "_".join(prev.split("_")[:-n]) + tok
                else:
                    continue
                names.add(name)
                if kind == "histogram":
                    hist.add(name)
                prev = name
    return names, hist


def source_metrics():
    """(names, histograms) from "apphealth_..." string literals under exporter/src."""
    names, hist = set(), set()
    for path in glob.glob(os.path.join(ROOT, "exporter", "src", "**", "*.*"), recursive=True):
        if not path.endswith((".cpp", ".h", ".hpp", ".cc")):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                for name in re.findall(r'"(apphealth_[a-z0-9_]*[a-z0-9])"', line):
                    names.add(name)
                    if "istogram" in line:
                        hist.add(name)
    # (The Web Vitals histograms are named from a prefix plus the vital at run time; they come
    # from the README table.)
    return names, hist


def recorded_names():
    names = set()
    for path in glob.glob(os.path.join(ROOT, "rules", "*.yml")):
        with open(path, encoding="utf-8") as f:
            names |= set(re.findall(r"^\s*-?\s*record:\s*['\"]?([A-Za-z_:][A-Za-z0-9_:]*)", f.read(), re.M))
    return names


R_NAMES, R_HIST = readme_metrics()
S_NAMES, S_HIST = source_metrics()
KNOWN = R_NAMES | S_NAMES
HISTOGRAMS = R_HIST | S_HIST
RECORDED = recorded_names()
check(len(R_NAMES) >= 30, "README.md metric table: expected at least 30 apphealth_ metrics, found %d" % len(R_NAMES))
check(len(RECORDED) >= 10, "rules/*.yml: expected recording rules, found %d" % len(RECORDED))


def metric_known(name):
    if name in KNOWN:
        return True
    for suffix in ("_bucket", "_count", "_sum"):
        if name.endswith(suffix) and name[: -len(suffix)] in HISTOGRAMS:
            return True
    return False


def strip_strings(expr):
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)


def check_expr(where, expr):
    bare = strip_strings(expr)
    # Range-vector functions: the range must be $__rate_interval.
    for m in re.finditer(r"(?<![A-Za-z0-9_:])(%s)\s*\(" % "|".join(RANGE_FUNCS), bare):
        # Find the matching ")" and the range selector(s) inside.
        depth, i = 0, m.end() - 1
        while i < len(bare):
            if bare[i] == "(":
                depth += 1
            elif bare[i] == ")":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        inner = bare[m.end():i]
        ranges = re.findall(r"\[([^\]]*)\]", inner)
        check(bool(ranges) and all(r.strip() == "$__rate_interval" for r in ranges),
              "%s: %s(...) must use [$__rate_interval], has %s" % (where, m.group(1), ranges or "no range"))
    # Metric names.
    names = set(re.findall(r"(?<![A-Za-z0-9_:$])(apphealth_[a-z0-9_]+)", bare))
    recorded = set(re.findall(r"(?<![A-Za-z0-9_:$])([a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]+)", bare))
    for name in sorted(recorded):
        check(name in RECORDED, "%s: recorded metric %s is not a `record:` in rules/*.yml" % (where, name))
    for name in sorted(names):
        if any(name in r for r in recorded):
            continue
        check(metric_known(name), "%s: metric %s is neither in README.md's metric table nor in exporter/src" % (where, name))


# ----------------------------------------------------------------------------------------------
# Dashboards
# ----------------------------------------------------------------------------------------------
def all_panels(panels):
    for p in panels or []:
        yield p
        if p.get("type") == "row":
            yield from all_panels(p.get("panels"))


def ds_uid(ds):
    if isinstance(ds, dict):
        return ds.get("uid")
    return ds  # legacy: a plain string


def threshold_values(panel):
    steps = (((panel.get("fieldConfig") or {}).get("defaults") or {}).get("thresholds") or {}).get("steps") or []
    return [s.get("value") for s in steps if s.get("value") is not None]


files = sorted(glob.glob(os.path.join(ROOT, "dashboards", "*.json")))
check(len(files) >= 2, "dashboards/: expected at least 2 dashboard JSON files, found %d" % len(files))
uids = {}
for path in files:
    rel = os.path.relpath(path, ROOT)
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        check(False, "%s: does not parse: %s" % (rel, e))
        continue
    check(True, "%s parses" % rel)
    uid = d.get("uid")
    check(isinstance(uid, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid or "") is not None,
          "%s: needs a stable uid (1-40 of [A-Za-z0-9_-]), has %r" % (rel, uid))
    check(uid not in uids, "%s: uid %r also used by %s" % (rel, uid, uids.get(uid)))
    uids[uid] = rel
    check(bool(d.get("title")), "%s: needs a title" % rel)
    check("__inputs" not in d and "__requires" not in d, "%s: must not use __inputs/__requires (provisioning does not substitute them)" % rel)
    check(d.get("id") in (None,), "%s: `id` must be null or absent (Grafana assigns it)" % rel)
    variables = (d.get("templating") or {}).get("list") or []
    dsvars = [v for v in variables if v.get("name") == "datasource"]
    check(len(dsvars) == 1 and dsvars[0].get("type") == "datasource" and dsvars[0].get("query") == "prometheus",
          "%s: needs a template variable `datasource` of type datasource with query \"prometheus\"" % rel)
    for v in variables:
        if v.get("type") == "query":
            check(ds_uid(v.get("datasource")) == DS_REF, "%s: variable %s must use datasource %s" % (rel, v.get("name"), DS_REF))
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            if q:
                check_expr("%s variable %s" % (rel, v.get("name")), q)
    ids = set()
    n_panels = 0
    for p in all_panels(d.get("panels")):
        n_panels += 1
        title = p.get("title")
        where = "%s panel %r (id %s)" % (rel, title, p.get("id"))
        check(isinstance(title, str) and title.strip() != "", "%s: needs a title" % where)
        check(p.get("id") not in ids, "%s: duplicate panel id" % where)
        ids.add(p.get("id"))
        check(isinstance(p.get("gridPos"), dict), "%s: needs a gridPos" % where)
        if p.get("type") == "row":
            continue
        unit = ((p.get("fieldConfig") or {}).get("defaults") or {}).get("unit")
        check(isinstance(unit, str) and unit != "", "%s: needs fieldConfig.defaults.unit" % where)
        check(ds_uid(p.get("datasource")) == DS_REF, "%s: datasource must be {\"uid\": \"%s\"}, is %r" % (where, DS_REF, p.get("datasource")))
        targets = p.get("targets") or []
        check(len(targets) > 0, "%s: needs at least one target" % where)
        for t in targets:
            expr = t.get("expr")
            check(isinstance(expr, str) and expr.strip() != "", "%s target %s: needs a non-empty expr" % (where, t.get("refId")))
            if "datasource" in t:
                check(ds_uid(t["datasource"]) == DS_REF, "%s target %s: datasource must be %s" % (where, t.get("refId"), DS_REF))
            if isinstance(expr, str) and expr.strip():
                check_expr("%s target %s" % (where, t.get("refId")), expr)
        # Web Vitals p75 panels: threshold steps at the official good / poor values.
        exprs = " ".join(t.get("expr") or "" for t in targets)
        if "histogram_quantile(0.75" in exprs:
            for base, (good, poor) in VITAL_THRESHOLDS.items():
                if re.search(re.escape(base) + r"_bucket", exprs):
                    check(threshold_values(p) == [good, poor],
                          "%s: thresholds must be good %s / poor %s, are %s" % (where, good, poor, threshold_values(p)))
    check(n_panels > 0, "%s: has no panels" % rel)

# ----------------------------------------------------------------------------------------------
# Provisioning
# ----------------------------------------------------------------------------------------------
prov = os.path.join(ROOT, "dashboards", "provisioning")
for name, needles in (("datasources.yml", ["apiVersion: 1", "type: prometheus", "url: http://prometheus:9090", "uid: prometheus"]),
                      ("dashboards.yml", ["apiVersion: 1", "type: file", "path: "])):
    p = os.path.join(prov, name)
    if check(os.path.isfile(p), "dashboards/provisioning/%s is missing" % name):
        with open(p, encoding="utf-8") as f:
            text = f.read()
        for n in needles:
            check(n in text, "dashboards/provisioning/%s: expected %r" % (name, n))

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
