#pragma once
// The exporter's HTTP server: CivetWeb (through its CivetServer RAII class) with exact-path
// routes. Each route answers every method itself, so a wrong method gets 405, not a silent 404.

#include <civetweb.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/ListenAddress.h"

class CivetServer;

namespace apphealth {

struct HttpResponse {
  int status = 200;
  std::string contentType = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Writes a complete response with Content-Length (keep-alive needs it). HEAD gets no body.
void sendResponse(mg_connection* conn, const HttpResponse& response);
// A plain-text error whose body is the reason, e.g. 405 "method GET not allowed; use POST".
void sendError(mg_connection* conn, int status, const std::string& reason,
               std::vector<std::pair<std::string, std::string>> headers = {});

struct HttpServerOptions {
  std::string listenAddress = "127.0.0.1:10045";  // host:port or :port
  int threads = 16;
  int requestTimeoutMs = 10000;
};

class HttpServer {
 public:
  using Handler = std::function<void(mg_connection* conn, const mg_request_info& request)>;

  // Throws std::runtime_error with a readable reason when the address cannot be bound.
  explicit HttpServer(const HttpServerOptions& options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Registers `handler` for exactly `path`. Routes must be added before traffic arrives.
  void route(const std::string& path, Handler handler);
  int port() const;

 private:
  class Route;
  mg_context* context();
  std::unique_ptr<CivetServer> server_;
  std::string wakeAddress_;  // where to connect to wake the accept loop at shutdown
  std::vector<std::unique_ptr<Route>> routes_;
};

}  // namespace apphealth
