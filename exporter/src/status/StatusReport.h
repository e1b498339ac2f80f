#pragma once
// The exporter's own view of what it watches, for people (the status page at /) and for
// machines (/api/v1/status). Built from the collectors' published health only: a request never
// touches a database, Redis, a disk or the network.
//
// Overall status:
//   unhealthy  a collector's last sample failed (its target could not be sampled: database or
//              Redis down, backup directory unreadable, ...) or a critical check fails (an
//              HTTP probe that did not get the expected answer);
//   degraded   a threshold is exceeded (probe latency, queue length, backup age, 5xx share,
//              p95 request time), a sample reported a partial problem, or the last
//              configuration reload failed (the previous configuration is still running);
//   healthy    none of these.
// A collector that has not finished its first sample since start or reload ("pending") does
// not change the overall status.

#include <string>
#include <vector>

#include "collectors/CollectorRunner.h"

namespace apphealth {

struct StatusInputs {
  std::vector<CollectorHealth> collectors;
  double now = 0;  // Unix seconds
  std::string configFile;
  bool lastReloadOk = true;
  std::string ingest;  // one line about the beacon endpoints; empty when they are off
};

enum class CollectorState { Pending, Up, Warning, Failing, Down };
enum class OverallStatus { Healthy, Degraded, Unhealthy };

const char* toString(CollectorState state);
const char* toString(OverallStatus status);
CollectorState collectorState(const CollectorHealth& health);

struct StatusReport {
  OverallStatus status = OverallStatus::Healthy;
  std::vector<std::string> reasons;  // why the status is not healthy, one line each
};
StatusReport evaluate(const StatusInputs& in);

// Text from outside (error messages of servers, paths from the config) made safe to show:
// credentials in DSN/URL shapes masked, control characters and invalid UTF-8 replaced, cut to
// `maxBytes` on a character boundary. Escaping for HTML or JSON is still the caller's.
std::string sanitizeText(const std::string& text, std::size_t maxBytes = 500);

// JSON for /api/v1/status (the schema is docs/status.schema.json).
std::string renderStatusJson(const StatusInputs& in);
// The HTML page at /, refreshing itself every `refreshSeconds`.
std::string renderStatusPage(const StatusInputs& in, int refreshSeconds = 10);

}  // namespace apphealth
