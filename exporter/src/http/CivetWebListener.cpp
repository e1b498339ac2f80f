#include "http/CivetWebListener.h"

#include <CivetServer.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <thread>

#include "http/Framing.h"

namespace apphealth {

namespace {

const char* reasonPhrase(int status) {
  const char* text = mg_get_response_code_text(nullptr, status);
  return text ? text : "";
}

// Writes a complete response with Content-Length (keep-alive needs it). HEAD gets no body.
void send(mg_connection* conn, const HttpResponse& response) {
  if (response.close) mg_disable_connection_keep_alive(conn);
  std::string head = "HTTP/1.1 " + std::to_string(response.status) + " " + reasonPhrase(response.status) + "\r\n";
  head += "Content-Type: " + response.contentType + "\r\n";
  head += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
  for (const auto& [name, value] : response.headers) head += name + ": " + value + "\r\n";
  if (response.close) head += "Connection: close\r\n";
  head += "\r\n";
  mg_write(conn, head.data(), head.size());
  const auto* request = mg_get_request_info(conn);
  if (request == nullptr || std::strcmp(request->request_method, "HEAD") != 0) {
    mg_write(conn, response.body.data(), response.body.size());
  }
}

class CivetRequest : public HttpRequest {
 public:
  CivetRequest(mg_connection* conn, const mg_request_info& info) : conn_(conn), info_(info) {}
  std::string_view method() const override { return info_.request_method; }
  std::string_view path() const override { return info_.local_uri ? info_.local_uri : ""; }
  std::string_view remoteAddress() const override { return info_.remote_addr; }
  std::optional<std::string_view> header(std::string_view name) const override {
    for (int i = 0; i < info_.num_headers; ++i) {
      if (equalsIgnoreCase(info_.http_headers[i].name, name)) return std::string_view(info_.http_headers[i].value);
    }
    return std::nullopt;
  }
  int headerCount(std::string_view name) const override {
    int count = 0;
    for (int i = 0; i < info_.num_headers; ++i) count += equalsIgnoreCase(info_.http_headers[i].name, name);
    return count;
  }
  long long contentLength() const override { return info_.content_length; }
  std::string_view body() const override { return body_; }

  // Reads exactly Content-Length bytes; false when the client sent fewer before CivetWeb's
  // read timeout or its end of stream.
  bool readBody() {
    const long long length = info_.content_length;
    if (length <= 0) return true;
    body_.resize(static_cast<std::size_t>(length));
    std::size_t used = 0;
    while (used < body_.size()) {
      const int n = mg_read(conn_, body_.data() + used, body_.size() - used);
      if (n <= 0) break;
      used += static_cast<std::size_t>(n);
    }
    body_.resize(used);
    return used == static_cast<std::size_t>(length);
  }

 private:
  static bool equalsIgnoreCase(const char* a, std::string_view b) {
    return std::strlen(a) == b.size() && strncasecmp(a, b.data(), b.size()) == 0;
  }
  mg_connection* conn_;
  const mg_request_info& info_;
  std::string body_;
};

HttpResponse answer(const Route* routePtr, const RequestFilter& filter, CivetRequest& request) {
  if (filter.admit && !(routePtr && routePtr->open)) {
    if (auto refusal = filter.admit(request)) {
      refusal->close = refusal->close || announcesBody(request);  // the body stays unread
      return *refusal;
    }
  }
  if (routePtr == nullptr) return errorResponse(404, "not found");
  const Route& route = *routePtr;
  if (route.head) {
    if (auto refusal = route.head(request)) {
      refusal->close = refusal->close || announcesBody(request);  // the body stays unread
      return *refusal;
    }
    if (auto refusal = framingProblem(request)) return *refusal;  // in case the head check did not look
    if (!request.readBody()) return errorResponse(400, "the body is shorter than its Content-Length", {}, true);
  }
  return route.respond(request);
}

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

// CivetWeb looks for a ".htpasswd" beside every requested path (with no document root:
// "/.htpasswd") unless an authorization handler covers the path: one failed stat() per request,
// and a stray file there would put every endpoint behind digest auth. The exporter has no
// file-based authentication, so one handler authorizes every path.
int authorizeEveryPath(mg_connection*, void*) { return 1; }

}  // namespace

// Routes are registered with CivetWeb's C API: the C++ wrapper's own dispatch takes a
// context-wide lock and inserts into a std::map on every request, which showed up as lock
// contention under load. The route answers every method itself.
class CivetWebListener::Dispatch {
 public:
  // No route: the catch-all that answers 404 once the filter has admitted the request.
  Dispatch(std::optional<Route> route, const RequestFilter& filter) : route_(std::move(route)), filter_(filter) {}

