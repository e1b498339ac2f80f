#include "collectors/redis/CeleryReader.h"

#include <chrono>
#include <cstdio>
#include <map>
#include <random>

#include "collectors/redis/RedisReplies.h"

namespace apphealth {

// Layout (kombu/transport/redis.py and kombu/pidbox.py, kombu 5.2 to 5.6; Celery 5), every
// key behind the transport's global_keyprefix if one is set:
//   NAME, NAME\x06\x16{3,6,9}   lists of JSON messages per queue and priority step, LPUSHed,
//                               workers BRPOP: waiting
//   unacked                     hash delivery tag -> JSON [message, exchange, routing_key]:
//                               messages a worker has taken but not acknowledged. With the
//                               default early acknowledgement those are prefetched tasks
//                               (Celery's "reserved") and tasks held for their ETA or retry
//                               countdown ("scheduled"); with acks_late also running ones.
//   unacked_index               zset delivery tag -> delivery time (visibility timeout)
//   _kombu.binding.<exchange>   sets of bindings
// Remote control: each worker PSUBSCRIBEs to the fanout channel "/<db>.celery.pidbox" of the
// "celery.pidbox" exchange and answers a broadcast by LPUSHing its reply on the list bound to
// the reply_to routing key in _kombu.binding.reply.celery.pidbox. This is what `celery
// inspect active_queues` / `celery inspect active` do; a worker that is dead (or too busy to
// read its pidbox) does not answer.
namespace {

std::string uuid4() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  const uint64_t a = random(), b = random();
  char out[40];
  std::snprintf(out, sizeof out, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xfff),
                static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3fff)),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return out;
}

double wallNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Per queue: LLEN of the list of each priority step. Most apps use no priorities: one EXISTS
// answers for the three step lists when none of them exists.
const ReadScript& celeryScript() {
  static const ReadScript script(R"lua(#!lua flags=no-writes
local out, n = {}, 0
for i = 2, #ARGV do
  local key = ARGV[1] .. ARGV[i]
  local k3, k6, k9 = key .. '\6\0223', key .. '\6\0226', key .. '\6\0229'
  out[n + 1] = redis.pcall('LLEN', key)
  if redis.pcall('EXISTS', k3, k6, k9) == 0 then
    out[n + 2], out[n + 3], out[n + 4] = 0, 0, 0
  else
    out[n + 2] = redis.pcall('LLEN', k3)
    out[n + 3] = redis.pcall('LLEN', k6)
    out[n + 4] = redis.pcall('LLEN', k9)
  end
  n = n + 4
end
return out
)lua");
  return script;
}

}  // namespace

CeleryReader::CeleryReader(std::string prefix, std::vector<std::string> queues, bool askWorkers, int db)
    : prefix_(std::move(prefix)), queues_(std::move(queues)), askWorkers_(askWorkers) {
  channel_ = prefix_ + "/" + std::to_string(db) + ".celery.pidbox";
  oid_ = "apphealth-" + uuid4();
  bindingKey_ = prefix_ + "_kombu.binding.reply.celery.pidbox";
  replyList_ = prefix_ + oid_ + ".reply.celery.pidbox";
}

std::vector<std::pair<std::string, std::string>> CeleryReader::fixedStates() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& q : queues_) {
    out.emplace_back(q, "waiting");
    out.emplace_back(q, "reserved");
    out.emplace_back(q, "scheduled");
    if (askWorkers_) out.emplace_back(q, "active");
  }
  return out;
}

