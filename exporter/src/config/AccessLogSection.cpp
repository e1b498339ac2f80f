// The `access_logs:` section.

#include <map>

#include "config/LoadContext.h"
#include "routes/RoutePatterns.h"

namespace apphealth {

const char* formatName(AccessLogFormat format) {
  switch (format) {
    case AccessLogFormat::Combined: return "combined";
    case AccessLogFormat::CombinedRequestTime: return "combined_request_time";
    case AccessLogFormat::Json: return "json";
  }
  return "combined";
}

namespace {

void jsonFields(LoadContext& ctx, YamlReader::Map& map, AccessLogTarget& t) {
  auto node = map.node("json_fields");
  if (!node.IsDefined() || node.IsNull()) return;
  if (t.format != AccessLogFormat::Json) {
    ctx.reader().error(node, "'json_fields' is only for format: json");
    return;
  }
  YamlReader::Map fields(ctx.reader(), node, "json_fields");
  if (!fields.valid()) return;
  auto& f = t.json_fields;
  for (auto [key, out] : {std::pair{"method", &f.method}, std::pair{"status", &f.status}, std::pair{"path", &f.path},
                          std::pair{"request", &f.request}, std::pair{"request_time", &f.request_time}}) {
    fields.getString(key, *out);
  }
  if (f.status.empty()) ctx.reader().error(fields.node("status"), "json_fields.status must name a field");
  if (f.method.empty() && f.request.empty()) {
    ctx.reader().error(node, "json_fields needs 'method' or 'request' to find the HTTP method");
  }
}

void thresholds(LoadContext& ctx, YamlReader::Map& map, AccessLogTarget& t) {
  auto node = map.node("thresholds");
  if (!node.IsDefined() || node.IsNull()) return;
  YamlReader::Map th(ctx.reader(), node, "access log thresholds");
  if (!th.valid()) return;
  th.getDouble("error_ratio", t.error_ratio_threshold, 0.0, 1.0);
  Duration latency{};
  if (th.getDuration("latency", latency, 1ms, 1h)) t.latency_threshold_seconds = toSeconds(latency);
  // An objective of 1 leaves no error budget (every burn rate is infinite); below 0.5 it is
  // almost certainly a percentage written as a ratio's complement or a typo.
  double objective = t.slo_objective;
  if (th.getDouble("slo_objective", objective, 0.0, 1.0)) {
    if (objective < 0.5 || objective >= 1.0) {
      ctx.reader().error(th.node("slo_objective"),
                         "'slo_objective' is the share of requests that must succeed, at least 0.5 and below 1 "
                         "(e.g. 0.999 for 99.9 %)");
    } else {
      t.slo_objective = objective;
    }
  }
}

}  // namespace

std::optional<AccessLogTarget> parseAccessLogTarget(LoadContext& ctx, const YAML::Node& node) {
  YamlReader::Map map(ctx.reader(), node, "an access log");
  if (!map.valid()) return std::nullopt;
  AccessLogTarget t;
  ctx.checkName(map, "access log", t.name);
  map.getString("path", t.path, true);
  if (map.has("path") && !t.path.empty() && t.path.front() != '/') {
    ctx.reader().error(map.node("path"), "path must be absolute");
  }

  std::string format;
  if (map.getString("format", format)) {
    static const std::map<std::string, AccessLogFormat> formats = {
        {"combined", AccessLogFormat::Combined},
        {"combined_request_time", AccessLogFormat::CombinedRequestTime},
        {"json", AccessLogFormat::Json}};
    auto it = formats.find(format);
    if (it == formats.end()) {
      ctx.reader().error(map.node("format"), "unknown format '" + format + "' (combined, combined_request_time, json)");
    } else {
      t.format = it->second;
    }
  }
  jsonFields(ctx, map, t);

  std::string unit;
  if (map.getString("request_time_unit", unit)) {
    static const std::map<std::string, double> units = {{"s", 1.0}, {"ms", 1e-3}, {"us", 1e-6}, {"ns", 1e-9}};
    auto it = units.find(unit);
    if (t.format != AccessLogFormat::Json) {
      ctx.reader().error(map.node("request_time_unit"), "'request_time_unit' is only for format: json");
    } else if (it == units.end()) {
      ctx.reader().error(map.node("request_time_unit"), "request_time_unit must be s, ms, us or ns");
    } else {
      t.request_time_scale = it->second;
    }
  }

  if (map.getStringList("routes", t.routes)) {
    auto routes = map.node("routes");
    if (t.routes.size() > RoutePatterns::kMaxPatterns) {
      ctx.reader().error(routes, "at most " + std::to_string(RoutePatterns::kMaxPatterns) +
                                     " routes (each is a label value)");
    }
    std::set<std::string> seen;
    for (std::size_t i = 0; i < t.routes.size() && i < routes.size(); ++i) {
      if (auto problem = RoutePatterns::check(t.routes[i])) {
        ctx.reader().error(routes[i], "route '" + t.routes[i] + "': " + *problem);
      } else if (!seen.insert(t.routes[i]).second) {
        ctx.reader().error(routes[i], "duplicate route '" + t.routes[i] + "'");
      }
    }
  }

  std::string startAt;
  if (map.getString("start_at", startAt)) {
    if (startAt == "beginning") {
      t.start_at_beginning = true;
    } else if (startAt != "end") {
      ctx.reader().error(map.node("start_at"), "start_at must be 'end' or 'beginning'");
    }
  }
  map.getDuration("interval", t.interval, kMinInterval, kMaxInterval);
  thresholds(ctx, map, t);
  return t;
}

}  // namespace apphealth
