#pragma once
// Tails one access log and counts requests by method and status class (issue 4).

#include "collectors/Sampler.h"
#include "config/AccessLogConfig.h"

namespace apphealth {

class AccessLogCollector : public Sampler {
 public:
  explicit AccessLogCollector(AccessLogTarget target) : target_(std::move(target)) {}
  bool sample(SnapshotBuilder& out, std::stop_token stop) override;

 private:
  AccessLogTarget target_;
};

}  // namespace apphealth
