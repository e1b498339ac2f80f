#include "collectors/redis/RqReader.h"

#include "collectors/redis/QueueFormats.h"
#include "collectors/redis/RedisReplies.h"

namespace apphealth {

// Layout (rq/queue.py, rq/registry.py, rq/worker.py, rq/worker_registration.py; 1.13 and 2.x):
//   rq:queue:NAME              list of job ids, RPUSHed, workers pop the head (BLPOP / BLMOVE)
//   rq:job:<id>                hash with enqueued_at ("%Y-%m-%dT%H:%M:%S.%fZ")
//   rq:wip:NAME                StartedJobRegistry   zset id -> expiry (now + heartbeat ttl)
//   rq:finished:NAME           FinishedJobRegistry  zset id -> expiry (now + result_ttl)
//   rq:failed:NAME             FailedJobRegistry    zset id -> expiry (now + failure_ttl)
//   rq:canceled:NAME           CanceledJobRegistry  zset (no expiry cleanup)
//   rq:scheduled:NAME          ScheduledJobRegistry zset id -> when to enqueue
//   rq:deferred:NAME           DeferredJobRegistry  zset, jobs waiting for their dependencies
//   rq:workers:NAME            set of worker keys that listen on the queue
//   rq:worker:<name>           hash: state (busy, idle, ...), birth, death, successful_job_count,
//                              failed_job_count; expires worker_ttl + 60 s after the last heartbeat
//   rq:pubsub:<name>           the channel each running worker is SUBSCRIBEd to for commands
// RQ's own counts run cleanup first, which drops registry entries whose expiry has passed;
// ZCOUNT over the unexpired range gives the same numbers without writing.
namespace {
// Per queue (ARGV: prefix, now, names): the counts of queue:NAME and every registry as
// queueCommands() reads them, then the head job's id and its enqueued_at.
const ReadScript& rqScript() {
  static const ReadScript script(R"lua(#!lua flags=no-writes
local p, now = ARGV[1], ARGV[2]
local after = '(' .. now
local out, n = {}, 0
for i = 3, #ARGV do
  local q = ARGV[i]
  local list, wip = p .. 'queue:' .. q, p .. 'wip:' .. q
  out[n + 1] = redis.pcall('LLEN', list)
  out[n + 2] = redis.pcall('ZCOUNT', wip, after, '+inf')
  out[n + 3] = redis.pcall('ZCOUNT', wip, '-inf', now)
  out[n + 4] = redis.pcall('ZCOUNT', p .. 'failed:' .. q, after, '+inf')
  out[n + 5] = redis.pcall('ZCOUNT', p .. 'finished:' .. q, after, '+inf')
  out[n + 6] = redis.pcall('ZCARD', p .. 'canceled:' .. q)
  out[n + 7] = redis.pcall('ZCARD', p .. 'scheduled:' .. q)
  out[n + 8] = redis.pcall('ZCARD', p .. 'deferred:' .. q)
  local head = out[n + 1] ~= 0 and redis.pcall('LINDEX', list, 0) or false
  out[n + 9] = head
  out[n + 10] = type(head) == 'string' and redis.pcall('HGET', p .. 'job:' .. head, 'enqueued_at') or false
  n = n + 10
end
return out
)lua");
  return script;
}
}  // namespace

RqReader::RqReader(std::string prefix, std::vector<std::string> queues, bool readWorkers)
    : prefix_(prefix.empty() ? "rq:" : std::move(prefix)), queues_(std::move(queues)), readWorkers_(readWorkers) {}

std::vector<std::pair<std::string, std::string>> RqReader::fixedStates() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& q : queues_) {
    for (const char* state : {"waiting", "active", "completed", "failed", "canceled", "scheduled", "deferred"}) {
      out.emplace_back(q, state);
    }
  }
  return out;
}

