"""A small web site's healthy life, as the apphealth exporter would export it.

Everything is deterministic: every random draw comes from a generator seeded with the world's
seed, the signal family and the day, so the same day looks the same in the healthy week and in
every incident scenario that replays it, whatever span is generated.

Time is seconds since the start of promtool's clock (t = 0), and t = 0 is a Monday 00:00 of
the site's local time. Families are sampled like Prometheus scrapes them: every STEP seconds
(15 s, the default scrape interval), or every 60 s for families that change slowly and hold
many series (Web Vitals histograms). A value of NaN means "no sample" (the series is absent:
not yet created, or the scrape failed).

What the site looks like (the numbers are those of a small real site, not tuned to any rule):
  - traffic: two daily peaks (late morning, evening) of about 3 requests/s, nights of one or
    two requests a minute, weekends at 60 %, a slowly wandering level (+-15 %);
  - 5xx: a per-day baseline between 0.1 % and 0.5 % of requests, a few clusters a day of 3-10
    errors within a minute (a slow report timing out, a third-party API hiccup), and deploy
    blips on weekdays (5-30 s during which half to all requests fail, then two minutes of
    slower responses);
  - database: probe round trips of a few ms, 20-300 ms while the nightly dump runs, a failed
    probe (timeout) about twice a week; a connection pool following traffic; short
    transactions and now and then a report query of a few minutes;
  - nightly pg_dump at 02:00 (cron, 0-90 s jitter) of about 2 GB, 8-15 minutes, written in
    place under a name carrying its start time, sha256 sidecar written after it, 14 kept;
    one night (Thursday of the second week) the dump takes 3 h 20 min; the same script then
    uploads it off-site (1-6 min; about once a week the upload fails and the hourly retry
    job uploads it an hour later);
  - WAL archiving with archive_timeout = 5 min: a segment archived at least every 5 minutes
    while anything is written (1-3 s per upload), and about twice a week one failed attempt
    (a network hiccup) that PostgreSQL retries successfully a minute later;
  - job queues: a steady trickle on `default`; hourly bursts of 200-800 mails on `emails`
    plus a morning digest of 2,000-5,000 at 07:00, drained by workers at about 6 jobs/s;
    a few failed jobs a day kept in the failed registry; 2 live workers on `default` and 3 on
    `emails`, all restarted by every deploy (gone for 10-60 s, nothing processed meanwhile)
    and now and then one crashed and restarted by its supervisor; `emails` keeps a processed
    counter of its own (BullMQ with metrics), `default` has only its oldest-job age;
  - Web Vitals from 25 % of requests (page loads), mobile 60 %, three routes; LCP, INP and CLS
    drawn per page view (mobile slower); client errors about 0.5 % of page views plus a few
    bursts a week of one browser reporting 5-30 errors at once;
  - the exporter restarts once (Wednesday of the second week, 14:07:30, a package upgrade): one
    failed scrape, then every counter starts again from zero and the Web Vitals series come
    back one by one with their first observation;
  - a site probe every 15 s that times out about twice a week; a Let's Encrypt certificate
    renewed by certbot 30 days before it expires.
"""
from __future__ import annotations

import bisect
import math
import random
from array import array

DAY = 86400
WEEK = 7 * DAY
STEP = 15
JOB = "apphealth"
INSTANCE = "app1:10045"
NAN = float("nan")

# The exporter's own bucket layouts (exporter/src/...): kept in sync by hand, they only shape
# how observations are counted.
HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30]
DB_PROBE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
REDIS_PROBE_BUCKETS = DB_PROBE_BUCKETS
PROBE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30]
VITAL_BUCKETS = {
    "lcp": [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6, 8, 10, 15, 20, 30],
    "inp": [0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 2, 5],
    "cls": [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 1, 2],
}
VITAL_METRIC = {"lcp": "apphealth_web_vitals_lcp_seconds", "inp": "apphealth_web_vitals_inp_seconds",
                "cls": "apphealth_web_vitals_cls"}
ROUTES = [("/", 0.40), ("/tutors/:id", 0.45), ("other", 0.15)]
DEVICES = [("mobile", 0.6), ("desktop", 0.4)]


def at(weekday, clock):
    """Time of e.g. at("Tue", "15:03:20") in the measured (second) week."""
    day = 7 + "Mon Tue Wed Thu Fri Sat Sun".split().index(weekday)
    h, m, sec = (int(x) for x in (clock.split(":") + ["0"])[:3])
    return day * DAY + h * 3600 + m * 60 + sec


def fmt_le(b):
    """Bucket bounds as the exporter (prometheus-cpp) writes them: 1 -> "1", 0.5 -> "0.5"."""
    return "+Inf" if b == math.inf else ("%.17g" % b if b != int(b) else str(int(b)))


class Track:
    """One series: samples every `step` seconds from `start` (NaN: no sample). `is_time`: the
    values are timestamps (moved with the clock when a replay starts later than t = 0)."""
    __slots__ = ("step", "values", "start", "is_time")

    def __init__(self, step, n):
        self.step = step
        self.values = array("d", [NAN]) * n
        self.start, self.is_time = 0, False


def key(name, **labels):
    labels = {"job": JOB, "instance": INSTANCE, **labels}
    return name, tuple(sorted(labels.items()))


def poisson(rng, lam):
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def binomial(rng, n, p):
    if n <= 0 or p <= 0:
        return 0
    if p >= 1:
        return n
    if n > 50:
        mean, sd = n * p, math.sqrt(n * p * (1 - p))
        return min(n, max(0, int(round(rng.gauss(mean, sd)))))
    return sum(1 for _ in range(n) if rng.random() < p)


class Effect:
    """An injected change to the healthy world between t0 and t1 (incident scenarios)."""

    def __init__(self, kind, t0, t1, **params):
        self.kind, self.t0, self.t1, self.params = kind, t0, t1, params

    def active(self, t):
        return self.t0 <= t < self.t1


