#include "collectors/redis/RedisQueueCollector.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <set>
#include <tuple>

namespace apphealth {

namespace {

const prometheus::Histogram::BucketBoundaries kPingBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

const char* lengthCommand(KeyType type) {
  switch (type) {
    case KeyType::List: return "LLEN";
    case KeyType::ZSet: return "ZCARD";
    case KeyType::Set: return "SCARD";
    case KeyType::Stream: return "XLEN";
    default: return nullptr;
  }
}

std::string replyString(const redisReply* reply) {
  if (reply == nullptr) return {};
  if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS) return {reply->str, reply->len};
  if (reply->type == REDIS_REPLY_INTEGER) return std::to_string(reply->integer);
  return {};
}

}  // namespace

RedisQueueCollector::RedisQueueCollector(RedisTarget target)
    : target_(std::move(target)),
      pingDuration_(kPingBuckets),
      helpSuffix_(" Sampled every " + formatDuration(target_.interval) + ".") {
  endpoint_ = {target_.host, target_.port, target_.unix_socket};
  for (const auto& spec : target_.queues) layouts_.push_back(layoutFor(spec));
}

std::map<std::pair<std::string, std::string>, double> RedisQueueCollector::writeStatic(SnapshotBuilder& out, bool up) {
  const Labels labels = {{"target", target_.name}};
  out.gauge("apphealth_redis_up", "Whether Redis answered PING (1) or not (0)." + helpSuffix_, labels, up ? 1 : 0);
  out.histogram("apphealth_redis_probe_duration_seconds", "Round trip of PING on an open connection." + helpSuffix_,
                labels, pingDuration_);
  // Thresholds are configuration, exported even while Redis is down so alerts keep their join.
  // Defaults where the layout has the state; an entry's `thresholds:` override them for the
  // (queue, state) pairs that entry reads (Sidekiq's `retry: 50` is for queue="sidekiq", not
  // for every queue name listed beside it).
  static const std::map<std::string, double> kDefaults = {{"waiting", kDefaultWaitingJobsThreshold},
                                                          {"failed", kDefaultFailedJobsThreshold},
                                                          {"retry", kDefaultFailedJobsThreshold},
                                                          {"dead", kDefaultFailedJobsThreshold}};
  std::map<std::pair<std::string, std::string>, double> thresholds;
  for (std::size_t i = 0; i < target_.queues.size(); ++i) {
    const auto& configured = target_.queues[i].thresholds;
    for (const auto& key : layouts_[i].keys) {
      if (auto t = configured.find(key.state); t != configured.end()) {
        thresholds[{key.queue, key.state}] = t->second;
      } else if (auto d = kDefaults.find(key.state); d != kDefaults.end()) {
        thresholds.try_emplace({key.queue, key.state}, d->second);
      }
    }
  }
  // Keys found by patterns in the last sample: the entry's state, with its threshold or default.
  for (const auto& [index, key] : patternKeys_) {
    const auto& spec = target_.queues[index];
    if (auto t = spec.thresholds.find(spec.state); t != spec.thresholds.end()) {
      thresholds.try_emplace({key, spec.state}, t->second);
    } else if (auto d = kDefaults.find(spec.state); d != kDefaults.end()) {
      thresholds.try_emplace({key, spec.state}, d->second);
    }
  }
  for (const auto& [queueState, value] : thresholds) {
    out.gauge("apphealth_threshold_queue_jobs", "Configured job count above which a queue state needs attention.",
              {{"target", target_.name}, {"queue", queueState.first}, {"state", queueState.second}}, value);
  }
  return thresholds;
}

