// The `redis:` section: targets and their queue entries.

#include <map>
#include <set>
#include <stdexcept>

#include "config/LoadContext.h"

namespace apphealth {

namespace {

// The closed set of `state` label values (README, "Queue states").
const std::set<std::string> kQueueStates = {"waiting", "paused",   "reserved", "scheduled", "delayed",
                                            "deferred", "waiting_children", "active", "completed", "failed",
                                            "retry",   "dead",     "canceled"};

void address(LoadContext& ctx, YamlReader::Map& map, RedisTarget& t) {
  std::string address;
  if (!map.getString("address", address)) return;
  if (address.rfind("unix:", 0) == 0) {
    t.unix_socket = address.substr(5);
  } else if (!address.empty() && address[0] == '/') {
    t.unix_socket = address;
  } else {
    const auto colon = address.rfind(':');
    t.host = address.substr(0, colon);
    if (colon != std::string::npos) {
      try {
        std::size_t used = 0;
        t.port = std::stoi(address.substr(colon + 1), &used);
        if (used != address.size() - colon - 1 || t.port < 1 || t.port > 65535) throw std::out_of_range("port");
      } catch (const std::exception&) {
        ctx.reader().error(map.node("address"), "address must be host:port or unix:/path/to/socket");
      }
    }
    if (t.host.empty()) ctx.reader().error(map.node("address"), "address has no host");
  }
}

std::optional<RedisQueueSpec> parseQueue(LoadContext& ctx, const YAML::Node& node) {
  YamlReader::Map map(ctx.reader(), node, "a queue entry");
  if (!map.valid()) return std::nullopt;
  RedisQueueSpec spec;
  std::string preset;
  if (map.getString("preset", preset)) {
    static const std::map<std::string, RedisQueueSpec::Preset> presets = {
        {"celery", RedisQueueSpec::Preset::Celery},   {"rq", RedisQueueSpec::Preset::Rq},
        {"sidekiq", RedisQueueSpec::Preset::Sidekiq}, {"laravel", RedisQueueSpec::Preset::Laravel},
        {"bullmq", RedisQueueSpec::Preset::BullMQ}};
    auto it = presets.find(preset);
    if (it == presets.end()) {
      ctx.reader().error(map.node("preset"), "unknown preset '" + preset + "' (celery, rq, sidekiq, laravel, bullmq)");
    } else {
      spec.preset = it->second;
    }
    map.getStringList("queues", spec.queue_names, true);
    map.getString("prefix", spec.prefix);
    map.getBool("workers", spec.workers);
    for (const char* key : {"key", "type", "state"}) {
      if (map.has(key)) ctx.reader().error(map.node(key), std::string("'") + key + "' is for explicit keys, not presets");
    }
    if (spec.preset == RedisQueueSpec::Preset::Laravel && map.has("workers")) {
      ctx.reader().error(map.node("workers"), "'workers' does not apply to laravel: its workers leave no trace in Redis");
    }
  } else {
    if (!map.getString("key", spec.key, true)) return std::nullopt;
    spec.label = spec.key;
    map.getString("name", spec.label);
    if (map.getString("type", spec.type) &&
        !std::set<std::string>{"list", "zset", "set", "stream"}.count(spec.type)) {
      ctx.reader().error(map.node("type"), "type must be list, zset, set or stream");
    }
    if (map.getString("state", spec.state) && !kQueueStates.count(spec.state)) {
      ctx.reader().error(map.node("state"), "unknown state '" + spec.state + "'");
    }
  }
  if (auto th = map.node("thresholds"); th.IsDefined()) {
    YamlReader::Map thresholds(ctx.reader(), th, "queue thresholds");
    if (thresholds.valid()) {
      for (const auto& entry : th) {
        const auto state = entry.first.Scalar();
        if (!kQueueStates.count(state)) continue;  // reported as unknown key by finish()
        double value = 0;
        if (thresholds.getDouble(state, value, 0, 1e12)) spec.thresholds[state] = value;
      }
    }
  }
  return spec;
}

}  // namespace

std::optional<RedisTarget> parseRedisTarget(LoadContext& ctx, const YAML::Node& node) {
  YamlReader::Map map(ctx.reader(), node, "a redis target");
  if (!map.valid()) return std::nullopt;
  RedisTarget t;
  ctx.checkName(map, "redis", t.name);
  address(ctx, map, t);
  ctx.secret(map, t.password);
  map.getInt("db", t.db, 0, 10000);
  ctx.intervalAndTimeout(map, t.interval, t.timeout);
  map.getInt("max_keys_per_pattern", t.max_keys_per_pattern, 1, 100000);
  // Two entries naming the same queue would be summed into one series: almost always two
  // apps sharing a Redis whose queues need telling apart.
  std::set<std::string> queueLabels;
  ctx.reader().forEach(map.node("queues"), "'queues'", [&](const YAML::Node& q) {
    auto spec = parseQueue(ctx, q);
    if (!spec) return;
    const std::vector<std::string> labels =
        spec->preset == RedisQueueSpec::Preset::None ? std::vector<std::string>{spec->label} : spec->queue_names;
    for (const auto& label : labels) {
      if (!queueLabels.insert(label).second) {
        ctx.reader().error(q, "queue '" + label + "' is already read by another entry of redis target '" + t.name +
                                  "'; give one of them another name");
      }
    }
    t.queues.push_back(std::move(*spec));
  });
  return t;
}

}  // namespace apphealth
