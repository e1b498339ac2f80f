#pragma once
// Parses what browsers send: Web Vitals beacons (Google's web-vitals Metric objects, one or a
// batch) and client error reports. Pure functions over the request body, so they are unit-
// tested and fuzzed without a server. Bad entries are rejected one by one with a reason; only
// a body that is not JSON at all (or has the wrong shape) fails as a whole.

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace apphealth::ingest {

enum class Vital { LCP, INP, CLS, FCP, TTFB, FID };
inline constexpr std::size_t kVitalCount = 6;
const char* vitalMetricName(Vital vital);  // "lcp" -> used in apphealth_web_vitals_<name>_seconds
bool vitalIsTime(Vital vital);             // false only for CLS (unitless)

enum class RejectReason { UnknownMetric, MissingField, InvalidValue, AbsurdValue, BatchTooLarge, NotAnObject };
inline constexpr std::size_t kRejectReasonCount = 6;
const char* rejectReasonLabel(RejectReason reason);  // label value of apphealth_ingest_rejected_total

struct VitalObservation {
  Vital vital = Vital::LCP;
  double value = 0;  // seconds for timings (the library reports ms), unitless for CLS
  std::string id;    // the metric id: one per page view and metric; used to drop retries
  std::string page;  // location.pathname as the snippet sends it (may carry a query)
  std::string device;
  std::string navigationType;
  std::string pageViewId;  // added by our snippet: one per page load, shared by its metrics
};

struct VitalsParseResult {
  std::string error;  // non-empty: the whole body is rejected (400) with this one-line reason
  std::vector<VitalObservation> accepted;
  std::vector<RejectReason> rejected;
};

// `maxBatch`: a larger array is rejected as a whole (413).
VitalsParseResult parseVitals(std::string_view body, std::size_t maxBatch);

struct ClientErrorReport {
  std::string message;
  std::string level;     // global, page, component; anything else -> "other"
  std::string severity;  // optional; bounded set: fatal, error, warning, info; else "error"
  std::string component;
  std::string page;
};

struct ErrorsParseResult {
  std::string error;
  std::vector<ClientErrorReport> accepted;
  std::vector<RejectReason> rejected;
};

ErrorsParseResult parseErrors(std::string_view body, std::size_t maxBatch);

}  // namespace apphealth::ingest
