"""Replays generated series through the real rule engine (`promtool test rules`) and reads the
firing alerts back.

A *unit* is a set of alerting rules that read the same raw series, with the recording rules
they need (nothing else): each unit is one promtool run, and units run in parallel. The firing
alerts are read back with `alert_rule_test` entries that expect nothing, one per alert name
and evaluation step of the measured window: promtool checks them inside its evaluation loop
(no query), and prints the firing alerts it got instead, which are parsed back into firing
episodes. (`promql_expr_test` queries of ALERTS give the same answer but cost tens of
milliseconds each, minutes for a week.)
"""
from __future__ import annotations

import glob
import math
import os
import re
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import yaml

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(text):
    """Prometheus duration ("1h30m", "5m", "1w") in seconds."""
    if text is None:
        return 0
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+)(ms|s|m|h|d|w|y)", str(text)):
        if m.start() != pos:
            raise ValueError("bad duration %r" % text)
        total += int(m.group(1)) * UNITS[m.group(2)]
        pos = m.end()
    if pos != len(str(text)) or not text:
        raise ValueError("bad duration %r" % text)
    return total


def fmt_duration(seconds):
    """Seconds as a Prometheus duration (whole seconds)."""
    s = int(round(seconds))
    if s == 0:
        return "0s"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size:
            out += "%d%s" % (s // size, unit)
            s %= size
    return out


# ------------------------------------------------------------------------------------------
# Rules
# ------------------------------------------------------------------------------------------
class AlertRule:
    def __init__(self, file, group, index, rule):
        self.file, self.group, self.index, self.rule = file, group, index, rule
        self.name = rule["alert"]
        self.labels = rule.get("labels", {}) or {}
        self.severity = self.labels.get("severity", "")
        self.expr = rule["expr"]
        self.for_ = parse_duration(rule.get("for", "0s"))
        self.keep_firing_for = parse_duration(rule.get("keep_firing_for", "0s"))
        # Label values that tell variants of one alert apart (e.g. burn_rate="6").
        self.variant = {k: v for k, v in self.labels.items() if "{{" not in str(v)}
        self.deps, self.metrics, self.warmup, self.min_window = [], set(), 0, math.inf

    @property
    def id(self):
        extra = ",".join("%s=%s" % (k, v) for k, v in sorted(self.variant.items()) if k != "severity")
        return "%s/%s%s" % (self.name, self.severity, ("/" + extra) if extra else "")


TOKEN = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
RANGE = re.compile(r"\[\s*(\d+[a-z]+(?:\d+[a-z]+)*)\s*(?::\s*(\d+[a-z]+)?\s*)?\]")
OFFSET = re.compile(r"\boffset\s+(\d+[a-z]+(?:\d+[a-z]+)*)")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def expr_refs(expr):
    """Series names an expression reads (label values and strings removed)."""
    return set(TOKEN.findall(STRING.sub('""', expr)))


def load_rules(rules_dir):
    """(alert rules, {recorded name: (group, rule)}) of every rules/*.yml."""
    alerts, records = [], {}
    for path in sorted(glob.glob(os.path.join(rules_dir, "*.yml"))):
        doc = yaml.safe_load(open(path)) or {}
        for g in doc.get("groups", []):
            for i, r in enumerate(g.get("rules", [])):
                if "record" in r:
                    records[r["record"]] = (g["name"], r)
                else:
                    alerts.append(AlertRule(path, g["name"], i, r))
    for a in alerts:
        resolve(a, records)
    return alerts, records


def resolve(alert, records):
    """Fill in the recording rules an alert needs (in evaluation order), the raw series names it
    reads, how much history it looks back at (warm-up) and its shortest range window."""
    order, lookback = [], {}

    def walk(expr):
        ranges = [parse_duration(m.group(1)) for m in RANGE.finditer(expr)]
        offsets = [parse_duration(m.group(1)) for m in OFFSET.finditer(expr)]
        if ranges:
            alert.min_window = min(alert.min_window, min(ranges))
        dep_look = 0
        for tok in sorted(expr_refs(expr)):
            if tok in records:
                if tok not in lookback:
                    lookback[tok] = walk(records[tok][1]["expr"])
                    order.append(tok)
                dep_look = max(dep_look, lookback[tok])
            elif tok.startswith("apphealth_") or tok in ("up",):
                alert.metrics.add(tok)
        return max(ranges, default=0) + max(offsets, default=0) + dep_look

    alert.warmup = walk(alert.expr) + alert.for_
    alert.deps = order


def rule_file_for(alerts, records):
    """The YAML text of one rule group holding exactly these alerts and what they need."""
    deps = []
    for a in alerts:
        for d in a.deps:
            if d not in deps:
                deps.append(d)
    rules = [records[d][1] for d in deps] + [a.rule for a in alerts]
    return yaml.safe_dump({"groups": [{"name": "backtest", "rules": rules}]}, sort_keys=False, width=1000)


# ------------------------------------------------------------------------------------------
# Series -> promtool input notation
# ------------------------------------------------------------------------------------------
def fmt_value(v):
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return "%.12g" % v


def encode(values):
    """promtool's expanding notation for a list of floats (NaN = no sample; a sample that
    disappears gets a stale marker, as Prometheus writes one when a series vanishes)."""
    out = []
    i, n = 0, len(values)
    present_before = False
    while i < n:
        v = values[i]
        if math.isnan(v):
            j = i
            while j < n and math.isnan(values[j]):
                j += 1
            run = j - i
            if present_before:
                out.append("stale")
                run -= 1
            if run > 0:
                out.append("_x%d" % run if run > 1 else "_")
            present_before = False
            i = j
            continue
        present_before = True
        j = i + 1
        if j < n and not math.isnan(values[j]):
            d = values[j] - v
            if d == int(d) and v == int(v):
                while j + 1 < n and not math.isnan(values[j + 1]) and values[j + 1] - values[j] == d:
                    j += 1
                if j > i + 1 or d == 0:
                    if d == 0:
                        out.append("%sx%d" % (fmt_value(v), j - i))
                    else:
                        out.append("%s%s%sx%d" % (fmt_value(v), "+" if d >= 0 else "-", fmt_value(abs(d)), j - i))
                    i = j + 1
                    continue
        else:
            j = i
        out.append(fmt_value(v))
        i += 1
    return " ".join(out)


def sample(track, t0, t1, step, shift):
    """Values of a Track at t0, t0+step, ... < t1 (a track with a coarser step has no sample in
    between; timestamps are moved by -shift)."""
    out = []
    for t in range(t0, t1, step):
        if t % track.step:
            out.append(math.nan)
            continue
        idx = (t - track.start) // track.step
        v = track.values[idx] if 0 <= idx < len(track.values) else math.nan
        out.append(v - shift if (track.is_time and not math.isnan(v)) else v)
    return out


def series_selector(key):
    name, labels = key
    return "%s{%s}" % (name, ", ".join('%s="%s"' % (k, v.replace("\\", "\\\\").replace('"', '\\"')) for k, v in labels))


# ------------------------------------------------------------------------------------------
# A promtool run
# ------------------------------------------------------------------------------------------
class Run:
    """One promtool invocation: a rule file, input series and the readback window."""

    def __init__(self, name, alerts, records, series, t0, t1, step, window, shift, readback_step=None):
        self.name, self.alerts = name, alerts
        self.readback_step = readback_step or step
        self.rule_text = rule_file_for(alerts, records)
        self.series, self.t0, self.t1, self.step = series, t0, t1, step
        self.window, self.shift = window, shift
        self.output, self.error, self.firing, self.seconds = "", None, {}, 0.0

    def write(self, directory):
        rules_path = os.path.join(directory, self.name + ".rules.yml")
        test_path = os.path.join(directory, self.name + ".test.yml")
        with open(rules_path, "w") as f:
            f.write(self.rule_text)
        lines = ["rule_files: [%s]" % os.path.basename(rules_path),
                 "evaluation_interval: %ds" % self.step, "tests:", "  - interval: %ds" % self.step,
                 "    input_series:"]
        for k, track in self.series.items():
            vals = sample(track, self.t0, self.t1, self.step, self.shift)
            if all(math.isnan(v) for v in vals):
                continue
            lines.append("      - series: '%s'" % series_selector(k))
            lines.append("        values: '%s'" % encode(vals))
        lines.append("    alert_rule_test:")
        w0, w1 = self.window
        names = sorted({a.name for a in self.alerts})
        for t in range(w0, w1, self.readback_step):
            for name in names:
                lines.append("      - {eval_time: %s, alertname: %s, exp_alerts: []}" % (fmt_duration(t - self.shift), name))
        with open(test_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return test_path

    def run(self, directory, promtool="promtool"):
        path = self.write(directory)
        started = time.time()
        p = subprocess.run([promtool, "test", "rules", os.path.basename(path)], cwd=directory,
                           capture_output=True, text=True)
        self.seconds = time.time() - started
        self.output = p.stdout + p.stderr
        self.firing = parse_output(self.output, self.shift)
        # Exit 1 with nothing but our readback mismatches is the normal case; anything else
        # (a rule or series that does not parse, a template error) is a failure.
        stray = [l for l in self.output.splitlines()
                 if l.strip() and not re.match(r"\s*(alertname:|exp:|got:|\d+:$|Labels:|Annotations:|\]|Unit Testing|SUCCESS|FAILED)", l)]
        if p.returncode not in (0, 1) or (p.returncode == 1 and (not self.firing or stray)):
            self.error = "\n".join((stray or self.output.splitlines())[:20])
        return self


HEADER = re.compile(r"^\s+alertname: (\S+), time: (\S+), $", re.M)
GOT_LABELS = re.compile(r"^\s+Labels:\{(.*)\}\s*$", re.M)
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_output(text, shift):
    """{time: [labels dict, ...]} of firing alerts from promtool's failure report."""
    out = {}
    heads = list(HEADER.finditer(text))
    for i, m in enumerate(heads):
        block = text[m.end():heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        got = block.split("got:", 1)[1] if "got:" in block else ""
        t = int(parse_duration(m.group(2))) + shift
        for lm in GOT_LABELS.finditer(got):
            labels = dict(LABEL.findall(lm.group(1)))
            out.setdefault(t, []).append(labels)
    return out


def run_all(runs, jobs, promtool="promtool", keep=None):
    """Runs every promtool invocation, `jobs` at a time, longest expected first; `keep`: a
    directory to leave the rule and test files in (for debugging), else a temporary one."""
    order = sorted(runs, key=lambda r: -len(range(r.t0, r.t1, r.step)) * max(1, len(r.series)))
    with tempfile.TemporaryDirectory(prefix="apphealth-backtest-") as d:
        if keep:
            os.makedirs(keep, exist_ok=True)
            d = keep
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(lambda r: r.run(d, promtool), order))
    return runs


# ------------------------------------------------------------------------------------------
# Episodes
# ------------------------------------------------------------------------------------------
def alert_id(labels):
    return tuple(sorted(labels.items()))


def episodes(firing, step):
    """[(labels, start, end)] where end is the first evaluation at which it no longer fired."""
    by_alert = {}
    for t in sorted(firing):
        for labels in firing[t]:
            by_alert.setdefault(alert_id(labels), []).append(t)
    out = []
    for aid, times in by_alert.items():
        start = prev = times[0]
        for t in times[1:]:
            if t - prev > step:
                out.append((dict(aid), start, prev + step))
                start = t
            prev = t
        out.append((dict(aid), start, prev + step))
    return sorted(out, key=lambda e: e[1])


# ------------------------------------------------------------------------------------------
# Alertmanager: which firing alerts notify whom (routing tree, group_by, inhibit_rules)
# ------------------------------------------------------------------------------------------
MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')


def parse_matchers(items):
    out = []
    for item in items or []:
        for part in ([item] if "," not in item or "=~" in item else item.split(",")):
            m = MATCHER.match(part)
            if not m:
                raise ValueError("cannot parse matcher %r" % part)
            out.append((m.group(1), m.group(2), m.group(3)))
    return out


def matches(matchers, labels):
    for name, op, value in matchers:
        v = labels.get(name, "")
        if op == "=" and v != value:
            return False
        if op == "!=" and v == value:
            return False
        if op == "=~" and not re.fullmatch(value, v):
            return False
        if op == "!~" and re.fullmatch(value, v):
            return False
    return True


class Alertmanager:
    def __init__(self, path):
        cfg = yaml.safe_load(open(path))
        self.route = cfg["route"]
        self.inhibit = [(parse_matchers(r.get("source_matchers")), parse_matchers(r.get("target_matchers")),
                         r.get("equal", [])) for r in cfg.get("inhibit_rules", [])]

    def route_for(self, labels, route=None, group_by=None, receiver=None, path="root"):
        """(receiver, route path, group_by) of the first matching route, depth first; a route
        inherits receiver and group_by from its parent, as in Alertmanager."""
        route = route or self.route
        group_by = route.get("group_by", group_by)
        receiver = route.get("receiver", receiver)
        for i, child in enumerate(route.get("routes", []) or []):
            if matches(parse_matchers(child.get("matchers")), labels):
                return self.route_for(labels, child, group_by, receiver, "%s/%d" % (path, i))
        return receiver, path, group_by

    def group_key(self, labels):
        receiver, path, group_by = self.route_for(labels)
        return receiver, path, tuple(labels.get(g, "") for g in (group_by or []))

    def muted(self, labels, firing):
        for src, tgt, equal in self.inhibit:
            if not matches(tgt, labels):
                continue
            for other in firing:
                if other is labels or other == labels:
                    continue
                if matches(src, other) and all(other.get(e, "") == labels.get(e, "") for e in equal):
                    return True
        return False

    def notifications(self, firing, receiver):
        """Notification groups of `receiver` that at least one unmuted firing alert reached:
        {group key: first time}."""
        out = {}
        for t in sorted(firing):
            alerts = firing[t]
            for labels in alerts:
                if self.muted(labels, alerts):
                    continue
                rcv, path, gk = self.group_key(labels)
                if rcv == receiver:
                    out.setdefault((path, gk), t)
        return out
