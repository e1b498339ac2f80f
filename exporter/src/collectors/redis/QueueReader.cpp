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
    takeCount(r, *t.queue, t.state, t.framework, command[1]);
  });
}

void QueueReader::takeCount(const redisReply& r, const std::string& queue, const char* state, const char* framework,
                            const std::string& key) {
  if (auto n = reply::integer(r)) {
    ctx_->out.addJobs(queue, state, static_cast<double>(*n));
  } else if (reply::isError(r)) {
    ctx_->problems.report("wrongtype:" + key, std::string(framework) + ": cannot count " + key + " (" + state + " of " +
                                                  queue + "): " + reply::errorText(r));
  }
}

void QueueReader::readQueues(RedisRounds& rounds, const ReadScript& script, const std::vector<std::string>& queues,
                             const std::vector<std::string>& leading, std::size_t stride,
                             std::function<void(std::size_t, redisReply* const*)> take,
                             std::function<void(std::size_t)> commands, const char* framework) {
  if (scriptsRefused_) {
    for (std::size_t i = 0; i < queues.size(); ++i) commands(i);
    return;
  }
  for (std::size_t first = 0; first < queues.size(); first += kQueuesPerScript) {
    const std::size_t count = std::min(kQueuesPerScript, queues.size() - first);
    std::vector<std::string> args(leading);
    args.insert(args.end(), queues.begin() + static_cast<std::ptrdiff_t>(first),
                queues.begin() + static_cast<std::ptrdiff_t>(first + count));
    const auto fallback = [commands, first, count] {
      for (std::size_t i = first; i < first + count; ++i) commands(i);
    };
    script.call(
        rounds, args,
        [this, take, fallback, first, count, stride, framework](const redisReply& r) {
          if (r.type != REDIS_REPLY_ARRAY || r.elements != count * stride) {
            ctx_->problems.report(std::string(framework) + "-script",
                                  std::string(framework) + ": the read script answered an unexpected reply; "
                                                           "reading these queues with commands");
            fallback();
            return;
          }
          for (std::size_t i = 0; i < count; ++i) take(first + i, r.element + i * stride);
        },
        [this, fallback, framework](const std::string& error) {
          if (error.rfind("BUSY", 0) == 0) {
            // Another client's script holds Redis: not a refusal, the commands wait behind it too.
            ctx_->problems.report("script-busy", std::string(framework) + ": Redis is busy running a script (" +
                                                     error + ")");
          } else if (ReadScript::failedWhileRunning(error)) {
            // Not the server's refusal: tried again next sample, and said as a bug to report.
            ctx_->problems.report(std::string(framework) + "-script-failed",
                                  std::string(framework) + ": apphealth's read script failed in Redis (" + error +
                                      "); reading these queues with commands instead. This is a bug in "
                                      "apphealth: please report it with this line");
          } else if (!scriptsRefused_) {
            spdlog::warn("redis target {}: {}: Redis refuses the read-only Lua script ({}); reading every state with "
                         "pipelined commands instead, which costs more CPU in Redis and here",
                         ctx_->target.name, framework, error);
            scriptsRefused_ = true;
          }
          fallback();
        });
  }
}

}  // namespace apphealth
