#pragma once
// Probes one HTTP endpoint with libcurl, blackbox-style (issue 4): one fresh connection per
// sample (DNS, TCP, TLS and the request all count), status and optional body checks, and the
// earliest certificate expiry of an https peer's chain.
//
// Collector health: the probe's outcome is `apphealth_probe_success`, not the collector's.
// The collector is up (apphealth_collector_up 1) whenever it ran the probe, whatever the
// answer; it is down only when the probe could not be attempted (libcurl setup failure). So a
// down site does not put the collector into backoff: probes keep their cadence.

#include <prometheus/histogram.h>

#include <optional>
#include <regex>
#include <string>
#include <string_view>

#include "collectors/Sampler.h"
#include "config/HttpProbeConfig.h"

namespace apphealth {

// Parses the "Expire date" value of libcurl's CURLINFO_CERTINFO with the OpenSSL backend,
// which is ASN1_TIME_print's RFC 822-like form in GMT: "Nov 23 12:00:00 2027 GMT", the day
// padded with a space ("Nov  3 ..."), optionally with fractional seconds. Returns Unix time.
std::optional<double> parseCertExpireDate(std::string_view text);

struct HttpProbeResult {
  bool success = false;
  long status = 0;                     // 0: no HTTP response
  double seconds = 0;                  // whole probe, connect to last byte read
  std::optional<double> earliestCertExpiry;
  std::string failureKind;             // stable per cause ("curl:7", "status:500", "body_regex")
  std::string failure;                 // human-readable reason, empty on success
};

class HttpProbeCollector : public Sampler {
 public:
  explicit HttpProbeCollector(HttpProbeTarget target);
  SampleResult sample(SnapshotBuilder& out, std::stop_token stop) override;

  // One probe, without metrics or logging. Throws CurlError when libcurl cannot be set up.
  HttpProbeResult probe(const std::stop_token& stop);

 private:
  void log(const HttpProbeResult& result);

  HttpProbeTarget target_;
  std::optional<std::regex> bodyRegex_;
  prometheus::Histogram duration_;
  std::string helpSuffix_;
  std::string lastFailureKind_;  // "" after a success: warn once per new failure cause
};

}  // namespace apphealth
