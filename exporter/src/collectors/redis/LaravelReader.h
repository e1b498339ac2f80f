#pragma once
// Laravel's Redis queue driver (Illuminate\Queue\RedisQueue, Laravel 8 to 12).

#include <set>
#include <string>
#include <vector>

#include "collectors/redis/QueueReader.h"

namespace apphealth {

class LaravelReader : public QueueReader {
 public:
  LaravelReader(std::string prefix, std::vector<std::string> queues);
  void start(RedisRounds& rounds, ReadContext& ctx) override;
  std::vector<std::pair<std::string, std::string>> fixedStates() const override;

 private:
  void queueCommands(RedisRounds& rounds, ReadContext& ctx, const std::string& q);
  void takeHead(ReadContext& ctx, const std::string& q, const std::string& base, const redisReply& r);

  std::string prefix_;
  std::vector<std::string> queues_;
  std::set<std::string> timed_;  // queues whose payloads carry createdAt (Laravel 12+)
};

}  // namespace apphealth
