#include "clients/RedisConnection.h"

#include <charconv>
#include <cerrno>

#include <sys/socket.h>
#include <sys/time.h>

namespace apphealth {

namespace {
timeval toTimeval(Duration d) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}
}  // namespace

std::string RedisEndpoint::describe() const {
  return unix_socket.empty() ? host + ":" + std::to_string(port) : "unix:" + unix_socket;
}

RedisConnection::~RedisConnection() { close(); }

void RedisConnection::close() {
  std::lock_guard lock(fdMutex_);
  if (context_ != nullptr) {
    redisFree(context_);
    context_ = nullptr;
  }
}

void RedisConnection::interrupt() {
  std::lock_guard lock(fdMutex_);
  if (context_ != nullptr && context_->fd >= 0) ::shutdown(context_->fd, SHUT_RDWR);
}

void RedisConnection::fail(const std::string& what) {
  close();
  throw RedisError(what);
}

void RedisConnection::connect(const RedisEndpoint& endpoint, Duration timeout,
                              const std::optional<std::string>& password, int db) {
  close();
  const timeval tv = toTimeval(timeout);
  redisContext* context = endpoint.unix_socket.empty()
                              ? redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, tv)
                              : redisConnectUnixWithTimeout(endpoint.unix_socket.c_str(), tv);
  if (context == nullptr) throw RedisError("cannot allocate a redis context");
  if (context->err) {
    std::string message = context->errstr;
    redisFree(context);
    throw RedisError("connect to " + endpoint.describe() + ": " + message);
  }
  redisSetTimeout(context, tv);
  if (endpoint.unix_socket.empty()) redisEnableKeepAlive(context);
  {
    std::lock_guard lock(fdMutex_);
    context_ = context;
  }
  if (password) {
    auto reply = command({"AUTH", *password});
    if (reply->type == REDIS_REPLY_ERROR) fail(std::string("AUTH failed: ") + reply->str);
  }
  if (db != 0) {
    auto reply = command({"SELECT", std::to_string(db)});
    if (reply->type == REDIS_REPLY_ERROR) fail(std::string("SELECT failed: ") + reply->str);
  }
}

std::vector<RedisReply> RedisConnection::pipeline(const std::vector<RedisCommand>& commands) {
  return pipeline(commands, {});
}

std::vector<RedisReply> RedisConnection::pipeline(const std::vector<RedisCommand>& commands,
                                                  const std::function<void(std::size_t, const redisReply&)>& onReply) {
  if (context_ == nullptr) throw RedisError("not connected");
  if (commands.empty()) return {};
  // Every command in RESP, in one buffer handed to hiredis at once: hiredis' own formatting
  // (redisAppendCommandArgv, one sds string per command) cost more than the rest of a
  // sample of thousands of queue reads.
  std::size_t size = 0;
  for (const auto& cmd : commands) {
    size += 16;
    for (const auto& arg : cmd) size += arg.size() + 24;
  }
  std::string wire;
  wire.reserve(size);
  const auto appendHeader = [&wire](char tag, std::size_t n) {
    char buf[32];
    buf[0] = tag;
    char* end = std::to_chars(buf + 1, buf + sizeof buf - 2, n).ptr;
    *end++ = '\r';
    *end++ = '\n';
    wire.append(buf, end);
  };
  for (const auto& cmd : commands) {
    appendHeader('*', cmd.size());
    for (const auto& arg : cmd) {
      appendHeader('$', arg.size());
      wire.append(arg);
      wire.append("\r\n", 2);
    }
  }
  if (redisAppendFormattedCommand(context_, wire.data(), wire.size()) != REDIS_OK) {
    fail(std::string("cannot queue commands: ") + context_->errstr);
  }
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) {
      fail(context_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)
               ? std::string("command timed out")
               : std::string("connection error: ") + context_->errstr);
    }
    replies.emplace_back(static_cast<redisReply*>(raw));
    if (onReply) onReply(i, *replies.back());
  }
  return replies;
}

RedisReply RedisConnection::command(const RedisCommand& cmd) {
  auto replies = pipeline({cmd});
  return std::move(replies.front());
}

}  // namespace apphealth
