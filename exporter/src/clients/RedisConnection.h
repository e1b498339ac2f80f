#pragma once
// RAII wrapper around a hiredis context with connect and command timeouts, pipelining, and a
// thread-safe interrupt() that unblocks a pending read at shutdown.

#include <hiredis/hiredis.h>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "util/Duration.h"

namespace apphealth {

class RedisError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using RedisReply = std::unique_ptr<redisReply, ReplyDeleter>;

using RedisCommand = std::vector<std::string>;

struct RedisEndpoint {
  std::string host;
  int port = 6379;
  std::string unix_socket;  // preferred when set
  std::string describe() const;
};

class RedisConnection {
 public:
  ~RedisConnection();

  // Connects, authenticates and selects the database. Throws RedisError.
  void connect(const RedisEndpoint& endpoint, Duration timeout, const std::optional<std::string>& password, int db);
  bool connected() const { return context_ != nullptr; }
  void close();

  // Sends all commands in one write and reads all replies: one round trip for any number of
  // keys. An error reply is returned as a reply (type REDIS_REPLY_ERROR), not thrown; I/O
  // errors and timeouts close the connection and throw.
  std::vector<RedisReply> pipeline(const std::vector<RedisCommand>& commands);
  // The same, handing each reply to `onReply(index, reply)` as soon as it is read, so that
  // the caller works on the first replies while Redis still executes the later commands.
  std::vector<RedisReply> pipeline(const std::vector<RedisCommand>& commands,
                                   const std::function<void(std::size_t, const redisReply&)>& onReply);
  RedisReply command(const RedisCommand& command);

  // Callable from any thread: makes a blocked read or write return at once.
  void interrupt();

 private:
  [[noreturn]] void fail(const std::string& what);

  std::mutex fdMutex_;  // guards context_ replacement against interrupt()
  redisContext* context_ = nullptr;
};

}  // namespace apphealth
