#pragma once
// An HTTPS client for tests: libcurl (Debian's, OpenSSL) with the options a scraper sets: the CA
// to trust, a client certificate, basic auth, the TLS versions allowed.

#include <map>
#include <string>
#include <vector>

#include "TestSupport.h"

namespace apphealth::test {

struct TlsRequest {
  std::string method = "GET";
  std::string url{};
  std::string caFile{};    // trust only this CA ("" : do not verify the server)
  std::string certFile{};  // client certificate
  std::string keyFile{};
  std::string user{};      // basic auth when user is set
  std::string password{};
  std::vector<std::string> headers{};
  std::string body{};
  std::string tlsMax{};    // "1.2" or "1.3"; "" for libcurl's default
  long timeoutMs = 10000;
};

struct TlsResult : HttpResult {
  int curlCode = 0;       // CURLE_OK (0) when a response came
  std::string curlError;  // libcurl's message otherwise
  std::string header(const std::string& lowerCaseName) const {
    const auto it = headers.find(lowerCaseName);
    return it == headers.end() ? std::string() : it->second;
  }
};

TlsResult tlsRequest(const TlsRequest& request);

}  // namespace apphealth::test
