#include "util/Duration.h"

#include <cctype>
#include <cstdint>
#include <limits>

namespace apphealth {

namespace {

struct Unit {
  std::string_view suffix;
  std::int64_t millis;
};

// Longest suffixes first so "ms" is not read as "m".
constexpr Unit kUnits[] = {
    {"ms", 1},           {"s", 1000},          {"m", 60'000},           {"h", 3'600'000},
    {"d", 86'400'000},   {"w", 604'800'000},   {"y", 31'536'000'000},
};

}  // namespace

std::optional<Duration> parseDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (text == "0") return Duration{0};
  std::int64_t total = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (!std::isdigit(static_cast<unsigned char>(text[pos]))) return std::nullopt;
    std::int64_t number = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      number = number * 10 + (text[pos] - '0');
      if (number > 1'000'000'000) return std::nullopt;  // keeps the arithmetic far from overflow
      ++pos;
    }
    const Unit* unit = nullptr;
    for (const auto& u : kUnits) {
      if (text.substr(pos, u.suffix.size()) == u.suffix) {
        unit = &u;
        break;
      }
    }
    if (unit == nullptr) return std::nullopt;
    pos += unit->suffix.size();
    if (number > std::numeric_limits<std::int64_t>::max() / unit->millis - total) return std::nullopt;
    total += number * unit->millis;
  }
  return Duration{total};
}

std::string formatDuration(Duration d) {
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  const std::pair<std::int64_t, const char*> parts[] = {
      {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
  for (const auto& [size, suffix] : parts) {
    if (ms >= size) {
      out += std::to_string(ms / size) + suffix;
      ms %= size;
    }
  }
  return out;
}

}  // namespace apphealth
