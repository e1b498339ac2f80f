#include "collectors/redis/ReadScript.h"

#include <openssl/evp.h>

#include <cstdio>
#include <stdexcept>

#include "collectors/redis/RedisReplies.h"

namespace apphealth {

namespace {
std::string sha1Hex(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha1(), nullptr) != 1) {
    throw std::runtime_error("SHA-1 of a Lua script failed");
  }
  std::string hex;
  char pair[3];
  for (unsigned int i = 0; i < size; ++i) {
    std::snprintf(pair, sizeof pair, "%02x", digest[i]);
    hex += pair;
  }
  return hex;
}
}  // namespace

ReadScript::ReadScript(std::string body) : body_(std::move(body)), sha1_(sha1Hex(body_)) {}

void ReadScript::call(RedisRounds& rounds, const std::vector<std::string>& args,
                      std::function<void(const redisReply&)> onReply,
                      std::function<void(const std::string&)> onError) const {
  RedisCommand command;
  command.reserve(args.size() + 3);
  command.push_back("EVALSHA");
  command.push_back(sha1_);
  command.push_back("0");
  command.insert(command.end(), args.begin(), args.end());
  rounds.add(std::move(command), [this, &rounds, onReply, onError](const redisReply& r, const RedisCommand& sent) {
    if (!reply::isError(r)) {
      onReply(r);
      return;
    }
    const std::string error = reply::errorText(r);
    if (error.rfind("NOSCRIPT", 0) != 0) {
      onError(error);
      return;
    }
    // Not in the server's cache: EVAL sends the body (and caches it for the next samples).
    RedisCommand eval = sent;
    eval[0] = "EVAL";
    eval[1] = body_;
    rounds.add(std::move(eval), [onReply, onError](const redisReply& r2, const RedisCommand&) {
      if (reply::isError(r2)) {
        onError(reply::errorText(r2));
      } else {
        onReply(r2);
      }
    });
  });
}

bool ReadScript::failedWhileRunning(const std::string& error) {
  return error.find(", on @user_script:") != std::string::npos;
}

}  // namespace apphealth
