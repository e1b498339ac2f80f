#pragma once
// Sidekiq 6, 7 and 8: queue lists, the shared retry/schedule/dead sets, processes and the jobs
// they are executing, and the processed/failed counters.

#include <map>
#include <string>
#include <vector>

#include "collectors/redis/QueueReader.h"

namespace apphealth {

class SidekiqReader : public QueueReader {
 public:
  SidekiqReader(std::string prefix, std::vector<std::string> queues, bool readWorkers);
  void start(RedisRounds& rounds, ReadContext& ctx) override;
  void finish(ReadContext& ctx) override;
  std::vector<std::pair<std::string, std::string>> fixedStates() const override;

  // Retry, schedule, dead sets and the counters are shared by all of Sidekiq's queues.
  static constexpr const char* kSharedQueue = "sidekiq";
  static constexpr std::size_t kMaxProcesses = 1000;

 private:
  struct Process {
    bool exists = false;
    bool quiet = false;
    double busy = 0;
    std::vector<std::string> queues;
    std::map<std::string, double> running;  // queue -> jobs executing
  };
  void takeTail(ReadContext& ctx, const std::string& q, const std::string& key, const redisReply& r);
  void readProcesses(RedisRounds& rounds, ReadContext& ctx);
  void readWork(RedisRounds& rounds, ReadContext& ctx, const std::string& identity, const std::string& key);

  std::string prefix_;
  std::vector<std::string> queues_;
  bool readWorkers_;
  bool processesRead_ = false;
  std::vector<std::string> identities_;
  std::map<std::string, Process> processes_;
};

}  // namespace apphealth
