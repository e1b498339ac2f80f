#include "collectors/redis/RedisQueueLayouts.h"

#include <simdjson.h>

#include <cmath>
#include <cstdlib>
#include <ctime>

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

using Preset = RedisQueueSpec::Preset;

std::string withDefault(const std::string& value, const std::string& fallback) {
  return value.empty() ? fallback : value;
}

void celery(const RedisQueueSpec& spec, QueueLayout& out) {
  // Celery 5 through kombu 5's Redis transport: one list per queue, named after the queue
  // (LPUSH to publish, BRPOP to consume). Messages sent with a priority go to sibling lists
  // "<queue>\x06\x16<step>" for kombu's default priority steps 3, 6 and 9 (step 0 is the plain
  // name); all of them are waiting jobs of the same queue.
  for (const auto& q : spec.queue_names) {
    const std::string base = spec.prefix + q;
    out.keys.push_back({base, q, "waiting", KeyType::List});
    for (const char* step : {"3", "6", "9"}) {
      out.keys.push_back({base + "\x06\x16" + step, q, "waiting", KeyType::List});
    }
  }
}

void rq(const RedisQueueSpec& spec, QueueLayout& out) {
  const std::string p = withDefault(spec.prefix, "rq:");
  for (const auto& q : spec.queue_names) {
    out.keys.push_back({p + "queue:" + q, q, "waiting", KeyType::List});
    out.keys.push_back({p + "wip:" + q, q, "active", KeyType::ZSet});        // StartedJobRegistry
    out.keys.push_back({p + "failed:" + q, q, "failed", KeyType::ZSet});     // FailedJobRegistry
    out.keys.push_back({p + "scheduled:" + q, q, "scheduled", KeyType::ZSet});
    out.keys.push_back({p + "deferred:" + q, q, "delayed", KeyType::ZSet});  // waiting on dependencies
    // RQ enqueues with RPUSH and workers pop from the head: the oldest id is at index 0.
    out.ages.push_back({q, p + "queue:" + q, 0, AgeRead::Source::RqJobHash, p + "job:"});
  }
}

void sidekiq(const RedisQueueSpec& spec, QueueLayout& out) {
  const std::string& p = spec.prefix;  // a redis-namespace, if the app uses one ("myapp:")
  for (const auto& q : spec.queue_names) {
    out.keys.push_back({p + "queue:" + q, q, "waiting", KeyType::List});
    // Sidekiq LPUSHes and workers BRPOP: the oldest job is at the tail.
    out.ages.push_back({q, p + "queue:" + q, -1, AgeRead::Source::JsonEnqueuedAt, ""});
  }
  // Retry, schedule and dead sets are shared by all of Sidekiq's queues.
  out.keys.push_back({p + "retry", "sidekiq", "retry", KeyType::ZSet});
  out.keys.push_back({p + "schedule", "sidekiq", "scheduled", KeyType::ZSet});
  out.keys.push_back({p + "dead", "sidekiq", "dead", KeyType::ZSet});
}

void laravel(const RedisQueueSpec& spec, QueueLayout& out) {
  // spec.prefix is Laravel's redis key prefix (config database.redis.options.prefix).
  for (const auto& q : spec.queue_names) {
    const std::string base = spec.prefix + "queues:" + q;
    out.keys.push_back({base, q, "waiting", KeyType::List});
    out.keys.push_back({base + ":delayed", q, "delayed", KeyType::ZSet});
    out.keys.push_back({base + ":reserved", q, "active", KeyType::ZSet});
  }
}

void bullmq(const RedisQueueSpec& spec, QueueLayout& out) {
  const std::string p = withDefault(spec.prefix, "bull") + ":";
  for (const auto& q : spec.queue_names) {
    const std::string base = p + q + ":";
    out.keys.push_back({base + "wait", q, "waiting", KeyType::List});
    out.keys.push_back({base + "prioritized", q, "waiting", KeyType::ZSet});  // BullMQ >= 4
    out.keys.push_back({base + "active", q, "active", KeyType::List});
    out.keys.push_back({base + "delayed", q, "delayed", KeyType::ZSet});
    out.keys.push_back({base + "failed", q, "failed", KeyType::ZSet});
    out.keys.push_back({base + "completed", q, "completed", KeyType::ZSet});
    // BullMQ LPUSHes new jobs and moves them to active from the tail.
    out.ages.push_back({q, base + "wait", -1, AgeRead::Source::BullJobHash, base});
  }
}

