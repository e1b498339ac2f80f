#include "collectors/redis/SidekiqReader.h"

#include <set>

#include "collectors/redis/QueueFormats.h"
#include "collectors/redis/RedisReplies.h"

namespace apphealth {

// Layout (sidekiq/client.rb, api.rb, launcher.rb; 6.4, 7.x, 8.x), every key behind the app's
// redis-namespace prefix if it has one:
//   queue:NAME            list of JSON jobs, LPUSHed, processors BRPOP: the oldest is the tail;
//                         enqueued_at in float seconds (<= 7) or integer milliseconds (8)
//   retry, schedule, dead zsets of JSON jobs, shared by all queues
//   stat:processed        counters, INCRBYed by every process's heartbeat
//   stat:failed
//   processes             set of process identities ("host:pid:hex")
//   <identity>            hash: info (JSON with queues), busy, beat, quiet; expires 60 s after
//                         the last heartbeat (every 5 s in 6.x, 10 s in 7/8)
//   <identity>:workers    6.x: hash thread id -> JSON {"queue", "payload", "run_at"} of running jobs
//   <identity>:work       7/8: the same, renamed
namespace {
// Per queue: LLEN and the tail (the oldest job) of queue:NAME.
const ReadScript& sidekiqScript() {
  static const ReadScript script(R"lua(#!lua flags=no-writes
local out, n = {}, 0
for i = 2, #ARGV do
  local key = ARGV[1] .. 'queue:' .. ARGV[i]
  out[n + 1] = redis.pcall('LLEN', key)
  out[n + 2] = out[n + 1] ~= 0 and redis.pcall('LINDEX', key, -1) or false
  n = n + 2
end
return out
)lua");
  return script;
}
}  // namespace

SidekiqReader::SidekiqReader(std::string prefix, std::vector<std::string> queues, bool readWorkers)
    : prefix_(std::move(prefix)), queues_(std::move(queues)), readWorkers_(readWorkers) {}

std::vector<std::pair<std::string, std::string>> SidekiqReader::fixedStates() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& q : queues_) {
    out.emplace_back(q, "waiting");
    if (readWorkers_) out.emplace_back(q, "active");
  }
  out.emplace_back(kSharedQueue, "retry");
  out.emplace_back(kSharedQueue, "scheduled");
  out.emplace_back(kSharedQueue, "dead");
  return out;
}

void SidekiqReader::start(RedisRounds& rounds, ReadContext& ctx) {
  beginSample(ctx);
  processesRead_ = false;
  identities_.clear();
  processes_.clear();
  static const std::string kShared = kSharedQueue;
  const auto count = [&](const std::string& key, const std::string& queue, const char* state, const char* cmd) {
    countInto(rounds, {cmd, key}, queue, state, "sidekiq");
  };
  for (const auto& q : queues_) {
    ctx.out.addJobs(q, "waiting", 0);
    ctx.out.addAge(q, 0);
  }
  readQueues(
      rounds, sidekiqScript(), queues_, {prefix_}, 2,
      [this, &ctx](std::size_t i, redisReply* const* e) {
        const std::string& q = queues_[i];
        const std::string key = prefix_ + "queue:" + q;
        takeCount(*e[0], q, "waiting", "sidekiq", key);
        takeTail(ctx, q, key, *e[1]);
      },
      [this, &rounds, &ctx](std::size_t i) {
        const std::string& q = queues_[i];
        const std::string key = prefix_ + "queue:" + q;
        countInto(rounds, {"LLEN", key}, q, "waiting", "sidekiq");
        rounds.add({"LINDEX", key, "-1"},
                   [this, &ctx, &q, key](const redisReply& r, const RedisCommand&) { takeTail(ctx, q, key, r); });
      },
      "sidekiq");
  count(prefix_ + "retry", kShared, "retry", "ZCARD");
  count(prefix_ + "schedule", kShared, "scheduled", "ZCARD");
  count(prefix_ + "dead", kShared, "dead", "ZCARD");
  // Counters: GET of a missing key is nil, which Sidekiq's Stats reads as 0.
  for (const auto& [key, counter] : {std::pair{"stat:processed", &QueueSample::processed},
                                     std::pair{"stat:failed", &QueueSample::failed}}) {
    rounds.add({"GET", prefix_ + key}, [&ctx, counter, key](const redisReply& r, const RedisCommand&) {
      if (reply::isNil(r)) {
        (ctx.out.*counter)[kSharedQueue] = 0;
      } else if (auto v = reply::number(r)) {
        (ctx.out.*counter)[kSharedQueue] = *v;
      } else {
        ctx.problems.report(std::string("sidekiq-") + key, std::string("sidekiq: ") + key + " is not a number");
      }
    });
  }
  if (!readWorkers_) return;
  rounds.add({"SSCAN", prefix_ + "processes", "0", "COUNT", "1000"}, [this, &rounds, &ctx](const redisReply& r, const RedisCommand&) {
    if (r.type != REDIS_REPLY_ARRAY || r.elements != 2 || r.element[1]->type != REDIS_REPLY_ARRAY) {
      ctx.problems.report("sidekiq-processes", "sidekiq: cannot read the process set " + prefix_ + "processes" +
                                                   (reply::isError(r) ? ": " + reply::errorText(r) : ""));
      return;
    }
    processesRead_ = true;
    if (reply::text(*r.element[0]).value_or("0") != "0") {
      ctx.problems.report("sidekiq-processes-many", "sidekiq: the process set holds more than about 1000 entries; "
                                                    "only the first batch is checked");
    }
    std::set<std::string> unique;
    const redisReply& members = *r.element[1];
    for (std::size_t i = 0; i < members.elements && unique.size() < kMaxProcesses; ++i) {
      if (auto id = reply::text(*members.element[i])) unique.emplace(*id);
    }
    identities_.assign(unique.begin(), unique.end());
    readProcesses(rounds, ctx);
  });
}

