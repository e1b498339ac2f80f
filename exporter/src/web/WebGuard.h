#pragma once
// A listener's protection by a web config file (WebConfig.h): TLS credentials for its
// handshakes, basic authentication and response headers for its requests.
//
// Like exporter-toolkit, which re-reads the file at every request and every handshake, a
// change takes effect without a restart: the file and the certificate, key and CA files it
// names are checked for changes (at most once a second), and re-read when one changed. A new
// certificate serves the next connection; new users and headers the next request. While the
// file is broken, requests get 500 and TLS connections are refused (as exporter-toolkit does):
// the listener fails closed rather than falling back to an older file. Switching TLS on or off
// needs a restart (the listener is made with or without it).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/HttpMessage.h"
#include "http/TlsCredentials.h"
#include "web/WebConfig.h"

namespace apphealth {

class WebGuard {
 public:
  // Loads the file. Throws std::runtime_error listing every problem as file:line:col.
  WebGuard(std::string path, WebConfigUse use, std::string listenerName);
  WebGuard(const WebGuard&) = delete;
  WebGuard& operator=(const WebGuard&) = delete;

  // Whether the file configured TLS when the guard was made: decides the listener's kind.
  bool tlsAtStart() const { return tlsAtStart_; }
  std::size_t usersAtStart() const { return usersAtStart_; }
  const std::string& path() const { return path_; }

  // For the listener: basic authentication (admit) and the configured headers (decorate).
  RequestFilter filter();
  // For MicroHttpdOptions::tls: the current credentials, or nullptr while the file is broken.
  std::function<std::shared_ptr<const TlsCredentials>()> tls();

  // Checks the files now, not a second later (tests, and a SIGHUP).
  void refresh();

 private:
  struct Snapshot {
    std::shared_ptr<const WebConfig> config;          // null while the file is broken
    std::shared_ptr<const TlsCredentials> credentials;  // null without TLS or while broken
    std::vector<std::string> watched;                   // the file and the files it names
    std::vector<std::string> stamps;                    // their identity, size and times
  };
  std::shared_ptr<const Snapshot> current();
  std::shared_ptr<const Snapshot> load() const;
  std::optional<HttpResponse> admit(const HttpRequest& request);
  bool passwordMatches(const WebConfig& config, const std::string& user, const std::string& password);

  const std::string path_;
  const WebConfigUse use_;
  const std::string name_;
  bool tlsAtStart_ = false;
  std::size_t usersAtStart_ = 0;

  std::mutex reloadMutex_;                       // one re-read at a time
  std::atomic<std::int64_t> nextCheckNs_{0};     // steady clock
  std::atomic<std::shared_ptr<const Snapshot>> snapshot_;

  // Basic auth results by SHA-256 of user, hash and password (never the password itself), as
  // exporter-toolkit caches them: bcrypt costs tens of milliseconds per check.
  std::mutex authMutex_;      // the cache
  std::mutex bcryptMutex_;    // one bcrypt at a time: a password flood costs one core at most
  std::unordered_map<std::string, bool> authCache_;
};

}  // namespace apphealth
