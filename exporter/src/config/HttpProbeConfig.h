#pragma once
// Configuration of one blackbox-style HTTP probe (issue 4). Filled in by its section parser.

#include <string>

#include "util/Duration.h"

namespace apphealth {

struct HttpProbeTarget {
  std::string name;
  std::string url;
  Duration interval = std::chrono::seconds(15);
  Duration timeout = std::chrono::seconds(5);
};

}  // namespace apphealth
