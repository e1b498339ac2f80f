#pragma once
// One kind of measurement against one target. A Sampler does the I/O; the CollectorRunner
// that owns it decides when, keeps the thread, and publishes what it produced.

#include <limits>
#include <stop_token>
#include <string>
#include <vector>

#include "metrics/SnapshotBuilder.h"

namespace apphealth {

// StatusCheck::value and ::threshold when there is none.
inline constexpr double kNoValue = std::numeric_limits<double>::quiet_NaN();

// A configured threshold and the latest value it applies to, for the status page and
// /api/v1/status. Taken from what the sample just measured: a request never touches a target.
struct StatusCheck {
  std::string name;  // what is compared, e.g. "probe latency", "waiting jobs in emails"
  double value = kNoValue;      // NaN: no value (target down, nothing measured)
  double threshold = kNoValue;  // NaN: a pass/fail check without one
  std::string unit;  // "s", "jobs", "ratio"
  bool failing = false;   // over the threshold, or the check failed
  bool critical = false;  // failing makes the overall status "unhealthy" (a failed HTTP probe), not "degraded"
};

// What one sample says about its target besides the metrics it wrote.
struct SampleResult {
  bool ok = true;
  // Why the sample failed or, with `ok`, which part of it did not work ("statistics query
  // failed: ..."), in words for the log and the status page; empty when all went well. Never
  // a secret: no password, no DSN or URL with credentials.
  std::string problem;
  // The thresholds this target has, with the values of this sample.
  std::vector<StatusCheck> checks;

  static SampleResult success(std::string note = {}) { return {true, std::move(note), {}}; }
  static SampleResult failure(std::string reason) { return {false, std::move(reason), {}}; }
};

class Sampler {
 public:
  virtual ~Sampler() = default;

  // Takes one sample and writes its metrics into `out`, including those that stay meaningful
  // when the target is down (up=0, thresholds, histograms). A failure is returned, not
  // logged: the CollectorRunner logs it when it starts or changes, and when the target
  // recovers. A partial problem of a successful sample is the sampler's to log (it knows how
  // often that is worth saying). Must give up on its own timeout and return soon after `stop`
  // is requested (what it returns then is never published).
  virtual SampleResult sample(SnapshotBuilder& out, std::stop_token stop) = 0;
};

}  // namespace apphealth
