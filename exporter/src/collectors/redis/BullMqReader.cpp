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

// Per queue (ARGV: prefix, kMaxPriorityLevels, names): what queueCommands() reads, with the
// dependent reads done here: the tails of wait and paused, the lowest-scored prioritized job,
// the oldest of each priority level from the lowest priority up (walkLevel()), and the
// `timestamp` of each of those candidates.
const ReadScript& bullScript() {
  static const ReadScript script(R"lua(#!lua flags=no-writes
local LEVEL = 4294967296
local p, maxLevels = ARGV[1], tonumber(ARGV[2])
local function int(x) return string.format('%.0f', x) end
-- A valid score as reply::number() takes it: a number from 0 to 1e18.
local function valid(s)
  if s and s >= 0 and s <= 1e18 then return s end
  return nil
end
local function score(reply)
  return valid(type(reply) == 'table' and #reply == 2 and tonumber(reply[2]) or nil)
end
-- [id, timestamp] of each candidate for the oldest job, each id read once.
local function candidate(b, cands, seen, id)
  if seen[id] then return end
  seen[id] = true
  cands[#cands + 1] = id
  cands[#cands + 1] = redis.pcall('HGET', b .. id, 'timestamp')
end
local out, n = {}, 0
for i = 3, #ARGV do
  local b = p .. ':' .. ARGV[i] .. ':'
  local prio = b .. 'prioritized'
  local cands, seen = {}, {}
  out[n + 1] = redis.pcall('LLEN', b .. 'wait')
  out[n + 2] = redis.pcall('LLEN', b .. 'paused')
  out[n + 3] = redis.pcall('ZCARD', prio)
  out[n + 4] = redis.pcall('LLEN', b .. 'active')
  out[n + 5] = redis.pcall('ZCARD', b .. 'delayed')
  out[n + 6] = redis.pcall('ZCARD', b .. 'failed')
  out[n + 7] = redis.pcall('ZCARD', b .. 'completed')
  out[n + 8] = redis.pcall('ZCARD', b .. 'waiting-children')
  out[n + 9] = redis.pcall('HEXISTS', b .. 'meta', 'paused')
  out[n + 10] = redis.pcall('HGET', b .. 'metrics:completed', 'count')
  out[n + 11] = redis.pcall('HGET', b .. 'metrics:failed', 'count')
  -- The tails of wait and paused (an empty list has none: LLEN said so).
  out[n + 12], out[n + 13] = false, false
  if out[n + 1] ~= 0 then out[n + 12] = redis.pcall('LINDEX', b .. 'wait', -1) end
  if out[n + 2] ~= 0 then out[n + 13] = redis.pcall('LINDEX', b .. 'paused', -1) end
  for k = 12, 13 do
    local tail = out[n + k]
    if type(tail) == 'string' and string.sub(tail, 1, 2) ~= '0:' then candidate(b, cands, seen, tail) end
  end
  local queued = out[n + 3]
  if type(queued) == 'number' and queued > 0 and queued <= 64 then
    -- A few prioritized jobs: one read of them all, and the same candidates as the walk below.
    local all = redis.pcall('ZRANGE', prio, 0, -1, 'WITHSCORES')
    if type(all) == 'table' and all.err == nil and #all > 0 then
      local members, scores = {}, {}
      for k = 1, #all, 2 do
        members[#members + 1] = all[k]
        scores[#scores + 1] = tonumber(all[k + 1])
      end
      local count, complete = #scores, false
      local s = valid(scores[count])
      if s then
        local level, depth = math.floor(s / LEVEL), 0
        while true do
          local from = level * LEVEL
          local k = 1
          while k <= count and scores[k] < from do k = k + 1 end
          if k <= count and scores[k] < from + LEVEL then candidate(b, cands, seen, members[k]) end
          if depth + 1 >= maxLevels or level <= 0 then break end
          if k == 1 then
            complete = true
            break
          end
          s = valid(scores[k - 1])
          if not s then break end
          level, depth = math.floor(s / LEVEL), depth + 1
        end
      end
      if not complete then candidate(b, cands, seen, members[1]) end
    end
  elseif queued ~= 0 then
    -- Priority levels from the lowest priority up, as walkLevel(); the lowest-scored job
    -- (ZRANGE 0 0) is the first of the last level, so it is only read if the walk stopped early.
    local s, complete = score(redis.pcall('ZREVRANGE', prio, 0, 0, 'WITHSCORES')), false
    if s then
      local level, depth = math.floor(s / LEVEL), 0
      while true do
        local from = level * LEVEL
        local r = redis.pcall('ZRANGEBYSCORE', prio, int(from), '(' .. int(from + LEVEL), 'LIMIT', 0, 1)
        if type(r) == 'table' and #r == 1 then candidate(b, cands, seen, r[1]) end
        if depth + 1 >= maxLevels or level <= 0 then break end
        local nx = redis.pcall('ZREVRANGEBYSCORE', prio, '(' .. int(from), '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
        if type(nx) == 'table' and nx.err == nil and #nx == 0 then
          complete = true
          break
        end
        s = score(nx)
        if not s then break end
        level, depth = math.floor(s / LEVEL), depth + 1
      end
    end
    if not complete then
      local first = redis.pcall('ZRANGE', prio, 0, 0, 'WITHSCORES')
      if type(first) == 'table' and #first == 2 then candidate(b, cands, seen, first[1]) end
    end
  end
  out[n + 14] = cands
  n = n + 14
end
return out
)lua");
  return script;
}
}  // namespace

void BullMqReader::start(RedisRounds& rounds, ReadContext& ctx) {
  beginSample(ctx);
  sample_.clear();
  workers_.reset();
  for (const auto& q : queues_) {
    sample_[q];
    for (const char* state : {"active", "delayed", "failed", "completed", "waiting_children"}) ctx.out.addJobs(q, state, 0);
  }
  readQueues(
      rounds, bullScript(), queues_, {prefix_, std::to_string(kMaxPriorityLevels)}, 14,
      [this, &ctx](std::size_t i, redisReply* const* e) { takeScript(ctx, queues_[i], e); },
      [this, &rounds, &ctx](std::size_t i) { queueCommands(rounds, ctx, queues_[i]); }, "bullmq");
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

void BullMqReader::queueCommands(RedisRounds& rounds, ReadContext& ctx, const std::string& q) {
  const std::string base = prefix_ + ":" + q + ":";
  const auto length = [&](const char* cmd, const std::string& suffix, double Queue::*field) {
    const std::string key = base + suffix;
    rounds.add({cmd, key}, [this, &q, key, field](const redisReply& r, const RedisCommand&) { takeLength(q, key, field, r); });
  };
  const auto direct = [&](const char* cmd, const std::string& suffix, const char* state) {
    countInto(rounds, {cmd, base + suffix}, q, state, "bullmq");
  };
  length("LLEN", "wait", &Queue::wait);
  length("LLEN", "paused", &Queue::paused);
  length("ZCARD", "prioritized", &Queue::prioritized);
  direct("LLEN", "active", "active");
  direct("ZCARD", "delayed", "delayed");
  direct("ZCARD", "failed", "failed");
  direct("ZCARD", "completed", "completed");
  direct("ZCARD", "waiting-children", "waiting_children");
  rounds.add({"HEXISTS", base + "meta", "paused"}, [this, &q](const redisReply& r, const RedisCommand&) {
    sample_[q].pausedFlag = reply::integer(r).value_or(0) == 1;
  });
  // Oldest job: the tails of wait and paused, and the oldest of each priority level.
  for (const char* list : {"wait", "paused"}) {
    rounds.add({"LINDEX", base + list, "-1"}, [this, &rounds, &ctx, &q](const redisReply& r, const RedisCommand&) {
      if (auto id = takeTail(q, r)) candidate(rounds, ctx, q, std::string(*id));
    });
  }
  rounds.add({"ZRANGE", base + "prioritized", "0", "0", "WITHSCORES"}, [this, &rounds, &ctx, &q](const redisReply& r, const RedisCommand&) {
    if (r.type != REDIS_REPLY_ARRAY || r.elements != 2) return;
    if (auto id = reply::text(*r.element[0])) candidate(rounds, ctx, q, std::string(*id));
  });
  rounds.add({"ZREVRANGE", base + "prioritized", "0", "0", "WITHSCORES"}, [this, &rounds, &ctx, &q](const redisReply& r, const RedisCommand&) {
    if (r.type != REDIS_REPLY_ARRAY || r.elements != 2) return;
    auto score = reply::number(*r.element[1]);
    if (!score) return;
    walkLevel(rounds, ctx, q, static_cast<long long>(std::floor(*score / kLevel)), 0);
  });
  rounds.add({"HGET", base + "metrics:completed", "count"},
             [this, &q](const redisReply& r, const RedisCommand&) { sample_[q].completedCount = reply::number(r); });
  rounds.add({"HGET", base + "metrics:failed", "count"},
             [this, &q](const redisReply& r, const RedisCommand&) { sample_[q].failedCount = reply::number(r); });
}

void BullMqReader::takeLength(const std::string& q, const std::string& key, double Queue::*field, const redisReply& r) {
  if (auto n = reply::integer(r)) {
    sample_[q].*field += static_cast<double>(*n);
  } else if (reply::isError(r)) {
    ctx_->problems.report("wrongtype:" + key, "bullmq: cannot count " + key + ": " + reply::errorText(r));
  }
}

std::optional<std::string_view> BullMqReader::takeTail(const std::string& q, const redisReply& r) {
  auto id = reply::text(r);
  if (!id) return std::nullopt;
  // A "0:<ts>" marker left at the tail by BullMQ 4 is no job (BullMQ 5's getCounts skips it).
  if (id->substr(0, 2) == "0:") {
    sample_[q].wait -= 1;
    return std::nullopt;
  }
  return id;
}

// The script's 14 elements of a queue: the 11 reads of queueCommands() that need no other
// read, the tails of wait and paused, and [id, timestamp, ...] of every candidate for the
// oldest job, found as queueCommands() and walkLevel() find them.
void BullMqReader::takeScript(ReadContext& ctx, const std::string& q, redisReply* const* e) {
  const std::string base = prefix_ + ":" + q + ":";
  takeLength(q, base + "wait", &Queue::wait, *e[0]);
  takeLength(q, base + "paused", &Queue::paused, *e[1]);
  takeLength(q, base + "prioritized", &Queue::prioritized, *e[2]);
  takeCount(*e[3], q, "active", "bullmq", base + "active");
  takeCount(*e[4], q, "delayed", "bullmq", base + "delayed");
  takeCount(*e[5], q, "failed", "bullmq", base + "failed");
  takeCount(*e[6], q, "completed", "bullmq", base + "completed");
  takeCount(*e[7], q, "waiting_children", "bullmq", base + "waiting-children");
  sample_[q].pausedFlag = reply::integer(*e[8]).value_or(0) == 1;
  sample_[q].completedCount = reply::number(*e[9]);
  sample_[q].failedCount = reply::number(*e[10]);
  takeTail(q, *e[11]);
  takeTail(q, *e[12]);
  const redisReply& candidates = *e[13];
  if (candidates.type != REDIS_REPLY_ARRAY) return;
  for (std::size_t i = 0; i + 1 < candidates.elements; i += 2) {
    if (auto id = reply::text(*candidates.element[i])) takeTimestamp(ctx, q, base + std::string(*id), *candidates.element[i + 1]);
  }
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
    takeTimestamp(ctx, q, jobKey, r);
  });
}

void BullMqReader::takeTimestamp(ReadContext& ctx, const std::string& q, const std::string& jobKey, const redisReply& r) {
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
