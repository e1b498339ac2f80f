#pragma once
// Typed, error-collecting access to a YAML document. Every problem is recorded with the file,
// line and column it belongs to, and reading goes on, so one `--check-config` run reports all
// problems at once instead of the first.

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "util/Duration.h"

namespace apphealth {

struct ConfigError {
  std::string file;
  int line = 0;    // 1-based; 0 when the problem has no position (e.g. unreadable file)
  int column = 0;  // 1-based
  std::string message;
  std::string format() const;  // "file:line:col: message"
};

class YamlReader {
 public:
  YamlReader(std::string file, std::vector<ConfigError>& errors)
      : file_(std::move(file)), errors_(errors) {}

  void error(const YAML::Node& at, const std::string& message);
  void error(const YAML::Mark& at, const std::string& message);
  const std::string& file() const { return file_; }

  // A view of one mapping: typed getters that report wrong types and, on finish(), keys that
  // no getter asked for (typos such as `intervall:` must not be silently ignored).
  class Map {
   public:
    Map(YamlReader& reader, const YAML::Node& node, std::string what);
    ~Map();  // calls finish() if nobody did
    Map(const Map&) = delete;
    Map& operator=(const Map&) = delete;

    bool valid() const { return valid_; }
    bool has(const std::string& key) const;
    YAML::Node node(const std::string& key);  // marks the key as known; Null node if absent
    const YAML::Node& self() const { return node_; }

    // Each getter leaves `out` untouched when the key is absent and returns whether it was
    // present and valid. `required` reports a missing key.
    bool getString(const std::string& key, std::string& out, bool required = false);
    bool getInt(const std::string& key, int& out, int min, int max);
    bool getDouble(const std::string& key, double& out, double min, double max);
    bool getBool(const std::string& key, bool& out);
    bool getDuration(const std::string& key, Duration& out, Duration min, Duration max);
    bool getStringList(const std::string& key, std::vector<std::string>& out, bool required = false);

    void finish();

   private:
    YamlReader& reader_;
    YAML::Node node_;
    std::string what_;
    bool valid_ = false;
    bool finished_ = false;
    std::set<std::string> known_;
  };

  // Calls `each` for every element of a sequence; reports a non-sequence.
  void forEach(const YAML::Node& sequence, const std::string& what,
               const std::function<void(const YAML::Node&)>& each);

 private:
  std::string file_;
  std::vector<ConfigError>& errors_;
};

}  // namespace apphealth
