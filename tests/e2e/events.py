#!/usr/bin/env python3
"""PagerDuty events received by tests/e2e/receiver.py, filtered.

events.py FILE [--action trigger|resolve] [--group ALERTNAME] [--since UNIX_TIME] [--json]

One line per matching PagerDuty event, in arrival order: "TIME ACTION GROUP DEDUP_KEY", or
with --json the event's body as JSON. payload.group is our alertname (alertmanager.yml).
"""
import argparse
import json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--action")
    ap.add_argument("--group")
    ap.add_argument("--since", type=float, default=0.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with open(args.file, encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            b = e["body"]
            if "pagerduty" not in e["path"] or not isinstance(b, dict) or e.get("t", 0) < args.since:
                continue
            action = b.get("event_action")
            group = b.get("payload", {}).get("group")
            if args.action and action != args.action or args.group and group != args.group:
                continue
            if args.json:
                print(json.dumps(b))
            else:
                print("%.3f %s %s %s" % (e["t"], action, group, b.get("dedup_key")))


if __name__ == "__main__":
    main()
