#!/usr/bin/env python3
"""Backtest of rules/*.yml: a realistic healthy week and injected incidents, replayed through
`promtool test rules`; prints per alert the healthy-week episodes, detection and reset times and
pages per incident, and exits 1 when a target of issue 13 is missed.

  backtest.py [--jobs N] [--json FILE] [--exporter current|main-2024] [--only SCENARIO]
              [--readme check|update]

See README.md in this directory for the model, the targets and how to add a scenario.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, HERE)

import engine  # noqa: E402
import world as W  # noqa: E402
import readme_table  # noqa: E402
from catalog import fires_when  # noqa: E402

# Targets of issue 13.
HEALTHY_MAX_PAGES = 0
HEALTHY_MAX_WARNINGS = 3
INCIDENT_MAX_PAGES = 1
# Incidents are replayed every 15 s (the default scrape and evaluation interval) for alerts whose
# shortest window is under 10 minutes (or that have none), every minute otherwise. The healthy
# week: every 15 s for windows under 5 minutes (or none), every minute up to an hour, every 5
# minutes for windows of hours and days (the SLO ticket): a finer step would only be slower.
INCIDENT_STEP = 15  # the finest step, at which Alertmanager is simulated


def unit_step(unit, healthy):
    min_window = min(a.min_window for a in unit)
    if min_window < (300 if healthy else 600) or min_window == math.inf:
        return 15
    if min_window < 3600 or not healthy:
        return 60
    return 300
# Alerts that look back further than this are left out of incident replays (they are about
# days, not incidents): the 3-day SLO ticket, week-over-week comparisons.
INCIDENT_MAX_WARMUP = 26 * 3600
INCIDENT_TAIL = 90 * 60


def load_scenarios(only=None):
    out = []
    for fn in sorted(os.listdir(os.path.join(HERE, "scenarios"))):
        if not fn.endswith(".py") or fn.startswith("_"):
            continue
        spec = importlib.util.spec_from_file_location("scenario_" + fn[:-3], os.path.join(HERE, "scenarios", fn))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mod.ID = fn[:-3]
        if only and mod.ID not in only:
            continue
        out.append(mod)
    return out


def families_for(metrics, world):
    """Families that produce any of these series names."""
    out = []
    for f in W.FAMILIES:
        names = {k[0] for k in world.family(f)}
        if names & metrics:
            out.append(f)
    return out


def metric_families():
    """{series name: family} from a one-day world (names do not depend on the day)."""
    probe = W.World(start=W.WEEK, end=W.WEEK + 3600, exporter="current")
    out = {}
    for f in W.FAMILIES:
        for (name, _), _ in probe.family(f).items():
            out.setdefault(name, f)
    return out


def group_units(alerts):
    """Alert rules that read the same raw series and look back about as far run together."""
    units = {}
    for a in alerts:
        horizon = 0 if a.warmup <= 2 * 3600 else (1 if a.warmup <= 7 * 3600 else (2 if a.warmup <= 2 * W.DAY else 3))
        units.setdefault((frozenset(a.metrics), horizon, a.min_window < 600), []).append(a)
    return list(units.values())


def unit_name(alerts, prefix):
    base = alerts[0].name.replace("Apphealth", "")
    return "%s-%s-%d" % (prefix, base, alerts[0].index)


def healthy_runs(alerts, records, world, fams, label):
    runs = []
    for unit in group_units(alerts):
        warmup = max(a.warmup for a in unit)
        step = unit_step(unit, True)
        t1 = 2 * W.WEEK
        t0 = max(world.start, W.WEEK - int(math.ceil(warmup / 3600.0)) * 3600)
        t0 -= t0 % step
        metrics = set().union(*(a.metrics for a in unit))
        series = {}
        for f in {fams[m] for m in metrics if m in fams}:
            series.update({k: v for k, v in world.family(f).items() if k[0] in metrics})
        runs.append(engine.Run(unit_name(unit, label), unit, records, series, t0, t1, step,
                               (W.WEEK, t1), shift=t0, readback_step=max(60, step)))
    return runs


def scenario_runs(sc, alerts, records, fams, exporter):
    touched = W.EFFECT_FAMILIES
    fam_set = set()
    for e in sc.EFFECTS:
        f = touched[e.kind]
        fam_set.update(W.FAMILIES if f is None else f)
    # The expected alert, and every page the incident's series could trigger (pages per
    # incident); warnings other than the expected one are not replayed.
    candidates = [a for a in alerts if a.warmup <= INCIDENT_MAX_WARMUP
                  and any(fams.get(m) in fam_set for m in a.metrics)
                  and (a.severity == "critical" or (a.name == sc.EXPECT and a.severity == sc.SEVERITY))]
    if not candidates:
        return []
    warmup = max(a.warmup for a in candidates)
    start = sc.START - int(math.ceil(warmup / 3600.0)) * 3600
    start -= start % 3600
    end = sc.END + INCIDENT_TAIL
    world = W.World(start=start, end=end, effects=sc.EFFECTS, exporter=exporter, **getattr(sc, "WORLD", {}))
    runs = []
    for unit in group_units(candidates):
        t0 = sc.START - int(math.ceil(max(a.warmup for a in unit) / 3600.0)) * 3600
        t0 -= t0 % 3600
        metrics = set().union(*(a.metrics for a in unit))
        series = {}
        for f in {fams[m] for m in metrics if m in fams}:
            series.update({k: v for k, v in world.family(f).items() if k[0] in metrics})
        w0 = sc.START - 30 * 60
        step = unit_step(unit, False)
        runs.append(engine.Run(unit_name(unit, "sc-" + sc.ID), unit, records, series, t0 - t0 % step, end,
                               step, (w0 - w0 % step, end), shift=t0 - t0 % step))
    return runs


def rule_matches(alert_rule, labels):
    if labels.get("alertname") != alert_rule.name:
        return False
    return all(labels.get(k) == str(v) for k, v in alert_rule.variant.items())


def fmt_s(seconds):
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    if seconds < 120:
        return "%d s" % seconds
    if seconds < 7200:
        return "%d min %02d s" % (seconds // 60, seconds % 60) if seconds % 60 else "%d min" % (seconds // 60)
    return "%.1f h" % (seconds / 3600.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json")
    ap.add_argument("--exporter", default="current", choices=["current", "main-2024"])
    ap.add_argument("--only", nargs="*", help="scenario ids (file names without .py)")
    ap.add_argument("--no-healthy", action="store_true")
    ap.add_argument("--keep", help="leave the generated promtool files in this directory")
    ap.add_argument("--rules", default=os.path.join(ROOT, "rules"))
    ap.add_argument("--alertmanager", default=os.path.join(ROOT, "alertmanager", "alertmanager.yml"))
    ap.add_argument("--promtool", default="promtool")
    ap.add_argument("--readme", choices=["check", "update"],
                    help="check that README.md holds this run's alert table, or rewrite it")
    args = ap.parse_args()

    t_start = time.time()
    alerts, records = engine.load_rules(args.rules)
    am = engine.Alertmanager(args.alertmanager)
    fams = metric_families()
    problems = []

    # Every alert needs a "fires when" entry; every page needs an incident scenario.
    scenarios = load_scenarios(args.only)
    all_scenarios = scenarios if not args.only else load_scenarios()
    # Info alerts notify nobody (Alertmanager UI only): listed, not replayed.
    replayed = [a for a in alerts if a.severity != "info"]
    for a in alerts:
        if fires_when(a.name, a.severity, a.variant) is None:
            problems.append("catalog.py has no 'fires when' text for %s (%s)" % (a.name, a.severity))
        if a.severity == "critical" and not any(s.EXPECT == a.name and s.SEVERITY == "critical" for s in all_scenarios):
            problems.append("no incident scenario for the page %s: add one in scenarios/" % a.id)

    runs = []
    healthy = None
    if not args.no_healthy:
        healthy = W.World(start=-W.DAY, end=2 * W.WEEK, exporter=args.exporter)
        runs += healthy_runs(replayed, records, healthy, fams, "healthy")
        if args.exporter == "current":
            # The same week for backup alerts as an exporter without the backup-in-progress
            # series (before issue 9's contract) exports it: the rules must stay quiet too.
            old = W.World(start=-W.DAY, end=2 * W.WEEK, exporter="current", backup_contract=False)
            backup_alerts = [a for a in replayed if any(fams.get(m) == "backups" for m in a.metrics)]
            runs += healthy_runs(backup_alerts, records, old, fams, "healthy-nocontract")
    sc_runs = {}
    for sc in scenarios:
        sc_runs[sc.ID] = scenario_runs(sc, replayed, records, fams, args.exporter)
        runs += sc_runs[sc.ID]
    t_gen = time.time() - t_start
    engine.run_all(runs, args.jobs, args.promtool, args.keep)
    t_run = time.time() - t_start - t_gen
    for r in runs:
        if r.error:
            problems.append("promtool failed for %s:\n%s" % (r.name, r.error))

    result = {"alerts": {}, "scenarios": {}, "healthy": {}, "exporter": args.exporter}
    for a in alerts:
        result["alerts"][a.id] = {"alert": a.name, "severity": a.severity, "variant": a.variant,
                                  "fires_when": fires_when(a.name, a.severity, a.variant) or "",
                                  "healthy": None, "healthy_nocontract": None, "incidents": [], "detect": {}}

    # Healthy week: firing episodes per alert rule.
    for r in runs:
        if not r.name.startswith("healthy"):
            continue
        eps = engine.episodes(r.firing, r.readback_step)
        key = "healthy_nocontract" if r.name.startswith("healthy-nocontract") else "healthy"
        for a in r.alerts:
            mine = [e for e in eps if rule_matches(a, e[0])]
            result["alerts"][a.id][key] = len(mine)
            for labels, s, e in mine:
                result["healthy"].setdefault(key, []).append(
                    {"alert": a.id, "start": s, "end": e, "labels": labels,
                     "when": "%s %02d:%02d" % ("Mon Tue Wed Thu Fri Sat Sun".split()[W.World.weekday(s)],
                                               (s % W.DAY) // 3600, (s % 3600) // 60)})

    # Incidents.
    for sc in scenarios:
        firing, eps = {}, []
        for r in sc_runs[sc.ID]:
            # Runs with a coarser step hold their state until their next evaluation.
            for t, lst in r.firing.items():
                for k in range(0, r.step, INCIDENT_STEP):
                    firing.setdefault(t + k, []).extend(lst)
            eps += engine.episodes(r.firing, r.step)
        expect = [e for e in eps if e[0].get("alertname") == sc.EXPECT and e[0].get("severity") == sc.SEVERITY
                  and e[2] > sc.START]
        detect = reset = None
        if expect:
            first = min(expect, key=lambda e: e[1])
            detect = first[1] - sc.START
            covering = [e for e in expect if e[1] <= sc.END]
            last_end = max(e[2] for e in (covering or expect))
            reset = last_end - sc.END
        window = {t: lst for t, lst in firing.items() if sc.START <= t <= sc.END + INCIDENT_TAIL}
        pages = am.notifications(window, "pagerduty-critical")
        others = sorted({"%s/%s" % (e[0]["alertname"], e[0].get("severity")) for e in eps
                         if e[2] > sc.START and not (e[0].get("alertname") == sc.EXPECT and e[0].get("severity") == sc.SEVERITY)})
        before = [e for e in eps if e[1] < sc.START and e[0].get("severity") == "critical"]
        rec = {"name": sc.NAME, "expect": "%s/%s" % (sc.EXPECT, sc.SEVERITY), "detect": detect, "reset": reset,
               "detect_target": sc.DETECT, "reset_target": sc.RESET, "pages": len(pages),
               "page_groups": ["%s %s" % (p[0], "/".join(p[1])) for p in pages], "also_fired": others,
               "pages_before_incident": len(before)}
        result["scenarios"][sc.ID] = rec
        # The scenario counts for the rules of the expected alert that fired in it (all of
        # them if none did), each with its own detection time (alerts with several signals).
        expected_rules = [a for a in alerts if a.name == sc.EXPECT and a.severity == sc.SEVERITY]
        fired_rules = [a for a in expected_rules if any(rule_matches(a, e[0]) for e in expect)]
        for a in fired_rules or expected_rules:
            result["alerts"][a.id]["incidents"].append(sc.ID)
            mine = [e[1] for e in expect if rule_matches(a, e[0])]
            if mine:
                result["alerts"][a.id]["detect"][sc.ID] = min(mine) - sc.START
        if detect is None:
            problems.append("%s: %s never fired" % (sc.ID, rec["expect"]))
        else:
            if sc.DETECT is not None and detect > sc.DETECT:
                problems.append("%s: detected after %s (target %s)" % (sc.ID, fmt_s(detect), fmt_s(sc.DETECT)))
            if sc.RESET is not None and reset > sc.RESET:
                problems.append("%s: reset %s after recovery (target %s)" % (sc.ID, fmt_s(reset), fmt_s(sc.RESET)))
        max_pages = getattr(sc, "MAX_PAGES", INCIDENT_MAX_PAGES)
        if len(pages) > max_pages:
            problems.append("%s: %d pages for one incident (%s)" % (sc.ID, len(pages), "; ".join(rec["page_groups"])))

    # Healthy-week targets.
    if healthy is not None:
        for key, label in (("healthy", "healthy week"), ("healthy_nocontract", "healthy week, backups without in-progress series")):
            eps = result["healthy"].get(key, [])
            pages = [e for e in eps if "/critical" in e["alert"]]
            warns = [e for e in eps if "/warning" in e["alert"]]
            if len(pages) > HEALTHY_MAX_PAGES:
                problems.append("%s: %d pages (target %d): %s" % (label, len(pages), HEALTHY_MAX_PAGES,
                                                                  ", ".join("%s at %s" % (e["alert"], e["when"]) for e in pages)))
            if len(warns) > HEALTHY_MAX_WARNINGS:
                problems.append("%s: %d warning episodes (target <= %d): %s" % (
                    label, len(warns), HEALTHY_MAX_WARNINGS, ", ".join("%s at %s" % (e["alert"], e["when"]) for e in warns)))

    if args.readme:
        if args.only or args.no_healthy or args.exporter != "current":
            problems.append("--readme needs the full backtest (no --only, --no-healthy or --exporter)")
        else:
            table = readme_table.render(result)
            readme = os.path.join(ROOT, "README.md")
            if args.readme == "update":
                readme_table.update(readme, table)
                print("README.md: alert table rewritten")
            elif not readme_table.current(readme, table):
                problems.append("README.md's alert table is not this backtest's: run "
                                "tests/rules/backtest/backtest.py --readme update and commit README.md")
    print_report(result, t_gen, t_run, len(runs))
    slow = sorted(runs, key=lambda r: -r.seconds)[:5]
    print("slowest promtool runs: " + ", ".join("%s %.1f s" % (r.name, r.seconds) for r in slow))
    result["problems"] = problems
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1, sort_keys=True)
    if problems:
        print("\nFAILED targets:")
        for p in problems:
            print("  - " + p)
    return 1 if problems else 0


def print_report(result, t_gen, t_run, nruns):
    print("Backtest of rules/*.yml (exporter model: %s)" % result["exporter"])
    print("\nHealthy week (Mon-Sun, second week of the generated fortnight): firing episodes per alert rule")
    print("%-62s %8s %9s" % ("alert rule", "episodes", "no-contr."))
    for aid, a in sorted(result["alerts"].items()):
        h = "-" if a["healthy"] is None else str(a["healthy"])
        hn = "" if a["healthy_nocontract"] is None else str(a["healthy_nocontract"])
        print("%-62s %8s %9s" % (aid, h, hn))
    for key in ("healthy", "healthy_nocontract"):
        for e in result["healthy"].get(key, []):
            print("   %s: %s from %s for %s%s" % ("episode" if key == "healthy" else "episode (no contract)",
                                                e["alert"], e["when"], fmt_s(e["end"] - e["start"]),
                                                "" if "target" not in e["labels"] else " (%s)" % e["labels"]["target"]))
    print("\nIncidents: detection after the incident starts, reset after it ends, PagerDuty incidents")
    print("%-28s %-40s %12s %12s %6s  %s" % ("scenario", "expected alert", "detect", "reset", "pages", "also fired"))
    for sid, s in sorted(result["scenarios"].items()):
        print("%-28s %-40s %12s %12s %6d  %s" % (
            sid, s["expect"], fmt_s(s["detect"]) + ("" if s["detect_target"] is None else " (≤%s)" % fmt_s(s["detect_target"])),
            fmt_s(s["reset"]) + ("" if s["reset_target"] is None else " (≤%s)" % fmt_s(s["reset_target"])),
            s["pages"], ", ".join(s["also_fired"])))
    print("\n%d promtool runs; generation %.1f s, promtool %.1f s" % (nruns, t_gen, t_run))


if __name__ == "__main__":
    sys.exit(main())
