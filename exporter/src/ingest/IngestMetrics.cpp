#include "ingest/IngestMetrics.h"

#include <cstring>

namespace apphealth::ingest {

namespace {

// Reasons beyond the parser's: a retried beacon, and a batch the endpoint refused as a whole.
constexpr const char* kExtraReasons[] = {"duplicate", "rate_limited"};

const char* endpointLabel(Endpoint e) { return e == Endpoint::Vitals ? "vitals" : "errors"; }

std::size_t indexOf(const auto& values, const std::string& value, std::size_t fallback) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (value == values[i]) return i;
  }
  return fallback;
}

}  // namespace

const std::vector<double>& vitalBuckets(Vital vital) {
  // Good / poor thresholds (web.dev): LCP 2.5 / 4 s, INP 0.2 / 0.5 s, CLS 0.1 / 0.25,
  // FCP 1.8 / 3 s, TTFB 0.8 / 1.8 s, FID 0.1 / 0.3 s.
  static const std::vector<double> lcp = {0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6, 8, 10, 15, 20, 30};
  static const std::vector<double> inp = {0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 2, 5};
  static const std::vector<double> cls = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 1, 2};
  static const std::vector<double> fcp = {0.25, 0.5, 1, 1.5, 1.8, 2, 2.5, 3, 4, 6, 10, 20};
  static const std::vector<double> ttfb = {0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 1.4, 1.8, 2.5, 4, 8, 15};
  static const std::vector<double> fid = {0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2};
  switch (vital) {
    case Vital::LCP: return lcp;
    case Vital::INP: return inp;
    case Vital::CLS: return cls;
    case Vital::FCP: return fcp;
    case Vital::TTFB: return ttfb;
    case Vital::FID: return fid;
  }
  return lcp;
}

IngestMetrics::IngestMetrics(const RoutePatterns& routes, std::size_t maxRoutes)
    : routes_(routes), routeCount_(routes.labelCount()), maxRoutes_(maxRoutes) {
  const std::size_t cells = routeCount_ * kDevices.size();
  for (std::size_t v = 0; v < kVitalCount; ++v) {
    auto& family = vitals_[v];
    for (std::size_t i = 0; i < cells; ++i) {
      family.histograms.push_back(std::make_unique<prometheus::Histogram>(vitalBuckets(static_cast<Vital>(v))));
    }
    family.used = std::vector<std::atomic<bool>>(cells);
    family.routeUsed = std::vector<std::atomic<bool>>(routeCount_);
  }
  for (std::size_t i = 0; i < cells; ++i) pageViews_.push_back(std::make_unique<prometheus::Counter>());
  pageViewsUsed_ = std::vector<std::atomic<bool>>(cells);
  pageViewRoutes_ = std::vector<std::atomic<bool>>(routeCount_);
  const std::size_t errorCells = routeCount_ * kLevels.size() * kSeverities.size();
  for (std::size_t i = 0; i < errorCells; ++i) clientErrors_.push_back(std::make_unique<prometheus::Counter>());
  clientErrorsUsed_ = std::vector<std::atomic<bool>>(errorCells);
  clientErrorRoutes_ = std::vector<std::atomic<bool>>(routeCount_);
}

std::size_t IngestMetrics::deviceIndex(const char* device) const {
  for (std::size_t i = 0; i < kDevices.size(); ++i) {
    if (std::strcmp(device, kDevices[i]) == 0) return i;
  }
  return kDevices.size() - 1;
}

std::size_t IngestMetrics::admit(std::vector<std::atomic<bool>>& used, std::atomic<std::size_t>& count,
                                 std::size_t route) {
  const std::size_t other = routes_.otherIndex();
  if (route >= routeCount_) return other;
  if (route == other || used[route].load(std::memory_order_relaxed)) return route;
  std::lock_guard lock(admitMutex_);  // first use of a route only: rare
  if (used[route]) return route;
  if (count >= maxRoutes_) return other;
  used[route] = true;
  ++count;
  return route;
}

void IngestMetrics::observeVital(Vital vital, std::size_t route, std::size_t device, double value) {
  auto& family = vitals_[static_cast<std::size_t>(vital)];
  route = admit(family.routeUsed, family.routesAdmitted, route);
  const std::size_t cell = route * kDevices.size() + device;
  family.histograms[cell]->Observe(value);
  family.used[cell].store(true, std::memory_order_relaxed);
}

void IngestMetrics::countPageView(std::size_t route, std::size_t device) {
  route = admit(pageViewRoutes_, pageViewRoutesAdmitted_, route);
  const std::size_t cell = route * kDevices.size() + device;
  pageViews_[cell]->Increment();
  pageViewsUsed_[cell].store(true, std::memory_order_relaxed);
}

void IngestMetrics::countClientError(std::size_t route, const std::string& level, const std::string& severity) {
  route = admit(clientErrorRoutes_, clientErrorRoutesAdmitted_, route);
  const std::size_t l = indexOf(kLevels, level, kLevels.size() - 1);
  const std::size_t s = indexOf(kSeverities, severity, 1);
  const std::size_t cell = (route * kLevels.size() + l) * kSeverities.size() + s;
  clientErrors_[cell]->Increment();
  clientErrorsUsed_[cell].store(true, std::memory_order_relaxed);
}

