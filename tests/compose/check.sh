#!/usr/bin/env bash
# Offline checks of docker-compose.yml (no Docker engine needed):
#   1. `docker-compose -f docker-compose.yml config -q` (Debian's docker-compose 1.29, installed
#      with apt-get when missing) accepts the file;
#   2. every host path the services mount (bind volumes ./... and absolute paths) exists;
#   3. every build context is a directory and its Dockerfile exists; every COPY/ADD source in
#      that Dockerfile (outside --from= stages) exists in the context;
#   4. the services the stack needs are there, each with a healthcheck (in compose or as a
#      HEALTHCHECK in the Dockerfile it builds), depends_on uses condition: service_healthy, and
#      Prometheus scrapes job "apphealth" and loads the mounted rules;
#   5. the same for docker-compose.yml + docker-compose.ha.yml (HA mode), and: two Prometheus
#      with distinct replica labels that their config expands and drops from alerts, each
#      sending to both Alertmanagers and waiting for them; two Alertmanagers, each the other's
#      gossip peer, with their own state; `promtool check config` on the HA Prometheus config.
# Prints one line per failure and a final line "N passed, M failed"; exits 1 when M > 0.
# Usage: bash tests/compose/check.sh [REPO_ROOT]
set -uo pipefail

ROOT="$(cd "${1:-$(dirname "$0")/../..}" && pwd)"
cd "$ROOT" || exit 2

passed=0
failed=0
ok()   { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

if ! command -v docker-compose >/dev/null 2>&1; then
  echo "check.sh: installing docker-compose (Debian package)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
fi

# check_config LABEL FILE...: steps 1-4 (and 5 with HA=1) on the files merged as compose does.
check_config() {
  local label=$1; shift
  local files=() f
  for f in "$@"; do files+=(-f "$f"); done
  # 1. Schema validation.
  if out=$(docker-compose "${files[@]}" config -q 2>&1); then
    ok
  else
    fail "${label}docker-compose config -q rejects $*: $out"
  fi

  # The normalised config (relative paths resolved, short syntax expanded) as JSON for the rest.
  # docker-compose 1.29 prints YAML; python3-yaml is one of its own dependencies.
  if ! json=$(docker-compose "${files[@]}" config 2>/dev/null |
              python3 -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))'); then
    fail "${label}could not read the normalised compose config"
    return
  fi

  # 2-5. Everything else, in python3 (standard library plus the yaml module above).
  results=$(COMPOSE_JSON="$json" ROOT="$ROOT" LABEL="$label" python3 - <<'PY'
import json, os, re, shlex

root = os.environ["ROOT"]
label = os.environ["LABEL"]
ha = label != ""
cfg = json.loads(os.environ["COMPOSE_JSON"])
services = cfg.get("services") or {}
named_volumes = set((cfg.get("volumes") or {}).keys())

def ok(msg):
    print("PASS\t" + label + msg)

def fail(msg):
    print("FAIL\t" + label + msg)

def check(cond, msg):
    (ok if cond else fail)(msg)
    return cond

def dockerfile_info(context, dockerfile):
    """(has HEALTHCHECK, [missing COPY/ADD sources])."""
    path = dockerfile if os.path.isabs(dockerfile) else os.path.join(context, dockerfile)
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"\\\n", " ", text)  # line continuations
    has_hc = re.search(r"^\s*HEALTHCHECK\s+(?!NONE)", text, re.M | re.I) is not None
    missing = []
    for line in text.splitlines():
        m = re.match(r"^\s*(COPY|ADD)\s+(.*)$", line, re.I)
        if not m:
            continue
        args = m.group(2).strip()
        if args.startswith("["):
            parts = json.loads(args)
        else:
            parts = shlex.split(args)
        if any(p.startswith("--from") for p in parts):
            continue
        parts = [p for p in parts if not p.startswith("--")]
        for src in parts[:-1]:
            if re.match(r"^https?://", src):
                continue
            if not os.path.exists(os.path.join(context, src)):
                missing.append(src)
    return has_hc, missing

required = ["exporter", "postgres", "redis", "prometheus", "alertmanager", "grafana", "loadgen"]
if ha:
    required += ["prometheus-b", "alertmanager-b"]
for name in required:
    check(name in services, "service %s exists" % name)

for name, svc in sorted(services.items()):
    # Host paths of bind mounts.
    for vol in svc.get("volumes") or []:
        if isinstance(vol, dict):
            vtype, src = vol.get("type"), vol.get("source")
        else:
            src = vol.split(":")[0]
            vtype = "bind" if src.startswith((".", "/", "~")) else "volume"
        if vtype == "bind" or (src and src.startswith("/")):
            check(os.path.exists(src), "%s: mounted host path %s exists" % (name, os.path.relpath(src, root) if src.startswith(root) else src))
        elif vtype == "volume" and src:
            check(src in named_volumes, "%s: named volume %s is declared under volumes:" % (name, src))
    # Build context and Dockerfile.
    has_hc = False
    build = svc.get("build")
    if build:
        if isinstance(build, str):
            build = {"context": build}
        ctx = build.get("context", ".")
        if check(os.path.isdir(ctx), "%s: build context %s is a directory" % (name, ctx)):
            df = build.get("dockerfile", "Dockerfile")
            dfpath = df if os.path.isabs(df) else os.path.join(ctx, df)
            if check(os.path.isfile(dfpath), "%s: Dockerfile %s exists" % (name, os.path.relpath(dfpath, root))):
                has_hc, missing = dockerfile_info(ctx, df)
                check(not missing, "%s: COPY/ADD sources of %s exist in the context (missing: %s)"
                      % (name, os.path.relpath(dfpath, root), ", ".join(missing) or "none"))
    # Health checks and start-up order.
    hc = svc.get("healthcheck") or {}
    if name != "loadgen":
        check((hc and not hc.get("disable")) or has_hc, "%s: has a healthcheck" % name)
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):
        fail("%s: depends_on must use condition: service_healthy (has a plain list)" % name)
    else:
        for dep, spec in deps.items():
            check(dep in services, "%s: depends_on %s names a service" % (name, dep))
            check((spec or {}).get("condition") == "service_healthy",
                  "%s: depends_on %s uses condition: service_healthy" % (name, dep))