void RqReader::start(RedisRounds& rounds, ReadContext& ctx) {
  beginSample(ctx);
  workers_.clear();
  workerSetsRead_.clear();
  numsubFailed_ = false;
  const std::string now = reply::scoreArg(ctx.now);
  for (const auto& q : queues_) {
    for (const char* state : {"waiting", "active", "failed", "completed", "canceled", "scheduled", "deferred"}) {
      ctx.out.addJobs(q, state, 0);
    }
    ctx.out.addAge(q, 0);
  }
  readQueues(
      rounds, rqScript(), queues_, {prefix_, now}, 10,
      [this, &ctx](std::size_t i, redisReply* const* e) {
        const std::string& q = queues_[i];
        takeCount(*e[0], q, "waiting", "rq", prefix_ + "queue:" + q);
        takeCount(*e[1], q, "active", "rq", prefix_ + "wip:" + q);
        takeCount(*e[2], q, "failed", "rq", prefix_ + "wip:" + q);
        takeCount(*e[3], q, "failed", "rq", prefix_ + "failed:" + q);
        takeCount(*e[4], q, "completed", "rq", prefix_ + "finished:" + q);
        takeCount(*e[5], q, "canceled", "rq", prefix_ + "canceled:" + q);
        takeCount(*e[6], q, "scheduled", "rq", prefix_ + "scheduled:" + q);
        takeCount(*e[7], q, "deferred", "rq", prefix_ + "deferred:" + q);
        if (auto id = reply::text(*e[8])) takeEnqueuedAt(ctx, q, prefix_ + "job:" + std::string(*id), *e[9]);
      },
      [this, &rounds, &ctx, now](std::size_t i) { queueCommands(rounds, ctx, queues_[i], now); }, "rq");

  for (const auto& q : queues_) {
    if (!readWorkers_) continue;
    rounds.add({"SSCAN", prefix_ + "workers:" + q, "0", "COUNT", "1000"}, [this, &rounds, &ctx, q](const redisReply& r, const RedisCommand&) {
      if (r.type != REDIS_REPLY_ARRAY || r.elements != 2 || r.element[1]->type != REDIS_REPLY_ARRAY) {
        ctx.problems.report("rq-workers:" + q, "rq queue " + q + ": cannot read its worker set " + prefix_ + "workers:" +
                                                   q + (reply::isError(r) ? ": " + reply::errorText(r) : ""));
        return;
      }
      workerSetsRead_.insert(q);
      if (reply::text(*r.element[0]).value_or("0") != "0") {
        ctx.problems.report("rq-workers-many:" + q, "rq queue " + q + ": its worker set holds more than about 1000 "
                                                    "entries; only the first batch is checked");
      }
      const redisReply& members = *r.element[1];
      for (std::size_t i = 0; i < members.elements; ++i) {
        auto key = reply::text(*members.element[i]);
        if (!key) continue;
        auto it = workers_.find(std::string(*key));
        if (it == workers_.end()) {
          if (workers_.size() >= kMaxWorkers) {
            ctx.problems.report("rq-workers-cap", "rq: more than " + std::to_string(kMaxWorkers) +
                                                      " registered workers; the rest are not checked");
            break;
          }
          it = workers_.emplace(std::string(*key), Worker{}).first;
        }
        it->second.queues.insert(q);
      }
    });
  }
  if (readWorkers_) {
    // Once every worker set has been read, read the workers (next round).
    rounds.afterNextRound([this, &rounds, &ctx] { readWorkers(rounds, ctx); });
  }
}

void RqReader::queueCommands(RedisRounds& rounds, ReadContext& ctx, const std::string& q, const std::string& now) {
  const auto count = [&](RedisCommand command, const char* state) { countInto(rounds, std::move(command), q, state, "rq"); };
  count({"LLEN", prefix_ + "queue:" + q}, "waiting");
  count({"ZCOUNT", prefix_ + "wip:" + q, "(" + now, "+inf"}, "active");
  // Started jobs whose heartbeat expired: their worker died. RQ's next cleanup moves them
  // to the failed registry (or requeues those with retries left); counted as failed now.
  count({"ZCOUNT", prefix_ + "wip:" + q, "-inf", now}, "failed");
  count({"ZCOUNT", prefix_ + "failed:" + q, "(" + now, "+inf"}, "failed");
  count({"ZCOUNT", prefix_ + "finished:" + q, "(" + now, "+inf"}, "completed");
  count({"ZCARD", prefix_ + "canceled:" + q}, "canceled");
  count({"ZCARD", prefix_ + "scheduled:" + q}, "scheduled");
  count({"ZCARD", prefix_ + "deferred:" + q}, "deferred");
  // Oldest waiting job: the head of the list, its hash's enqueued_at.
  rounds.add({"LINDEX", prefix_ + "queue:" + q, "0"}, [this, &rounds, &ctx, &q](const redisReply& head, const RedisCommand&) {
    auto id = reply::text(head);
    if (!id) return;  // empty queue
    const std::string jobKey = prefix_ + "job:" + std::string(*id);
    rounds.add({"HGET", jobKey, "enqueued_at"}, [this, &ctx, &q, jobKey](const redisReply& r, const RedisCommand&) {
      takeEnqueuedAt(ctx, q, jobKey, r);
    });
  });
}