void IngestMetrics::countRequest(Endpoint endpoint, int status) {
  std::size_t i = 0;
  while (i < kStatusCodes.size() && kStatusCodes[i] != status) ++i;
  requests_[static_cast<std::size_t>(endpoint)][i].Increment();
}

void IngestMetrics::countRejected(Endpoint endpoint, const char* reason) {
  std::size_t i = 0;
  for (; i < kRejectReasonCount; ++i) {
    if (std::strcmp(reason, rejectReasonLabel(static_cast<RejectReason>(i))) == 0) break;
  }
  if (i == kRejectReasonCount) i += std::strcmp(reason, kExtraReasons[0]) == 0 ? 0 : 1;
  rejected_[static_cast<std::size_t>(endpoint)][i].Increment();
}

void collectListenerStats(SnapshotBuilder& out, const ListenerStats& stats) {
  out.gauge("apphealth_ingest_connections", "Open connections on the beacon listener.", {},
            static_cast<double>(stats.open));
  out.counter("apphealth_ingest_connections_accepted_total", "Connections the beacon listener accepted.", {},
              static_cast<double>(stats.accepted));
  out.counter("apphealth_ingest_connections_refused_total",
              "Connections the beacon listener closed at accept: over ingest.max_connections_per_client "
              "(client_limit) or ingest.max_connections (listener_limit); with TLS, also connections refused for "
              "their client certificate or while ingest.web_config_file is broken (tls).",
              {{"reason", "client_limit"}}, static_cast<double>(stats.refusedClientLimit));
  out.counter("apphealth_ingest_connections_refused_total", "", {{"reason", "listener_limit"}},
              static_cast<double>(stats.refusedListenerLimit));
  out.counter("apphealth_ingest_connections_refused_total", "", {{"reason", "tls"}},
              static_cast<double>(stats.refusedTls));
  out.counter("apphealth_ingest_requests_timed_out_total",
              "Beacon requests not complete within ingest.request_timeout; their connections were closed.", {},
              static_cast<double>(stats.timedOut));
}

void IngestMetrics::collect(SnapshotBuilder& out) const {
  for (std::size_t v = 0; v < kVitalCount; ++v) {
    const auto vital = static_cast<Vital>(v);
    const std::string name = std::string("apphealth_web_vitals_") + vitalMetricName(vital) + (vitalIsTime(vital) ? "_seconds" : "");
    const std::string help = std::string("Web Vitals ") + vitalMetricName(vital) + " reported by browsers" +
                             (vitalIsTime(vital) ? " (seconds)." : " (unitless).");
    const auto& family = vitals_[v];
    for (std::size_t cell = 0; cell < family.histograms.size(); ++cell) {
      if (!family.used[cell].load(std::memory_order_relaxed)) continue;
      out.histogram(name, help, {{"route", routes_.label(cell / kDevices.size())}, {"device", kDevices[cell % kDevices.size()]}},
                    *family.histograms[cell]);
    }
  }
  for (std::size_t cell = 0; cell < pageViews_.size(); ++cell) {
    if (!pageViewsUsed_[cell].load(std::memory_order_relaxed)) continue;
    out.counter("apphealth_web_vitals_page_views_total", "Page views seen by the Web Vitals beacons.",
                {{"route", routes_.label(cell / kDevices.size())}, {"device", kDevices[cell % kDevices.size()]}},
                pageViews_[cell]->Value());
  }
  const std::size_t perRoute = kLevels.size() * kSeverities.size();
  for (std::size_t cell = 0; cell < clientErrors_.size(); ++cell) {
    if (!clientErrorsUsed_[cell].load(std::memory_order_relaxed)) continue;
    const std::size_t rest = cell % perRoute;
    out.counter("apphealth_client_errors_total", "Errors reported by browsers.",
                {{"route", routes_.label(cell / perRoute)},
                 {"level", kLevels[rest / kSeverities.size()]},
                 {"severity", kSeverities[rest % kSeverities.size()]}},
                clientErrors_[cell]->Value());
  }
  for (std::size_t e = 0; e < 2; ++e) {
    for (std::size_t i = 0; i <= kStatusCodes.size(); ++i) {
      const std::string code = i < kStatusCodes.size() ? std::to_string(kStatusCodes[i]) : "other";
      out.counter("apphealth_ingest_requests_total", "Requests to the beacon endpoints by status code.",
                  {{"endpoint", endpointLabel(static_cast<Endpoint>(e))}, {"code", code}}, requests_[e][i].Value());
    }
    for (std::size_t i = 0; i < kRejectReasonCount + 2; ++i) {
      const char* reason = i < kRejectReasonCount ? rejectReasonLabel(static_cast<RejectReason>(i)) : kExtraReasons[i - kRejectReasonCount];
      out.counter("apphealth_ingest_rejected_total", "Beacon entries dropped, by reason.",
                  {{"endpoint", endpointLabel(static_cast<Endpoint>(e))}, {"reason", reason}}, rejected_[e][i].Value());
    }
  }
}

}  // namespace apphealth::ingest
