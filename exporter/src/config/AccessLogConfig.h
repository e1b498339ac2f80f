#pragma once
// Configuration of one tailed web-server access log (issue 4). Filled in by its section parser.

#include <string>

#include "util/Duration.h"

namespace apphealth {

struct AccessLogTarget {
  std::string name;
  std::string path;
  Duration interval = std::chrono::seconds(1);
};

}  // namespace apphealth
