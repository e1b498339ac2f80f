// The `http_probes:` section.

#include "config/LoadContext.h"

namespace apphealth {

std::optional<HttpProbeTarget> parseHttpProbeTarget(LoadContext& ctx, const YAML::Node& node) {
  YamlReader::Map map(ctx.reader(), node, "an http probe");
  if (!map.valid()) return std::nullopt;
  HttpProbeTarget t;
  ctx.checkName(map, "http probe", t.name);
  map.getString("url", t.url, true);
  ctx.intervalAndTimeout(map, t.interval, t.timeout);
  return t;
}

}  // namespace apphealth