SampleResult RedisQueueCollector::sample(SnapshotBuilder& out, std::stop_token stop) {
  // A read blocked on a hung server returns at once when the exporter stops.
  std::stop_callback onStop(stop, [this] { connection_.interrupt(); });
  SampleResult result;
  patternKeys_.clear();
  lastJobs_.clear();
  try {
    measure(out);
  } catch (const RedisError& e) {
    result = SampleResult::failure(endpoint_.describe() + ": " + e.what());
    connection_.close();
  } catch (const std::runtime_error& e) {  // an unreadable password file and the like
    result = SampleResult::failure(e.what());
    connection_.close();
  }
  for (const auto& [queueState, threshold] : writeStatic(out, result.ok)) {
    StatusCheck check{queueState.second + " jobs in " + queueState.first, kNoValue, threshold, "jobs"};
    if (auto jobs = lastJobs_.find(queueState); result.ok && jobs != lastJobs_.end()) check.value = jobs->second;
    check.failing = check.value > threshold;
    result.checks.push_back(std::move(check));
  }
  return result;
}

void RedisQueueCollector::measure(SnapshotBuilder& out) {
  if (!connection_.connected()) {
    connection_.connect(endpoint_, target_.timeout, readSecret(target_.password), target_.db);
    spdlog::info("redis target {}: connected to {}", target_.name, endpoint_.describe());
  }
  const auto pingStart = std::chrono::steady_clock::now();
  auto pong = connection_.command({"PING"});
  if (pong->type == REDIS_REPLY_ERROR) throw RedisError(std::string("PING: ") + pong->str);
  pingDuration_.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - pingStart).count());

  // Configured keys first: when a pattern also finds one of them, the configured entry is kept.
  std::vector<KeyRead> keys;
  for (const auto& layout : layouts_) keys.insert(keys.end(), layout.keys.begin(), layout.keys.end());
  auto found = expandPatterns(out);
  keys.insert(keys.end(), found.begin(), found.end());
  readLengths(keys, out);
  readAges(out);
}

std::vector<KeyRead> RedisQueueCollector::expandPatterns(SnapshotBuilder& out) {
  std::vector<KeyRead> keys;
  patternKeys_.clear();
  for (std::size_t i = 0; i < layouts_.size(); ++i) {
    for (const auto& pattern : layouts_[i].patterns) {
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
        auto reply = connection_.command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) throw RedisError("unexpected SCAN reply");
        cursor = replyString(reply->element[0]);
        const redisReply* batch = reply->element[1];
        if (batch->type != REDIS_REPLY_ARRAY) throw RedisError("unexpected SCAN reply");
        for (std::size_t k = 0; k < batch->elements; ++k) {
          std::string key = replyString(batch->element[k]);
          if (matched.count(key)) continue;  // SCAN may return a key more than once
          if (matched.size() >= static_cast<std::size_t>(target_.max_keys_per_pattern)) {
            truncated = true;
            break;
          }
          matched.insert(std::move(key));
        }
        if (!truncated && cursor != "0" && std::chrono::steady_clock::now() > deadline) unfinished = true;
      } while (cursor != "0" && !truncated && !unfinished);
      // Said once while it lasts (the gauge below tells the rest), again after it cleared.
      const auto level = patternWarned_.count(pattern) ? spdlog::level::debug : spdlog::level::warn;
      if (unfinished) {
        truncated = true;
        spdlog::log(level, "redis target {}: SCAN for pattern '{}' did not finish within {}; the {} keys found so far are exported",
                    target_.name, pattern, formatDuration(target_.timeout), matched.size());
      } else if (truncated) {
        spdlog::log(level, "redis target {}: pattern '{}' matches more than {} keys; only the first {} are exported",
                    target_.name, pattern, target_.max_keys_per_pattern, target_.max_keys_per_pattern);
      }
      if (truncated) {
        patternWarned_.insert(pattern);
      } else {
        patternWarned_.erase(pattern);
      }
      out.gauge("apphealth_queue_pattern_keys", "Keys matched by a queue key pattern (capped at max_keys_per_pattern)." + helpSuffix_,
                {{"target", target_.name}, {"pattern", pattern}}, static_cast<double>(matched.size()));
      out.gauge("apphealth_queue_pattern_truncated", "Whether a queue key pattern matched more keys than exported, or its SCAN did not finish within the timeout." + helpSuffix_,
                {{"target", target_.name}, {"pattern", pattern}}, truncated ? 1 : 0);
      const auto& spec = target_.queues[i];
      for (const auto& key : matched) keys.push_back({key, key, spec.state, keyTypeFromName(spec.type), static_cast<int>(i)});
    }
  }
  return keys;
}

