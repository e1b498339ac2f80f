#pragma once
// The metrics the beacon endpoints feed. Every label set is drawn from closed sets (vitals,
// configured routes plus "other", three device classes, fixed levels, severities, status codes
// and reasons), all allocated up front, so recording is a lookup plus an atomic add and no
// input can create a new series. Series are exported once they have been used.

#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "http/MicroHttpdListener.h"
#include "ingest/BeaconParser.h"
#include "routes/RoutePatterns.h"
#include "metrics/SnapshotBuilder.h"

namespace apphealth::ingest {

enum class Endpoint { Vitals, Errors };
inline constexpr std::array<const char*, 3> kDevices = {"mobile", "tablet", "desktop"};
inline constexpr std::array<const char*, 4> kLevels = {"global", "page", "component", "other"};
inline constexpr std::array<const char*, 4> kSeverities = {"fatal", "error", "warning", "info"};
inline constexpr std::array<int, 9> kStatusCodes = {204, 400, 403, 405, 411, 413, 415, 429, 500};

// Bucket bounds per vital, in seconds (CLS unitless). Each list contains the official
// "good" and "poor" thresholds exactly, so the share of good page views and the p75 come
// straight from the buckets.
const std::vector<double>& vitalBuckets(Vital vital);

// The beacon listener's connection counters (its own listener only).
void collectListenerStats(SnapshotBuilder& out, const ListenerStats& stats);

class IngestMetrics {
 public:
  IngestMetrics(const RoutePatterns& routes, std::size_t maxRoutes);

  std::size_t deviceIndex(const char* device) const;
  void observeVital(Vital vital, std::size_t route, std::size_t device, double value);
  void countPageView(std::size_t route, std::size_t device);
  void countClientError(std::size_t route, const std::string& level, const std::string& severity);
  void countRequest(Endpoint endpoint, int status);
  void countRejected(Endpoint endpoint, const char* reason);

  void collect(SnapshotBuilder& out) const;

 private:
  // Admits `route` into a family's label set unless the family already holds maxRoutes
  // routes; past the cap observations land in "other".
  std::size_t admit(std::vector<std::atomic<bool>>& used, std::atomic<std::size_t>& count, std::size_t route);

  const RoutePatterns& routes_;
  const std::size_t routeCount_;
  const std::size_t maxRoutes_;
  std::mutex admitMutex_;

  struct VitalFamily {
    std::vector<std::unique_ptr<prometheus::Histogram>> histograms;  // [route][device]
    std::vector<std::atomic<bool>> used;                            // [route][device] observed
    std::vector<std::atomic<bool>> routeUsed;                       // [route] admitted
    std::atomic<std::size_t> routesAdmitted{0};
  };
  std::array<VitalFamily, kVitalCount> vitals_;

  std::vector<std::unique_ptr<prometheus::Counter>> pageViews_;  // [route][device]
  std::vector<std::atomic<bool>> pageViewsUsed_;
  std::vector<std::atomic<bool>> pageViewRoutes_;
  std::atomic<std::size_t> pageViewRoutesAdmitted_{0};

  std::vector<std::unique_ptr<prometheus::Counter>> clientErrors_;  // [route][level][severity]
  std::vector<std::atomic<bool>> clientErrorsUsed_;
  std::vector<std::atomic<bool>> clientErrorRoutes_;
  std::atomic<std::size_t> clientErrorRoutesAdmitted_{0};

  // [endpoint][status index] (+1 for "other"), [endpoint][reason]
  std::array<std::array<prometheus::Counter, kStatusCodes.size() + 1>, 2> requests_;
  std::array<std::array<prometheus::Counter, kRejectReasonCount + 2>, 2> rejected_;
};

}  // namespace apphealth::ingest
