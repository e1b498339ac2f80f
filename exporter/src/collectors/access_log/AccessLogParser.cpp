#include "collectors/access_log/AccessLogParser.h"

#include <charconv>
#include <cmath>

namespace apphealth {

namespace {

// "a.b" -> "/a/b", escaping '~' and '/' as JSON pointers require.
std::string pointerFor(const std::string& dotted) {
  if (dotted.empty()) return {};
  std::string out = "/";
  for (char c : dotted) {
    if (c == '.') {
      out += '/';
    } else if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

// Moves `pos` past a double-quoted string starting at `pos` (which must be '"'); `value` gets
// the text between the quotes, escapes left as logged (Apache writes \" and \\, nginx \x22).
bool quoted(std::string_view line, std::size_t& pos, std::string_view& value) {
  if (pos >= line.size() || line[pos] != '"') return false;
  const std::size_t start = ++pos;
  while (pos < line.size()) {
    const char c = line[pos];
    if (c == '\\') {
      pos += 2;
    } else if (c == '"') {
      value = line.substr(start, pos - start);
      ++pos;
      return true;
    } else {
      ++pos;
    }
  }
  return false;
}

bool expect(std::string_view line, std::size_t& pos, char c) {
  if (pos >= line.size() || line[pos] != c) return false;
  ++pos;
  return true;
}

std::string_view token(std::string_view line, std::size_t& pos) {
  const std::size_t start = pos;
  while (pos < line.size() && line[pos] != ' ') ++pos;
  return line.substr(start, pos - start);
}

bool parseStatus(std::string_view text, int& status) {
  if (text.size() != 3) return false;
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  if (value < 100 || value > 599) return false;
  status = value;
  return true;
}

std::optional<double> parseSeconds(std::string_view text, double scale) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value) || value < 0) {
    return std::nullopt;
  }
  return value * scale;
}

// "GET /path HTTP/1.1" -> method, target. A request line without spaces ("-", or the bytes of
// a TLS handshake sent to a plain-HTTP port) has a method only.
void splitRequest(std::string_view request, AccessLogRecord& out) {
  const auto space = request.find(' ');
  out.method = request.substr(0, space);
  if (space == std::string_view::npos) return;
  const auto rest = request.substr(space + 1);
  out.target = rest.substr(0, rest.find(' '));
}

}  // namespace

HttpMethod classifyMethod(std::string_view m) {
  switch (m.size()) {
    case 3:
      if (m == "GET") return HttpMethod::Get;
      if (m == "PUT") return HttpMethod::Put;
      break;
    case 4:
      if (m == "POST") return HttpMethod::Post;
      if (m == "HEAD") return HttpMethod::Head;
      break;
    case 5:
      if (m == "PATCH") return HttpMethod::Patch;
      break;
    case 6:
      if (m == "DELETE") return HttpMethod::Delete;
      break;
    case 7:
      if (m == "OPTIONS") return HttpMethod::Options;
      break;
    default:
      break;
  }
  return HttpMethod::Other;
}

const char* methodLabel(HttpMethod method) {
  static const char* const labels[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other"};
  return labels[static_cast<std::size_t>(method)];
}

const char* codeClassLabel(std::size_t index) {
  static const char* const labels[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
  return labels[index < kCodeClassCount ? index : kCodeClassCount - 1];
}

AccessLogParser::AccessLogParser(const AccessLogTarget& target)
    : format_(target.format), timeScale_(target.format == AccessLogFormat::Json ? target.request_time_scale : 1.0) {
  if (format_ == AccessLogFormat::Json) {
    method_ = pointerFor(target.json_fields.method);
    status_ = pointerFor(target.json_fields.status);
    path_ = pointerFor(target.json_fields.path);
    request_ = pointerFor(target.json_fields.request);
    requestTime_ = pointerFor(target.json_fields.request_time);
  }
}

bool AccessLogParser::parse(std::string_view line, AccessLogRecord& out) {
  out = AccessLogRecord{};
  return format_ == AccessLogFormat::Json ? parseJson(line, out) : parseCombined(line, out);
}

// $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
// "$http_referer" "$http_user_agent"[ $request_time]
bool AccessLogParser::parseCombined(std::string_view line, AccessLogRecord& out) const {
  // The client address and user come first; a user name may contain spaces, so the first
  // '[' is the reliable anchor (an address or "-" never contains one).
  std::size_t pos = line.find(" [");
  if (pos == std::string_view::npos || pos == 0) return false;
  pos = line.find("] ", pos + 2);
  if (pos == std::string_view::npos) return false;
  pos += 2;
  std::string_view request;
  if (!quoted(line, pos, request) || !expect(line, pos, ' ')) return false;
  if (!parseStatus(token(line, pos), out.status) || !expect(line, pos, ' ')) return false;
  const auto bytes = token(line, pos);
  if (bytes.empty() || (bytes != "-" && bytes.find_first_not_of("0123456789") != std::string_view::npos)) return false;
  std::string_view referer, agent;
  if (!expect(line, pos, ' ') || !quoted(line, pos, referer)) return false;
  if (!expect(line, pos, ' ') || !quoted(line, pos, agent)) return false;
  splitRequest(request, out);
  if (format_ == AccessLogFormat::CombinedRequestTime) {
    // A line without the time (written before the format changed) still counts as a request;
    // only its duration is unknown. Something else in the time's place makes it unparsable.
    while (pos < line.size() && line[pos] == ' ') ++pos;
    const auto time = token(line, pos);
    if (!time.empty() && time != "-") {
      out.seconds = parseSeconds(time, 1.0);
      if (!out.seconds) return false;
    }
  }
  return true;
}

bool AccessLogParser::parseJson(std::string_view line, AccessLogRecord& out) {
  simdjson::dom::element doc;
  if (json_.parse(line.data(), line.size(), true).get(doc) != simdjson::SUCCESS) return false;
  if (!doc.is_object()) return false;

  auto lookup = [&](const std::string& pointer, simdjson::dom::element& value) {
    return !pointer.empty() && doc.at_pointer(pointer).get(value) == simdjson::SUCCESS && !value.is_null();
  };
  simdjson::dom::element value;
  if (!lookup(status_, value)) return false;
  if (value.is_int64()) {
    const int64_t status = value.get_int64().value_unsafe();
    if (status < 100 || status > 599) return false;
    out.status = static_cast<int>(status);
  } else if (value.is_string()) {
    if (!parseStatus(value.get_string().value_unsafe(), out.status)) return false;
  } else {
    return false;
  }

  if (lookup(request_, value) && value.is_string()) splitRequest(value.get_string().value_unsafe(), out);
  if (lookup(method_, value)) {
    if (!value.is_string()) return false;
    out.method = value.get_string().value_unsafe();
  }
  if (lookup(path_, value)) {
    if (!value.is_string()) return false;
    out.target = value.get_string().value_unsafe();
  }
  if (lookup(requestTime_, value)) {
    if (value.is_number()) {
      const double seconds = value.get_double().value_unsafe() * timeScale_;
      if (!std::isfinite(seconds) || seconds < 0) return false;
      out.seconds = seconds;
    } else if (value.is_string()) {
      const auto text = value.get_string().value_unsafe();
      if (!text.empty() && text != "-") {
        out.seconds = parseSeconds(text, timeScale_);
        if (!out.seconds) return false;
      }
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace apphealth