void RedisQueueCollector::readLengths(std::vector<KeyRead>& keys, SnapshotBuilder& out) {
  // A key listed twice (the same key under two entries, or found by a pattern and configured
  // explicitly) counts once.
  {
    std::set<std::tuple<std::string, std::string, std::string>> seen;
    std::erase_if(keys, [&](const KeyRead& k) { return !seen.emplace(k.key, k.queue, k.state).second; });
  }
  // Round trip 1: TYPE for keys whose type was not configured.
  std::vector<RedisCommand> commands;
  std::vector<std::size_t> typed;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].type == KeyType::Unknown) {
      commands.push_back({"TYPE", keys[i].key});
      typed.push_back(i);
    }
  }
  if (!commands.empty()) {
    auto replies = connection_.pipeline(commands);
    for (std::size_t j = 0; j < typed.size(); ++j) keys[typed[j]].type = keyTypeFromName(replyString(replies[j].get()));
  }

  // Round trip 2: lengths, and consumer groups of streams.
  commands.clear();
  struct Pending {
    std::size_t key;
    bool groups;
  };
  std::vector<Pending> pending;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const char* cmd = lengthCommand(keys[i].type);
    if (cmd == nullptr) continue;  // missing key ("none") or a type that holds no jobs
    commands.push_back({cmd, keys[i].key});
    pending.push_back({i, false});
    if (keys[i].type == KeyType::Stream) {
      commands.push_back({"XINFO", "GROUPS", keys[i].key});
      pending.push_back({i, true});
    }
  }
  auto replies = commands.empty() ? std::vector<RedisReply>{} : connection_.pipeline(commands);

  // A missing key is an empty queue: every configured (queue, state) is exported, 0 or not,
  // so a queue that drains does not vanish from the graphs.
  std::map<std::pair<std::string, std::string>, double> jobs;
  // A key found by a pattern is a queue only if its length could be read: a hash or string
  // that happens to match, a key of another type than the entry's `type:`, or a key deleted
  // since SCAN adds no series.
  for (const auto& key : keys) {
    if (key.patternEntry < 0) jobs[{key.queue, key.state}] += 0;
  }
  std::set<std::pair<std::string, std::string>> groupsSeen;  // (queue, group): one series each
  for (std::size_t j = 0; j < pending.size(); ++j) {
    const auto& key = keys[pending[j].key];
    const redisReply* reply = replies[j].get();
    if (reply->type == REDIS_REPLY_ERROR) {
      // WRONGTYPE: a preset's key or an explicit `type:` does not match what the key holds
      // (or it changed type between the two round trips). Said once per key, then at debug.
      if (key.patternEntry < 0 && wrongTypeWarned_.insert(key.key).second) {
        spdlog::warn("redis target {}: {} {}: {} (the key is not counted)", target_.name, commands[j][0], key.key,
                     std::string(reply->str, reply->len));
      } else {
        spdlog::debug("redis target {}: {} {}: {}", target_.name, commands[j][0], key.key, std::string(reply->str, reply->len));
      }
      continue;
    }
    if (!pending[j].groups) {
      if (reply->type != REDIS_REPLY_INTEGER) continue;
      jobs[{key.queue, key.state}] += static_cast<double>(reply->integer);
      if (key.patternEntry >= 0) patternKeys_.emplace_back(static_cast<std::size_t>(key.patternEntry), key.key);
      continue;
    }
    // XINFO GROUPS: an array of flat [field, value, ...] arrays.
    for (std::size_t g = 0; g < reply->elements && g < kMaxStreamGroups; ++g) {
      const redisReply* group = reply->element[g];
      std::string name;
      std::optional<double> groupPending, lag;
      for (std::size_t f = 0; f + 1 < group->elements; f += 2) {
        const std::string field = replyString(group->element[f]);
        const redisReply* value = group->element[f + 1];
        if (field == "name") name = replyString(value);
        if (field == "pending" && value->type == REDIS_REPLY_INTEGER) groupPending = static_cast<double>(value->integer);
        if (field == "lag" && value->type == REDIS_REPLY_INTEGER) lag = static_cast<double>(value->integer);
      }
      if (!groupsSeen.emplace(key.queue, name).second) continue;
      const Labels labels = {{"target", target_.name}, {"queue", key.queue}, {"group", name}};
      if (groupPending) {
        out.gauge("apphealth_queue_stream_group_pending",
                  "Entries delivered to a stream consumer group but not acknowledged." + helpSuffix_, labels, *groupPending);
      }
      // Redis reports no lag (nil) when it cannot tell, e.g. after XDEL/XTRIM: omit the series.
      if (lag) {
        out.gauge("apphealth_queue_stream_group_lag", "Entries in the stream not yet delivered to the consumer group." + helpSuffix_,
                  labels, *lag);
      }
    }
  }
  for (const auto& [queueState, count] : jobs) {
    out.gauge("apphealth_queue_jobs", "Jobs in a queue by state." + helpSuffix_,
              {{"target", target_.name}, {"queue", queueState.first}, {"state", queueState.second}}, count);
  }
  lastJobs_ = std::move(jobs);
}