# Services that must wait for others.
proms = sorted(n for n in services if re.fullmatch(r"prometheus(-\w+)?", n))
ams = sorted(n for n in services if re.fullmatch(r"alertmanager(-\w+)?", n))
for name, deps in ((("exporter", ["postgres", "redis"]), ("grafana", ["prometheus"]),
                    ("loadgen", ["exporter", "redis"]))
                   + tuple((p, ["exporter"] + ams) for p in proms)):
    have = services.get(name, {}).get("depends_on") or {}
    for d in deps:
        check(d in have, "%s depends on %s" % (name, d))

# The exporter is built from exporter/Dockerfile with the repository root as context.
b = services.get("exporter", {}).get("build") or {}
check(os.path.realpath(b.get("context", "")) == os.path.realpath(root) and b.get("dockerfile") == "exporter/Dockerfile",
      "exporter: built from exporter/Dockerfile with the repository root as context")

def mounts_of(svc):
    mounts = {}
    for vol in svc.get("volumes") or []:
        if isinstance(vol, dict):
            mounts[vol.get("target")] = vol.get("source")
        else:
            parts = vol.split(":")
            mounts[parts[1]] = parts[0]
    return mounts

def command_of(svc):
    cmd = svc.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else cmd

# Prometheus: rules from ./rules, lifecycle API, config scraping job "apphealth" with those rules.
prom_conf = {}
for pn in proms:
    prom = services[pn]
    cmd = command_of(prom)
    check("--web.enable-lifecycle" in cmd, "%s: runs with --web.enable-lifecycle" % pn)
    mounts = mounts_of(prom)
    rules_target = [t for t, s in mounts.items() if s and os.path.realpath(s) == os.path.realpath(os.path.join(root, "rules"))]
    check(bool(rules_target), "%s: mounts ./rules" % pn)
    conf_arg = [a.split("=", 1)[1] for a in cmd if a.startswith("--config.file=")]
    conf_src = mounts.get(conf_arg[0]) if conf_arg else None
    if check(conf_src is not None and os.path.isfile(conf_src), "%s: --config.file is a mounted file" % pn):
        prom_conf[pn] = conf_src
        cf = os.path.relpath(conf_src, root)
        text = open(conf_src, encoding="utf-8").read()
        check(re.search(r"job_name:\s*['\"]?apphealth['\"]?\s*$", text, re.M) is not None, "%s scrapes job \"apphealth\"" % cf)
        check(re.search(r"targets:\s*\[\s*['\"]exporter:10045['\"]", text) is not None, "%s scrapes exporter:10045" % cf)
        check(re.search(r"alertmanager:9093", text) is not None, "%s sends alerts to alertmanager:9093" % cf)
        rf = re.findall(r"^\s*-\s*['\"]?(/[^'\"\s]+)", text.split("rule_files:", 1)[1].split("\n\n")[0], re.M) if "rule_files:" in text else []
        check(any(rules_target and r.startswith(rules_target[0].rstrip("/") + "/") for r in rf),
              "%s rule_files point into the mounted rules directory (%s)" % (cf, ", ".join(rf)))

# Alertmanager: its config and the secret files alertmanager.yml names are mounted.
am_conf = os.path.join(root, "alertmanager", "alertmanager.yml")
for an in ams:
    am_mounts = mounts_of(services[an])
    check(os.path.realpath(am_mounts.get("/etc/alertmanager", "")) == os.path.realpath(os.path.join(root, "alertmanager")),
          "%s: mounts ./alertmanager at /etc/alertmanager" % an)
    if os.path.isfile(am_conf):
        for secret in sorted(set(re.findall(r"_file:\s*(/\S+)", open(am_conf, encoding="utf-8").read()))):
            d, f = os.path.dirname(secret), os.path.basename(secret)
            src = am_mounts.get(d)
            check(src is not None and os.path.isfile(os.path.join(src, f)),
                  "%s: %s is provided by a mounted (placeholder) file" % (an, secret))