void SidekiqReader::takeTail(ReadContext& ctx, const std::string& q, const std::string& key, const redisReply& r) {
  auto job = reply::text(r);
  if (!job) return;  // empty queue
  // Sidekiq's own Queue#latency: enqueued_at, or created_at (8) when it has none.
  auto enqueued = parseJsonTime(*job, "enqueued_at");
  if (!enqueued && !jsonHasField(*job, "enqueued_at")) enqueued = parseJsonTime(*job, "created_at");
  if (!enqueued) {
    ctx.problems.report("sidekiq-age:" + q, "sidekiq queue " + q + ": the oldest job in " + key +
                                                " is not JSON with a numeric enqueued_at; its age is not known "
                                                "this sample");
    ctx.out.ages.erase(q);
    return;
  }
  ctx.out.addAge(q, std::max(0.0, ctx.now - *enqueued));
}

void SidekiqReader::readProcesses(RedisRounds& rounds, ReadContext& ctx) {
  for (const auto& identity : identities_) {
    const std::string key = prefix_ + identity;
    rounds.add({"HMGET", key, "info", "busy", "quiet"}, [this, &ctx, identity, key](const redisReply& r, const RedisCommand&) {
      if (r.type != REDIS_REPLY_ARRAY || r.elements != 3) return;
      auto info = reply::text(*r.element[0]);
      if (!info) return;  // expired: the process stopped beating
      Process& p = processes_[identity];
      p.exists = true;
      p.busy = reply::number(*r.element[1]).value_or(0);
      p.quiet = reply::text(*r.element[2]).value_or("false") == "true";
      if (auto queues = parseSidekiqQueues(*info)) {
        p.queues = std::move(*queues);
      } else {
        ctx.problems.report("sidekiq-info:" + identity,
                            "sidekiq: process " + key + " has an info field without queues; it is not counted");
      }
    });
    readWork(rounds, ctx, identity, key + ":work");     // 7, 8
    readWork(rounds, ctx, identity, key + ":workers");  // 6
  }
}

void SidekiqReader::readWork(RedisRounds& rounds, ReadContext& ctx, const std::string& identity,
                             const std::string& key) {
  rounds.add({"HSCAN", key, "0", "COUNT", "1000"}, [this, &ctx, identity, key](const redisReply& r, const RedisCommand&) {
    if (r.type != REDIS_REPLY_ARRAY || r.elements != 2 || r.element[1]->type != REDIS_REPLY_ARRAY) {
      if (reply::isError(r)) ctx.problems.report("wrongtype:" + key, "sidekiq: cannot read " + key + ": " + reply::errorText(r));
      return;
    }
    if (reply::text(*r.element[0]).value_or("0") != "0") {
      ctx.problems.report("sidekiq-work-many:" + key, "sidekiq: " + key + " holds more than about 1000 running jobs; "
                                                      "only the first batch is counted");
    }
    const redisReply& fields = *r.element[1];
    bool unreadable = false;
    for (std::size_t i = 0; i + 1 < fields.elements; i += 2) {
      auto work = reply::text(*fields.element[i + 1]);
      auto queue = work ? parseSidekiqWorkQueue(*work) : std::nullopt;
      if (!queue) {
        unreadable = true;
        continue;
      }
      processes_[identity].running[*queue] += 1;
    }
    if (unreadable) {
      ctx.problems.report("sidekiq-work:" + key, "sidekiq: " + key + " has entries that are not JSON with a queue; "
                                                 "they are not counted");
    }
  });
}

void SidekiqReader::finish(ReadContext& ctx) {
  if (!readWorkers_ || !processesRead_) return;
  const std::set<std::string> configured(queues_.begin(), queues_.end());
  for (const auto& q : queues_) {
    ctx.out.workers[q] += 0;
    ctx.out.busyWorkers[q] += 0;
    ctx.out.addJobs(q, "active", 0);
  }
  for (const auto& [identity, p] : processes_) {
    // Jobs still running count as active even in a quiet process (it finishes them).
    for (const auto& [queue, n] : p.running) {
      if (configured.count(queue)) ctx.out.addJobs(queue, "active", n);
    }
    // Live: its hash has not expired (heartbeats renew it) and it is not quiet (a quiet
    // process takes no new jobs).
    if (!p.exists || p.quiet) continue;
    for (const auto& queue : p.queues) {
      if (!configured.count(queue)) continue;
      ctx.out.workers[queue] += 1;
      if (p.busy > 0) ctx.out.busyWorkers[queue] += 1;
    }
  }
}

}  // namespace apphealth