void RedisQueueCollector::readAges(SnapshotBuilder& out) {
  std::vector<const AgeRead*> reads;
  std::vector<RedisCommand> commands;
  for (const auto& layout : layouts_) {
    for (const auto& age : layout.ages) {
      reads.push_back(&age);
      commands.push_back({"LINDEX", age.listKey, std::to_string(age.index)});
    }
  }
  if (commands.empty()) return;
  auto heads = connection_.pipeline(commands);

  // For frameworks that keep only ids in the list, one more round trip reads the job hashes.
  std::vector<std::optional<std::string>> stamps(reads.size());
  std::vector<RedisCommand> hashCommands;
  std::vector<std::size_t> hashIndex;
  for (std::size_t i = 0; i < reads.size(); ++i) {
    if (heads[i]->type != REDIS_REPLY_STRING) continue;  // empty queue: no age
    const std::string element = replyString(heads[i].get());
    switch (reads[i]->source) {
      case AgeRead::Source::JsonEnqueuedAt: stamps[i] = element; break;
      case AgeRead::Source::RqJobHash:
        hashCommands.push_back({"HGET", reads[i]->hashPrefix + element, "enqueued_at"});
        hashIndex.push_back(i);
        break;
      case AgeRead::Source::BullJobHash:
        hashCommands.push_back({"HGET", reads[i]->hashPrefix + element, "timestamp"});
        hashIndex.push_back(i);
        break;
    }
  }
  if (!hashCommands.empty()) {
    auto hashes = connection_.pipeline(hashCommands);
    for (std::size_t j = 0; j < hashIndex.size(); ++j) {
      if (hashes[j]->type == REDIS_REPLY_STRING) stamps[hashIndex[j]] = replyString(hashes[j].get());
    }
  }
  const double now = nowSeconds();
  // Two entries naming the same queue give one series: the older of their oldest jobs.
  std::map<std::string, double> ages;
  for (std::size_t i = 0; i < reads.size(); ++i) {
    // An empty queue has no oldest job: its age is 0, so "oldest job too old" resolves.
    double age = 0;
    if (stamps[i]) {
      if (auto enqueued = parseEnqueueTime(reads[i]->source, *stamps[i])) {
        age = std::max(0.0, now - *enqueued);
      } else {
        spdlog::debug("redis target {}: cannot read the enqueue time of the oldest job in {}", target_.name,
                      reads[i]->listKey);
      }
    } else if (heads[i]->type == REDIS_REPLY_STRING) {
      spdlog::debug("redis target {}: the oldest job in {} has no job hash", target_.name, reads[i]->listKey);
    }
    auto [it, inserted] = ages.try_emplace(reads[i]->queue, age);
    if (!inserted) it->second = std::max(it->second, age);
  }
  for (const auto& [queue, age] : ages) {
    out.gauge("apphealth_queue_oldest_job_age_seconds", "Age of the oldest waiting job (0: queue empty)." + helpSuffix_,
              {{"target", target_.name}, {"queue", queue}}, age);
  }
}

}  // namespace apphealth
