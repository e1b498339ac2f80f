#include "http/HttpServer.h"

#include <CivetServer.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace apphealth {

namespace {

const char* reasonPhrase(int status) {
  const char* text = mg_get_response_code_text(nullptr, status);
  return text ? text : "";
}

}  // namespace

void sendResponse(mg_connection* conn, const HttpResponse& response) {
  std::string head = "HTTP/1.1 " + std::to_string(response.status) + " " + reasonPhrase(response.status) + "\r\n";
  head += "Content-Type: " + response.contentType + "\r\n";
  head += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
  for (const auto& [name, value] : response.headers) head += name + ": " + value + "\r\n";
  head += "\r\n";
  mg_write(conn, head.data(), head.size());
  const auto* request = mg_get_request_info(conn);
  if (request == nullptr || std::strcmp(request->request_method, "HEAD") != 0) {
    mg_write(conn, response.body.data(), response.body.size());
  }
}

void sendError(mg_connection* conn, int status, const std::string& reason,
               std::vector<std::pair<std::string, std::string>> headers) {
  HttpResponse response;
  response.status = status;
  response.body = reason + "\n";
  response.headers = std::move(headers);
  sendResponse(conn, response);
}

std::string toCivetListeningPort(const std::string& listenAddress) {
  const auto colon = listenAddress.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("listen address '" + listenAddress + "' needs a port, e.g. :10045");
  const std::string host = listenAddress.substr(0, colon);
  const std::string port = listenAddress.substr(colon + 1);
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535) {
    throw std::invalid_argument("listen address '" + listenAddress + "' has an invalid port");
  }
  if (host.find('[') != std::string::npos) {
    throw std::invalid_argument("IPv6 listen addresses are not supported by this build of CivetWeb");
  }
  return host.empty() || host == "0.0.0.0" ? port : host + ":" + port;
}

namespace {

// Opens and closes one TCP connection to the server's own port.
void wakeListener(const std::string& host, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) == 1) {
    ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  }
  ::close(fd);
}

}  // namespace

// Routes are registered with CivetWeb's C API: the C++ wrapper's own dispatch takes a
// context-wide lock and inserts into a std::map on every request, which showed up as lock
// contention under beacon load. The handler answers every method itself.
class HttpServer::Route {
 public:
  explicit Route(Handler handler) : handler_(std::move(handler)) {}

  static int dispatch(mg_connection* conn, void* route) {
    try {
      static_cast<Route*>(route)->handler_(conn, *mg_get_request_info(conn));
    } catch (const std::exception& e) {
      sendError(conn, 500, std::string("internal error: ") + e.what());
    } catch (...) {  // nothing may unwind into C
      sendError(conn, 500, "internal error");
    }
    return 1;  // handled
  }

 private:
  Handler handler_;
};

namespace {

// CivetWeb looks for a ".htpasswd" beside every requested path (with no document root:
// "/.htpasswd") unless an authorization handler covers the path: one failed stat() per request
// on the ingest hot path, and a stray file there would put every endpoint behind digest auth.
// The exporter has no file-based authentication, so one handler authorizes every path.
int authorizeEveryPath(mg_connection*, void*) { return 1; }

}  // namespace

HttpServer::HttpServer(const HttpServerOptions& options) {
  const std::vector<std::string> civetOptions = {
      "listening_ports", toCivetListeningPort(options.listenAddress),
      "num_threads", std::to_string(options.threads),
      "enable_keep_alive", "yes",
      // Short idle keep-alive: an idle connection ties up a worker thread, and Prometheus
      // scrapes far less often than this anyway; bursts of beacons still reuse connections.
      "keep_alive_timeout_ms", "500",
      "request_timeout_ms", std::to_string(options.requestTimeoutMs),
      "tcp_nodelay", "1",
      // CivetWeb answers CORS preflights itself with "*" unless this is empty; the ingest
      // endpoints enforce their own origin allowlist.
      "access_control_allow_methods", "",
  };
  const auto host = options.listenAddress.substr(0, options.listenAddress.rfind(':'));
  wakeAddress_ = host.empty() || host == "0.0.0.0" || host == "localhost" ? "127.0.0.1" : host;
  try {
    server_ = std::make_unique<CivetServer>(civetOptions);
    mg_set_auth_handler(context(), "**", authorizeEveryPath, nullptr);
  } catch (const CivetException& e) {
    throw std::runtime_error("cannot listen on " + options.listenAddress + ": " + e.what() +
                             " (is the port in use?)");
  }
}

HttpServer::~HttpServer() {
  if (!server_) return;
  // CivetWeb's threads notice the stop flag only between polls of up to 2 s. Stopping in the
  // background while poking the listening socket wakes the accept loop at once, so SIGTERM
  // completes well within the 2 s an orchestrator allows.
  const int listeningPort = port();
  std::atomic<bool> closed{false};
  std::thread closer([&] {
    server_->close();
    closed = true;
  });
  while (!closed) {
    wakeListener(wakeAddress_, listeningPort);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  closer.join();
}

void HttpServer::route(const std::string& path, Handler handler) {
  routes_.push_back(std::make_unique<Route>(std::move(handler)));
  // A trailing '$' makes CivetWeb match the path exactly instead of as a prefix.
  mg_set_request_handler(context(), (path + "$").c_str(), &Route::dispatch, routes_.back().get());
}

// CivetServer registers its own handlers on this context but hands it out only as const;
// mg_set_*_handler take the mutable context they are meant to change.
mg_context* HttpServer::context() { return const_cast<mg_context*>(server_->getContext()); }

int HttpServer::port() const {
  auto ports = server_->getListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

}  // namespace apphealth
