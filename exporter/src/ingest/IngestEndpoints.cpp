#include "ingest/IngestEndpoints.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "http/HttpServer.h"

namespace apphealth::ingest {

namespace {

bool startsWithIgnoreCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
  }
  return true;
}

std::string header(mg_connection* conn, const char* name) {
  const char* value = mg_get_header(conn, name);
  return value ? value : "";
}

}  // namespace

IngestEndpoints::IngestEndpoints(const IngestConfig& config)
    : config_(config),
      routes_(config.routes),
      metrics_(routes_, config.max_routes),
      clients_(config.trusted_proxies),
      limiter_(config.rate_per_second, config.burst) {
  if (!config.error_log_file.empty()) {
    errorLog_ = std::make_unique<ErrorReportLog>(config.error_log_file, config.error_log_max_bytes, config.error_log_keep);
  }
}

bool IngestEndpoints::originAllowed(const std::string& origin) const {
  if (origin.empty()) return true;  // same-origin beacons and server-side senders carry none
  return std::any_of(config_.allowed_origins.begin(), config_.allowed_origins.end(),
                     [&](const std::string& allowed) { return allowed == "*" || allowed == origin; });
}

void IngestEndpoints::respond(mg_connection* conn, Endpoint endpoint, int status, const std::string& reason,
                              const std::string& origin, bool closeConnection) {
  metrics_.countRequest(endpoint, status);
  HttpResponse response;
  response.status = status;
  if (!reason.empty()) response.body = reason + "\n";
  if (!origin.empty()) {  // only ever an origin admit() let through
    response.headers.emplace_back("Access-Control-Allow-Origin", origin);
    response.headers.emplace_back("Vary", "Origin");
  }
  if (closeConnection) {
    // The unread rest of the body must not be taken for the next request.
    mg_disable_connection_keep_alive(conn);
    response.headers.emplace_back("Connection", "close");
  }
  if (status == 405) response.headers.emplace_back("Allow", "POST, OPTIONS");
  if (status == 429) response.headers.emplace_back("Retry-After", "1");
  sendResponse(conn, response);
}

bool IngestEndpoints::admit(mg_connection* conn, const mg_request_info& request, Endpoint endpoint,
                            std::string& body, std::string& origin) {
  origin = header(conn, "Origin");
  if (!originAllowed(origin)) {
    respond(conn, endpoint, 403, "origin " + origin.substr(0, 200) + " is not allowed", "");
    return false;
  }
  const std::string_view method = request.request_method;
  if (method == "OPTIONS") {
    metrics_.countRequest(endpoint, 204);
    HttpResponse response;
    response.status = 204;
    if (!origin.empty()) {
      response.headers = {{"Access-Control-Allow-Origin", origin},
                          {"Vary", "Origin"},
                          {"Access-Control-Allow-Methods", "POST, OPTIONS"},
                          {"Access-Control-Allow-Headers", "Content-Type"},
                          {"Access-Control-Max-Age", "86400"}};
    }
    sendResponse(conn, response);
    return false;
  }
  if (method != "POST") {
    respond(conn, endpoint, 405, "method " + std::string(method) + " not allowed; use POST", origin, true);
    return false;
  }
  const std::string client = clients_.resolve(request.remote_addr, header(conn, "X-Forwarded-For"));
  if (!limiter_.allow(client)) {
    metrics_.countRejected(endpoint, "rate_limited");
    respond(conn, endpoint, 429, "rate limit exceeded for this client", origin, true);
    return false;
  }
  const std::string contentType = header(conn, "Content-Type");
  // sendBeacon sends a string body as text/plain (no CORS preflight then); fetch sends JSON.
  if (!contentType.empty() && !startsWithIgnoreCase(contentType, "application/json") &&
      !startsWithIgnoreCase(contentType, "text/plain")) {
    respond(conn, endpoint, 415, "content type must be application/json or text/plain", origin, true);
    return false;
  }
  if (request.content_length > static_cast<long long>(config_.max_body_bytes)) {
    respond(conn, endpoint, 413, "body of " + std::to_string(request.content_length) + " bytes exceeds the limit of " +
                                     std::to_string(config_.max_body_bytes),
            origin, true);
    return false;
  }
  // Chunked bodies (or a lying Content-Length) are read only up to the cap plus one byte.
  // The buffer starts at the declared size (beacons are a few hundred bytes) and grows only
  // for bodies of unknown length: zeroing a 64 KiB buffer per request cost real throughput.
  const std::size_t limit = config_.max_body_bytes + 1;
  const std::size_t declared = request.content_length >= 0 ? static_cast<std::size_t>(request.content_length) + 1 : 0;
  body.resize(std::min(limit, declared > 0 ? declared : std::size_t{4096}));
  std::size_t used = 0;
  while (true) {
    if (used == body.size()) {
      if (body.size() >= limit) break;
      body.resize(std::min(limit, body.size() * 2));
    }
    const int n = mg_read(conn, body.data() + used, body.size() - used);
    if (n <= 0) break;
    used += static_cast<std::size_t>(n);
  }
  if (used > config_.max_body_bytes) {
    respond(conn, endpoint, 413, "body exceeds the limit of " + std::to_string(config_.max_body_bytes) + " bytes", origin,
            true);
    return false;
  }
  body.resize(used);
  if (body.empty()) {
    respond(conn, endpoint, 400, "empty body", origin);
    return false;
  }
  return true;
}

