#pragma once
// Samples one Redis server: PING round trip, and the depth of every configured job queue by
// state, in a handful of pipelined round trips however many keys there are.

#include <prometheus/histogram.h>

#include <set>
#include <map>
#include <string>
#include <vector>

#include "clients/RedisConnection.h"
#include "collectors/redis/RedisQueueLayouts.h"
#include "collectors/Sampler.h"
#include "config/Config.h"

namespace apphealth {

class RedisQueueCollector : public Sampler {
 public:
  explicit RedisQueueCollector(RedisTarget target);
  SampleResult sample(SnapshotBuilder& out, std::stop_token stop) override;

  // Caps on what outside data can add to the label set.
  static constexpr std::size_t kMaxStreamGroups = 20;

 private:
  void measure(SnapshotBuilder& out);
  std::vector<KeyRead> expandPatterns(SnapshotBuilder& out);
  void readLengths(std::vector<KeyRead>& keys, SnapshotBuilder& out);
  void readAges(SnapshotBuilder& out);
  // Writes up, the PING histogram and the thresholds; returns the thresholds by (queue, state).
  std::map<std::pair<std::string, std::string>, double> writeStatic(SnapshotBuilder& out, bool up);

  RedisTarget target_;
  RedisEndpoint endpoint_;
  std::vector<QueueLayout> layouts_;
  std::vector<std::pair<std::size_t, std::string>> patternKeys_;  // (queue entry, key) seen last sample
  std::map<std::pair<std::string, std::string>, double> lastJobs_;  // (queue, state) -> jobs, last sample
  RedisConnection connection_;
  prometheus::Histogram pingDuration_;
  std::string helpSuffix_;
  std::set<std::string> wrongTypeWarned_;  // configured keys already reported as WRONGTYPE
  std::set<std::string> patternWarned_;    // patterns currently reported as truncated
};

}  // namespace apphealth
