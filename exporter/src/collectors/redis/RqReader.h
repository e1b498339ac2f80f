#pragma once
// RQ (python-rq 1.x and 2.x): queue lists, job registries, workers and their counters.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "collectors/redis/QueueReader.h"

namespace apphealth {

class RqReader : public QueueReader {
 public:
  RqReader(std::string prefix, std::vector<std::string> queues, bool readWorkers);
  void start(RedisRounds& rounds, ReadContext& ctx) override;
  void finish(ReadContext& ctx) override;
  std::vector<std::pair<std::string, std::string>> fixedStates() const override;

  static constexpr std::size_t kMaxWorkers = 1000;  // distinct worker keys read per sample

 private:
  struct Worker {
    std::set<std::string> queues;  // configured queues whose worker set lists it
    bool read = false;             // its hash was read
    bool exists = false;
    bool dead = false;             // `death` set: it stopped cleanly
    bool busy = false;
    long long subscribers = -1;    // on its command channel; -1: unknown
    double successful = 0;
    double failed = 0;
  };
  void queueCommands(RedisRounds& rounds, ReadContext& ctx, const std::string& q, const std::string& now);
  void takeEnqueuedAt(ReadContext& ctx, const std::string& q, const std::string& jobKey, const redisReply& r);
  void readWorkers(RedisRounds& rounds, ReadContext& ctx);

  std::string prefix_;
  std::vector<std::string> queues_;
  bool readWorkers_;
  std::map<std::string, Worker> workers_;  // this sample, by worker key (rq:worker:<name>)
  std::set<std::string> workerSetsRead_;   // queues whose worker set could be read
  bool numsubFailed_ = false;
  // Counters across samples: the last counts seen per worker, and the totals per queue.
  std::map<std::string, std::pair<double, double>> lastCounts_;
  std::map<std::string, double> processedTotal_;
  std::map<std::string, double> failedTotal_;
};

}  // namespace apphealth
