#pragma once
// The two beacon endpoints browsers post to: Web Vitals and client error reports. Built to
// face the internet: every request passes origin, method, rate, size and content checks
// before its body is parsed, and every refusal is an HTTP status with a one-line reason.

#include <civetweb.h>

#include <memory>
#include <string>

#include "config/IngestConfig.h"
#include "ingest/ErrorReportLog.h"
#include "ingest/IngestGuards.h"
#include "ingest/IngestMetrics.h"
#include "ingest/RecentIds.h"
#include "routes/RoutePatterns.h"

namespace apphealth::ingest {

class IngestEndpoints {
 public:
  explicit IngestEndpoints(const IngestConfig& config);

  void handleVitals(mg_connection* conn, const mg_request_info& request);
  void handleErrors(mg_connection* conn, const mg_request_info& request);
  void collect(SnapshotBuilder& out) const { metrics_.collect(out); }
  const IngestConfig& config() const { return config_; }

 private:
  // Runs the checks every beacon request shares; on success fills `body` and `origin` and
  // returns true, otherwise it has already answered.
  bool admit(mg_connection* conn, const mg_request_info& request, Endpoint endpoint, std::string& body,
             std::string& origin);
  // A body-level parse error gets 400 (413 for an oversized batch) and false; otherwise the
  // per-entry rejections are counted and the caller goes on with the accepted entries.
  bool answerParseProblems(mg_connection* conn, Endpoint endpoint, const std::string& error,
                           const std::vector<RejectReason>& rejected, const std::string& origin);
  // `origin`: the request's Origin once admit() allowed it (it is echoed for CORS), else "".
  void respond(mg_connection* conn, Endpoint endpoint, int status, const std::string& reason,
               const std::string& origin, bool closeConnection = false);
  bool originAllowed(const std::string& origin) const;

  const IngestConfig config_;
  const RoutePatterns routes_;
  IngestMetrics metrics_;
  ClientAddress clients_;
  RateLimiter limiter_;
  RecentIds recentIds_;
  std::unique_ptr<ErrorReportLog> errorLog_;
};

}  // namespace apphealth::ingest
