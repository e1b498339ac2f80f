#include "config/ConfigLoader.h"

#include <algorithm>
#include <fstream>
#include <tuple>
#include <set>
#include <sstream>
#include <stdexcept>

namespace apphealth {

namespace {

constexpr Duration kMinInterval = 100ms;
constexpr Duration kMaxInterval = 24h;
const std::set<std::string> kQueueStates = {"waiting", "delayed", "active",   "failed",
                                            "scheduled", "retry",  "dead", "completed"};

// Target names become label values and appear on the landing page: keep them tame.
bool isValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (unsigned char c : name) {
    if (!(std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == ':')) return false;
  }
  return true;
}

class Loader {
 public:
  Loader(const std::string& file, std::vector<ConfigError>& errors) : reader_(file, errors) {}

  Config load(const YAML::Node& root) {
    Config config;
    config.source_file = reader_.file();
    if (root.IsNull() || !root.IsDefined()) return config;  // an empty file is a valid no-op config
    YamlReader::Map top(reader_, root, "the top level");
    if (!top.valid()) return config;
    reader_.forEach(top.node("postgres"), "'postgres'", [&](const YAML::Node& n) {
      if (auto t = postgres(n)) config.postgres.push_back(std::move(*t));
    });
    reader_.forEach(top.node("redis"), "'redis'", [&](const YAML::Node& n) {
      if (auto t = redis(n)) config.redis.push_back(std::move(*t));
    });
    reader_.forEach(top.node("backups"), "'backups'", [&](const YAML::Node& n) {
      if (auto t = backup(n)) config.backups.push_back(std::move(*t));
    });
    return config;
  }

 private:
  YamlReader reader_;
  std::map<std::string, std::set<std::string>> names_;  // section -> names seen

  void checkName(YamlReader::Map& map, const std::string& section, std::string& name) {
    if (!map.getString("name", name, true)) return;
    if (!isValidName(name)) {
      reader_.error(map.node("name"), "name '" + name + "' must be 1-64 characters of letters, digits, '_', '-', '.', ':'");
    } else if (!names_[section].insert(name).second) {
      reader_.error(map.node("name"), "duplicate " + section + " target name '" + name + "'");
    }
  }

  void secret(YamlReader::Map& map, SecretSource& out) {
    map.getString("password_file", out.file);
    map.getString("password_env", out.env);
    if (!out.file.empty() && !out.env.empty()) {
      reader_.error(map.node("password_env"), "set either password_file or password_env, not both");
      return;
    }
    if (map.has("password")) {
      reader_.error(map.node("password"),
                    "inline passwords are not accepted: use password_file or password_env");
    }
    try {
      readSecret(out);
    } catch (const std::exception& e) {
      reader_.error(map.node(out.file.empty() ? "password_env" : "password_file"), e.what());
    }
  }

  void intervalAndTimeout(YamlReader::Map& map, Duration& interval, Duration& timeout) {
    map.getDuration("interval", interval, kMinInterval, kMaxInterval);
    map.getDuration("timeout", timeout, 10ms, kMaxInterval);
    if (timeout > interval) {
      reader_.error(map.has("timeout") ? map.node("timeout") : map.self(),
                    "timeout (" + formatDuration(timeout) + ") must not exceed interval (" +
                        formatDuration(interval) + ")");
    }
  }

  std::optional<PostgresTarget> postgres(const YAML::Node& node) {
    YamlReader::Map map(reader_, node, "a postgres target");
    if (!map.valid()) return std::nullopt;
    PostgresTarget t;
    checkName(map, "postgres", t.name);
    map.getString("dsn", t.dsn);
    // Field form, for those who prefer it to a DSN.
    std::string fields;
    for (const char* key : {"host", "port", "dbname", "user", "sslmode"}) {
      std::string value;
      if (map.getString(key, value)) {
        if (!t.dsn.empty()) {
          reader_.error(map.node(key), std::string("'") + key + "' cannot be combined with 'dsn'");
        }
        fields += std::string(fields.empty() ? "" : " ") + key + "='" + value + "'";
      }
    }
    if (t.dsn.empty()) t.dsn = fields;
    if (t.dsn.empty()) reader_.error(node, "a postgres target needs 'dsn' or 'host'/'dbname'/'user'");
    if (t.dsn.find("password=") != std::string::npos || dsnUriHasPassword(t.dsn)) {
      reader_.error(map.node("dsn"), "the dsn must not contain the password: use password_file or password_env");
    }
    secret(map, t.password);
    map.getString("probe_query", t.probe_query);
    intervalAndTimeout(map, t.interval, t.timeout);
    if (auto th = map.node("thresholds"); th.IsDefined()) {
      YamlReader::Map thresholds(reader_, th, "postgres thresholds");
      Duration latency{static_cast<long>(t.probe_latency_threshold_seconds * 1000)};
      if (thresholds.getDuration("probe_latency", latency, 1ms, 1h)) {
        t.probe_latency_threshold_seconds = toSeconds(latency);
      }
    }
    return t;
  }

