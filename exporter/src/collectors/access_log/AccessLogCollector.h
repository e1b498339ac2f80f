#pragma once
// Tails one access log and counts requests by method, status class and (optionally) route,
// with a request-duration histogram when the format carries the request time (issue 4).
//
// The tail position and the counters live in a state object shared by every collector built
// from the same log settings, so a configuration reload (which builds new collectors while
// the old ones still run) neither loses nor double-counts a line and keeps the counters going.

#include <memory>
#include <string>

#include "collectors/Sampler.h"
#include "config/AccessLogConfig.h"

namespace apphealth {

struct AccessLogState;

class AccessLogCollector : public Sampler {
 public:
  // Bytes read from the file per sample at most; the rest waits for the next sample.
  static constexpr std::size_t kMaxBytesPerSample = 64 << 20;

  explicit AccessLogCollector(AccessLogTarget target);
  ~AccessLogCollector() override;
  SampleResult sample(SnapshotBuilder& out, std::stop_token stop) override;

 private:
  AccessLogTarget target_;
  std::string helpSuffix_;
  std::shared_ptr<AccessLogState> state_;
};

}  // namespace apphealth
