#pragma once
// Celery 5 on kombu's Redis transport: queue lists, the messages workers hold unacknowledged
// (reserved, and scheduled for an ETA or a retry countdown), and, by asking the workers the
// way `celery inspect` does, which live workers consume which queue and what they execute.

#include <set>
#include <string>
#include <vector>

#include "collectors/redis/QueueFormats.h"
#include "collectors/redis/QueueReader.h"

namespace apphealth {

class CeleryReader : public QueueReader {
 public:
  CeleryReader(std::string prefix, std::vector<std::string> queues, bool askWorkers, int db);
  void start(RedisRounds& rounds, ReadContext& ctx) override;
  void finish(ReadContext& ctx) override;
  std::vector<std::pair<std::string, std::string>> fixedStates() const override;

  static constexpr std::size_t kMaxUnacked = 10000;  // unacked messages classified per sample

 private:
  struct Broadcast {
    std::string method;
    std::string ticket;
    long long expected = -1;  // workers that received it (PUBLISH's answer); -1: not sent
    long long received = 0;
  };
  void scanUnacked(RedisRounds& rounds, ReadContext& ctx, const std::string& cursor);
  void broadcast(RedisRounds& rounds, ReadContext& ctx, Broadcast& b);
  void collectReplies(RedisRounds& rounds, ReadContext& ctx);
  void takeReply(ReadContext& ctx, std::string_view raw);
  void cleanUp(RedisRounds& rounds);

  std::string prefix_;
  std::vector<std::string> queues_;
  bool askWorkers_;
  std::string channel_;     // the workers' pidbox fanout: "/<db>.celery.pidbox"
  std::string oid_;         // our reply routing key
  std::string bindingKey_;  // _kombu.binding.reply.celery.pidbox
  std::string replyList_;   // <oid>.reply.celery.pidbox

  // This sample.
  bool unackedRead_ = false;
  std::set<std::string> unackedTags_;
  std::vector<KombuUnacked> unacked_;
  std::size_t unparsable_ = 0;
  bool controlFailed_ = false;
  Broadcast queuesAsk_{"active_queues", {}, -1, 0};
  Broadcast activeAsk_{"active", {}, -1, 0};
  std::vector<CeleryWorkerQueues> workerQueues_;
  std::vector<CeleryWorkerActive> workerActive_;
};

}  // namespace apphealth
