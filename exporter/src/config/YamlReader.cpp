#include "config/YamlReader.h"

#include <cmath>

namespace apphealth {

std::string ConfigError::format() const {
  if (line == 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

void YamlReader::error(const YAML::Mark& at, const std::string& message) {
  if (at.is_null()) {
    errors_.push_back({file_, 0, 0, message});
  } else {
    errors_.push_back({file_, at.line + 1, at.column + 1, message});
  }
}

void YamlReader::error(const YAML::Node& at, const std::string& message) {
  error(at.IsDefined() ? at.Mark() : YAML::Mark::null_mark(), message);
}

void YamlReader::forEach(const YAML::Node& sequence, const std::string& what,
                         const std::function<void(const YAML::Node&)>& each) {
  if (!sequence.IsDefined() || sequence.IsNull()) return;
  if (!sequence.IsSequence()) {
    error(sequence, what + " must be a list");
    return;
  }
  for (const auto& element : sequence) each(element);
}

YamlReader::Map::Map(YamlReader& reader, const YAML::Node& node, std::string what)
    : reader_(reader), node_(node), what_(std::move(what)) {
  if (!node.IsMap()) {
    reader_.error(node, what_ + " must be a mapping of keys to values");
    return;
  }
  valid_ = true;
  // yaml-cpp keeps duplicate keys silently; a duplicated key is almost always a mistake.
  std::set<std::string> seen;
  for (const auto& entry : node) {
    const auto key = entry.first.Scalar();
    if (!seen.insert(key).second) reader_.error(entry.first, "duplicate key '" + key + "' in " + what_);
  }
}

YamlReader::Map::~Map() { finish(); }

void YamlReader::Map::finish() {
  if (finished_ || !valid_) return;
  finished_ = true;
  for (const auto& entry : node_) {
    const auto key = entry.first.Scalar();
    if (!known_.count(key)) reader_.error(entry.first, "unknown key '" + key + "' in " + what_);
  }
}

bool YamlReader::Map::has(const std::string& key) const { return valid_ && node_[key].IsDefined(); }

YAML::Node YamlReader::Map::node(const std::string& key) {
  known_.insert(key);
  if (!valid_) return YAML::Node();
  // operator[] on a const node never inserts.
  const YAML::Node& constNode = node_;
  return constNode[key];
}

namespace {
bool isScalar(const YAML::Node& n) { return n.IsScalar(); }
}  // namespace

bool YamlReader::Map::getString(const std::string& key, std::string& out, bool required) {
  auto n = node(key);
  if (!n.IsDefined() || n.IsNull()) {
    if (required && valid_) reader_.error(node_, what_ + " needs '" + key + "'");
    return false;
  }
  if (!isScalar(n)) {
    reader_.error(n, "'" + key + "' must be a string");
    return false;
  }
  out = n.Scalar();
  return true;
}

bool YamlReader::Map::getInt(const std::string& key, int& out, int min, int max) {
  auto n = node(key);
  if (!n.IsDefined() || n.IsNull()) return false;
  long long value = 0;
  if (!isScalar(n) || !YAML::convert<long long>::decode(n, value)) {
    reader_.error(n, "'" + key + "' must be an integer, got '" + (isScalar(n) ? n.Scalar() : "a collection") + "'");
    return false;
  }
  if (value < min || value > max) {
    reader_.error(n, "'" + key + "' must be between " + std::to_string(min) + " and " + std::to_string(max));
    return false;
  }
  out = static_cast<int>(value);
  return true;
}

bool YamlReader::Map::getDouble(const std::string& key, double& out, double min, double max) {
  auto n = node(key);
  if (!n.IsDefined() || n.IsNull()) return false;
  double value = 0;
  if (!isScalar(n) || !YAML::convert<double>::decode(n, value) || !std::isfinite(value)) {
    reader_.error(n, "'" + key + "' must be a number, got '" + (isScalar(n) ? n.Scalar() : "a collection") + "'");
    return false;
  }
  if (value < min || value > max) {
    reader_.error(n, "'" + key + "' is out of range");
    return false;
  }
  out = value;
  return true;
}

bool YamlReader::Map::getBool(const std::string& key, bool& out) {
  auto n = node(key);
  if (!n.IsDefined() || n.IsNull()) return false;
  bool value = false;
  if (!isScalar(n) || !YAML::convert<bool>::decode(n, value)) {
    reader_.error(n, "'" + key + "' must be true or false");
    return false;
  }
  out = value;
  return true;
}

bool YamlReader::Map::getDuration(const std::string& key, Duration& out, Duration min, Duration max) {
  auto n = node(key);
  if (!n.IsDefined() || n.IsNull()) return false;
  auto parsed = isScalar(n) ? parseDuration(n.Scalar()) : std::nullopt;
  if (!parsed) {
    reader_.error(n, "'" + key + "' must be a duration such as 500ms, 15s, 5m or 26h");
    return false;
  }
  if (*parsed < min || *parsed > max) {
    reader_.error(n, "'" + key + "' must be between " + formatDuration(min) + " and " + formatDuration(max));
    return false;
  }
  out = *parsed;
  return true;
}

bool YamlReader::Map::getStringList(const std::string& key, std::vector<std::string>& out, bool required) {
  auto n = node(key);
  if (!n.IsDefined() || n.IsNull()) {
    if (required && valid_) reader_.error(node_, what_ + " needs '" + key + "'");
    return false;
  }
  if (!n.IsSequence()) {
    reader_.error(n, "'" + key + "' must be a list of strings");
    return false;
  }
  std::vector<std::string> values;
  for (const auto& item : n) {
    if (!isScalar(item)) {
      reader_.error(item, "'" + key + "' must be a list of strings");
      return false;
    }
    values.push_back(item.Scalar());
  }
  out = std::move(values);
  return true;
}

}  // namespace apphealth
