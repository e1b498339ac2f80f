#include "ingest/IngestEndpoints.h"

#include <strings.h>

#include <algorithm>

#include "http/Framing.h"

namespace apphealth::ingest {

namespace {

bool startsWithIgnoreCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && strncasecmp(text.data(), prefix.data(), prefix.size()) == 0;
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

void IngestEndpoints::collect(SnapshotBuilder& out) const {
  metrics_.collect(out);
  if (errorLog_) {
    out.counter("apphealth_ingest_error_log_write_failures_total",
                "Client error reports that could not be written to ingest.error_log (full disk, I/O error); "
                "they are counted in apphealth_client_errors_total all the same.",
                {}, static_cast<double>(errorLog_->failures()));
  }
}

bool IngestEndpoints::originAllowed(std::string_view origin) const {
  if (origin.empty()) return true;  // same-origin beacons and server-side senders carry none
  return std::any_of(config_.allowed_origins.begin(), config_.allowed_origins.end(),
                     [&](const std::string& allowed) { return allowed == "*" || allowed == origin; });
}

HttpResponse IngestEndpoints::respond(Endpoint endpoint, int status, const std::string& reason,
                                      const std::string& origin, bool closeConnection) {
  metrics_.countRequest(endpoint, status);
  HttpResponse response;
  response.status = status;
  if (!reason.empty()) response.body = reason + "\n";
  if (!origin.empty()) {  // only ever an origin head() let through
    response.headers.emplace_back("Access-Control-Allow-Origin", origin);
    response.headers.emplace_back("Vary", "Origin");
  }
  response.close = closeConnection;
  if (status == 405) response.headers.emplace_back("Allow", "POST, OPTIONS");
  if (status == 429) response.headers.emplace_back("Retry-After", "1");
  return response;
}

std::optional<HttpResponse> IngestEndpoints::head(Endpoint endpoint, const HttpRequest& request) {
  const std::string origin = request.headerOr("Origin");
  if (!originAllowed(origin)) {
    return respond(endpoint, 403, "origin " + origin.substr(0, 200) + " is not allowed", "");
  }
  const std::string_view method = request.method();
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
    return response;
  }
  if (method != "POST") {
    return respond(endpoint, 405, "method " + std::string(method) + " not allowed; use POST", origin);
  }
  if (auto problem = framingProblem(request)) {
    return respond(endpoint, problem->status, problem->body.substr(0, problem->body.size() - 1), origin, true);
  }
  if (request.contentLength() < 0) return respond(endpoint, 411, "a Content-Length is required", origin);
  // sendBeacon sends a string body as text/plain (no CORS preflight then); fetch sends JSON.
  const std::string contentType = request.headerOr("Content-Type");
  if (!contentType.empty() && !startsWithIgnoreCase(contentType, "application/json") &&
      !startsWithIgnoreCase(contentType, "text/plain")) {
    return respond(endpoint, 415, "content type must be application/json or text/plain", origin);
  }
  if (request.contentLength() > static_cast<long long>(config_.max_body_bytes)) {
    return respond(endpoint, 413, "body of " + std::to_string(request.contentLength()) + " bytes exceeds the limit of " +
                                      std::to_string(config_.max_body_bytes),
                   origin);
  }
  return std::nullopt;
}

// The rate limit is applied once the body is in: a refusal then keeps the connection (a proxy
// in front keeps its upstream connections), and the body costs no more than max_body_bytes.
std::optional<HttpResponse> IngestEndpoints::admitBody(Endpoint endpoint, const HttpRequest& request,
                                                       const std::string& origin) {
  const std::string client = clients_.resolve(request.remoteAddress(), request.headerOr("X-Forwarded-For"));
  if (!limiter_.allow(rateLimitKey(client))) {
    metrics_.countRejected(endpoint, "rate_limited");
    return respond(endpoint, 429, "rate limit exceeded for this client", origin);
  }
  if (request.body().empty()) return respond(endpoint, 400, "empty body", origin);
  return std::nullopt;
}

std::optional<HttpResponse> IngestEndpoints::parseProblems(Endpoint endpoint, const std::string& error,
                                                           const std::vector<RejectReason>& rejected,
                                                           const std::string& origin) {
  if (!error.empty()) {
    const bool tooLarge = error.rfind("batch of", 0) == 0;
    if (tooLarge) metrics_.countRejected(endpoint, rejectReasonLabel(RejectReason::BatchTooLarge));
    return respond(endpoint, tooLarge ? 413 : 400, error, origin);
  }
  for (auto reason : rejected) metrics_.countRejected(endpoint, rejectReasonLabel(reason));
  return std::nullopt;
}

HttpResponse IngestEndpoints::vitals(const HttpRequest& request) {
  const std::string origin = request.headerOr("Origin");
  if (auto refusal = admitBody(Endpoint::Vitals, request, origin)) return *refusal;
  auto parsed = parseVitals(request.body(), config_.max_batch);
  if (auto refusal = parseProblems(Endpoint::Vitals, parsed.error, parsed.rejected, origin)) return *refusal;
  const std::string userAgent = request.headerOr("User-Agent");
  for (const auto& observation : parsed.accepted) {
    // Retries of a beacon carry the same metric id: count each metric instance once.
    if (!observation.id.empty() && !recentIds_.insert(vitalMetricName(observation.vital), observation.id)) {
      metrics_.countRejected(Endpoint::Vitals, "duplicate");
      continue;
    }
    const std::size_t route = observation.page.empty() ? routes_.otherIndex() : routes_.index(observation.page);
    const std::size_t device = metrics_.deviceIndex(classifyDevice(observation.device, userAgent));
    metrics_.observeVital(observation.vital, route, device, observation.value);
    // A page view: one per pageViewId from our snippet; without one, one per TTFB, which
    // the library reports exactly once per navigation.
    const bool newPageView = observation.pageViewId.empty() ? observation.vital == Vital::TTFB
                                                            : recentIds_.insert("pv", observation.pageViewId);
    if (newPageView) metrics_.countPageView(route, device);
  }
  return respond(Endpoint::Vitals, 204, "", origin);
}

HttpResponse IngestEndpoints::errors(const HttpRequest& request) {
  const std::string origin = request.headerOr("Origin");
  if (auto refusal = admitBody(Endpoint::Errors, request, origin)) return *refusal;
  auto parsed = parseErrors(request.body(), config_.max_batch);
  if (auto refusal = parseProblems(Endpoint::Errors, parsed.error, parsed.rejected, origin)) return *refusal;
  for (const auto& report : parsed.accepted) {
    const std::size_t route = report.page.empty() ? routes_.otherIndex() : routes_.index(report.page);
    metrics_.countClientError(route, report.level, report.severity);
    if (errorLog_) errorLog_->append(report, routes_.label(route));  // failures are counted and logged there
  }
  return respond(Endpoint::Errors, 204, "", origin);
}

}  // namespace apphealth::ingest
