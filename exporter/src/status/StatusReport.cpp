#include "status/StatusReport.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <regex>
#include <sstream>

#include "util/Duration.h"
#include "util/JsonEscape.h"

namespace apphealth {

namespace {

std::string htmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string jsonString(std::string_view text) {
  std::string out = "\"";
  appendJsonEscaped(out, text);
  out += '"';
  return out;
}

std::string jsonNumber(double value) {
  if (!std::isfinite(value)) return "null";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

// "850 ms", "12.3 s", "4 min 10 s", "26 h 5 min", "3 d 2 h".
std::string humanSeconds(double s) {
  char buffer[48];
  if (!std::isfinite(s)) return "—";
  if (s < 0) s = 0;
  if (s < 1) std::snprintf(buffer, sizeof buffer, "%.0f ms", s * 1000);
  else if (s < 60) std::snprintf(buffer, sizeof buffer, "%.1f s", s);
  else if (s < 3600) std::snprintf(buffer, sizeof buffer, "%d min %d s", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  else if (s < 86400) std::snprintf(buffer, sizeof buffer, "%d h %d min", static_cast<int>(s) / 3600, static_cast<int>(s) % 3600 / 60);
  else std::snprintf(buffer, sizeof buffer, "%d d %d h", static_cast<int>(s / 86400), static_cast<int>(std::fmod(s, 86400)) / 3600);
  return buffer;
}

std::string humanValue(double value, const std::string& unit) {
  if (!std::isfinite(value)) return "no value";
  char buffer[48];
  if (unit == "s") return humanSeconds(value);
  if (unit == "ratio") {
    std::snprintf(buffer, sizeof buffer, "%.2f %%", value * 100);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.0f%s%s", value, unit.empty() ? "" : " ", unit.c_str());
  }
  return buffer;
}

std::string checkLine(const StatusCheck& c) {
  std::string line = c.name + ": " + humanValue(c.value, c.unit);
  if (!std::isfinite(c.value)) {
    if (std::isfinite(c.threshold)) line += " (threshold " + humanValue(c.threshold, c.unit) + ")";
    if (c.failing) line += ", failed";
  } else if (std::isfinite(c.threshold)) {
    line += (c.failing ? " over " : " within ") + humanValue(c.threshold, c.unit);
  } else if (c.failing) {
    line += ", failed";
  }
  return line;
}

// Appends the UTF-8 sequence at text[i] (advancing i) or U+FFFD for an invalid byte.
void appendUtf8Char(std::string& out, const std::string& text, std::size_t& i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  std::size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  bool valid = length != 0 && i + length <= text.size();
  for (std::size_t k = 1; valid && k < length; ++k) valid = (byte(i + k) & 0xC0) == 0x80;
  if (valid && length == 2) valid = c >= 0xC2;                                   // overlong
  if (valid && length == 3) {
    const unsigned char c1 = byte(i + 1);
    valid = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);             // overlong, surrogates
  }
  if (valid && length == 4) {
    const unsigned char c1 = byte(i + 1);
    valid = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90) && c <= 0xF4;  // overlong, > U+10FFFF
  }
  if (!valid) {
    out += "\xEF\xBF\xBD";
    ++i;
    return;
  }
  if (length == 1 && (c < 0x20 || c == 0x7F)) out += ' ';
  else out.append(text, i, length);
  i += length;
}

}  // namespace

const char* toString(CollectorState state) {
  switch (state) {
    case CollectorState::Pending: return "pending";
    case CollectorState::Up: return "up";
    case CollectorState::Warning: return "warning";
    case CollectorState::Failing: return "failing";
    case CollectorState::Down: return "down";
  }
  return "unknown";
}

const char* toString(OverallStatus status) {
  switch (status) {
    case OverallStatus::Healthy: return "healthy";
    case OverallStatus::Degraded: return "degraded";
    case OverallStatus::Unhealthy: return "unhealthy";
  }
  return "unknown";
}

CollectorState collectorState(const CollectorHealth& h) {
  if (!h.sampled) return CollectorState::Pending;
  if (!h.up) return CollectorState::Down;
  bool warning = !h.problem.empty();
  for (const auto& c : h.checks) {
    if (c.failing && c.critical) return CollectorState::Failing;
    warning = warning || c.failing;
  }
  return warning ? CollectorState::Warning : CollectorState::Up;
}

std::string sanitizeText(const std::string& text, std::size_t maxBytes) {
  // libpq keywords (password=..., quoted or not) and URL user information (scheme://user:pass@).
  static const std::regex keyword(R"((password|passwd|pwd)(\s*=\s*)('[^']*'|"[^"]*"|[^\s,;&]+))", std::regex::icase);
  static const std::regex userinfo(R"(([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^@\s/]*@)");
  std::string masked = std::regex_replace(text, keyword, "$1$2***");
  masked = std::regex_replace(masked, userinfo, "$1***@");
  std::string out;
  out.reserve(std::min(masked.size(), maxBytes));
  for (std::size_t i = 0; i < masked.size();) {
    std::string next;
    appendUtf8Char(next, masked, i);
    if (out.size() + next.size() > maxBytes) {
      out += "…";
      break;
    }
    out += next;
  }
  return out;
}

StatusReport evaluate(const StatusInputs& in) {
  StatusReport report;
  bool degraded = !in.lastReloadOk;
  bool unhealthy = false;
  if (!in.lastReloadOk) report.reasons.push_back("the last configuration reload failed; the previous configuration is running");
  for (const auto& h : in.collectors) {
    const std::string who = h.collector + " " + h.target;
    switch (collectorState(h)) {
      case CollectorState::Down:
        unhealthy = true;
        report.reasons.push_back(who + " is down: " + sanitizeText(h.problem.empty() ? "sample failed" : h.problem));
        break;
      case CollectorState::Failing:
      case CollectorState::Warning:
        for (const auto& c : h.checks) {
          if (!c.failing) continue;
          (c.critical ? unhealthy : degraded) = true;
          report.reasons.push_back(who + ": " + sanitizeText(checkLine(c)));
        }
        if (!h.problem.empty()) {
          degraded = true;
          report.reasons.push_back(who + ": " + sanitizeText(h.problem));
        }
        break;
      case CollectorState::Pending:
      case CollectorState::Up:
        break;
    }
  }
  report.status = unhealthy ? OverallStatus::Unhealthy : degraded ? OverallStatus::Degraded : OverallStatus::Healthy;
  return report;
}

std::string renderStatusJson(const StatusInputs& in) {
  const auto report = evaluate(in);
  std::string j = "{\"status\":" + jsonString(toString(report.status));
  j += ",\"version\":" + jsonString(APPHEALTH_VERSION);
  j += ",\"timestamp_seconds\":" + jsonNumber(in.now);
  j += ",\"config_reload_successful\":" + std::string(in.lastReloadOk ? "true" : "false");
  j += ",\"reasons\":[";
  for (std::size_t i = 0; i < report.reasons.size(); ++i) j += (i ? "," : "") + jsonString(report.reasons[i]);
  j += "],\"collectors\":[";
  for (std::size_t i = 0; i < in.collectors.size(); ++i) {
    const auto& h = in.collectors[i];
    const auto state = collectorState(h);
    j += i ? ",{" : "{";
    j += "\"collector\":" + jsonString(h.collector) + ",\"target\":" + jsonString(h.target);
    j += ",\"state\":" + jsonString(toString(state));
    j += ",\"up\":" + std::string(h.sampled && h.up ? "true" : "false");
    j += ",\"interval_seconds\":" + jsonNumber(toSeconds(h.interval));
    j += ",\"last_sample_timestamp_seconds\":" + jsonNumber(h.sampled ? h.lastSampleTime : NAN);
    j += ",\"last_success_timestamp_seconds\":" + jsonNumber(h.lastSuccessTime > 0 ? h.lastSuccessTime : NAN);
    j += ",\"seconds_since_last_success\":" + jsonNumber(h.lastSuccessTime > 0 ? in.now - h.lastSuccessTime : NAN);
    j += ",\"last_duration_seconds\":" + jsonNumber(h.sampled ? h.lastDurationSeconds : NAN);
    j += ",\"consecutive_failures\":" + std::to_string(h.consecutiveFailures);
    j += ",\"failures_total\":" + jsonNumber(h.failuresTotal);
    j += ",\"problem\":" + (h.problem.empty() ? std::string("null") : jsonString(sanitizeText(h.problem)));
    j += ",\"checks\":[";
    for (std::size_t k = 0; k < h.checks.size(); ++k) {
      const auto& c = h.checks[k];
      j += k ? ",{" : "{";
      j += "\"name\":" + jsonString(sanitizeText(c.name)) + ",\"value\":" + jsonNumber(c.value);
      j += ",\"threshold\":" + jsonNumber(c.threshold) + ",\"unit\":" + jsonString(c.unit);
      j += ",\"failing\":" + std::string(c.failing ? "true" : "false");
      j += ",\"critical\":" + std::string(c.critical ? "true" : "false") + "}";
    }
    j += "]}";
  }
  j += "]}\n";
  return j;
}

std::string renderStatusPage(const StatusInputs& in, int refreshSeconds) {
  const auto report = evaluate(in);
  const char* overall = toString(report.status);
  std::ostringstream h;
  h << "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<meta http-equiv=\"refresh\" content=\"" << refreshSeconds << "\">"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    << "<title>apphealth: " << overall << "</title><style>"
    << "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}"
    << "table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.4em .6em;"
    << "text-align:left;vertical-align:top}th{background:#f4f4f4}"
    << ".badge{display:inline-block;padding:.15em .6em;border-radius:.3em;font-weight:600;color:#fff}"
    << ".healthy,.up{background:#2e7d32}.degraded,.warning{background:#b26a00}"
    << ".unhealthy,.down,.failing{background:#c62828}.pending{background:#757575}"
    << ".over{color:#c62828;font-weight:600}.problem{color:#8a1c1c;white-space:pre-wrap;word-break:break-word}"
    << "ul.checks{margin:0;padding-left:1.1em}small{color:#666}</style></head><body>"
    << "<h1>apphealth <span id=\"overall\" class=\"badge " << overall << "\">" << overall << "</span></h1>"
    << "<p><small>apphealth_exporter " << APPHEALTH_VERSION << " · configuration "
    << htmlEscape(sanitizeText(in.configFile)) << " · refreshes every " << refreshSeconds << " s · "
    << "<a href=\"/metrics\">/metrics</a> · <a href=\"/api/v1/status\">/api/v1/status</a> · "
    << "<a href=\"/-/healthy\">/-/healthy</a> · <a href=\"/-/ready\">/-/ready</a></small></p>";
  if (!report.reasons.empty()) {
    h << "<h2>Why</h2><ul id=\"reasons\">";
    for (const auto& r : report.reasons) h << "<li>" << htmlEscape(r) << "</li>";
    h << "</ul>";
  }
  h << "<h2>Collectors</h2>";
  if (in.collectors.empty()) {
    h << "<p id=\"no-collectors\">No collector is configured: edit " << htmlEscape(sanitizeText(in.configFile))
      << " and reload (SIGHUP).</p>";
  } else {
    h << "<table id=\"collectors\"><thead><tr><th>collector</th><th>target</th><th>state</th>"
      << "<th>last success</th><th>last sample took</th><th>every</th><th>thresholds</th><th>last problem</th>"
      << "</tr></thead><tbody>";
    for (const auto& c : in.collectors) {
      const char* state = toString(collectorState(c));
      h << "<tr class=\"collector\" data-collector=\"" << htmlEscape(c.collector) << "\" data-target=\""
        << htmlEscape(c.target) << "\" data-state=\"" << state << "\">"
        << "<td>" << htmlEscape(c.collector) << "</td><td>" << htmlEscape(c.target) << "</td>"
        << "<td><span class=\"badge " << state << "\">" << state << "</span>";
      if (c.consecutiveFailures > 1) h << " <small>" << c.consecutiveFailures << " failures in a row</small>";
      h << "</td><td class=\"last-success\">"
        << (c.lastSuccessTime > 0 ? humanSeconds(in.now - c.lastSuccessTime) + " ago" : std::string("never"))
        << "</td><td>" << (c.sampled ? humanSeconds(c.lastDurationSeconds) : std::string("—")) << "</td><td>"
        << formatDuration(c.interval) << "</td><td><ul class=\"checks\">";
      for (const auto& check : c.checks) {
        h << "<li" << (check.failing ? " class=\"over\"" : "") << ">" << htmlEscape(sanitizeText(checkLine(check)))
          << "</li>";
      }
      h << "</ul></td><td class=\"problem\">" << htmlEscape(sanitizeText(c.problem)) << "</td></tr>";
    }
    h << "</tbody></table>";
  }
  if (!in.ingest.empty()) h << "<h2>Beacon ingest</h2><p>" << htmlEscape(in.ingest) << "</p>";
  h << "</body></html>\n";
  return h.str();
}

}  // namespace apphealth