bool IngestEndpoints::answerParseProblems(mg_connection* conn, Endpoint endpoint, const std::string& error,
                                          const std::vector<RejectReason>& rejected, const std::string& origin) {
  if (!error.empty()) {
    const bool tooLarge = error.rfind("batch of", 0) == 0;
    if (tooLarge) metrics_.countRejected(endpoint, rejectReasonLabel(RejectReason::BatchTooLarge));
    respond(conn, endpoint, tooLarge ? 413 : 400, error, origin);
    return false;
  }
  for (auto reason : rejected) metrics_.countRejected(endpoint, rejectReasonLabel(reason));
  return true;
}

void IngestEndpoints::handleVitals(mg_connection* conn, const mg_request_info& request) {
  std::string body, origin;
  if (!admit(conn, request, Endpoint::Vitals, body, origin)) return;
  auto parsed = parseVitals(body, config_.max_batch);
  if (!answerParseProblems(conn, Endpoint::Vitals, parsed.error, parsed.rejected, origin)) return;
  const std::string userAgent = header(conn, "User-Agent");
  for (const auto& observation : parsed.accepted) {
    // Retries of a beacon carry the same metric id: count each metric instance once.
    if (!observation.id.empty() &&
        !recentIds_.insert(vitalMetricName(observation.vital), observation.id)) {
      metrics_.countRejected(Endpoint::Vitals, "duplicate");
      continue;
    }
    const std::size_t route = observation.page.empty() ? routes_.otherIndex() : routes_.index(observation.page);
    const std::size_t device = metrics_.deviceIndex(classifyDevice(observation.device, userAgent));
    metrics_.observeVital(observation.vital, route, device, observation.value);
    // A page view: one per pageViewId from our snippet; without one, one per TTFB, which
    // the library reports exactly once per navigation.
    const bool newPageView = observation.pageViewId.empty()
                                 ? observation.vital == Vital::TTFB
                                 : recentIds_.insert("pv", observation.pageViewId);
    if (newPageView) metrics_.countPageView(route, device);
  }
  respond(conn, Endpoint::Vitals, 204, "", origin);
}

void IngestEndpoints::handleErrors(mg_connection* conn, const mg_request_info& request) {
  std::string body, origin;
  if (!admit(conn, request, Endpoint::Errors, body, origin)) return;
  auto parsed = parseErrors(body, config_.max_batch);
  if (!answerParseProblems(conn, Endpoint::Errors, parsed.error, parsed.rejected, origin)) return;
  for (const auto& report : parsed.accepted) {
    const std::size_t route = report.page.empty() ? routes_.otherIndex() : routes_.index(report.page);
    metrics_.countClientError(route, report.level, report.severity);
    if (errorLog_ && !errorLog_->append(report, routes_.label(route))) {
      spdlog::warn("ingest: cannot write the error report log {}", config_.error_log_file);
    }
  }
  respond(conn, Endpoint::Errors, 204, "", origin);
}

}  // namespace apphealth::ingest
