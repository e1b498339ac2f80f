#pragma once
// Pipelined round trips with a handler per command. Readers queue the commands they can send
// now; a handler that needs another read (a job hash named by a list element, a worker's hash
// named by a set member) queues it for the next round. All readers of a sample share the
// rounds, so a sample costs as many round trips as its longest chain of dependent reads,
// however many queues, keys and workers there are.

#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "clients/RedisConnection.h"

namespace apphealth {

class RedisRounds {
 public:
  // Called with the command's reply, which may be an error reply (WRONGTYPE, NOPERM, ...).
  using Handler = std::function<void(const redisReply& reply)>;

  // Queues a command for the next round trip. The same command queued twice in one round is
  // sent once and its reply given to both handlers. A blocking command (BRPOP) goes after
  // every other command of its round, so that it delays nothing but the round's end.
  void add(RedisCommand command, Handler handler, bool blocking = false);
  // Runs `hook` once every handler of the next round has run: a reader that needs all the
  // replies of a round (every worker set) before deciding its next reads.
  void afterNextRound(std::function<void()> hook);

  // Sends round after round until no handler queues more. Throws RedisError on I/O errors,
  // timeouts, or a chain longer than `maxRounds` (a reader bug: chains are bounded).
  void run(RedisConnection& connection, int maxRounds = 32);

  int roundsRun() const { return roundsRun_; }
  std::size_t commandsSent() const { return commandsSent_; }

 private:
  struct Pending {
    RedisCommand command;
    std::vector<Handler> handlers;
  };
  struct Round {
    std::vector<Pending> commands;
    std::vector<Pending> blocking;
    std::unordered_map<std::string, std::size_t> index;  // command text -> position in `commands`
    std::vector<std::function<void()>> after;
    bool empty() const { return commands.empty() && blocking.empty() && after.empty(); }
  };
  Round next_;
  int roundsRun_ = 0;
  std::size_t commandsSent_ = 0;
};

}  // namespace apphealth
