#pragma once
// Loads inline YAML as file "c.yml" and returns its problems as "c.yml:line:col: message".

#include <string>
#include <vector>

#include "config/ConfigLoader.h"

namespace apphealth::test {

inline std::vector<std::string> errorsOf(const std::string& yaml) {
  std::vector<std::string> out;
  for (const auto& e : loadConfigText(yaml, "c.yml").errors) out.push_back(e.format());
  return out;
}

}  // namespace apphealth::test