void CeleryReader::start(RedisRounds& rounds, ReadContext& ctx) {
  beginSample(ctx);
  unackedRead_ = false;
  unackedTags_.clear();
  unacked_.clear();
  unparsable_ = 0;
  controlFailed_ = false;
  queuesAsk_ = {"active_queues", uuid4(), -1, 0};
  activeAsk_ = {"active", uuid4(), -1, 0};
  workerQueues_.clear();
  workerActive_.clear();

  // Priority steps 0 (the plain name), 3, 6 and 9: kombu's default priority_steps.
  static const char* const kSteps[] = {"", "\x06\x16" "3", "\x06\x16" "6", "\x06\x16" "9"};
  for (const auto& q : queues_) ctx.out.addJobs(q, "waiting", 0);
  readQueues(
      rounds, celeryScript(), queues_, {prefix_}, 4,
      [this](std::size_t i, redisReply* const* e) {
        for (int step = 0; step < 4; ++step) takeCount(*e[step], queues_[i], "waiting", "celery", prefix_ + queues_[i] + kSteps[step]);
      },
      [this, &rounds](std::size_t i) {
        for (const char* suffix : kSteps) countInto(rounds, {"LLEN", prefix_ + queues_[i] + suffix}, queues_[i], "waiting", "celery");
      },
      "celery");
  scanUnacked(rounds, ctx, "0");
  if (!askWorkers_) return;
  // The reply binding must exist when a worker answers: added first in the same pipeline.
  rounds.add({"SADD", bindingKey_, oid_ + "\x06\x16\x06\x16" + oid_ + ".reply.celery.pidbox"}, [](const redisReply&, const RedisCommand&) {});
  broadcast(rounds, ctx, queuesAsk_);
  broadcast(rounds, ctx, activeAsk_);
  rounds.afterNextRound([this, &rounds, &ctx] {
    if (controlFailed_ || queuesAsk_.expected + activeAsk_.expected <= 0) {
      cleanUp(rounds);
      return;
    }
    collectReplies(rounds, ctx);
  });
}

void CeleryReader::scanUnacked(RedisRounds& rounds, ReadContext& ctx, const std::string& cursor) {
  const std::string key = prefix_ + "unacked";
  rounds.add({"HSCAN", key, cursor, "COUNT", "1000"}, [this, &rounds, &ctx, key](const redisReply& r, const RedisCommand&) {
    if (r.type != REDIS_REPLY_ARRAY || r.elements != 2 || r.element[1]->type != REDIS_REPLY_ARRAY) {
      ctx.problems.report("wrongtype:" + key, "celery: cannot read " + key +
                                                  (reply::isError(r) ? ": " + reply::errorText(r) : "") +
                                                  "; reserved and scheduled tasks are not exported");
      unackedRead_ = false;
      return;
    }
    unackedRead_ = true;
    const redisReply& fields = *r.element[1];
    for (std::size_t i = 0; i + 1 < fields.elements; i += 2) {
      auto tag = reply::text(*fields.element[i]);
      auto value = reply::text(*fields.element[i + 1]);
      if (!tag || !value || !unackedTags_.emplace(*tag).second) continue;  // HSCAN may repeat a field
      if (auto entry = parseKombuUnacked(*value)) {
        unacked_.push_back(std::move(*entry));
      } else {
        ++unparsable_;
      }
    }
    const std::string next(reply::text(*r.element[0]).value_or("0"));
    if (next == "0") return;
    if (unackedTags_.size() >= kMaxUnacked) {
      ctx.problems.report("celery-unacked-many", "celery: " + key + " holds more than " + std::to_string(kMaxUnacked) +
                                                     " messages; only the first " + std::to_string(kMaxUnacked) +
                                                     " are counted as reserved or scheduled");
      return;
    }
    scanUnacked(rounds, ctx, next);
  });
}

void CeleryReader::broadcast(RedisRounds& rounds, ReadContext& ctx, Broadcast& b) {
  const std::string message = celeryControlRequest(b.method, b.ticket, oid_, uuid4(), ctx.deadline);
  rounds.add({"PUBLISH", channel_, message}, [this, &ctx, &b](const redisReply& r, const RedisCommand&) {
    if (auto n = reply::integer(r)) {
      b.expected = *n;
      return;
    }
    controlFailed_ = true;
    ctx.problems.report("celery-control", "celery: cannot ask the workers (PUBLISH " + channel_ + ": " +
                                              reply::errorText(r) + "); worker counts and active tasks are not exported");
  });
}

void CeleryReader::collectReplies(RedisRounds& rounds, ReadContext& ctx) {
  const double remaining = ctx.deadline - wallNow();
  const bool complete = queuesAsk_.received >= queuesAsk_.expected && activeAsk_.received >= activeAsk_.expected;
  if (complete || remaining <= 0) {
    cleanUp(rounds);
    return;
  }
  // One blocking pop for the next reply, then whatever else has arrived meanwhile.
  char timeout[32];
  std::snprintf(timeout, sizeof timeout, "%.3f", std::max(remaining, 0.01));
  rounds.add({"BRPOP", replyList_, timeout}, [this, &ctx](const redisReply& r, const RedisCommand&) {
    if (r.type == REDIS_REPLY_ARRAY && r.elements == 2) {
      if (auto raw = reply::text(*r.element[1])) takeReply(ctx, *raw);
    }
  }, true);
  rounds.add({"RPOP", replyList_, "100"}, [this, &ctx](const redisReply& r, const RedisCommand&) {
    if (r.type != REDIS_REPLY_ARRAY) return;  // nil, or an error before Redis 6.2
    for (std::size_t i = 0; i < r.elements; ++i) {
      if (auto raw = reply::text(*r.element[i])) takeReply(ctx, *raw);
    }
  }, true);
  rounds.afterNextRound([this, &rounds, &ctx] { collectReplies(rounds, ctx); });
}

