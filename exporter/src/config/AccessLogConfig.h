#pragma once
// Configuration of one tailed web-server access log (issue 4). Filled in by its section parser.

#include <cstddef>
#include <string>
#include <vector>

#include "util/Duration.h"

namespace apphealth {

enum class AccessLogFormat {
  Combined,             // nginx/Apache "combined"
  CombinedRequestTime,  // "combined" + " $request_time" (seconds, e.g. 0.123)
  Json,                 // one JSON object per line, field names below
};

// Where the JSON format finds each value. A dotted name ("request.method") walks into nested
// objects. `method` and `path` fall back to the `request` line ("GET /path HTTP/1.1") when
// absent from a record; `request_time` may be empty (no duration histogram).
struct AccessLogJsonFields {
  std::string method = "request_method";
  std::string status = "status";
  std::string path = "request_uri";
  std::string request = "request";
  std::string request_time = "request_time";
};

inline constexpr double kDefaultHttpErrorRatioThreshold = 0.05;
inline constexpr double kDefaultHttpLatencyThresholdSeconds = 2.0;
// Availability objective of the error-budget (SLO burn-rate) alerts: the share of requests
// that must not answer 5xx.
inline constexpr double kDefaultSloObjective = 0.999;

struct AccessLogTarget {
  std::string name;
  std::string path;
  AccessLogFormat format = AccessLogFormat::Combined;
  AccessLogJsonFields json_fields;
  // JSON only: the unit of the request_time field (1 = seconds, 0.001 = milliseconds, ...).
  double request_time_scale = 1.0;
  std::vector<std::string> routes;  // route patterns (ingest/RoutePatterns.h); empty: no route label
  bool start_at_beginning = false;  // default: only lines written after the exporter started
  Duration interval = std::chrono::seconds(1);
  double error_ratio_threshold = kDefaultHttpErrorRatioThreshold;
  double latency_threshold_seconds = kDefaultHttpLatencyThresholdSeconds;
  double slo_objective = kDefaultSloObjective;

  bool hasRequestTime() const {
    return format == AccessLogFormat::CombinedRequestTime ||
           (format == AccessLogFormat::Json && !json_fields.request_time.empty());
  }
};

const char* formatName(AccessLogFormat format);

}  // namespace apphealth
