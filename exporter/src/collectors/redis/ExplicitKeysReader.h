#pragma once
// Queues given as explicit keys (`key:` entries): lists, sorted sets, sets and streams, the
// type configured or asked with TYPE; `*` patterns expanded with a bounded SCAN.

#include <string>
#include <vector>

#include "collectors/redis/QueueReader.h"
#include "metrics/SnapshotBuilder.h"

namespace apphealth {

enum class KeyType { Unknown, List, ZSet, Set, Stream, None };
KeyType keyTypeFromName(const std::string& name);  // TYPE's answer, or config's `type:`

class ExplicitKeysReader : public QueueReader {
 public:
  // `entries`: indexes into target.queues of the explicit-key entries.
  ExplicitKeysReader(const RedisTarget& target, std::vector<std::size_t> entries);

  // SCAN for the `*` patterns (before the rounds: each SCAN call needs the last cursor).
  // Writes the pattern gauges into `out`.
  void expandPatterns(RedisConnection& connection, ProblemLog& problems, SnapshotBuilder& out,
                      const std::string& helpSuffix);
  void start(RedisRounds& rounds, ReadContext& ctx) override;
  std::vector<std::pair<std::string, std::string>> fixedStates() const override;
  // (queue, state, entry index) of keys found by patterns in the last sample: their thresholds.
  struct Found {
    std::string queue;
    std::string state;
    std::size_t entry;
  };
  const std::vector<Found>& patternKeys() const { return patternKeys_; }

  static constexpr std::size_t kMaxStreamGroups = 20;

 private:
  struct KeyRead {
    std::string key;
    std::string queue;
    std::string state;
    KeyType type = KeyType::Unknown;
    int patternEntry = -1;  // index of the pattern entry that found it; -1: configured
  };
  void readLength(RedisRounds& rounds, ReadContext& ctx, std::size_t index);

  const RedisTarget& target_;
  std::vector<KeyRead> configured_;
  std::vector<std::pair<std::size_t, std::string>> patterns_;  // (entry, pattern)
  std::vector<KeyRead> keys_;                                  // this sample's keys
  std::vector<Found> patternKeys_;
  std::set<std::pair<std::string, std::string>> groupsSeen_;
};

}  // namespace apphealth