void CeleryReader::takeReply(ReadContext& ctx, std::string_view raw) {
  auto message = parseKombuMessage(raw);
  if (!message) {
    ctx.problems.report("celery-reply", "celery: a reply on " + replyList_ + " is not a kombu message; ignored");
    return;
  }
  if (message->ticket == queuesAsk_.ticket) {
    ++queuesAsk_.received;
    if (auto q = parseCeleryActiveQueues(message->body)) workerQueues_.push_back(std::move(*q));
  } else if (message->ticket == activeAsk_.ticket) {
    ++activeAsk_.received;
    if (auto a = parseCeleryActive(message->body)) workerActive_.push_back(std::move(*a));
  }
  // Another ticket: a late answer to an earlier sample's question.
}

void CeleryReader::cleanUp(RedisRounds& rounds) {
  rounds.add({"SREM", bindingKey_, oid_ + "\x06\x16\x06\x16" + oid_ + ".reply.celery.pidbox"}, [](const redisReply&, const RedisCommand&) {});
  rounds.add({"DEL", replyList_}, [](const redisReply&, const RedisCommand&) {});
}

void CeleryReader::finish(ReadContext& ctx) {
  const std::set<std::string> configured(queues_.begin(), queues_.end());
  // Routing keys to queue names, as the live workers declared their queues; a message sent
  // to the default exchange has the queue's name as its routing key.
  std::map<std::string, std::string> queueOf;
  for (const auto& worker : workerQueues_) {
    for (const auto& [name, routingKey] : worker.queues) {
      if (configured.count(name) && !routingKey.empty()) queueOf.emplace(routingKey, name);
    }
  }
  const auto queueFor = [&](const std::string& routingKey) -> std::string {
    if (configured.count(routingKey)) return routingKey;
    auto it = queueOf.find(routingKey);
    return it == queueOf.end() ? std::string() : it->second;
  };

  const bool workersKnown = askWorkers_ && !controlFailed_ && queuesAsk_.expected >= 0;
  std::set<std::string> activeIds;
  std::map<std::string, bool> busy;  // worker -> executing something
  if (workersKnown) {
    for (const auto& q : queues_) ctx.out.addJobs(q, "active", 0);
    for (const auto& worker : workerActive_) {
      busy[worker.worker] = !worker.tasks.empty();
      for (const auto& [id, routingKey] : worker.tasks) {
        activeIds.insert(id);
        const std::string q = queueFor(routingKey);
        if (!q.empty()) ctx.out.addJobs(q, "active", 1);
      }
    }
    for (const auto& q : queues_) {
      ctx.out.workers[q] += 0;
      ctx.out.busyWorkers[q] += 0;
    }
    for (const auto& worker : workerQueues_) {
      std::set<std::string> served;
      for (const auto& [name, routingKey] : worker.queues) {
        if (configured.count(name)) served.insert(name);
      }
      for (const auto& q : served) {
        ctx.out.workers[q] += 1;
        if (busy[worker.worker]) ctx.out.busyWorkers[q] += 1;
      }
    }
  }

  if (unackedRead_) {
    for (const auto& q : queues_) {
      ctx.out.addJobs(q, "reserved", 0);
      ctx.out.addJobs(q, "scheduled", 0);
    }
    std::size_t badEta = 0;
    for (const auto& entry : unacked_) {
      const std::string q = queueFor(entry.routingKey);
      if (q.empty()) continue;                                          // another app's queue
      if (!entry.taskId.empty() && activeIds.count(entry.taskId)) continue;  // acks_late: running
      badEta += entry.etaUnreadable;
      ctx.out.addJobs(q, entry.eta && *entry.eta > ctx.now ? "scheduled" : "reserved", 1);
    }
    if (unparsable_ > 0 || badEta > 0) {
      ctx.problems.report("celery-unacked-format",
                          "celery: " + std::to_string(unparsable_) + " entries of " + prefix_ +
                              "unacked are not kombu messages and " + std::to_string(badEta) +
                              " have an unreadable eta; those are not counted / counted as reserved");
    }
  }
}

}  // namespace apphealth
