// The `access_logs:` section.

#include "config/LoadContext.h"

namespace apphealth {

std::optional<AccessLogTarget> parseAccessLogTarget(LoadContext& ctx, const YAML::Node& node) {
  YamlReader::Map map(ctx.reader(), node, "an access log");
  if (!map.valid()) return std::nullopt;
  AccessLogTarget t;
  ctx.checkName(map, "access log", t.name);
  map.getString("path", t.path, true);
  map.getDuration("interval", t.interval, kMinInterval, kMaxInterval);
  return t;
}

}  // namespace apphealth
