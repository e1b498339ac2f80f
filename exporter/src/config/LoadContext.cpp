#include "config/LoadContext.h"

#include <cctype>

namespace apphealth {

namespace {

// Target names become label values and appear on the landing page: keep them tame.
bool isValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (unsigned char c : name) {
    if (!(std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == ':')) return false;
  }
  return true;
}

}  // namespace

void LoadContext::checkName(YamlReader::Map& map, const std::string& section, std::string& name) {
  if (!map.getString("name", name, true)) return;
  if (!isValidName(name)) {
    reader_.error(map.node("name"), "name '" + name + "' must be 1-64 characters of letters, digits, '_', '-', '.', ':'");
  } else if (!names_[section].insert(name).second) {
    reader_.error(map.node("name"), "duplicate " + section + " target name '" + name + "'");
  }
}

bool LoadContext::hasName(const std::string& section, const std::string& name) const {
  auto it = names_.find(section);
  return it != names_.end() && it->second.count(name) > 0;
}

void LoadContext::secret(YamlReader::Map& map, SecretSource& out) {
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

void LoadContext::intervalAndTimeout(YamlReader::Map& map, Duration& interval, Duration& timeout) {
  map.getDuration("interval", interval, kMinInterval, kMaxInterval);
  map.getDuration("timeout", timeout, 10ms, kMaxInterval);
  if (timeout > interval) {
    reader_.error(map.has("timeout") ? map.node("timeout") : map.self(),
                  "timeout (" + formatDuration(timeout) + ") must not exceed interval (" +
                      formatDuration(interval) + ")");
  }
}

}  // namespace apphealth
