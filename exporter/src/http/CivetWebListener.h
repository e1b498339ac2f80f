#pragma once
// The main listener (/metrics, /-/healthy, /-/ready, /-/reload, the landing page): CivetWeb,
// through its CivetServer RAII class, with exact-path routes. CivetWeb serves each open
// connection with a worker thread from a fixed pool, which suits a private listener that
// Prometheus scrapes; the public beacon endpoints get the event-driven MicroHttpdListener
// instead (see there for why). With TLS the main listener is a MicroHttpdListener too
// (Exporter::startMainListener says why).

#include <civetweb.h>

#include <memory>
#include <string>
#include <vector>

#include "http/HttpMessage.h"
#include "http/ListenAddress.h"

class CivetServer;

namespace apphealth {

struct CivetWebOptions {
  std::string listenAddress = "127.0.0.1:10045";  // host:port or :port
  int threads = 16;                               // worker threads: connections served at once
  int requestTimeoutMs = 10000;
};

class CivetWebListener : public HttpListener {
 public:
  // Throws std::runtime_error with a readable reason when the address cannot be bound.
  explicit CivetWebListener(const CivetWebOptions& options);
  ~CivetWebListener() override;
  CivetWebListener(const CivetWebListener&) = delete;
  CivetWebListener& operator=(const CivetWebListener&) = delete;

  void route(const std::string& path, Route route) override;
  void filter(RequestFilter filter) override;
  int port() const override;

 private:
  class Dispatch;
  mg_context* context();
  std::unique_ptr<CivetServer> server_;
  std::string wakeAddress_;  // where to connect to wake the accept loop at shutdown
  RequestFilter filter_;  // routes refer to it: set before traffic, never moved
  std::vector<std::unique_ptr<Dispatch>> routes_;
  std::unique_ptr<Dispatch> notFound_;
};

}  // namespace apphealth
