#pragma once
// Parses one access-log line (without its newline) into the few fields the exporter counts.
// No allocation per line for the combined formats; the JSON format uses simdjson.

#include <simdjson.h>

#include <optional>
#include <string>
#include <string_view>

#include "config/AccessLogConfig.h"

namespace apphealth {

struct AccessLogRecord {
  std::string_view method;  // as logged ("GET"); empty when the request line had none
  std::string_view target;  // request target as logged ("/a?b=1"); empty when unknown
  int status = 0;           // 100..599
  std::optional<double> seconds;  // request time, when the format carries one and it was logged
};

// The bounded label values.
enum class HttpMethod { Get, Head, Post, Put, Delete, Patch, Options, Other };
inline constexpr std::size_t kHttpMethodCount = 8;
inline constexpr std::size_t kCodeClassCount = 5;  // 1xx..5xx
HttpMethod classifyMethod(std::string_view method);
const char* methodLabel(HttpMethod method);
const char* codeClassLabel(std::size_t index);  // 0 -> "1xx" ... 4 -> "5xx"

class AccessLogParser {
 public:
  explicit AccessLogParser(const AccessLogTarget& target);
  AccessLogParser(const AccessLogParser&) = delete;
  AccessLogParser& operator=(const AccessLogParser&) = delete;

  // True when `line` is a well-formed record; `out`'s views point into `line` (or into the
  // parser, for JSON) and stay valid until the next call.
  bool parse(std::string_view line, AccessLogRecord& out);

 private:
  bool parseCombined(std::string_view line, AccessLogRecord& out) const;
  bool parseJson(std::string_view line, AccessLogRecord& out);

  AccessLogFormat format_;
  double timeScale_;
  // JSON pointers ("/request/method") for the configured field names; empty: not configured.
  std::string method_, status_, path_, request_, requestTime_;
  simdjson::dom::parser json_;
};

}  // namespace apphealth
