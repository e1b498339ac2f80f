#pragma once
// Pipelined round trips with a handler per command. Readers queue the commands they can send
// now; a handler that needs another read (a job hash named by a list element, a worker's hash
// named by a set member) queues it for the next round. All readers of a sample share the
// rounds, so a sample costs as many round trips as its longest chain of dependent reads,
// however many queues, keys and workers there are.

#include <functional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "clients/RedisConnection.h"

namespace apphealth {

class RedisRounds {
 public:
  // Called with the command's reply, which may be an error reply (WRONGTYPE, NOPERM, ...),
  // and the command itself (for messages that name the key).
  using Handler = std::function<void(const redisReply& reply, const RedisCommand& command)>;

  // Queues a command for the next round trip. A blocking command (BRPOP) goes after every
  // other command of its round, so that it delays nothing but the round's end.
  void add(RedisCommand command, Handler handler, bool blocking = false);
  // The same, but a command queued again in the same round (CLIENT LIST for every BullMQ
  // entry) is sent once and its reply given to every handler.
  void addShared(RedisCommand command, Handler handler);
  // Runs `hook` once every handler of the next round has run: a reader that needs all the
  // replies of a round (every worker set) before deciding its next reads.
  void afterNextRound(std::function<void()> hook);

  // Sends round after round until no handler queues more. Throws RedisError on I/O errors,
  // timeouts, or a chain longer than `maxRounds` (a reader bug: chains are bounded).
  void run(RedisConnection& connection, int maxRounds = 32);

  int roundsRun() const { return roundsRun_; }
  std::size_t commandsSent() const { return commandsSent_; }

 private:
  struct Round {
    std::vector<RedisCommand> commands;
    std::vector<Handler> handlers;                          // one per command
    std::vector<std::pair<std::size_t, Handler>> shared;    // more handlers of shared commands
    std::unordered_map<std::string, std::size_t> sharedIndex;
    std::vector<RedisCommand> blockingCommands;
    std::vector<Handler> blockingHandlers;
    std::vector<std::function<void()>> after;
    bool empty() const { return commands.empty() && blockingCommands.empty() && after.empty(); }
  };
  Round next_;
  int roundsRun_ = 0;
  std::size_t commandsSent_ = 0;
};

}  // namespace apphealth
