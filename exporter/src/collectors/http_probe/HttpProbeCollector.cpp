#include "collectors/http_probe/HttpProbeCollector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <ctime>
#include <strings.h>

#include "clients/CurlEasy.h"

namespace apphealth {

namespace {

// Covers loopback health checks (ms) up to slow pages; includes the 2 s latency threshold.
const prometheus::Histogram::BucketBoundaries kProbeBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                               1,     2,    2.5,   5,    10,  30};

constexpr std::string_view kExpireDateKey = "Expire date:";

// Reads the body into `data` up to kProbeMaxBodyBytes, then ends the transfer (the write
// error this causes is not a probe failure: `truncated` says it was ours).
struct BodySink {
  std::string data;
  bool keep = false;  // only body_regex needs the bytes
  std::size_t received = 0;
  bool truncated = false;
};

size_t writeBody(char* ptr, size_t size, size_t count, void* user) {
  auto* sink = static_cast<BodySink*>(user);
  const size_t n = size * count;
  const size_t room = kProbeMaxBodyBytes - sink->received;
  const size_t take = std::min(n, room);
  if (sink->keep) sink->data.append(ptr, take);
  sink->received += take;
  if (take < n || sink->received >= kProbeMaxBodyBytes) {
    sink->truncated = true;
    return 0;  // CURLE_WRITE_ERROR: stop reading
  }
  return n;
}

std::string describeValidCodes(const HttpProbeTarget& t) {
  if (t.valid_status_codes.empty()) return "2xx";
  std::string s = "[";
  for (std::size_t i = 0; i < t.valid_status_codes.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(t.valid_status_codes[i]);
  }
  return s + "]";
}

bool readInt(std::string_view& text, int& out) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec != std::errc() || end == text.data()) return false;
  text.remove_prefix(static_cast<std::size_t>(end - text.data()));
  return true;
}

bool expect(std::string_view& text, char c) {
  if (text.empty() || text.front() != c) return false;
  text.remove_prefix(1);
  return true;
}

}  // namespace

std::optional<double> parseCertExpireDate(std::string_view text) {
  static constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  if (text.size() < 3) return std::nullopt;
  const auto month = std::find(kMonths.begin(), kMonths.end(), text.substr(0, 3));
  if (month == kMonths.end()) return std::nullopt;
  text.remove_prefix(3);
  int day = 0, hour = 0, minute = 0, second = 0, year = 0;
  if (text.empty() || text.front() != ' ' || !readInt(text, day)) return std::nullopt;
  if (text.empty() || text.front() != ' ' || !readInt(text, hour)) return std::nullopt;
  if (!expect(text, ':') || !readInt(text, minute) || !expect(text, ':') || !readInt(text, second)) return std::nullopt;
  double fraction = 0;
  if (!text.empty() && text.front() == '.') {  // GeneralizedTime with fractional seconds
    text.remove_prefix(1);
    double scale = 0.1;
    while (!text.empty() && std::isdigit(static_cast<unsigned char>(text.front()))) {
      fraction += (text.front() - '0') * scale;
      scale /= 10;
      text.remove_prefix(1);
    }
  }
  if (text.empty() || text.front() != ' ' || !readInt(text, year)) return std::nullopt;
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  if (!text.empty() && text != "GMT") return std::nullopt;
  if (day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60 || year < 1900) return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = static_cast<int>(month - kMonths.begin());
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return static_cast<double>(timegm(&tm)) + fraction;
}

HttpProbeCollector::HttpProbeCollector(HttpProbeTarget target)
    : target_(std::move(target)),
      duration_(kProbeBuckets),
      helpSuffix_(" Probed every " + formatDuration(target_.interval) + ".") {
  // The config loader already rejected invalid patterns.
  if (!target_.body_regex.empty()) bodyRegex_.emplace(target_.body_regex, std::regex::ECMAScript);
}

