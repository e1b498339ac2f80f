#include "collectors/redis/ExplicitKeysReader.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <set>
#include <tuple>

#include "collectors/redis/RedisReplies.h"
#include "util/Duration.h"

namespace apphealth {

KeyType keyTypeFromName(const std::string& name) {
  if (name == "list") return KeyType::List;
  if (name == "zset") return KeyType::ZSet;
  if (name == "set") return KeyType::Set;
  if (name == "stream") return KeyType::Stream;
  if (name == "none") return KeyType::None;
  return KeyType::Unknown;
}

namespace {

const char* lengthCommand(KeyType type) {
  switch (type) {
    case KeyType::List: return "LLEN";
    case KeyType::ZSet: return "ZCARD";
    case KeyType::Set: return "SCARD";
    case KeyType::Stream: return "XLEN";
    default: return nullptr;
  }
}

}  // namespace

ExplicitKeysReader::ExplicitKeysReader(const RedisTarget& target, std::vector<std::size_t> entries)
    : target_(target) {
  for (const auto i : entries) {
    const auto& spec = target.queues[i];
    if (spec.key.find('*') != std::string::npos) {
      patterns_.emplace_back(i, spec.key);
    } else {
      configured_.push_back({spec.key, spec.label, spec.state, keyTypeFromName(spec.type)});
    }
  }
}

std::vector<std::pair<std::string, std::string>> ExplicitKeysReader::fixedStates() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& k : configured_) out.emplace_back(k.queue, k.state);
  return out;
}

void ExplicitKeysReader::expandPatterns(RedisConnection& connection, ProblemLog& problems, SnapshotBuilder& out,
                                        const std::string& helpSuffix) {
  patternKeys_.clear();
  keys_ = configured_;  // configured keys first: a pattern finding one of them does not count it twice
  for (const auto& [entry, pattern] : patterns_) {
    std::set<std::string> matched;
    bool truncated = false;
    bool unfinished = false;
    std::string cursor = "0";
    // Each SCAN call is bounded by the command timeout; the whole walk by the same timeout,
    // so a huge keyspace with few matches cannot stretch one sample without limit.
    const auto deadline = std::chrono::steady_clock::now() + target_.timeout;
    // SCAN may return a key twice and walks the whole keyspace; stop at the cap so that a
    // pattern matching millions of keys costs a bounded amount and adds bounded series.
    do {
      auto reply = connection.command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
      if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 || reply->element[1]->type != REDIS_REPLY_ARRAY) {
        throw RedisError("unexpected SCAN reply");
      }
      cursor = std::string(reply::text(*reply->element[0]).value_or("0"));
      const redisReply* batch = reply->element[1];
      for (std::size_t k = 0; k < batch->elements; ++k) {
        auto key = reply::text(*batch->element[k]);
        if (!key || matched.count(std::string(*key))) continue;  // SCAN may return a key more than once
        if (matched.size() >= static_cast<std::size_t>(target_.max_keys_per_pattern)) {
          truncated = true;
          break;
        }
        matched.emplace(*key);
      }
      if (!truncated && cursor != "0" && std::chrono::steady_clock::now() > deadline) unfinished = true;
    } while (cursor != "0" && !truncated && !unfinished);
    if (unfinished) {
      truncated = true;
      problems.report("pattern:" + pattern, "SCAN for pattern '" + pattern + "' did not finish within " +
                                                formatDuration(target_.timeout) + "; the " +
                                                std::to_string(matched.size()) + " keys found so far are exported");
    } else if (truncated) {
      problems.report("pattern:" + pattern, "pattern '" + pattern + "' matches more than " +
                                                std::to_string(target_.max_keys_per_pattern) + " keys; only the first " +
                                                std::to_string(target_.max_keys_per_pattern) + " are exported");
    }
    out.gauge("apphealth_queue_pattern_keys", "Keys matched by a queue key pattern (capped at max_keys_per_pattern)." + helpSuffix,
              {{"target", target_.name}, {"pattern", pattern}}, static_cast<double>(matched.size()));
    out.gauge("apphealth_queue_pattern_truncated",
              "Whether a queue key pattern matched more keys than exported, or its SCAN did not finish within the timeout." +
                  helpSuffix,
              {{"target", target_.name}, {"pattern", pattern}}, truncated ? 1 : 0);
    const auto& spec = target_.queues[entry];
    for (const auto& key : matched) {
      keys_.push_back({key, key, spec.state, keyTypeFromName(spec.type), static_cast<int>(entry)});
    }
  }
  // A key listed twice (configured, and found by a pattern) counts once.
  std::set<std::tuple<std::string, std::string, std::string>> seen;
  std::erase_if(keys_, [&](const KeyRead& k) { return !seen.emplace(k.key, k.queue, k.state).second; });
}

