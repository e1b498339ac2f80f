#include "collectors/redis/BullMqReader.h"

#include <cmath>
#include <cstdlib>

#include "collectors/redis/QueueFormats.h"
#include "collectors/redis/RedisReplies.h"
#include "util/Base64.h"

namespace apphealth {

// Layout (bullmq src/commands/*.lua, src/classes/queue-getters.ts; 5.x and 6.x), for the
// prefix "bull" and a queue NAME:
//   bull:NAME:wait               list of job ids, LPUSHed, moved to active from the tail
//   bull:NAME:paused             list: 5.x renames wait to paused while the queue is paused
//                                and adds there; 6.x keeps jobs in wait and only moves a
//                                leftover paused list back on resume
//   bull:NAME:meta               hash; field `paused` while paused (5.x and 6.x)
//   bull:NAME:prioritized        zset id -> priority * 2^32 + insertion counter
//   bull:NAME:active             list
//   bull:NAME:delayed, failed, completed, waiting-children   zsets
//   bull:NAME:<id>               job hash, `timestamp` in ms
//   bull:NAME:metrics:completed  hash, `count` of jobs completed (when workers run with
//   bull:NAME:metrics:failed     `metrics` options), `failed` likewise
// Workers: each Worker names its blocking connection "bull:<base64 NAME>" or
// "bull:<base64 NAME>:w:<worker name>" (CLIENT SETNAME); Queue.getWorkers() counts those in
// CLIENT LIST, so a killed worker is gone as soon as its connection closes.
BullMqReader::BullMqReader(std::string prefix, std::vector<std::string> queues, bool readWorkers)
    : prefix_(prefix.empty() ? "bull" : std::move(prefix)), queues_(std::move(queues)), readWorkers_(readWorkers) {
  for (const auto& q : queues_) clientNames_[prefix_ + ":" + base64Encode(q)] = q;
}

std::vector<std::pair<std::string, std::string>> BullMqReader::fixedStates() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& q : queues_) {
    for (const char* state : {"waiting", "paused", "active", "delayed", "failed", "completed", "waiting_children"}) {
      out.emplace_back(q, state);
    }
  }
  return out;
}

namespace {
constexpr double kLevel = 4294967296.0;  // 2^32: the priority's unit in a prioritized score
}

void BullMqReader::start(RedisRounds& rounds, ReadContext& ctx) {
  beginSample(ctx);
  sample_.clear();
  workers_.reset();
  for (const auto& q : queues_) {
    sample_[q];
    const std::string base = prefix_ + ":" + q + ":";
    const auto length = [&](const char* cmd, const std::string& suffix, auto store) {
      const std::string key = base + suffix;
      rounds.add({cmd, key}, [this, &ctx, q, key, store](const redisReply& r, const RedisCommand&) {
        if (auto n = reply::integer(r)) {
          store(sample_[q], ctx, static_cast<double>(*n));
        } else if (reply::isError(r)) {
          ctx.problems.report("wrongtype:" + key, "bullmq: cannot count " + key + ": " + reply::errorText(r));
        }
      });
    };
    const auto direct = [&](const char* cmd, const std::string& suffix, const char* state) {
      countInto(rounds, {cmd, base + suffix}, q, state, "bullmq");
    };
    length("LLEN", "wait", [](Queue& s, ReadContext&, double n) { s.wait += n; });
    length("LLEN", "paused", [](Queue& s, ReadContext&, double n) { s.paused += n; });
    length("ZCARD", "prioritized", [](Queue& s, ReadContext&, double n) { s.prioritized += n; });
    direct("LLEN", "active", "active");
    direct("ZCARD", "delayed", "delayed");
    direct("ZCARD", "failed", "failed");
    direct("ZCARD", "completed", "completed");
    direct("ZCARD", "waiting-children", "waiting_children");
    rounds.add({"HEXISTS", base + "meta", "paused"}, [this, q](const redisReply& r, const RedisCommand&) {
      sample_[q].pausedFlag = reply::integer(r).value_or(0) == 1;
    });
    // Oldest job: the tails of wait and paused, and the oldest of each priority level.
    for (const char* list : {"wait", "paused"}) {
      rounds.add({"LINDEX", base + list, "-1"}, [this, &rounds, &ctx, q](const redisReply& r, const RedisCommand&) {
        auto id = reply::text(r);
        if (!id) return;
        // A "0:<ts>" marker left at the tail by BullMQ 4 is no job (BullMQ 5's getCounts skips it).
        if (id->substr(0, 2) == "0:") {
          sample_[q].wait -= 1;
          return;
        }
        candidate(rounds, ctx, q, std::string(*id));
      });
    }
    rounds.add({"ZRANGE", base + "prioritized", "0", "0", "WITHSCORES"}, [this, &rounds, &ctx, q](const redisReply& r, const RedisCommand&) {
      if (r.type != REDIS_REPLY_ARRAY || r.elements != 2) return;
      if (auto id = reply::text(*r.element[0])) candidate(rounds, ctx, q, std::string(*id));
    });
    rounds.add({"ZREVRANGE", base + "prioritized", "0", "0", "WITHSCORES"}, [this, &rounds, &ctx, q](const redisReply& r, const RedisCommand&) {
      if (r.type != REDIS_REPLY_ARRAY || r.elements != 2) return;
      auto score = reply::number(*r.element[1]);
      if (!score) return;
      walkLevel(rounds, ctx, q, static_cast<long long>(std::floor(*score / kLevel)), 0);
    });
    rounds.add({"HGET", base + "metrics:completed", "count"},
               [this, q](const redisReply& r, const RedisCommand&) { sample_[q].completedCount = reply::number(r); });
    rounds.add({"HGET", base + "metrics:failed", "count"},
               [this, q](const redisReply& r, const RedisCommand&) { sample_[q].failedCount = reply::number(r); });
  }
  if (!readWorkers_) return;
  // One CLIENT LIST per sample, whatever the number of BullMQ entries (the rounds send a
  // command queued twice only once).
  rounds.addShared({"CLIENT", "LIST", "TYPE", "normal"}, [this, &ctx](const redisReply& r, const RedisCommand&) {
    auto text = reply::text(r);
    if (!text) {
      ctx.problems.report("bullmq-client-list", "bullmq: CLIENT LIST failed" +
                                                    (reply::isError(r) ? " (" + reply::errorText(r) + ")" : "") +
                                                    "; workers are not exported");
      return;
    }
    workers_.emplace();
    for (const auto& q : queues_) (*workers_)[q] = 0;
    for (const auto name : clientListNames(*text)) {
      // Queue.getWorkers(): the name is "<prefix>:<base64 queue>" or starts with it plus ":w:".
      const std::size_t worker = name.find(":w:");
      const std::string_view base = worker == std::string_view::npos ? name : name.substr(0, worker);
      if (auto it = clientNames_.find(std::string(base)); it != clientNames_.end()) (*workers_)[it->second] += 1;
    }
  });
}

