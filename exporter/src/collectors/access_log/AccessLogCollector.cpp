#include "collectors/access_log/AccessLogCollector.h"

#include <prometheus/histogram.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <vector>

#include "collectors/access_log/AccessLogTailer.h"
#include "collectors/access_log/AccessLogParser.h"
#include "metrics/HistogramQuantile.h"
#include "routes/RoutePatterns.h"

namespace apphealth {

namespace {

// Include the default 2 s latency threshold; the configured one is added when different.
const std::vector<double> kDurationBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30};

prometheus::Histogram::BucketBoundaries durationBuckets(double threshold) {
  auto buckets = kDurationBuckets;
  if (std::find(buckets.begin(), buckets.end(), threshold) == buckets.end()) {
    buckets.insert(std::upper_bound(buckets.begin(), buckets.end(), threshold), threshold);
  }
  return buckets;
}

// Everything that decides what a line counts as; thresholds and the interval may change on
// reload without starting over.
std::string stateKey(const AccessLogTarget& t) {
  std::string key = t.name + '\n' + t.path + '\n' + formatName(t.format) + '\n' + (t.start_at_beginning ? "b" : "e");
  if (t.format == AccessLogFormat::Json) {
    const auto& f = t.json_fields;
    key += '\n' + f.method + '\n' + f.status + '\n' + f.path + '\n' + f.request + '\n' + f.request_time + '\n' +
           std::to_string(t.request_time_scale);
  }
  key += "\nbuckets";
  if (t.hasRequestTime()) {
    for (double b : durationBuckets(t.latency_threshold_seconds)) key += ' ' + std::to_string(b);
  }
  key += "\nroutes";
  for (const auto& r : t.routes) key += '\n' + r;
  return key;
}

}  // namespace

struct AccessLogState {
  explicit AccessLogState(const AccessLogTarget& t)
      : tailer({.path = t.path, .start_at_beginning = t.start_at_beginning}),
        parser(t),
        routes(t.routes),
        withRoutes(!t.routes.empty()),
        withDuration(t.hasRequestTime()),
        duration(durationBuckets(t.latency_threshold_seconds)),
        requests(kHttpMethodCount * routes.labelCount() * kCodeClassCount, 0),
        seen(kHttpMethodCount * routes.labelCount(), false) {}

  std::mutex mutex;
  AccessLogTailer tailer;
  AccessLogParser parser;
  RoutePatterns routes;
  const bool withRoutes;
  const bool withDuration;
  prometheus::Histogram duration;
  // Flat [method][route][code class] counters; `seen` marks the (method, route) pairs to export.
  std::vector<std::uint64_t> requests;
  std::vector<bool> seen;
  std::uint64_t parsed = 0;
  std::uint64_t unparsable = 0;
  std::uint64_t oversizedCounted = 0;
  // Totals at each sample of the last 5 minutes (and the one just before), for the status
  // page's windowed 5xx share and p95, the windows the HTTP alerts use.
  struct WindowPoint {
    std::chrono::steady_clock::time_point at;
    double requests = 0, errors = 0;
    std::vector<BucketCount> buckets;
  };
  std::deque<WindowPoint> window;
  bool missingLogged = false;
  bool wasFollowing = false;
  std::uint64_t rotationsLogged = 0, truncationsLogged = 0;

  // Adds this sample's totals; returns the 5xx share and the p95 over the last 5 minutes.
  std::pair<double, double> windowed() {
    WindowPoint now{std::chrono::steady_clock::now(), 0, 0, {}};
    for (std::size_t i = 0; i < requests.size(); ++i) {
      now.requests += static_cast<double>(requests[i]);
      if (i % kCodeClassCount == 4) now.errors += static_cast<double>(requests[i]);
    }
    if (withDuration) {
      for (const auto& b : duration.Collect().histogram.bucket) now.buckets.push_back({b.upper_bound, static_cast<double>(b.cumulative_count)});
    }
    window.push_back(std::move(now));
    while (window.size() > 2 && window[1].at <= window.back().at - std::chrono::minutes(5)) window.pop_front();
    const auto& first = window.front();
    const auto& last = window.back();
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double count = last.requests - first.requests;
    const double ratio = count > 0 ? (last.errors - first.errors) / count : nan;
    std::vector<BucketCount> delta = last.buckets;
    for (std::size_t i = 0; i < delta.size() && i < first.buckets.size(); ++i) {
      delta[i].cumulativeCount -= first.buckets[i].cumulativeCount;
    }
    return {ratio, withDuration ? histogramQuantile(0.95, delta) : nan};
  }

  void count(std::string_view line) {
    AccessLogRecord record;
    if (!parser.parse(line, record)) {
      ++unparsable;
      return;
    }
    ++parsed;
    const auto method = static_cast<std::size_t>(classifyMethod(record.method));
    const std::size_t route = withRoutes ? routes.index(record.target) : 0;
    const std::size_t pair = method * routes.labelCount() + route;
    seen[pair] = true;
    ++requests[pair * kCodeClassCount + static_cast<std::size_t>(record.status / 100 - 1)];
    if (withDuration && record.seconds) duration.Observe(*record.seconds);
  }
};

