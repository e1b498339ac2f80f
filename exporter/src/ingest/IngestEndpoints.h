#pragma once
// The two beacon endpoints browsers post to: Web Vitals and client error reports. Built to
// face the internet: every request passes origin, method, framing, content type and size
// checks before its body is read, and the client's rate before its body is parsed; every
// refusal is an HTTP status with a one-line reason.

#include <memory>
#include <optional>
#include <string>

#include "config/IngestConfig.h"
#include "http/HttpMessage.h"
#include "ingest/ErrorReportLog.h"
#include "ingest/IngestGuards.h"
#include "ingest/IngestMetrics.h"
#include "ingest/RecentIds.h"
#include "routes/RoutePatterns.h"

namespace apphealth::ingest {

class IngestEndpoints {
 public:
  explicit IngestEndpoints(const IngestConfig& config);

  // The routes' head check (HttpMessage.h): a refusal, or nullopt to read the body.
  std::optional<HttpResponse> head(Endpoint endpoint, const HttpRequest& request);
  // With the complete body.
  HttpResponse vitals(const HttpRequest& request);
  HttpResponse errors(const HttpRequest& request);

  bool isTrustedProxy(std::string_view address) const { return clients_.isTrusted(address); }
  void collect(SnapshotBuilder& out) const;
  const IngestConfig& config() const { return config_; }

 private:
  // Rate limit and empty body; a refusal, or nullopt to parse the body.
  std::optional<HttpResponse> admitBody(Endpoint endpoint, const HttpRequest& request, const std::string& origin);
  // A body-level parse error gets 400 (413 for an oversized batch); otherwise the per-entry
  // rejections are counted and nullopt lets the caller go on with the accepted entries.
  std::optional<HttpResponse> parseProblems(Endpoint endpoint, const std::string& error,
                                            const std::vector<RejectReason>& rejected, const std::string& origin);
  // `origin`: the request's Origin once allowed (it is echoed for CORS), else "".
  HttpResponse respond(Endpoint endpoint, int status, const std::string& reason, const std::string& origin,
                       bool closeConnection = false);
  bool originAllowed(std::string_view origin) const;

  const IngestConfig config_;
  const RoutePatterns routes_;
  IngestMetrics metrics_;
  ClientAddress clients_;
  RateLimiter limiter_;
  RecentIds recentIds_;
  std::unique_ptr<ErrorReportLog> errorLog_;
};

}  // namespace apphealth::ingest