// The oldest job of priority level `level` (the lowest score within it), then the next level
// up (the highest score below it): levels are visited from the lowest priority upwards.
void BullMqReader::walkLevel(RedisRounds& rounds, ReadContext& ctx, const std::string& q, long long level, int depth) {
  const std::string key = prefix_ + ":" + q + ":prioritized";
  const long long from = level * static_cast<long long>(kLevel);
  rounds.add({"ZRANGEBYSCORE", key, std::to_string(from), "(" + std::to_string(from + static_cast<long long>(kLevel)),
              "LIMIT", "0", "1"},
             [this, &rounds, &ctx, q](const redisReply& r, const RedisCommand&) {
               if (r.type == REDIS_REPLY_ARRAY && r.elements == 1) {
                 if (auto id = reply::text(*r.element[0])) candidate(rounds, ctx, q, std::string(*id));
               }
             });
  if (depth + 1 >= kMaxPriorityLevels || level <= 0) return;
  rounds.add({"ZREVRANGEBYSCORE", key, "(" + std::to_string(from), "-inf", "WITHSCORES", "LIMIT", "0", "1"},
             [this, &rounds, &ctx, q, depth](const redisReply& r, const RedisCommand&) {
               if (r.type != REDIS_REPLY_ARRAY || r.elements != 2) return;
               auto score = reply::number(*r.element[1]);
               if (!score) return;
               walkLevel(rounds, ctx, q, static_cast<long long>(std::floor(*score / kLevel)), depth + 1);
             });
}

void BullMqReader::candidate(RedisRounds& rounds, ReadContext& ctx, const std::string& q, const std::string& id) {
  const std::string jobKey = prefix_ + ":" + q + ":" + id;
  rounds.add({"HGET", jobKey, "timestamp"}, [this, &ctx, q, jobKey](const redisReply& r, const RedisCommand&) {
    auto text = reply::text(r);
    auto created = text ? parseMillis(*text) : std::nullopt;
    Queue& s = sample_[q];
    if (!created) {
      // Removed between the two reads (a worker took it) is normal; a job without a time is not.
      if (text) {
        ctx.problems.report("bullmq-age:" + jobKey, "bullmq queue " + q + ": job " + jobKey +
                                                        " has an unreadable timestamp; the queue's age is not known "
                                                        "this sample");
        s.ageUnknown = true;
      }
      return;
    }
    s.oldest = s.oldest ? std::min(*s.oldest, *created) : *created;
  });
}

void BullMqReader::finish(ReadContext& ctx) {
  for (const auto& q : queues_) {
    const Queue& s = sample_[q];
    // Paused (the meta flag, both versions): nothing is taken from wait, paused or
    // prioritized until resumed. A paused list without the flag is 6.x's leftover from 5.x.
    if (s.pausedFlag) {
      ctx.out.addJobs(q, "paused", s.wait + s.paused + s.prioritized);
      ctx.out.addJobs(q, "waiting", 0);
    } else {
      ctx.out.addJobs(q, "waiting", s.wait + s.prioritized);
      ctx.out.addJobs(q, "paused", s.paused);
    }
    if (!s.ageUnknown) ctx.out.addAge(q, s.oldest ? std::max(0.0, ctx.now - *s.oldest) : 0);
    if (s.completedCount || s.failedCount) {
      ctx.out.processed[q] = s.completedCount.value_or(0) + s.failedCount.value_or(0);
      ctx.out.failed[q] = s.failedCount.value_or(0);
    }
    if (workers_) ctx.out.workers[q] = (*workers_)[q];
  }
}

}  // namespace apphealth
