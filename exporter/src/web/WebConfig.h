#pragma once
// The web configuration file of Prometheus' exporter-toolkit (--web.config.file; format:
// https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md):
//
//   tls_server_config:      cert_file/key_file (or inline cert/key), client_auth_type,
//                           client_ca_file (or inline client_ca), client_allowed_sans,
//                           min_version/max_version (TLS10..TLS13; default TLS12..TLS13),
//                           prefer_server_cipher_suites
//   http_server_config:     http2 (accepted; apphealth serves HTTP/1.1), headers (the five
//                           exporter-toolkit allows, with its value checks)
//   basic_auth_users:       user: bcrypt hash ($2y$/$2b$/$2a$)
//
// Read as exporter-toolkit reads it: unknown keys are errors, relative paths are relative to
// the file's directory, a client CA without a client_auth_type that asks for a certificate is
// an error. Not supported, and reported as errors rather than ignored: cipher_suites and
// curve_preferences (Go names; GnuTLS and the system's crypto policy choose here) and rate_limit.
// Every problem is a ConfigError with file:line:col; certificate and key files are loaded and
// checked (the key must match the certificate) so a broken file fails at start, not at the
// first handshake.

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/YamlReader.h"
#include "http/TlsCredentials.h"

namespace apphealth {

// What the file is for: the beacon listener's takes no basic_auth_users (browsers post
// beacons without credentials).
enum class WebConfigUse { MainListener, BeaconListener };

struct WebConfig {
  std::optional<TlsSettings> tls;  // with the certificate, key and CA contents loaded
  std::vector<std::string> tlsFiles;  // the files TLS was loaded from (a change reloads)
  std::vector<std::pair<std::string, std::string>> headers;
  std::map<std::string, std::string> users;  // user -> bcrypt hash; secrets, never logged
};

struct WebConfigLoadResult {
  std::optional<WebConfig> config;  // set only when errors is empty
  std::vector<ConfigError> errors;
};

WebConfigLoadResult loadWebConfigFile(const std::string& path, WebConfigUse use);

}  // namespace apphealth
