#!/usr/bin/env python3
"""Stand-in for the PagerDuty Events API v2 (and the Slack webhook) on 127.0.0.1.

Every POST is appended to --out as one JSON line: {"t": <unix time received>, "path": ...,
"body": <the JSON body>} (the raw text when the body is not JSON), as soon as it is read.
PagerDuty's answer is imitated: 202 with {"status": "success", "dedup_key": ...}. The port
(0: any free one) is written to --port-file once the socket listens.

A slow PagerDuty, once: when the file --delay-file exists, holding "SECONDS [TOKEN]", the
next PagerDuty request (whose body contains TOKEN, when given) removes it and its answer waits
that long after the event was logged.
"""
import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--delay-file")
    args = ap.parse_args()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 (http.server's naming)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
            delay = 0.0
            with LOCK:
                with open(args.out, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"t": time.time(), "path": self.path, "body": body}) + "\n")
                if args.delay_file and "pagerduty" in self.path and os.path.exists(args.delay_file):
                    try:
                        with open(args.delay_file, encoding="utf-8") as f:
                            seconds, _, token = f.read().strip().partition(" ")
                        if token.strip() in raw:
                            delay = min(float(seconds or 0), 30)
                            os.remove(args.delay_file)
                    except (OSError, ValueError):
                        pass
            time.sleep(delay)
            dedup = body.get("dedup_key", "") if isinstance(body, dict) else ""
            answer = json.dumps({"status": "success", "message": "Event processed", "dedup_key": dedup}).encode()
            self.send_response(202 if "pagerduty" in self.path else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, fmt, *a):  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    with open(args.port_file + ".tmp", "w", encoding="utf-8") as f:
        f.write(str(server.server_address[1]))
    os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
