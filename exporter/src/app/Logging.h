#pragma once

#include <string>

namespace apphealth {

// Sets up spdlog on stderr. format: "text" or "json" (one JSON object per line, for log
// shippers). Returns false on an unknown level or format.
bool setupLogging(const std::string& level, const std::string& format);

}  // namespace apphealth
