#pragma once
// Probes one HTTP endpoint with libcurl (issue 4).

#include "collectors/Sampler.h"
#include "config/HttpProbeConfig.h"

namespace apphealth {

class HttpProbeCollector : public Sampler {
 public:
  explicit HttpProbeCollector(HttpProbeTarget target) : target_(std::move(target)) {}
  bool sample(SnapshotBuilder& out, std::stop_token stop) override;

 private:
  HttpProbeTarget target_;
};

}  // namespace apphealth
