#pragma once
// Small accessors for hiredis replies, so readers say what they expect in one call.

#include <hiredis/hiredis.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace apphealth::reply {

inline bool isError(const redisReply& r) { return r.type == REDIS_REPLY_ERROR; }
inline bool isNil(const redisReply& r) { return r.type == REDIS_REPLY_NIL; }
inline std::string errorText(const redisReply& r) {
  return r.type == REDIS_REPLY_ERROR ? std::string(r.str, r.len) : std::string();
}
inline std::optional<long long> integer(const redisReply& r) {
  if (r.type == REDIS_REPLY_INTEGER) return r.integer;
  return std::nullopt;
}
// A bulk or status string; nullopt for nil, errors, integers and arrays.
inline std::optional<std::string_view> text(const redisReply& r) {
  if (r.type == REDIS_REPLY_STRING || r.type == REDIS_REPLY_STATUS) return std::string_view(r.str, r.len);
  return std::nullopt;
}
// A string holding a decimal integer (GET of a counter, HGET of a count field).
inline std::optional<double> number(const redisReply& r) {
  if (r.type == REDIS_REPLY_INTEGER) return static_cast<double>(r.integer);
  auto t = text(r);
  if (!t || t->empty() || t->size() > 30) return std::nullopt;
  const std::string copy(*t);
  char* end = nullptr;
  const double v = std::strtod(copy.c_str(), &end);
  if (*end != '\0' || !(v >= 0) || v > 1e18) return std::nullopt;
  return v;
}
inline std::string scoreArg(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.6f", value);
  return buffer;
}

}  // namespace apphealth::reply
