// The `backups:` section.

#include "config/LoadContext.h"

namespace apphealth {

std::optional<BackupTarget> parseBackupTarget(LoadContext& ctx, const YAML::Node& node) {
  YamlReader::Map map(ctx.reader(), node, "a backup");
  if (!map.valid()) return std::nullopt;
  BackupTarget t;
  ctx.checkName(map, "backup", t.name);
  map.getString("directory", t.directory, true);
  map.getString("glob", t.glob);
  map.getString("name_time_format", t.name_time_format);
  if (!t.name_time_format.empty() && t.name_time_format.find('%') == std::string::npos) {
    ctx.reader().error(map.node("name_time_format"), "name_time_format needs strptime fields such as %Y%m%d-%H%M%S");
  }
  map.getBool("verify_checksum", t.verify_checksum);
  map.getDuration("max_age", t.max_age, 1s, 24h * 3650);
  map.getDuration("interval", t.interval, kMinInterval, kMaxInterval);
  return t;
}

}  // namespace apphealth
