#pragma once
// One kind of measurement against one target. A Sampler does the I/O; the CollectorRunner
// that owns it decides when, keeps the thread, and publishes what it produced.

#include <stop_token>
#include <string>

#include "metrics/SnapshotBuilder.h"

namespace apphealth {

class Sampler {
 public:
  virtual ~Sampler() = default;

  // Takes one sample and writes its metrics into `out`, including those that stay meaningful
  // when the target is down (up=0, thresholds, histograms). Returns false when the target
  // could not be sampled; the reason goes to the log. Must give up on its own timeout and
  // return soon after `stop` is requested.
  virtual bool sample(SnapshotBuilder& out, std::stop_token stop) = 0;
};

}  // namespace apphealth