def flag(cmd, name):
    """Value of --name=VALUE in cmd (None if absent)."""
    vals = [a.split("=", 1)[1] if "=" in a else "" for a in cmd if a.split("=", 1)[0] == name]
    return vals[-1] if vals else None

if not ha:
    # One Alertmanager: gossip off (an empty listen address; it would listen on 0.0.0.0:9094).
    check(flag(command_of(services.get("alertmanager", {})), "--cluster.listen-address") == "",
          "alertmanager: --cluster.listen-address= (gossip off without a peer)")
else:
    # 5. The Prometheus pair: distinct replica labels, expanded from the environment, dropped
    # from alerts; every Alertmanager as a target.
    replicas = {}
    for pn in proms:
        cmd = command_of(services[pn])
        env = services[pn].get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        replicas[pn] = env.get("APPHEALTH_REPLICA")
        check("--enable-feature=expand-external-labels" in cmd,
              "%s: --enable-feature=expand-external-labels (the replica label comes from the environment)" % pn)
        check(bool(replicas[pn]), "%s: APPHEALTH_REPLICA set" % pn)
        text = open(prom_conf[pn], encoding="utf-8").read() if pn in prom_conf else ""
        check(re.search(r"external_labels:\s*\n\s+replica:\s*\$\{APPHEALTH_REPLICA\}", text) is not None,
              "%s: external_labels replica: ${APPHEALTH_REPLICA}" % pn)
        check(re.search(r"alert_relabel_configs:\s*\n\s*-\s*action:\s*labeldrop\s*\n\s*regex:\s*replica\s*$", text, re.M) is not None,
              "%s: alert_relabel_configs drops the replica label (one alert, one page)" % pn)
        for an in ams:
            check(re.search(r"['\"]%s:9093['\"]" % re.escape(an), text.split("alertmanagers:", 1)[-1].split("scrape_configs:")[0]) is not None,
                  "%s: sends alerts to %s:9093" % (pn, an))
    check(len(proms) == 2 and len(set(replicas.values())) == 2, "the Prometheus pair has distinct replica labels (%s)" % replicas)
    # The Alertmanager cluster: each gossips (non-empty listen address) with the other as its
    # peer on the other's listen port, and keeps its own state.
    listen, states = {}, {}
    for an in ams:
        cmd = command_of(services[an])
        listen[an] = flag(cmd, "--cluster.listen-address") or ""
        states[an] = mounts_of(services[an]).get(flag(cmd, "--storage.path") or "/alertmanager")
        check(re.fullmatch(r"[\w.]*:\d+", listen[an]) is not None, "%s: gossip on (--cluster.listen-address=%s)" % (an, listen[an]))
    for an in ams:
        peer = flag(command_of(services[an]), "--cluster.peer") or ""
        host, _, port = peer.partition(":")
        check(host in ams and host != an and port == listen.get(host, ":").rsplit(":", 1)[-1],
              "%s: --cluster.peer=%s is the other Alertmanager's gossip port" % (an, peer))
    check(len(ams) == 2 and None not in states.values() and len(set(states.values())) == 2,
          "the Alertmanagers keep separate state volumes (%s)" % states)

# Grafana: provisioning and dashboards mounted.
gf = " ".join(v if isinstance(v, str) else "%s:%s" % (v.get("source"), v.get("target")) for v in services.get("grafana", {}).get("volumes") or [])
check("/etc/grafana/provisioning/datasources" in gf, "grafana: datasource provisioning mounted")
check("/etc/grafana/provisioning/dashboards" in gf, "grafana: dashboard provisioning mounted")
check(os.path.join(root, "dashboards") + ":" in gf, "grafana: ./dashboards mounted")
PY
)
  while IFS=$'\t' read -r verdict msg; do
    case "$verdict" in
      PASS) ok ;;
      FAIL) fail "$msg" ;;
      "") ;;
      *) fail "unexpected output: $verdict $msg" ;;
    esac
  done <<< "$results"
}

check_config "" docker-compose.yml
check_config "ha: " docker-compose.yml docker-compose.ha.yml
if ! command -v promtool >/dev/null 2>&1; then
  fail "promtool not found (scripts/install-deps.sh installs Debian's prometheus)"
elif out=$(promtool check config deploy/prometheus/prometheus-ha.yml 2>&1); then
  ok
else
  fail "promtool check config deploy/prometheus/prometheus-ha.yml: $out"
fi

# The compose file format docker-compose 1.29 rejects (and Compose v2 ignores).
if grep -qE '^name:' docker-compose.yml; then fail "docker-compose.yml has a top-level name: (docker-compose 1.29 rejects it)"; else ok; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
