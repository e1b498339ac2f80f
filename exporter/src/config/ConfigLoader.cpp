#include "config/ConfigLoader.h"

#include "config/LoadContext.h"

#include <algorithm>
#include <fstream>
#include <tuple>
#include <sstream>

namespace apphealth {

namespace {

Config loadSections(YamlReader& reader, const YAML::Node& root) {
  Config config;
  config.source_file = reader.file();
  if (root.IsNull() || !root.IsDefined()) return config;  // an empty file is a valid no-op config
  YamlReader::Map top(reader, root, "the top level");
  if (!top.valid()) return config;
  LoadContext ctx(reader);
  // Each section appends what it could parse; its problems are already in the reader.
  auto section = [&](const char* key, auto parse, auto& into) {
    reader.forEach(top.node(key), std::string("'") + key + "'", [&](const YAML::Node& n) {
      if (auto t = parse(ctx, n)) into.push_back(std::move(*t));
    });
  };
  section("postgres", parsePostgresTarget, config.postgres);
  section("mysql", parseMysqlTarget, config.mysql);  // after postgres: names are checked across both
  section("redis", parseRedisTarget, config.redis);
  section("backups", parseBackupTarget, config.backups);
  resolveBackupReferences(ctx, top.node("backups"), config.backups);
  section("access_logs", parseAccessLogTarget, config.access_logs);
  section("http_probes", parseHttpProbeTarget, config.http_probes);
  if (auto ingest = top.node("ingest"); ingest.IsDefined() && !ingest.IsNull()) {
    if (auto parsed = parseIngest(ctx, ingest)) config.ingest = std::move(*parsed);
  }
  return config;
}

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
  YamlReader reader(file, result.errors);
  Config config = loadSections(reader, root);
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
