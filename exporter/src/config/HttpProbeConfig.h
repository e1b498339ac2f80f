#pragma once
// Configuration of one blackbox-style HTTP probe (issue 4). Filled in by its section parser.

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "config/Secret.h"
#include "util/Duration.h"

namespace apphealth {

// The probe reads at most this much of a response body; `body_regex` sees only this prefix.
inline constexpr std::size_t kProbeMaxBodyBytes = 1024 * 1024;
inline constexpr int kProbeMaxRedirects = 10;

struct HttpProbeTarget {
  std::string name;
  std::string url;                 // http:// or https:// only
  std::string method = "GET";      // GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS
  std::string body;                // request body (empty: none)
  // Status codes that count as success; empty means any 2xx.
  std::vector<int> valid_status_codes;
  // ECMAScript regex (std::regex) searched in the first kProbeMaxBodyBytes of the body;
  // empty: the body is not checked.
  std::string body_regex;
  // Request headers in config order (a map in YAML; names unique case-insensitively).
  std::vector<std::pair<std::string, std::string>> headers;
  // HTTP basic auth: `username` with password_file / password_env (never inline, never in
  // the URL). The password is read per probe, so a rotated file is picked up.
  std::string username;
  SecretSource password;
  bool follow_redirects = false;   // false: a 3xx is the final answer
  std::string ca_file;             // PEM bundle to verify the server with (default: system CAs)
  bool insecure_skip_verify = false;
  Duration interval = std::chrono::seconds(15);
  Duration timeout = std::chrono::seconds(5);

  bool statusIsValid(long status) const {
    if (valid_status_codes.empty()) return status >= 200 && status <= 299;
    for (int code : valid_status_codes) {
      if (code == status) return true;
    }
    return false;
  }
};

}  // namespace apphealth