class World:
    """The site between `start` and `end` (seconds), with optional incident effects.

    `exporter` selects what the exporter exports where versions differ:
      "main-2024"   the exporter before issue 13 (pg_dump counted in the oldest transaction,
                    no backup-in-progress or SLO-objective series)
      "current"     this repository's exporter: backup tools excluded from the oldest
                    transaction, `apphealth_threshold_slo_objective` exported; backups as the
                    "in progress" contract of issue 9 describes when `backup_contract` is true
                    (otherwise as today's backup collector)
    """

    def __init__(self, start=0, end=2 * WEEK, seed=13, effects=(), exporter="current",
                 backup_contract=True, slo_objective=0.995):
        self.start, self.end, self.seed = start, end, seed
        self.effects = list(effects)
        self.exporter = exporter
        self.backup_contract = backup_contract and exporter != "main-2024"
        self.slo_objective = slo_objective if exporter != "main-2024" else None
        self._cache = {}
        # Exporter restarts: (time of the failed scrape, how long it was down). The healthy
        # world has one; the exporter-down scenario adds its own through an effect.
        self.restarts = [(WEEK + 2 * DAY + 14 * 3600 + 7 * 60 + 30, 15)]
        for e in self.effects:
            if e.kind == "exporter_down":
                self.restarts.append((e.t0, e.t1 - e.t0))

    # -- time -------------------------------------------------------------------------------
    def steps(self, step):
        first = -(-self.start // step)
        return range(first, self.end // step)

    def n(self, step):
        return len(self.steps(step))

    def index(self, t, step):
        return t // step - (-(-self.start // step))

    def rng(self, family, day):
        return random.Random("%d/%s/%d" % (self.seed, family, day))

    def effect(self, kind, t):
        for e in self.effects:
            if e.kind == kind and e.active(t):
                return e
        return None

    def scrape_failed(self, t, step):
        """The scrape at t fell into an exporter outage."""
        for t0, dur in self.restarts:
            if t0 <= t < t0 + max(dur, step):
                return True
        return False

    def restarted_between(self, t_prev, t):
        return any(t_prev < t0 + dur <= t for t0, dur in self.restarts)

    @staticmethod
    def hour(t):
        return (t % DAY) / 3600.0

    @staticmethod
    def weekday(t):
        return (t // DAY) % 7

    def traffic(self, t):
        """Requests per second of the whole site (expected value)."""
        h, wd = self.hour(t), self.weekday(t)
        if wd >= 5:  # weekends: later, lower
            h -= 1.0
        shape = (0.9 * math.exp(-((h - 11.0) / 3.0) ** 2) + 0.55 * math.exp(-((h - 15.5) / 2.5) ** 2)
                 + 0.85 * math.exp(-((h - 20.5) / 2.2) ** 2) + 0.012)
        level = 3.1 * shape * (0.6 if wd >= 5 else 1.0)
        return level * self._wander(t)

    def _wander(self, t):
        """A slowly wandering multiplicative level (+-15 %), smooth within the hour."""
        hour_index = int(t // 3600)
        a, b = self._level(hour_index), self._level(hour_index + 1)
        f = (t % 3600) / 3600.0
        return a + (b - a) * f

    def _level(self, hour_index):
        k = ("level", hour_index)
        if k not in self._cache:
            self._cache[k] = random.Random("%d/wander/%d" % (self.seed, hour_index)).uniform(0.85, 1.15)
        return self._cache[k]

    def backup_run(self, day):
        if ("backup", day) not in self._cache:
            self._cache[("backup", day)] = backup_runs(self, day)
        return self._cache[("backup", day)]

    def dumping(self, t):
        """The nightly dump running at t, if any."""
        day = t // DAY
        for r in (self.backup_run(day), self.backup_run(day - 1)):
            if r and r[0] <= t < r[1]:
                return r
        return None

    # -- families ---------------------------------------------------------------------------
    def family(self, name):
        k = ("family", name)
        if k not in self._cache:
            tracks = FAMILIES[name](self)
            for (metric, _), tr in tracks.items():
                tr.start = self.steps(tr.step)[0] * tr.step
                tr.is_time = metric.endswith("_timestamp_seconds")
            self._cache[k] = tracks
        return self._cache[k]

    def series(self, family_names):
        out = {}
        for f in family_names:
            out.update(self.family(f))
        return out


# ------------------------------------------------------------------------------------------
# Helpers shared by families
# ------------------------------------------------------------------------------------------
class Counters:
    """Counters of one exporter process: reset to 0 on restart, absent while scrapes fail.

    `lazy`: a series is only exported after its first increment (Web Vitals, client errors);
    otherwise it is exported from the first sample after (re)start.
    """

    def __init__(self, world, step, lazy=False):
        self.world, self.step, self.lazy = world, step, lazy
        self.tracks, self.totals, self.seen = {}, {}, set()
        self.histograms = []
        self.n = world.n(step)

    def track(self, k):
        tr = self.tracks.get(k)
        if tr is None:
            tr = self.tracks[k] = Track(self.step, self.n)
            self.totals[k] = 0.0
        return tr

    def reset(self):
        for k in self.totals:
            self.totals[k] = 0.0
        for h in self.histograms:
            h.reset()
        self.seen.clear()
        if not self.lazy:
            self.seen.update(self.tracks)

    def add(self, k, v):
        self.track(k)
        self.totals[k] += v
        if v:
            self.seen.add(k)

    def declare(self, k):
        """Eager series: exported (at 0) from the start."""
        self.track(k)
        if not self.lazy:
            self.seen.add(k)

    def emit(self, i, t):
        failed = self.world.scrape_failed(t, self.step)
        for h in self.histograms:
            h.flush()
        for k, tr in self.tracks.items():
            if failed or (self.lazy and k not in self.seen):
                continue
            tr.values[i] = self.totals[k]


def gauge_track(world, step, fn):
    """A gauge sampled every `step`: fn(t) -> value or None; absent while scrapes fail."""
    tr = Track(step, world.n(step))
    for i, s in enumerate(world.steps(step)):
        t = s * step
        if world.scrape_failed(t, step):
            continue
        v = fn(t)
        if v is not None:
            tr.values[i] = v
    return tr


class Histogram:
    """A histogram of one label set inside a Counters: observations go into per-bucket counts,
    made cumulative (`_bucket{le}`, `_count`, `_sum`) when a sample is emitted."""

    def __init__(self, counters, name, buckets, labels):
        self.buckets = buckets
        self.counters = counters
        self.keys = [key(name + "_bucket", le=fmt_le(b), **labels) for b in buckets]
        self.keys.append(key(name + "_bucket", le="+Inf", **labels))
        self.count_key = key(name + "_count", **labels)
        self.sum_key = key(name + "_sum", **labels)
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        counters.histograms.append(self)
        for k in self.keys + [self.count_key, self.sum_key]:
            counters.declare(k)

    def observe(self, value):
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        if self.counters.lazy:
            self.counters.seen.update(self.keys)
            self.counters.seen.add(self.count_key)
            self.counters.seen.add(self.sum_key)

    def reset(self):
        self.counts = [0] * len(self.counts)
        self.sum = 0.0

    def flush(self):
        totals = self.counters.totals
        acc = 0
        for k, c in zip(self.keys, self.counts):
            acc += c
            totals[k] = acc
        totals[self.count_key] = acc
        totals[self.sum_key] = self.sum


def finish(counters):
    return {k: tr for k, tr in counters.tracks.items()}


# ------------------------------------------------------------------------------------------
# Families. Each returns {series key: Track}.
# ------------------------------------------------------------------------------------------
FAMILIES = {}
# Which families an incident effect changes (an exporter outage changes them all).
EFFECT_FAMILIES = {
    "db_down": ["database"], "db_slow": ["database"], "db_conn_leak": ["database"],
    "redis_down": ["redis"], "workers_stalled": ["queues"], "workers_gone": ["queues"],
    "http_5xx": ["http"], "http_slow": ["http"], "site_down": ["probes"], "certbot_broken": ["probes"],
    "backup_not_run": ["backups", "database", "http"], "backup_unmounted": ["backups"],
    # A killed dump also ends the dump's load on the database and the site early: less load
    # pages nobody, so only the backup series are replayed.
    "backup_killed": ["backups"], "wal_archive_broken": ["wal"],
    "offsite_broken": ["backups"],
    "lcp_poor": ["vitals"], "inp_poor": ["vitals"], "client_errors": ["vitals"], "beacons_blocked": ["vitals"],
    "exporter_down": None,
}


def family(name):
    def register(fn):
        FAMILIES[name] = fn
        return fn
    return register


def deploys(world, day):
    """Deploy times of a day: weekdays, working hours; (time, blip seconds, failing share)."""
    wd = day % 7
    if wd >= 5:
        return []
    rng = world.rng("deploys", day)
    count = poisson(rng, 0.8 if wd == 4 else 1.5)
    out = []
    for _ in range(count):
        t = day * DAY + int(rng.uniform(10, 17.5) * 3600)
        out.append((t, rng.uniform(5, 30), rng.uniform(0.5, 1.0)))
    if rng.random() < 0.15:  # an evening hotfix
        out.append((day * DAY + int(rng.uniform(19, 22) * 3600), rng.uniform(5, 30), rng.uniform(0.5, 1.0)))
    return out


def backup_runs(world, day):
    """The nightly dump of `day`: (start, end, final size bytes, complete); the slow night is
    slower; a killed dump (effect `backup_killed`) stops at 40 % and stays as it is."""
    rng = world.rng("backup", day)
    start = day * DAY + 2 * 3600 + int(rng.uniform(0, 90))
    size = 2.1e9 * (1 + 0.003 * day) * rng.uniform(0.995, 1.005)
    duration = rng.uniform(8, 15) * 60
    if day == 10:  # Thursday of the second week: I/O contention on the host, 3 h 20 min
        duration = 3 * 3600 + 20 * 60
    if world.effect("backup_not_run", start):
        return None
    if world.effect("backup_killed", start):
        return (start, start + int(duration * 0.4), size * 0.4, False)
    return (start, start + int(duration), size, True)


def offsite_upload(world, day):
    """When the off-site copy of `day`'s dump is complete (None: no dump). The backup script
    uploads right after the dump (1-6 min); about once a week that upload fails and the hourly
    retry job uploads it at the next full hour."""
    r = world.backup_run(day)
    if not r:
        return None
    rng = world.rng("offsite", day)
    done = r[1] + 40 + int(rng.uniform(60, 360))
    if rng.random() < 1 / 7:
        done = done - done % 3600 + 3600 + int(rng.uniform(60, 360))
    broken = world.effect("offsite_broken", r[1])
    if broken:  # every upload fails until the effect ends; the next hourly retry succeeds
        done = broken.t1 - broken.t1 % 3600 + 3600 + int(rng.uniform(60, 360))
    return done


def report_queries(world, day):
    """Long report queries of a day: (start, duration seconds)."""
    rng = world.rng("reports", day)
    out = []
    for _ in range(poisson(rng, 2.0 if day % 7 < 5 else 0.5)):
        out.append((day * DAY + int(rng.uniform(9, 18) * 3600), rng.uniform(60, 600)))
    return out


def flaky_times(world, family, day, per_week):
    """Scrape times of a day at which a collector's sample failed (a timeout)."""
    rng = world.rng(family + "-flaky", day)
    return {(day * DAY + int(rng.uniform(0, DAY))) // STEP * STEP for _ in range(poisson(rng, per_week / 7))}


class Days:
    """Per-day state of a family, made on first use (one RNG and the day's events)."""

    def __init__(self, make):
        self.make, self.day, self.state = make, None, None

    def at(self, t):
        day = t // DAY
        if day != self.day:
            self.day, self.state = day, self.make(day)
        return self.state


@family("http")
def _http(world):
    """Access log `web`: requests by method and class, request durations."""
    step = STEP
    c = Counters(world, step)
    log = "web"
    req = {(m, cls): key("apphealth_http_requests_total", log=log, method=m, code_class=cls)
           for m in ("GET", "POST") for cls in ("1xx", "2xx", "3xx", "4xx", "5xx")}
    for k in req.values():
        c.declare(k)
    hist = Histogram(c, "apphealth_http_request_duration_seconds", HTTP_BUCKETS, {"log": log})

    def make(day):
        rng = world.rng("http", day)
        base5xx = rng.uniform(0.001, 0.005)
        clusters = [(day * DAY + int(rng.uniform(0, DAY)), rng.randint(3, 10)) for _ in range(poisson(rng, 3))]
        return rng, base5xx, clusters, deploys(world, day)

    days = Days(make)
    t_prev = None
    mu = math.log(0.08)
    for i, s in enumerate(world.steps(step)):
        t = s * step
        rng, base5xx, clusters, deps = days.at(t)
        if t_prev is not None and world.restarted_between(t_prev, t):
            c.reset()
        t_prev = t
        n = poisson(rng, world.traffic(t) * step)
        p5, slow = base5xx, 1.0
        for dt, blip, share in deps:
            if dt <= t < dt + blip:
                p5 = max(p5, share * min(1.0, (dt + blip - t) / step))
            if dt <= t < dt + 120:
                slow = 2.0
        e = world.effect("http_5xx", t)
        if e:
            p5 = max(p5, e.params["share"])
        e = world.effect("http_slow", t)
        if e:
            slow *= e.params["factor"]
        if world.dumping(t):
            slow *= 1.3
        fails = binomial(rng, n, p5)
        extra = sum(k for ct, k in clusters if ct <= t < ct + step)
        n_get, f_get = binomial(rng, n, 0.85), binomial(rng, fails, 0.85)
        for m, nm, f in (("GET", n_get, min(f_get, n_get) + extra), ("POST", n - n_get, min(fails - f_get, n - n_get))):
            rest = max(0, nm - f)
            r3 = binomial(rng, rest, 0.05)
            r4 = binomial(rng, rest - r3, 0.04)
            c.add(req[(m, "5xx")], f)
            c.add(req[(m, "3xx")], r3)
            c.add(req[(m, "4xx")], r4)
            c.add(req[(m, "2xx")], rest - r3 - r4)
        for _ in range(n + extra):
            hist.observe(slow * rng.lognormvariate(mu, 0.9))
        c.emit(i, t)
    out = finish(c)
    out[key("apphealth_threshold_http_error_ratio", log=log)] = gauge_track(world, step, lambda t: 0.05)
    out[key("apphealth_threshold_http_latency_seconds", log=log)] = gauge_track(world, step, lambda t: 2.0)
    if world.slo_objective is not None:
        out[key("apphealth_threshold_slo_objective", log=log)] = gauge_track(world, step, lambda t: world.slo_objective)
    return out


@family("up")
def _up(world):
    tr = Track(STEP, world.n(STEP))
    for i, s in enumerate(world.steps(STEP)):
        t = s * STEP
        tr.values[i] = 0.0 if world.scrape_failed(t, STEP) else 1.0
    return {("up", (("instance", INSTANCE), ("job", JOB))): tr}


@family("database")
def _database(world):
    step = STEP
    c = Counters(world, step)
    labels = {"target": "main"}
    hist = Histogram(c, "apphealth_db_probe_duration_seconds", DB_PROBE_BUCKETS, labels)
    n = world.n(step)
    up, coll_up, last_ok, maxc, oldest, thr = (Track(step, n) for _ in range(6))
    conns = {s: Track(step, n) for s in ("active", "idle", "idle_in_transaction")}
    days = Days(lambda day: (world.rng("database", day), flaky_times(world, "database", day, 2),
                             report_queries(world, day)))
    t_prev, last_success = None, 0.0
    for i, s in enumerate(world.steps(step)):
        t = s * step
        rng, flaky, reports = days.at(t)
        if t_prev is not None and world.restarted_between(t_prev, t):
            c.reset()
        t_prev = t
        ok = world.effect("db_down", t) is None and t not in flaky
        dump = world.dumping(t)
        if ok:
            med, sig = (0.03, 1.0) if dump else (0.002, 0.5)
            e = world.effect("db_slow", t)
            if e:
                med = e.params["seconds"]
            hist.observe(rng.lognormvariate(math.log(med), sig))
            last_success = t - rng.uniform(0, step)
        c.emit(i, t)
        if world.scrape_failed(t, step):
            continue
        up.values[i] = coll_up.values[i] = 1.0 if ok else 0.0
        last_ok.values[i] = last_success
        thr.values[i] = 1.0
        if ok:  # the statistics queries only run after a successful probe
            load = world.traffic(t) / 3.0
            leak = world.effect("db_conn_leak", t)
            extra = 0 if not leak else min(99, int((t - leak.t0) / leak.params["seconds_per_conn"]))
            active = max(0, round(2 + 12 * load + rng.gauss(0, 1.5)))
            intx = max(0, round(rng.gauss(0.3, 0.6)))
            conns["active"].values[i] = active
            conns["idle_in_transaction"].values[i] = intx + extra
            conns["idle"].values[i] = max(0, 20 - active - intx) + 4
            maxc.values[i] = 100
            age = rng.uniform(0, 2)
            for rs, rd in reports:
                if rs <= t < rs + rd:
                    age = max(age, t - rs)
            if dump and world.exporter == "main-2024":  # pg_dump's own transaction
                age = max(age, t - dump[0])
            oldest.values[i] = age
    out = finish(c)
    out.update({
        key("apphealth_db_up", **labels): up,
        key("apphealth_collector_up", collector="postgres", **labels): coll_up,
        key("apphealth_collector_last_success_timestamp_seconds", collector="postgres", **labels): last_ok,
        key("apphealth_db_max_connections", **labels): maxc,
        key("apphealth_db_oldest_transaction_age_seconds", **labels): oldest,
        key("apphealth_threshold_db_probe_latency_seconds", **labels): thr,
    })
    for st, tr in conns.items():
        out[key("apphealth_db_connections", state=st, **labels)] = tr
    return out


@family("redis")
def _redis(world):
    step = STEP
    c = Counters(world, step)
    labels = {"target": "jobs"}
    hist = Histogram(c, "apphealth_redis_probe_duration_seconds", REDIS_PROBE_BUCKETS, labels)
    n = world.n(step)
    up, coll_up, last_ok = (Track(step, n) for _ in range(3))
    days = Days(lambda day: (world.rng("redis", day), flaky_times(world, "redis", day, 0.5)))
    t_prev, last_success = None, 0.0
    mu = math.log(0.0004)
    for i, s in enumerate(world.steps(step)):
        t = s * step
        rng, flaky = days.at(t)
        if t_prev is not None and world.restarted_between(t_prev, t):
            c.reset()
        t_prev = t
        ok = world.effect("redis_down", t) is None and t not in flaky
        if ok:
            hist.observe(rng.lognormvariate(mu, 0.4))
            last_success = t - rng.uniform(0, step)
        c.emit(i, t)
        if world.scrape_failed(t, step):
            continue
        up.values[i] = coll_up.values[i] = 1.0 if ok else 0.0
        last_ok.values[i] = last_success
    out = finish(c)
    out[key("apphealth_redis_up", **labels)] = up
    out[key("apphealth_collector_up", collector="redis", **labels)] = coll_up
    out[key("apphealth_collector_last_success_timestamp_seconds", collector="redis", **labels)] = last_ok
    return out


@family("queues")
def _queues(world):
    """Redis queues of target `jobs`: `default` (trickle) and `emails` (bursts), and the
    Laravel app's `mail` (below, in _laravel_queue).

    Effects: `workers_stalled` (every worker of the queues hangs on a job: alive, busy,
    finishing nothing) and `workers_gone` (the workers are not running: killed, or not
    restarted after a deploy)."""
    step = STEP
    n = world.n(step)
    tr = {}

    def track(name, **labels):
        k = key(name, target="jobs", **labels)
        if k not in tr:
            tr[k] = Track(step, n)
        return tr[k]

    queues = {"default": [], "emails": []}  # FIFO of [enqueue time, jobs]
    failed = {"default": 0, "emails": 0}
    capacity = {"default": 3.0, "emails": 6.0}  # jobs/s the workers process
    workers = {"default": 2, "emails": 3}
    processed = {"default": 0, "emails": 0}  # the framework's own counter (emails only exports it)

    def make(day):
        rng = world.rng("queues", day)
        bursts = [(day * DAY + h * 3600 + int(rng.uniform(0, 30)), rng.randint(200, 800)) for h in range(24)]
        bursts.append((day * DAY + 7 * 3600 + 60, rng.randint(2000, 5000)))  # the morning digest
        if day % 7 == 0:  # weekly cleanup of the failed registry
            failed["default"] = failed["emails"] = 0
        wrng = world.rng("queue-workers", day)
        # Every deploy restarts all workers: none runs for 10-60 s. A worker crash (out of
        # memory) about every other day: that one is back 5-30 s later.
        restarts = [(t, t + wrng.uniform(10, 60), None) for t, _, _ in deploys(world, day)]
        for _ in range(poisson(wrng, 0.5)):
            t = day * DAY + int(wrng.uniform(0, DAY))
            restarts.append((t, t + wrng.uniform(5, 30), wrng.choice(sorted(workers))))
        return rng, bursts, restarts

    days = Days(make)
    for i, s in enumerate(world.steps(step)):
        t = s * step
        rng, bursts, restarts = days.at(t)
        arrivals = {"default": poisson(rng, world.traffic(t) * 0.2 * step),
                    "emails": sum(k for bt, k in bursts if t - step < bt <= t) + poisson(rng, 0.02 * step)}
        stalled = world.effect("workers_stalled", t)
        gone = world.effect("workers_gone", t)
        live = {}
        for q in queues:
            live[q] = workers[q]
            for t0, t1, which in restarts:
                if t0 <= t < t1 and which in (None, q):
                    live[q] = 0 if which is None else max(0, live[q] - 1)
            if gone and q in gone.params["queues"]:
                live[q] = 0
        for q, fifo in queues.items():
            if arrivals[q]:
                fifo.append([t - rng.uniform(0, step), arrivals[q]])
            hung = stalled and q in stalled.params["queues"]
            done = 0 if hung else int(capacity[q] * live[q] / workers[q] * step * rng.uniform(0.8, 1.1))
            while done and fifo:
                take = min(done, fifo[0][1])
                fifo[0][1] -= take
                done -= take
                processed[q] += take
                if rng.random() < 0.0005 * take:
                    failed[q] += 1
                if fifo[0][1] == 0:
                    fifo.pop(0)
        if world.scrape_failed(t, step):
            continue
        for q, fifo in queues.items():
            waiting = sum(x[1] for x in fifo)
            track("apphealth_queue_jobs", queue=q, state="waiting").values[i] = waiting
            hung = stalled and q in stalled.params["queues"]
            track("apphealth_queue_jobs", queue=q, state="active").values[i] = live[q] if hung else min(waiting, live[q])
            track("apphealth_queue_workers", queue=q).values[i] = live[q]
            if q == "emails":
                track("apphealth_queue_jobs_processed_total", queue=q).values[i] = processed[q]
            track("apphealth_queue_jobs", queue=q, state="failed").values[i] = failed[q]
            track("apphealth_queue_oldest_job_age_seconds", queue=q).values[i] = (t - fifo[0][0]) if fifo else 0
            track("apphealth_threshold_queue_jobs", queue=q, state="waiting").values[i] = 1000
            track("apphealth_threshold_queue_jobs", queue=q, state="failed").values[i] = 100
    tr.update(_laravel_queue(world))
    return tr


def _laravel_queue(world):
    """Queue `mail` of a Laravel app before 12 (Debian's 8.83) on the same Redis (target `jobs`):
    what the exporter reads of it is waiting, delayed and active (the `:reserved` zset), and
    nothing else: no enqueue time (no age), no worker trace (`queue:work` leaves none), no
    counter. Mails follow the site's traffic (sign-ups, resets, notifications: a tenth of the
    request rate), plus the weekday newsletter at 09:30 (1,500-4,000 mails); two `queue:work`
    processes send about 1.5 mails/s each. They restart after every deploy (`queue:restart`:
    each finishes its mail, exits, and Supervisor starts it again 2-6 s later) and every hour
    (`--max-time=3600`, 1-3 s). The team set the waiting threshold above the newsletter (5,000).

    Effect: `workers_gone` with "mail" in its queues (Supervisor gave up on the workers)."""
    step = STEP
    n = world.n(step)
    tr = {}

    def track(name, **labels):
        k = key(name, target="jobs", queue="mail", **labels)
        if k not in tr:
            tr[k] = Track(step, n)
        return tr[k]

    workers, per_worker = 2, 1.5
    waiting = 0

    def make(day):
        rng = world.rng("laravel-queue", day)
        newsletter = day * DAY + 9 * 3600 + 1800 + int(rng.uniform(0, 60)) if day % 7 < 5 else None
        size = rng.randint(1500, 4000)
        # (start, end) of each worker's absences: deploys for both, hourly restarts for one.
        down = [[], []]
        for t, _, _ in deploys(world, day):
            for w in range(workers):
                t0 = t + rng.uniform(0, 3)
                down[w].append((t0, t0 + rng.uniform(2, 6)))
        for w in range(workers):
            offset = rng.uniform(0, 3600)
            for h in range(24):
                t0 = day * DAY + h * 3600 + offset
                down[w].append((t0, t0 + rng.uniform(1, 3)))
        return rng, newsletter, size, down

    days = Days(make)
    for i, s in enumerate(world.steps(step)):
        t = s * step
        rng, newsletter, size, down = days.at(t)
        gone = world.effect("workers_gone", t)
        stopped = gone is not None and "mail" in gone.params["queues"]
        # Share of the step each worker was running.
        up = []
        for w in range(workers):
            lost = sum(max(0.0, min(t, t1) - max(t - step, t0)) for t0, t1 in down[w])
            up.append(0.0 if stopped else max(0.0, 1.0 - lost / step))
        arrivals = poisson(rng, world.traffic(t) * 0.1 * step)
        if newsletter is not None and t - step < newsletter <= t:
            arrivals += size
        capacity = sum(up) * per_worker * step * rng.uniform(0.85, 1.1)
        offered = waiting + arrivals
        sent = min(offered, int(capacity))
        waiting = offered - sent
        if world.scrape_failed(t, step):
            continue
        live = [w for w in range(workers) if not stopped and not any(t0 <= t < t1 for t0, t1 in down[w])]
        if waiting > 0:
            active = len(live)
        else:  # a worker is sending at the scrape with the probability of its share of the load
            busy = min(1.0, offered / max(1.0, per_worker * step * workers))
            active = sum(1 for _ in live if rng.random() < busy)
        track("apphealth_queue_jobs", state="waiting").values[i] = waiting
        track("apphealth_queue_jobs", state="active").values[i] = active
        track("apphealth_queue_jobs", state="delayed").values[i] = 20 + poisson(rng, 30)  # reminders
        track("apphealth_threshold_queue_jobs", state="waiting").values[i] = 5000
    return tr


@family("backups")
def _backups(world):
    """Backup `nightly`, sampled every 60 s by the exporter (scraped every 15 s)."""
    step = STEP
    n = world.n(step)
    names = ["apphealth_backup_last_timestamp_seconds", "apphealth_backup_last_size_bytes",
             "apphealth_backup_previous_size_bytes", "apphealth_backup_files", "apphealth_backup_verified",
             "apphealth_threshold_backup_max_age_seconds", "apphealth_collector_up",
             "apphealth_collector_last_success_timestamp_seconds"]
    if world.backup_contract:
        # Issue 9's exporter: in progress, completeness, retention (keep_daily: 7, max_age:
        # 16d) and the off-site copy (entry `offsite`, offsite_of: nightly, offsite_delay: 2h).
        names += ["apphealth_backup_in_progress", "apphealth_backup_complete", "apphealth_backup_oldest_timestamp_seconds",
                  "apphealth_threshold_backup_retention_max_age_seconds"]
    tr = {nm: Track(step, n) for nm in names}
    periods, periods_thr = Track(step, n), Track(step, n)
    offsite = {nm: Track(step, n) for nm in ("apphealth_backup_offsite_match", "apphealth_backup_offsite_source_timestamp_seconds",
                                            "apphealth_threshold_backup_offsite_delay_seconds")}
    def runs_until(t):
        """Complete and in-progress dumps that exist at t, oldest first (14 kept)."""
        out = []
        for d in range(t // DAY - 15, t // DAY + 1):
            r = world.backup_run(d)
            if r and r[0] <= t:
                out.append(r)
        return out

    for i, s in enumerate(world.steps(step)):
        t = s * step
        if world.scrape_failed(t, step):
            continue
        ts = t - t % 60  # the collector's last sample
        runs = runs_until(ts)
        if world.effect("backup_unmounted", t):
            runs = []
        # The sidecar is written 20-40 s after the dump ends; retention runs after it.
        complete = [r for r in runs if r[1] + 40 <= ts]
        writing = [r for r in runs if r not in complete]
        kept = complete[-14:]
        files = len(kept) + len(writing)
        vals = {"apphealth_backup_files": files, "apphealth_threshold_backup_max_age_seconds": 26 * 3600,
                "apphealth_collector_up": 1, "apphealth_collector_last_success_timestamp_seconds": ts}
        if world.backup_contract:
            # In progress while the newest file was modified within the settle time (5 min);
            # meanwhile the newest complete backup drives the other metrics.
            settling = [r for r in runs if ts < r[1] + 300]
            vals["apphealth_backup_in_progress"] = 1 if settling else 0
            done = [r for r in runs if r not in settling]
            newest = done[-1] if done else None
            prev = done[-2] if len(done) > 1 else None
            size = newest[2] if newest else None
            # A killed dump gets no sidecar (the script stops at the failed pg_dump).
            verified = 1 if not newest or newest[3] else 0
            vals["apphealth_threshold_backup_retention_max_age_seconds"] = 16 * DAY
            periods_thr.values[i] = 7
            if newest:
                vals["apphealth_backup_complete"] = 1 if newest[3] else 0
                # Only a finished dump is uploaded (the script stops at a failed pg_dump).
                up = offsite_upload(world, newest[0] // DAY) if newest[3] else None
                offsite["apphealth_backup_offsite_match"].values[i] = 1 if up is not None and up <= ts else 0
                offsite["apphealth_backup_offsite_source_timestamp_seconds"].values[i] = newest[1]
                offsite["apphealth_threshold_backup_offsite_delay_seconds"].values[i] = 7200
            present = kept + writing
            if present:
                vals["apphealth_backup_oldest_timestamp_seconds"] = present[0][0]
                periods.values[i] = len({r[0] // DAY for r in present})
        else:
            newest = runs[-1] if runs else None
            prev = runs[-2] if len(runs) > 1 else None
            if newest and newest in writing:
                size = newest[2] * min(1.0, (ts - newest[0]) / max(1, newest[1] - newest[0]))
                verified = 0 if ts < newest[1] + 30 else 1
            else:
                size = newest[2] if newest else None
                verified = 1
        if newest:
            vals["apphealth_backup_last_timestamp_seconds"] = newest[0]
            vals["apphealth_backup_last_size_bytes"] = size
            vals["apphealth_backup_verified"] = verified
        if prev:
            vals["apphealth_backup_previous_size_bytes"] = prev[2]
        for nm, v in vals.items():
            tr[nm].values[i] = v
    out = {}
    for nm, track in tr.items():
        if nm.startswith("apphealth_collector"):
            out[key(nm, collector="backup", target="nightly")] = track
        elif nm.startswith("apphealth_threshold") or nm.startswith("apphealth_backup"):
            out[key(nm, backup="nightly")] = track
    if world.backup_contract:
        out[key("apphealth_backup_retention_periods", backup="nightly", period="daily")] = periods
        out[key("apphealth_threshold_backup_retention_periods", backup="nightly", period="daily")] = periods_thr
        for nm, track in offsite.items():
            out[key(nm, backup="offsite")] = track
    return out




@family("wal")
def _wal(world):
    """WAL archiving of PostgreSQL `main` (pg_stat_archiver, sampled with the database every
    15 s): archive_timeout 5 min, 16 MB segments; writes follow traffic (a fifth of requests
    write, about 8 kB of WAL each, plus a checkpoint's records every 5 min while anything is
    written). An upload takes 1-3 s. About twice a week one attempt fails (a network hiccup):
    PostgreSQL retries three times a second apart, then after a minute, and that succeeds.
    Effect `wal_archive_broken`: every attempt fails (destination full, expired credentials)."""
    step = STEP
    n = world.n(step)
    seg = 16 * 2 ** 20
    mode, last_ok, last_fail, unarchived, rpo = (Track(step, n) for _ in range(5))
    c = Counters(world, step)
    k_archived = key("apphealth_db_wal_archived_total", target="main")
    k_failed = key("apphealth_db_wal_archive_failures_total", target="main")
    c.declare(k_archived)
    c.declare(k_failed)
    def make(day):
        rng = world.rng("wal", day)
        return rng, sorted(day * DAY + rng.uniform(0, DAY) for _ in range(poisson(rng, 2 / 7)))

    days = Days(make)
    lsn = 0.0              # bytes of WAL written, from the start of segment 0
    archived_end = 0.0     # end of the last archived segment
    pending = []           # ends of finished segments waiting to be archived
    switched_at = 0.0      # last segment switch (archive_timeout counts from it)
    ok_time, fail_time = NAN, NAN
    retry_at = None
    hiccup_due = False     # the next attempt fails once
    for i, s in enumerate(world.steps(step)):
        t = s * step
        rng, hiccups = days.at(t)
        # pg_stat_archiver's counters are PostgreSQL's: an exporter restart does not reset them.
        if any(t - step < h <= t for h in hiccups):
            hiccup_due = True
        written = poisson(rng, world.traffic(t) * step * 0.2) * 8192
        if written and int(t) % 300 < step:
            written += 16384  # the checkpoint's records
        lsn += written
        # Full segments, and archive_timeout: a switch when anything was written in 5 min.
        while lsn >= (max(archived_end, pending[-1] if pending else 0.0) // seg + 1) * seg:
            end = (max(archived_end, pending[-1] if pending else 0.0) // seg + 1) * seg
            pending.append(end)
            switched_at = t
        if t - switched_at >= 300 and lsn > max(archived_end, pending[-1] if pending else 0.0):
            pending.append(lsn)  # the switch ends the segment here
            switched_at = t
        broken = world.effect("wal_archive_broken", t)
        if pending and (retry_at is None or t >= retry_at):
            if broken or hiccup_due:
                hiccup_due = False
                c.add(k_failed, 3)
                fail_time = t + rng.uniform(0, 3)
                retry_at = t + 60
            else:
                c.add(k_archived, len(pending))
                archived_end = pending[-1]
                pending = []
                ok_time = t + rng.uniform(1, 3)
                retry_at = None
        c.emit(i, t)
        if world.scrape_failed(t, step):
            continue
        mode.values[i] = 1
        rpo.values[i] = 900
        if not math.isnan(ok_time):
            last_ok.values[i] = ok_time
        if not math.isnan(fail_time):
            last_fail.values[i] = fail_time
        unarchived.values[i] = lsn - archived_end
    out = finish(c)
    out.update({
        key("apphealth_db_wal_archive_mode", target="main"): mode,
        key("apphealth_db_wal_last_archived_timestamp_seconds", target="main"): last_ok,
        key("apphealth_db_wal_last_archive_failure_timestamp_seconds", target="main"): last_fail,
        key("apphealth_db_wal_unarchived_bytes", target="main"): unarchived,
        key("apphealth_threshold_db_wal_rpo_seconds", target="main"): rpo,
    })
    return out


@family("probes")
def _probes(world):
    step = STEP
    c = Counters(world, step)
    labels = {"probe": "site"}
    hist = Histogram(c, "apphealth_probe_duration_seconds", PROBE_BUCKETS, labels)
    n = world.n(step)
    ok_tr, code_tr, cert_tr = (Track(step, n) for _ in range(3))
    days = Days(lambda day: (world.rng("probes", day), flaky_times(world, "probe", day, 2)))
    t_prev = None
    mu = math.log(0.12)
    for i, s in enumerate(world.steps(step)):
        t = s * step
        rng, flaky = days.at(t)
        if t_prev is not None and world.restarted_between(t_prev, t):
            c.reset()
        t_prev = t
        ok = world.effect("site_down", t) is None and t not in flaky
        hist.observe(rng.lognormvariate(mu, 0.4) if ok else 5.0)
        c.emit(i, t)
        if world.scrape_failed(t, step):
            continue
        ok_tr.values[i] = 1 if ok else 0
        code_tr.values[i] = 200 if ok else 0
        # Let's Encrypt: 90-day certificates, renewed by certbot 30 days before they expire.
        # The first one of the world expires on day 38. While certbot is broken, the
        # certificate it failed to renew stays.
        broken = world.effect("certbot_broken", t)
        if broken:
            expiry = broken.params["expiry"]
        else:
            expiry = 38 * DAY
            while expiry - t < 30 * DAY:
                expiry += 60 * DAY
        cert_tr.values[i] = expiry
    out = finish(c)
    out[key("apphealth_probe_success", **labels)] = ok_tr
    out[key("apphealth_probe_http_status_code", **labels)] = code_tr
    out[key("apphealth_probe_ssl_earliest_cert_expiry_timestamp_seconds", **labels)] = cert_tr
    out[key("apphealth_collector_up", collector="http_probe", target="site")] = gauge_track(world, step, lambda t: 1)
    return out


@family("vitals")
def _vitals(world):
    """Beacons: Web Vitals histograms, page views and client errors (scraped every 60 s)."""
    step = 60
    c = Counters(world, step, lazy=True)
    combos = [(r, d) for r, _ in ROUTES for d, _ in DEVICES]
    views_key = {cd: key("apphealth_web_vitals_page_views_total", route=cd[0], device=cd[1]) for cd in combos}
    hists = {(v, cd): Histogram(c, VITAL_METRIC[v], VITAL_BUCKETS[v], {"route": cd[0], "device": cd[1]})
             for v in VITAL_METRIC for cd in combos}
    err_key = {(r, lvl): key("apphealth_client_errors_total", route=r, level=lvl, severity="error")
               for r, _ in ROUTES for lvl in ("global", "page", "component")}
    route_cum = [ROUTES[0][1], ROUTES[0][1] + ROUTES[1][1]]
    levels = ["global", "page", "component", "component"]

    def make(day):
        rng = world.rng("vitals", day)
        # A few times a week one browser (an extension, a flaky network) reports a burst.
        bursts = [(day * DAY + int(rng.uniform(0, DAY)) // 60 * 60, rng.randint(5, 30)) for _ in range(poisson(rng, 0.5))]
        return rng, bursts

    days = Days(make)
    t_prev = None
    for i, s in enumerate(world.steps(step)):
        t = s * step
        rng, bursts = days.at(t)
        if t_prev is not None and world.restarted_between(t_prev, t):
            c.reset()
        t_prev = t
        blocked = world.effect("beacons_blocked", t) is not None
        views = 0 if blocked else poisson(rng, world.traffic(t) * 0.25 * step)
        lcp_e, inp_e, err_e = world.effect("lcp_poor", t), world.effect("inp_poor", t), world.effect("client_errors", t)
        for _ in range(views):
            r = rng.random()
            route = ROUTES[0][0] if r < route_cum[0] else (ROUTES[1][0] if r < route_cum[1] else ROUTES[2][0])
            device = "mobile" if rng.random() < DEVICES[0][1] else "desktop"
            cd = (route, device)
            mobile = device == "mobile"
            c.add(views_key[cd], 1)
            lcp_med = 2.3 if mobile else 1.5
            inp_med = 0.13 if mobile else 0.06
            if lcp_e and cd == (lcp_e.params["route"], lcp_e.params["device"]):
                lcp_med = lcp_e.params["median"]
            if inp_e and cd == (inp_e.params["route"], inp_e.params["device"]):
                inp_med = inp_e.params["median"]
            if rng.random() < 0.95:
                hists[("lcp", cd)].observe(rng.lognormvariate(math.log(lcp_med), 0.45))
            if rng.random() < 0.6:
                hists[("inp", cd)].observe(rng.lognormvariate(math.log(inp_med), 0.7))
            hists[("cls", cd)].observe(0.0 if rng.random() < 0.5 else rng.lognormvariate(math.log(0.04), 1.0))
            if rng.random() < (err_e.params["rate"] if err_e else 0.005):
                c.add(err_key[(route, rng.choice(levels))], 1)
        for bt, k in bursts:
            if bt == t and not blocked:
                c.add(err_key[("/tutors/:id", "component")], k)
        c.emit(i, t)
    return finish(c)


@family("collectors")
def _collectors(world):
    """Health of the collectors no other family reports (access log)."""
    out = {}
    out[key("apphealth_collector_up", collector="access_log", target="web")] = gauge_track(world, STEP, lambda t: 1)
    out[key("apphealth_collector_last_success_timestamp_seconds", collector="access_log", target="web")] = \
        gauge_track(world, STEP, lambda t: t - 0.5)
    return out