namespace {

std::mutex registryMutex;
std::map<std::string, std::weak_ptr<AccessLogState>>& registry() {
  static std::map<std::string, std::weak_ptr<AccessLogState>> states;
  return states;
}

std::shared_ptr<AccessLogState> sharedState(const AccessLogTarget& t) {
  std::lock_guard lock(registryMutex);
  auto& states = registry();
  for (auto it = states.begin(); it != states.end();) it = it->second.expired() ? states.erase(it) : std::next(it);
  auto& slot = states[stateKey(t)];
  if (auto existing = slot.lock()) return existing;
  auto fresh = std::make_shared<AccessLogState>(t);
  slot = fresh;
  return fresh;
}

}  // namespace

AccessLogCollector::AccessLogCollector(AccessLogTarget target)
    : target_(std::move(target)),
      helpSuffix_(" Read every " + formatDuration(target_.interval) + "."),
      state_(sharedState(target_)) {}

AccessLogCollector::~AccessLogCollector() = default;

SampleResult AccessLogCollector::sample(SnapshotBuilder& out, std::stop_token stop) {
  auto& s = *state_;
  std::lock_guard lock(s.mutex);
  std::string error;
  const auto status =
      s.tailer.poll(kMaxBytesPerSample, [&s](std::string_view line) { s.count(line); }, error, stop);

  const auto& name = target_.name;
  if (status == AccessLogTailer::Status::Missing && !s.missingLogged) {
    spdlog::warn("access log {}: {} does not exist (yet); counting starts when it appears", name, target_.path);
    s.missingLogged = true;
  }
  if (s.tailer.following() && !s.wasFollowing) {
    spdlog::info("access log {}: following {}", name, target_.path);
  }
  s.wasFollowing = s.tailer.following();
  if (s.tailer.rotations() != s.rotationsLogged) {
    spdlog::info("access log {}: {} was rotated, now following the new file", name, target_.path);
    s.rotationsLogged = s.tailer.rotations();
  }
  if (s.tailer.truncations() != s.truncationsLogged) {
    spdlog::info("access log {}: {} was truncated, reading it from the start", name, target_.path);
    s.truncationsLogged = s.tailer.truncations();
  }
  if (s.tailer.oversizedLines() != s.oversizedCounted) {
    const auto fresh = s.tailer.oversizedLines() - s.oversizedCounted;
    spdlog::warn("access log {}: skipped {} line(s) longer than 64 KiB", name, fresh);
    s.unparsable += fresh;
    s.oversizedCounted = s.tailer.oversizedLines();
  }

  const Labels log = {{"log", name}};
  out.gauge("apphealth_threshold_http_error_ratio",
            "Configured share of 5xx responses above which the site counts as failing.", log,
            target_.error_ratio_threshold);
  out.gauge("apphealth_threshold_http_latency_seconds",
            "Configured request duration above which a response counts as slow.", log,
            target_.latency_threshold_seconds);
  out.gauge("apphealth_threshold_slo_objective",
            "Configured availability objective: the share of requests that must not answer 5xx (error budget = 1 - objective).",
            log, target_.slo_objective);
  const std::string linesHelp = "Access-log lines read, by whether they could be parsed." + helpSuffix_;
  out.counter("apphealth_log_lines_total", linesHelp, {{"log", name}, {"result", "parsed"}},
              static_cast<double>(s.parsed));
  out.counter("apphealth_log_lines_total", linesHelp, {{"log", name}, {"result", "unparsable"}},
              static_cast<double>(s.unparsable));

  const std::string requestsHelp = "HTTP requests in the access log by method and status class." + helpSuffix_;
  const std::size_t routeCount = s.routes.labelCount();
  for (std::size_t method = 0; method < kHttpMethodCount; ++method) {
    for (std::size_t route = 0; route < routeCount; ++route) {
      const std::size_t pair = method * routeCount + route;
      if (!s.seen[pair]) continue;
      // Once a method (and route) has been seen, all five classes are exported, zeros
      // included, so the first 5xx shows up in rate() instead of starting a new series.
      for (std::size_t cls = 0; cls < kCodeClassCount; ++cls) {
        Labels labels = {{"log", name}, {"method", methodLabel(static_cast<HttpMethod>(method))}};
        if (s.withRoutes) labels.emplace_back("route", s.routes.label(route));
        labels.emplace_back("code_class", codeClassLabel(cls));
        out.counter("apphealth_http_requests_total", requestsHelp, labels,
                    static_cast<double>(s.requests[pair * kCodeClassCount + cls]));
      }
    }
  }
  if (s.withDuration) {
    out.histogram("apphealth_http_request_duration_seconds",
                  "Request duration from the access log (the server's request time)." + helpSuffix_, log,
                  s.duration);
  }
  SampleResult result;
  if (status == AccessLogTailer::Status::Error) {
    result = SampleResult::failure(error);
  } else if (status == AccessLogTailer::Status::Missing) {
    result = SampleResult::success(target_.path + " does not exist (yet); counting starts when it appears");
  }
  const auto [errorRatio, p95] = s.windowed();
  result.checks.push_back({"5xx share, last 5 min", errorRatio, target_.error_ratio_threshold, "ratio",
                           errorRatio > target_.error_ratio_threshold});
  if (s.withDuration) {
    result.checks.push_back({"p95 request time, last 5 min", p95, target_.latency_threshold_seconds, "s",
                             p95 > target_.latency_threshold_seconds});
  }
  return result;
}

}  // namespace apphealth
