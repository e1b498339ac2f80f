#pragma once
// What every config section parser shares: the error-collecting reader, the target names
// seen so far (they must be unique per section), and the common checks for names, secrets,
// intervals and timeouts. Each section lives in its own *Section.cpp.

#include <map>
#include <optional>
#include <set>
#include <string>

#include "config/Config.h"
#include "config/YamlReader.h"

namespace apphealth {

using namespace std::chrono_literals;

inline constexpr Duration kMinInterval = 100ms;
inline constexpr Duration kMaxInterval = 24h;

class LoadContext {
 public:
  explicit LoadContext(YamlReader& reader) : reader_(reader) {}
  YamlReader& reader() { return reader_; }

  // Reads `name`, checks its charset and that it is unique within `section`.
  void checkName(YamlReader::Map& map, const std::string& section, std::string& name);
  // Whether a target of `section` parsed so far has this name.
  bool hasName(const std::string& section, const std::string& name) const;
  // Reads password_file / password_env, rejects an inline `password`, checks it is readable.
  void secret(YamlReader::Map& map, SecretSource& out);
  // Reads interval and timeout; timeout must not exceed interval.
  void intervalAndTimeout(YamlReader::Map& map, Duration& interval, Duration& timeout);

 private:
  YamlReader& reader_;
  std::map<std::string, std::set<std::string>> names_;  // section -> names seen
};

// One parser per top-level section; each returns nullopt for an entry too broken to use
// (its problems are already reported).
std::optional<PostgresTarget> parsePostgresTarget(LoadContext& ctx, const YAML::Node& node);
std::optional<MysqlTarget> parseMysqlTarget(LoadContext& ctx, const YAML::Node& node);
std::optional<RedisTarget> parseRedisTarget(LoadContext& ctx, const YAML::Node& node);
std::optional<BackupTarget> parseBackupTarget(LoadContext& ctx, const YAML::Node& node);
// Checks each `offsite_of` names a local backups[] entry and links it.
void resolveBackupReferences(LoadContext& ctx, const YAML::Node& sequence, std::vector<BackupTarget>& backups);
std::optional<AccessLogTarget> parseAccessLogTarget(LoadContext& ctx, const YAML::Node& node);
std::optional<HttpProbeTarget> parseHttpProbeTarget(LoadContext& ctx, const YAML::Node& node);
std::optional<IngestConfig> parseIngest(LoadContext& ctx, const YAML::Node& node);

}  // namespace apphealth
