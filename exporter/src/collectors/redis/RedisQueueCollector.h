#pragma once
// Samples one Redis server: PING round trip, and every configured job queue as its framework
// counts it (jobs by state, oldest waiting job, live and busy workers, processed and failed
// counters), in a handful of pipelined round trips however many keys and workers there are.

#include <prometheus/histogram.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "clients/RedisConnection.h"
#include "collectors/Sampler.h"
#include "collectors/redis/ExplicitKeysReader.h"
#include "collectors/redis/QueueReader.h"
#include "config/Config.h"

namespace apphealth {

class RedisQueueCollector : public Sampler {
 public:
  explicit RedisQueueCollector(RedisTarget target);
  SampleResult sample(SnapshotBuilder& out, std::stop_token stop) override;

 private:
  void measure(SnapshotBuilder& out, QueueSample& sample);
  void writeSample(SnapshotBuilder& out, const QueueSample& sample);
  // Writes up, the PING histogram and the thresholds; returns the thresholds by (queue, state).
  std::map<std::pair<std::string, std::string>, double> writeStatic(SnapshotBuilder& out, bool up);

  RedisTarget target_;
  RedisEndpoint endpoint_;
  RedisConnection connection_;
  prometheus::Histogram pingDuration_;
  std::string helpSuffix_;
  ProblemLog problems_;
  // One reader per framework and key prefix (entries sharing both are merged, so that shared
  // structures such as Sidekiq's retry set are counted once), plus the explicit keys.
  std::vector<std::unique_ptr<QueueReader>> readers_;
  ExplicitKeysReader* explicit_ = nullptr;  // owned by readers_
  std::map<std::pair<std::string, std::string>, double> lastJobs_;  // (queue, state) -> jobs, last sample
  // Per configured entry: the (queue, state) pairs it reads, for its thresholds.
  std::vector<std::vector<std::pair<std::string, std::string>>> entryStates_;
};

}  // namespace apphealth
