#pragma once
// A read-only Lua script that a reader runs in Redis instead of thousands of pipelined
// commands: it reads every state of a batch of queues where the data is, and returns one
// array, so the exporter formats one command and parses one reply per batch. Sent with
// EVALSHA; the server's script cache may not hold it (first use on a connection, SCRIPT
// FLUSH, a restart), which answers NOSCRIPT: then EVAL sends the body once and caches it.
// Scripts start with `#!lua flags=no-writes`, so Redis 7 runs them on read-only replicas and
// refuses any write in them; servers before 7 do not know the flag and refuse the script,
// like an ACL without @scripting does: the reader then sends its pipelined commands.

#include <functional>
#include <string>
#include <vector>

#include "collectors/redis/RedisRounds.h"

namespace apphealth {

class ReadScript {
 public:
  explicit ReadScript(std::string body);
  const std::string& sha1() const { return sha1_; }

  // Queues EVALSHA with no KEYS and `args` as ARGV for the next round. `onReply` gets the
  // script's reply; an error reply other than NOSCRIPT (scripts refused, a compile error on
  // Redis 6, BUSY) goes to `onError` with its text.
  void call(RedisRounds& rounds, const std::vector<std::string>& args, std::function<void(const redisReply&)> onReply,
            std::function<void(const std::string&)> onError) const;

  // Whether an error reply of `call` came from the script while it ran (a Lua error, a command
  // it called failing, a write refused by no-writes) rather than from Redis refusing to run it
  // (NOPERM, an unknown flag, a compile error on Redis 6): Redis 7 ends the former with
  // "script: <sha1>, on @user_script:<line>.". Either way the reader falls back to commands,
  // but only a refusal is the server's choice; the other is a bug in apphealth's script.
  static bool failedWhileRunning(const std::string& error);

 private:
  std::string body_;
  std::string sha1_;
};

}  // namespace apphealth
