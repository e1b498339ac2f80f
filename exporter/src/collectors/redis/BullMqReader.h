#pragma once
// BullMQ 5 and 6: job states (paused in both layouts, waiting-children, prioritized), the
// oldest waiting job over the wait list and every priority level, workers from CLIENT LIST,
// and the completed/failed counters when the workers collect metrics.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "collectors/redis/QueueReader.h"

namespace apphealth {

class BullMqReader : public QueueReader {
 public:
  BullMqReader(std::string prefix, std::vector<std::string> queues, bool readWorkers);
  void start(RedisRounds& rounds, ReadContext& ctx) override;
  void finish(ReadContext& ctx) override;
  std::vector<std::pair<std::string, std::string>> fixedStates() const override;

  // Priority levels whose oldest job is looked at, lowest priority (most likely starved) first.
  static constexpr int kMaxPriorityLevels = 8;

 private:
  struct Queue {
    double wait = 0, paused = 0, prioritized = 0;
    bool pausedFlag = false;
    std::optional<double> completedCount, failedCount;
    std::optional<double> oldest;  // enqueue time of the oldest waiting or paused job
    bool ageUnknown = false;
  };
  void queueCommands(RedisRounds& rounds, ReadContext& ctx, const std::string& q);
  void takeScript(ReadContext& ctx, const std::string& q, redisReply* const* elements);
  void takeLength(const std::string& q, const std::string& key, double Queue::*field, const redisReply& r);
  std::optional<std::string_view> takeTail(const std::string& q, const redisReply& r);
  void takeTimestamp(ReadContext& ctx, const std::string& q, const std::string& jobKey, const redisReply& r);
  void candidate(RedisRounds& rounds, ReadContext& ctx, const std::string& q, const std::string& id);
  void walkLevel(RedisRounds& rounds, ReadContext& ctx, const std::string& q, long long level, int depth);

  std::string prefix_;
  std::vector<std::string> queues_;
  bool readWorkers_;
  std::map<std::string, std::string> clientNames_;  // "bull:<base64 name>" -> queue
  std::map<std::string, Queue> sample_;
  std::optional<std::map<std::string, double>> workers_;  // nullopt: CLIENT LIST unreadable
};

}  // namespace apphealth
