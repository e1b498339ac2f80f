#pragma once
// How each job framework lays its queues out in Redis: which keys hold which state, and where
// the enqueue time of the oldest waiting job can be read. Pure data, so it is unit-tested
// without a server and the collector stays generic.

#include <optional>
#include <string>
#include <vector>

#include "config/Config.h"

namespace apphealth {

enum class KeyType { Unknown, List, ZSet, Set, Stream, None };

KeyType keyTypeFromName(const std::string& name);  // TYPE's answer, or config's `type:`

// One key whose length counts jobs of one queue in one state.
struct KeyRead {
  std::string key;
  std::string queue;
  std::string state;
  KeyType type = KeyType::Unknown;  // Unknown: ask the server with TYPE
  // Set by the collector for keys found by SCAN: the index of the queue entry whose pattern
  // matched. Such keys are exported only when they hold jobs (a list, zset, set or stream).
  int patternEntry = -1;
};

// Where the oldest waiting job of a queue says when it was enqueued.
struct AgeRead {
  enum class Source {
    JsonEnqueuedAt,   // Sidekiq: the list element is JSON with "enqueued_at" (s, or ms in v8)
    RqJobHash,        // RQ: the element is a job id; HGET rq:job:<id> enqueued_at (ISO 8601)
    BullJobHash,      // BullMQ: the element is a job id; HGET <prefix>:<queue>:<id> timestamp (ms)
  };
  std::string queue;
  std::string listKey;
  int index = 0;          // 0: oldest at the head (RPUSH/LPOP); -1: at the tail (LPUSH/RPOP)
  Source source = Source::JsonEnqueuedAt;
  std::string hashPrefix;  // for the *JobHash sources: key = hashPrefix + id
};

struct QueueLayout {
  std::vector<KeyRead> keys;
  std::vector<AgeRead> ages;
  std::vector<std::string> patterns;  // explicit keys with '*': expanded with SCAN
};

QueueLayout layoutFor(const RedisQueueSpec& spec);

// Parses the enqueue time found by an AgeRead into Unix seconds; nullopt when unreadable.
std::optional<double> parseEnqueueTime(AgeRead::Source source, const std::string& text);

}  // namespace apphealth