void RqReader::takeEnqueuedAt(ReadContext& ctx, const std::string& q, const std::string& jobKey, const redisReply& r) {
  auto text = reply::text(r);
  auto enqueued = text ? parseIsoTime(*text) : std::nullopt;
  if (!enqueued) {
    ctx.problems.report("rq-age:" + q, "rq queue " + q + ": the oldest job " + jobKey +
                                           (text ? " has an unreadable enqueued_at" : " has no enqueued_at") +
                                           "; its age is not known this sample");
    ctx.out.ages.erase(q);
    return;
  }
  ctx.out.addAge(q, std::max(0.0, ctx.now - *enqueued));
}

void RqReader::readWorkers(RedisRounds& rounds, ReadContext& ctx) {
  const std::string workerPrefix = prefix_ + "worker:";
  RedisCommand numsub = {"PUBSUB", "NUMSUB"};
  std::vector<std::string> names;
  const auto flushNumsub = [&] {
    if (numsub.size() == 2) return;
    rounds.add(numsub, [this, &ctx, names](const redisReply& r, const RedisCommand&) {
      if (r.type != REDIS_REPLY_ARRAY) {
        if (!numsubFailed_) {
          ctx.problems.report("rq-numsub", "rq: PUBSUB NUMSUB failed (" + reply::errorText(r) +
                                               "); workers are judged by their registration alone");
        }
        numsubFailed_ = true;
        return;
      }
      // [channel, count, channel, count, ...] in the order asked.
      for (std::size_t i = 0; i + 1 < r.elements && i / 2 < names.size(); i += 2) {
        if (auto n = reply::integer(*r.element[i + 1])) workers_[names[i / 2]].subscribers = *n;
      }
    });
    numsub = {"PUBSUB", "NUMSUB"};
    names.clear();
  };
  for (auto& [key, worker] : workers_) {
    const std::string name = key.rfind(workerPrefix, 0) == 0 ? key.substr(workerPrefix.size()) : key;
    rounds.add({"HMGET", key, "birth", "death", "state", "successful_job_count", "failed_job_count"},
               [this, &ctx, key](const redisReply& r, const RedisCommand&) {
                 if (r.type != REDIS_REPLY_ARRAY || r.elements != 5) return;
                 Worker& w = workers_[key];
                 w.read = true;
                 w.exists = !reply::isNil(*r.element[0]);
                 w.dead = !reply::isNil(*r.element[1]);
                 w.busy = reply::text(*r.element[2]).value_or("") == "busy";
                 w.successful = reply::number(*r.element[3]).value_or(0);
                 w.failed = reply::number(*r.element[4]).value_or(0);
               });
    numsub.push_back(prefix_ + "pubsub:" + name);
    names.push_back(key);
    if (names.size() >= 200) flushNumsub();
  }
  flushNumsub();
}

void RqReader::finish(ReadContext& ctx) {
  if (!readWorkers_) return;
  for (const auto& q : queues_) {
    if (!workerSetsRead_.count(q)) continue;
    ctx.out.workers[q] += 0;
    ctx.out.busyWorkers[q] += 0;
  }
  std::map<std::string, std::pair<double, double>> seen;
  for (const auto& [key, w] : workers_) {
    if (!w.read || !w.exists) continue;
    // A worker is live while its key has not expired, it has not registered its death, and
    // its process still holds its command-channel subscription (a killed process's
    // connection closes at once; its key would linger for up to worker_ttl + 60 s).
    const bool live = !w.dead && (w.subscribers > 0 || (numsubFailed_ && w.subscribers < 0));
    // Jobs it finished since last seen (its counts restart from 0 if it restarts under the
    // same name): added to every queue it listens on.
    double doneOk = w.successful;
    double doneFailed = w.failed;
    if (auto last = lastCounts_.find(key); last != lastCounts_.end()) {
      if (w.successful >= last->second.first) doneOk -= last->second.first;
      if (w.failed >= last->second.second) doneFailed -= last->second.second;
    }
    seen[key] = {w.successful, w.failed};
    for (const auto& q : w.queues) {
      processedTotal_[q] += doneOk + doneFailed;
      failedTotal_[q] += doneFailed;
      if (live) {
        ctx.out.workers[q] += 1;
        if (w.busy) ctx.out.busyWorkers[q] += 1;
      }
    }
  }
  lastCounts_ = std::move(seen);
  for (const auto& q : queues_) {
    if (!workerSetsRead_.count(q)) continue;
    ctx.out.processed[q] = processedTotal_[q];
    ctx.out.failed[q] = failedTotal_[q];
  }
}

}  // namespace apphealth