void ExplicitKeysReader::start(RedisRounds& rounds, ReadContext& ctx) {
  groupsSeen_.clear();
  // A missing key is an empty queue: every configured (queue, state) is exported, 0 or not.
  for (const auto& k : configured_) ctx.out.addJobs(k.queue, k.state, 0);
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i].type != KeyType::Unknown) {
      readLength(rounds, ctx, i);
      continue;
    }
    rounds.add({"TYPE", keys_[i].key}, [this, &rounds, &ctx, i](const redisReply& r, const RedisCommand&) {
      keys_[i].type = keyTypeFromName(std::string(reply::text(r).value_or("")));
      readLength(rounds, ctx, i);
    });
  }
}

void ExplicitKeysReader::readLength(RedisRounds& rounds, ReadContext& ctx, std::size_t index) {
  const KeyRead& key = keys_[index];
  const char* cmd = lengthCommand(key.type);
  if (cmd == nullptr) return;  // missing key ("none") or a type that holds no jobs
  rounds.add({cmd, key.key}, [this, &ctx, index, cmd](const redisReply& r, const RedisCommand&) {
    const KeyRead& key = keys_[index];
    if (reply::isError(r)) {
      // WRONGTYPE: an explicit `type:` does not match what the key holds (or it changed type
      // between the two round trips). A key found by a pattern is simply not a queue.
      if (key.patternEntry < 0) {
        ctx.problems.report("wrongtype:" + key.key,
                            std::string(cmd) + " " + key.key + ": " + reply::errorText(r) + " (the key is not counted)");
      }
      return;
    }
    auto n = reply::integer(r);
    if (!n) return;
    ctx.out.addJobs(key.queue, key.state, static_cast<double>(*n));
    if (key.patternEntry >= 0) {
      patternKeys_.push_back({key.queue, key.state, static_cast<std::size_t>(key.patternEntry)});
    }
  });
  if (key.type != KeyType::Stream) return;
  rounds.add({"XINFO", "GROUPS", key.key}, [this, &ctx, index](const redisReply& r, const RedisCommand&) {
    if (r.type != REDIS_REPLY_ARRAY) return;
    const KeyRead& key = keys_[index];
    // XINFO GROUPS: an array of flat [field, value, ...] arrays.
    for (std::size_t g = 0; g < r.elements && g < kMaxStreamGroups; ++g) {
      const redisReply* group = r.element[g];
      if (group->type != REDIS_REPLY_ARRAY) continue;
      QueueSample::StreamGroup out{key.queue, {}, {}, {}};
      for (std::size_t f = 0; f + 1 < group->elements; f += 2) {
        const auto field = reply::text(*group->element[f]).value_or("");
        const redisReply& value = *group->element[f + 1];
        if (field == "name") out.group = std::string(reply::text(value).value_or(""));
        if (field == "pending") {
          if (auto v = reply::integer(value)) out.pending = static_cast<double>(*v);
        }
        // Redis reports no lag (nil) when it cannot tell, e.g. after XDEL/XTRIM: no series.
        if (field == "lag") {
          if (auto v = reply::integer(value)) out.lag = static_cast<double>(*v);
        }
      }
      if (!groupsSeen_.emplace(key.queue, out.group).second) continue;
      ctx.out.streamGroups.push_back(std::move(out));
    }
  });
}

}  // namespace apphealth
