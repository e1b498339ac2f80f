#include "collectors/redis/QueueReader.h"

#include <spdlog/spdlog.h>

#include "collectors/redis/RedisReplies.h"

namespace apphealth {

void ProblemLog::report(const std::string& key, const std::string& message) {
  if (first_.empty()) first_ = message;
  if (!current_.insert(key).second) return;  // once per sample is enough
  if (active_.count(key)) {
    spdlog::debug("redis target {}: {}", target_, message);
  } else {
    spdlog::warn("redis target {}: {}", target_, message);
  }
}

void ProblemLog::note(const std::string& key, const std::string& message) {
  if (!current_.insert(key).second) return;
  if (active_.count(key)) return;
  spdlog::info("redis target {}: {}", target_, message);
}

void ProblemLog::beginSample() {
  current_.clear();
  first_.clear();
}

std::string ProblemLog::endSample() {
  active_ = std::move(current_);
  current_.clear();
  return std::move(first_);
}

void QueueReader::countInto(RedisRounds& rounds, RedisCommand command, const std::string& queue, const char* state,
                            const char* framework) {
  ctx_->out.addJobs(queue, state, 0);
  const std::size_t index = countTargets_.size();
  countTargets_.push_back({&queue, state, framework});
  rounds.add(std::move(command), [this, index](const redisReply& r, const RedisCommand& command) {
    const CountTarget& t = countTargets_[index];
    if (auto n = reply::integer(r)) {
      ctx_->out.addJobs(*t.queue, t.state, static_cast<double>(*n));
    } else if (reply::isError(r)) {
      ctx_->problems.report("wrongtype:" + command[1], std::string(t.framework) + ": cannot count " + command[1] + " (" +
                                                           t.state + " of " + *t.queue + "): " + reply::errorText(r));
    }
  });
}

}  // namespace apphealth