  static int handle(mg_connection* conn, void* cbdata) {
    auto& self = *static_cast<Dispatch*>(cbdata);
    HttpResponse response;
    try {
      CivetRequest request(conn, *mg_get_request_info(conn));
      response = answer(self.route_ ? &*self.route_ : nullptr, self.filter_, request);
    } catch (const std::exception& e) {
      response = errorResponse(500, std::string("internal error: ") + e.what(), {}, true);
    } catch (...) {  // nothing may unwind into C
      response = errorResponse(500, "internal error", {}, true);
    }
    try {
      if (self.filter_.decorate) self.filter_.decorate(response);
    } catch (...) {
    }
    send(conn, response);
    return 1;  // handled
  }

 private:
  std::optional<Route> route_;
  const RequestFilter& filter_;
};

CivetWebListener::CivetWebListener(const CivetWebOptions& options) {
  const auto address = parseListenAddress(options.listenAddress);
  const std::vector<std::string> civetOptions = {
      "listening_ports", toCivetListeningPort(options.listenAddress),
      "num_threads", std::to_string(options.threads),
      "enable_keep_alive", "yes",
      // Short idle keep-alive: an idle connection ties up a worker thread, and Prometheus
      // scrapes far less often than this anyway.
      "keep_alive_timeout_ms", "500",
      "request_timeout_ms", std::to_string(options.requestTimeoutMs),
      "tcp_nodelay", "1",
      // CivetWeb answers CORS preflights itself with "*" unless this is empty; routes that
      // take cross-origin requests enforce their own origin allowlist.
      "access_control_allow_methods", "",
  };
  wakeAddress_ = address.host.empty() ? "127.0.0.1" : address.host;
  try {
    server_ = std::make_unique<CivetServer>(civetOptions);
    mg_set_auth_handler(context(), "**", authorizeEveryPath, nullptr);
    // Paths without a route pass the filter too (a 401 before any 404, headers on the 404).
    notFound_ = std::make_unique<Dispatch>(std::nullopt, filter_);
    mg_set_request_handler(context(), "**", &Dispatch::handle, notFound_.get());
  } catch (const CivetException& e) {
    throw std::runtime_error("cannot listen on " + options.listenAddress + ": " + e.what() +
                             " (is the port in use?)");
  }
}

CivetWebListener::~CivetWebListener() {
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

void CivetWebListener::route(const std::string& path, Route route) {
  routes_.push_back(std::make_unique<Dispatch>(std::move(route), filter_));
  // A trailing '$' makes CivetWeb match the path exactly instead of as a prefix.
  mg_set_request_handler(context(), (path + "$").c_str(), &Dispatch::handle, routes_.back().get());
  // Patterns are tried in the order they were added: the catch-all moves behind every route.
  mg_set_request_handler(context(), "**", nullptr, nullptr);
  mg_set_request_handler(context(), "**", &Dispatch::handle, notFound_.get());
}

void CivetWebListener::filter(RequestFilter filter) { filter_ = std::move(filter); }

// CivetServer registers its own handlers on this context but hands it out only as const;
// mg_set_*_handler take the mutable context they are meant to change.
mg_context* CivetWebListener::context() { return const_cast<mg_context*>(server_->getContext()); }

int CivetWebListener::port() const {
  auto ports = server_->getListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

}  // namespace apphealth