HttpProbeResult HttpProbeCollector::probe(const std::stop_token& stop) {
  HttpProbeResult result;
  CurlEasy curl;
  const long timeoutMs = static_cast<long>(std::max<long long>(1, target_.timeout.count()));

  curl.set(CURLOPT_URL, target_.url.c_str());
  curl.set(CURLOPT_PROTOCOLS_STR, "http,https");
  curl.set(CURLOPT_TIMEOUT_MS, timeoutMs);
  curl.set(CURLOPT_CONNECTTIMEOUT_MS, timeoutMs);
  // Blackbox semantics: every probe pays for DNS, connect and TLS, and reads a fresh chain.
  curl.set(CURLOPT_FRESH_CONNECT, 1L);
  curl.set(CURLOPT_FORBID_REUSE, 1L);
  curl.set(CURLOPT_PROXY, "");  // probes go direct, whatever http_proxy says
  curl.set(CURLOPT_USERAGENT, "apphealth_exporter/" APPHEALTH_VERSION);

  if (target_.method == "HEAD") {
    curl.set(CURLOPT_NOBODY, 1L);
  } else if (target_.method != "GET" || !target_.body.empty()) {
    curl.set(CURLOPT_CUSTOMREQUEST, target_.method.c_str());
  }
  if (!target_.body.empty()) {
    curl.set(CURLOPT_POSTFIELDS, target_.body.c_str());
    curl.set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(target_.body.size()));
  }

  std::vector<std::string> headers;
  bool expectSet = false;
  for (const auto& [name, value] : target_.headers) {
    headers.push_back(value.empty() ? name + ";" : name + ": " + value);
    expectSet = expectSet || strcasecmp(name.c_str(), "Expect") == 0;
  }
  if (!expectSet) headers.push_back("Expect:");  // no 100-continue round trip for larger bodies
  curl.setHeaders(headers);

  if (target_.follow_redirects) {
    curl.set(CURLOPT_FOLLOWLOCATION, 1L);
    curl.set(CURLOPT_MAXREDIRS, static_cast<long>(kProbeMaxRedirects));
    curl.set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  } else {
    curl.set(CURLOPT_FOLLOWLOCATION, 0L);
  }

  curl.set(CURLOPT_CERTINFO, 1L);
  if (target_.insecure_skip_verify) {
    curl.set(CURLOPT_SSL_VERIFYPEER, 0L);
    curl.set(CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!target_.ca_file.empty()) {
    curl.set(CURLOPT_CAINFO, target_.ca_file.c_str());
  }

  if (!target_.username.empty()) {
    curl.set(CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    curl.set(CURLOPT_USERNAME, target_.username.c_str());
    // Read per probe, so a rotated file is picked up; libcurl keeps its own copy.
    const std::string password = readSecret(target_.password).value_or("");
    curl.set(CURLOPT_PASSWORD, password.c_str());
  }

  BodySink body;
  body.keep = bodyRegex_.has_value();
  curl.set(CURLOPT_WRITEFUNCTION, writeBody);
  curl.set(CURLOPT_WRITEDATA, &body);

  const auto started = std::chrono::steady_clock::now();
  CURLcode code = curl.perform(stop);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (code == CURLE_WRITE_ERROR && body.truncated) code = CURLE_OK;  // we stopped reading at the cap

  result.status = curl.responseCode();
  for (const auto& cert : curl.certInfo()) {
    for (const auto& line : cert) {
      if (std::string_view(line).substr(0, kExpireDateKey.size()) != kExpireDateKey) continue;
      const auto expiry = parseCertExpireDate(std::string_view(line).substr(kExpireDateKey.size()));
      if (!expiry) {
        spdlog::debug("http probe {}: cannot parse certificate '{}'", target_.name, line);
      } else if (!result.earliestCertExpiry || *expiry < *result.earliestCertExpiry) {
        result.earliestCertExpiry = expiry;
      }
    }
  }

  if (code != CURLE_OK) {
    result.failureKind = "curl:" + std::to_string(static_cast<int>(code));
    result.failure = "request failed: " + curl.errorMessage(code);
    if (code == CURLE_OPERATION_TIMEDOUT) {
      result.failure += " (timeout " + formatDuration(target_.timeout) + ")";
    }
    // A response whose status is known but whose body did not arrive in time has no status
    // we can judge by: keep it for the metric, but the probe failed.
    return result;
  }
  if (!target_.statusIsValid(result.status)) {
    result.failureKind = "status:" + std::to_string(result.status);
    result.failure = "status " + std::to_string(result.status) + " is not in valid_status_codes " +
                     describeValidCodes(target_);
    if (result.status >= 300 && result.status < 400 && !target_.follow_redirects) {
      result.failure += " (redirects are not followed unless follow_redirects: true)";
    }
    return result;
  }
  if (bodyRegex_ && !std::regex_search(body.data, *bodyRegex_)) {
    result.failureKind = "body_regex";
    result.failure = "body (" + std::to_string(body.data.size()) + " bytes" + (body.truncated ? ", truncated" : "") +
                     ") does not match body_regex '" + target_.body_regex + "'";
    return result;
  }
  result.success = true;
  return result;
}

void HttpProbeCollector::log(const HttpProbeResult& r) {
  if (r.success) {
    if (!lastFailureKind_.empty()) {
      spdlog::info("http probe {}: succeeded again: status {} in {:.3f}s", target_.name, r.status, r.seconds);
    } else {
      spdlog::debug("http probe {}: success: status {} in {:.3f}s", target_.name, r.status, r.seconds);
    }
    lastFailureKind_.clear();
    return;
  }
  // Warn when a probe starts failing or fails for a new reason; repeats go to debug.
  if (r.failureKind != lastFailureKind_) {
    spdlog::warn("http probe {}: failed after {:.3f}s: {}", target_.name, r.seconds, r.failure);
  } else {
    spdlog::debug("http probe {}: still failing after {:.3f}s: {}", target_.name, r.seconds, r.failure);
  }
  lastFailureKind_ = r.failureKind;
}

SampleResult HttpProbeCollector::sample(SnapshotBuilder& out, std::stop_token stop) {
  HttpProbeResult result;
  bool ran = false;
  std::string cannotRun;
  try {
    result = probe(stop);
    ran = true;
  } catch (const std::runtime_error& e) {  // CurlError, an unreadable password file
    cannotRun = std::string("cannot run the probe: ") + e.what();
  }
  if (stop.stop_requested()) return SampleResult::failure("stopped");  // never published

  const Labels labels = {{"probe", target_.name}};
  if (ran) {
    log(result);
    duration_.Observe(result.seconds);
  }
  out.gauge("apphealth_probe_success", "Whether the last HTTP probe succeeded (1) or not (0)." + helpSuffix_, labels,
            result.success ? 1 : 0);
  out.gauge("apphealth_probe_http_status_code",
            "HTTP status of the last probe's final response (0: no response)." + helpSuffix_, labels, result.status);
  out.histogram("apphealth_probe_duration_seconds",
                "Duration of HTTP probes (DNS, connect, TLS, request, body), failed ones included." + helpSuffix_,
                labels, duration_);
  if (result.earliestCertExpiry) {
    out.gauge("apphealth_probe_ssl_earliest_cert_expiry_timestamp_seconds",
              "Unix time at which the earliest-expiring certificate of the peer's chain expires "
              "(https only; absent when no certificate was received)." +
                  helpSuffix_,
              labels, *result.earliestCertExpiry);
  }
  if (!ran) return SampleResult::failure(cannotRun);
  // The collector works; the site's failure is the probe's verdict, shown on the status page.
  auto sampled = SampleResult::success(result.success ? std::string() : "probe failed: " + result.failure);
  // The site's answer: a failed probe makes the overall status unhealthy, like a database that
  // does not answer. The value is the probe's duration.
  sampled.checks.push_back({"probe answered as expected", result.seconds, kNoValue, "s",
                            !result.success, true});
  return sampled;
}

}  // namespace apphealth
