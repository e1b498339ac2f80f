#pragma once
// YAML file -> validated Config, or every problem found, each with file:line:col.

#include <optional>
#include <string>
#include <vector>

#include "config/Config.h"
#include "config/YamlReader.h"

namespace apphealth {

struct ConfigLoadResult {
  std::optional<Config> config;  // set only when errors is empty
  std::vector<ConfigError> errors;
};

ConfigLoadResult loadConfigFile(const std::string& path);
// `file` is only used in messages; tests use this to load inline YAML.
ConfigLoadResult loadConfigText(const std::string& yaml, const std::string& file);

}  // namespace apphealth