// "2024-05-01T12:00:00.123456Z" (RQ's utcformat) -> Unix seconds. Also accepts no zone (UTC,
// as RQ < 1.0 wrote it) and a numeric offset ("+02:00", "-0500"). Anything else: nullopt.
std::optional<double> parseIsoUtc(const std::string& text) {
  std::tm tm{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr || text.size() < 19) return std::nullopt;
  double seconds = static_cast<double>(timegm(&tm));
  if (*rest == '.') {
    ++rest;
    if (*rest < '0' || *rest > '9') return std::nullopt;
    double scale = 0.1;
    for (; *rest >= '0' && *rest <= '9'; ++rest, scale /= 10) seconds += (*rest - '0') * scale;
  }
  if (*rest == 'Z') {
    ++rest;
  } else if (*rest == '+' || *rest == '-') {
    const int sign = *rest == '+' ? 1 : -1;
    ++rest;
    auto digits = [&](int& value) {
      if (rest[0] < '0' || rest[0] > '9' || rest[1] < '0' || rest[1] > '9') return false;
      value = (rest[0] - '0') * 10 + (rest[1] - '0');
      rest += 2;
      return true;
    };
    int hours = 0, minutes = 0;
    if (!digits(hours)) return std::nullopt;
    if (*rest == ':') ++rest;
    if (!digits(minutes) || hours > 23 || minutes > 59) return std::nullopt;
    seconds -= sign * (hours * 3600 + minutes * 60);  // local = UTC + offset
  }
  if (*rest != '\0') return std::nullopt;
  return seconds;
}

}  // namespace

QueueLayout layoutFor(const RedisQueueSpec& spec) {
  QueueLayout out;
  switch (spec.preset) {
    case Preset::Celery: celery(spec, out); break;
    case Preset::Rq: rq(spec, out); break;
    case Preset::Sidekiq: sidekiq(spec, out); break;
    case Preset::Laravel: laravel(spec, out); break;
    case Preset::BullMQ: bullmq(spec, out); break;
    case Preset::None:
      if (spec.key.find('*') != std::string::npos) {
        out.patterns.push_back(spec.key);
      } else {
        out.keys.push_back({spec.key, spec.label, spec.state, keyTypeFromName(spec.type)});
      }
      break;
  }
  return out;
}

std::optional<double> parseEnqueueTime(AgeRead::Source source, const std::string& text) {
  switch (source) {
    case AgeRead::Source::RqJobHash:
      return parseIsoUtc(text);
    case AgeRead::Source::BullJobHash: {
      char* end = nullptr;
      const double ms = std::strtod(text.c_str(), &end);
      if (end == text.c_str() || *end != '\0' || !std::isfinite(ms) || ms <= 0) return std::nullopt;
      return ms / 1000.0;
    }
    case AgeRead::Source::JsonEnqueuedAt: {
      simdjson::dom::parser parser;
      simdjson::dom::element doc;
      if (parser.parse(text).get(doc)) return std::nullopt;
      double value = 0;
      simdjson::dom::element field;
      if (doc["enqueued_at"].get(field)) return std::nullopt;
      if (field.get_double().get(value)) {
        int64_t integer = 0;
        if (field.get_int64().get(integer)) return std::nullopt;
        value = static_cast<double>(integer);
      }
      if (!std::isfinite(value) || value <= 0) return std::nullopt;
      // Sidekiq 8 stores milliseconds; earlier versions float seconds.
      return value > 1e11 ? value / 1000.0 : value;
    }
  }
  return std::nullopt;
}

}  // namespace apphealth