  static bool dsnUriHasPassword(const std::string& dsn) {
    const auto scheme = dsn.find("://");
    if (scheme == std::string::npos) return false;
    const auto at = dsn.find('@', scheme);
    if (at == std::string::npos) return false;
    return dsn.substr(scheme + 3, at - scheme - 3).find(':') != std::string::npos;
  }

  void address(YamlReader::Map& map, RedisTarget& t) {
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
          reader_.error(map.node("address"), "address must be host:port or unix:/path/to/socket");
        }
      }
      if (t.host.empty()) reader_.error(map.node("address"), "address has no host");
    }
  }

  std::optional<RedisTarget> redis(const YAML::Node& node) {
    YamlReader::Map map(reader_, node, "a redis target");
    if (!map.valid()) return std::nullopt;
    RedisTarget t;
    checkName(map, "redis", t.name);
    address(map, t);
    secret(map, t.password);
    map.getInt("db", t.db, 0, 10000);
    intervalAndTimeout(map, t.interval, t.timeout);
    map.getInt("max_keys_per_pattern", t.max_keys_per_pattern, 1, 100000);
    std::set<std::string> labels;
    reader_.forEach(map.node("queues"), "'queues'", [&](const YAML::Node& q) {
      if (auto spec = queue(q)) t.queues.push_back(std::move(*spec));
    });
    return t;
  }

  std::optional<RedisQueueSpec> queue(const YAML::Node& node) {
    YamlReader::Map map(reader_, node, "a queue entry");
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
        reader_.error(map.node("preset"), "unknown preset '" + preset + "' (celery, rq, sidekiq, laravel, bullmq)");
      } else {
        spec.preset = it->second;
      }
      map.getStringList("queues", spec.queue_names, true);
      map.getString("prefix", spec.prefix);
      for (const char* key : {"key", "type", "state"}) {
        if (map.has(key)) reader_.error(map.node(key), std::string("'") + key + "' is for explicit keys, not presets");
      }
    } else {
      if (!map.getString("key", spec.key, true)) return std::nullopt;
      spec.label = spec.key;
      map.getString("name", spec.label);
      if (map.getString("type", spec.type) &&
          !std::set<std::string>{"list", "zset", "set", "stream"}.count(spec.type)) {
        reader_.error(map.node("type"), "type must be list, zset, set or stream");
      }
      if (map.getString("state", spec.state) && !kQueueStates.count(spec.state)) {
        reader_.error(map.node("state"), "unknown state '" + spec.state + "'");
      }
    }
    if (auto th = map.node("thresholds"); th.IsDefined()) {
      YamlReader::Map thresholds(reader_, th, "queue thresholds");
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

  std::optional<BackupTarget> backup(const YAML::Node& node) {
    YamlReader::Map map(reader_, node, "a backup");
    if (!map.valid()) return std::nullopt;
    BackupTarget t;
    checkName(map, "backup", t.name);
    map.getString("directory", t.directory, true);
    map.getString("glob", t.glob);
    map.getString("name_time_format", t.name_time_format);
    if (!t.name_time_format.empty() && t.name_time_format.find('%') == std::string::npos) {
      reader_.error(map.node("name_time_format"), "name_time_format needs strptime fields such as %Y%m%d-%H%M%S");
    }
    map.getBool("verify_checksum", t.verify_checksum);
    map.getDuration("max_age", t.max_age, 1s, 24h * 3650);
    map.getDuration("interval", t.interval, kMinInterval, kMaxInterval);
    return t;
  }
};

}  // namespace

ConfigLoadResult loadConfigText(const std::string& yaml, const std::string& file) {
  ConfigLoadResult result;
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    result.errors.push_back({file, e.mark.line + 1, e.mark.column + 1, e.msg});
    return result;
  }
  Config config = Loader(file, result.errors).load(root);
  // Checks run section by section; report in file order, as a reader scans the file.
  std::stable_sort(result.errors.begin(), result.errors.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

ConfigLoadResult loadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ConfigLoadResult result;
    result.errors.push_back({path, 0, 0, "cannot read the config file"});
    return result;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return loadConfigText(text.str(), path);
}

}  // namespace apphealth
