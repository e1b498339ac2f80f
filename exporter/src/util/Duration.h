#pragma once
// Prometheus-style durations ("500ms", "15s", "2m", "26h", "1d", "1h30m").

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace apphealth {

using Duration = std::chrono::milliseconds;

// Returns nullopt when the text is not a valid, positive-or-zero duration.
std::optional<Duration> parseDuration(std::string_view text);

// "15s", "1m30s", "250ms": the shortest exact rendering, for logs and HELP texts.
std::string formatDuration(Duration d);

inline double toSeconds(Duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace apphealth
