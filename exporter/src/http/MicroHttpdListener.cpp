#include "http/MicroHttpdListener.h"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdarg>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "http/Framing.h"

namespace apphealth {

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t nowNs() { return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count(); }

std::string addressText(const sockaddr* addr) {
  char text[INET6_ADDRSTRLEN] = "";
  if (addr == nullptr) return text;
  if (addr->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, text, sizeof text);
  } else if (addr->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr, text, sizeof text);
  }
  return text;
}

bool startsWithIgnoreCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && strncasecmp(text.data(), prefix.data(), prefix.size()) == 0;
}

// The path of an origin-form target as is; of an absolute-form one ("http://host/path",
// RFC 9112 section 3.2.2, which servers must accept), the part after the authority.
std::string_view targetPath(std::string_view url) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (!startsWithIgnoreCase(url, scheme)) continue;
    const auto rest = url.substr(scheme.size());
    const auto slash = rest.find('/');
    return slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
  }
  return url;
}

// Body buffers above this are released after their request instead of kept for the next one:
// a connection that once carried a 16 MiB body must not hold 16 MiB for the rest of its life.
constexpr std::size_t kKeptBodyCapacity = 64 * 1024;

class MhdRequest : public HttpRequest {
 public:
  void begin(MHD_Connection* connection, const char* method, std::string_view path, const std::string& remote) {
    connection_ = connection;
    method_ = method;
    path_ = path;
    remote_ = &remote;
    route_ = nullptr;
    body_.clear();
    length_ = -1;
    if (const auto value = header("Content-Length")) {
      long long parsed = 0;
      const auto [end, error] = std::from_chars(value->data(), value->data() + value->size(), parsed);
      if (error == std::errc() && end == value->data() + value->size()) length_ = parsed;
    }
  }
  void accept(const Route& route) {
    route_ = &route;
    if (length_ > 0) body_.reserve(static_cast<std::size_t>(length_));
  }
  void append(const char* data, std::size_t size) { body_.append(data, size); }
  void finish() {
    connection_ = nullptr;
    if (body_.capacity() > kKeptBodyCapacity) std::string().swap(body_);
  }
  const Route* route() const { return route_; }

  std::string_view method() const override { return method_; }
  std::string_view path() const override { return path_; }
  std::string_view remoteAddress() const override { return *remote_; }
  std::optional<std::string_view> header(std::string_view name) const override {
    const std::string key(name);
    const char* value = MHD_lookup_connection_value(connection_, MHD_HEADER_KIND, key.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string_view(value);
  }
  int headerCount(std::string_view name) const override {
    struct Count {
      std::string_view name;
      int count = 0;
    } count{name};
    MHD_get_connection_values(
        connection_, MHD_HEADER_KIND,
        [](void* cls, MHD_ValueKind, const char* key, const char*) -> MHD_Result {
          auto* c = static_cast<Count*>(cls);
          c->count += std::strlen(key) == c->name.size() && strncasecmp(key, c->name.data(), c->name.size()) == 0;
          return MHD_YES;
        },
        &count);
    return count.count;
  }
  long long contentLength() const override { return length_; }
  std::string_view body() const override { return body_; }

 private:
  MHD_Connection* connection_ = nullptr;
  std::string_view method_, path_;
  const std::string* remote_ = nullptr;
  const Route* route_ = nullptr;
  long long length_ = -1;
  std::string body_;
};

// One per TCP connection, from libmicrohttpd's "started" to its "closed" notification.
struct Connection {
  MHD_socket fd = MHD_INVALID_SOCKET;
  std::string remote;
  bool limited = true;  // counts against the per-client cap
  bool shut = false;    // closed at the deadline (guarded by State::mutex)
  // When the current request's time began: accepted, or the previous response sent.
  std::atomic<std::int64_t> readySince{0};
  MhdRequest request;  // reused by the connection's keep-alive requests
};

MHD_Result queue(MHD_Connection* connection, const HttpResponse& response) {
  MHD_Response* r = MHD_create_response_from_buffer(response.body.size(), const_cast<char*>(response.body.data()),
                                                    MHD_RESPMEM_MUST_COPY);
  if (r == nullptr) return MHD_NO;
  if (!response.body.empty() || response.status != 204) MHD_add_response_header(r, "Content-Type", response.contentType.c_str());
  for (const auto& [name, value] : response.headers) MHD_add_response_header(r, name.c_str(), value.c_str());
  if (response.close) MHD_add_response_header(r, "Connection", "close");
  const MHD_Result result = MHD_queue_response(connection, static_cast<unsigned>(response.status), r);
  MHD_destroy_response(r);
  return result;
}

void logFromMicroHttpd(void*, const char* format, va_list args) {
  char message[512];
  std::vsnprintf(message, sizeof message, format, args);
  std::string_view text(message);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  spdlog::debug("beacon listener: {}", text);
}

}  // namespace

struct MicroHttpdListener::State {
  MicroHttpdOptions options;
  std::unordered_map<std::string, Route> routes;
  MHD_Daemon* daemon = nullptr;

  mutable std::mutex mutex;  // connections, perClient and the counters
  std::unordered_set<Connection*> connections;
  std::unordered_map<std::string, int> perClient;
  ListenerStats counters;
  std::condition_variable_any wake;
  std::jthread sweeper;

  // Accept policy: called with the peer's address before libmicrohttpd sets the connection
  // up. A refusal closes the socket at once.
  static MHD_Result accept(void* cls, const sockaddr* addr, socklen_t) {
    auto& self = *static_cast<State*>(cls);
    const std::string client = addressText(addr);
    const bool unlimited = self.options.unlimitedClient && self.options.unlimitedClient(client);
    std::lock_guard lock(self.mutex);
    if (self.connections.size() >= static_cast<std::size_t>(self.options.maxConnections)) {
      ++self.counters.refusedListenerLimit;
      return MHD_NO;
    }
    if (!unlimited) {
      const auto it = self.perClient.find(client);
      if (it != self.perClient.end() && it->second >= self.options.maxConnectionsPerClient) {
        ++self.counters.refusedClientLimit;
        return MHD_NO;
      }
    }
    return MHD_YES;
  }

  static void notifyConnection(void* cls, MHD_Connection* connection, void** socketContext,
                               MHD_ConnectionNotificationCode code) {
    auto& self = *static_cast<State*>(cls);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
      auto conn = std::make_unique<Connection>();
      const auto* fd = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
      const auto* addr = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
      conn->fd = fd ? fd->connect_fd : MHD_INVALID_SOCKET;
      conn->remote = addressText(addr ? addr->client_addr : nullptr);
      conn->limited = !(self.options.unlimitedClient && self.options.unlimitedClient(conn->remote));
      conn->readySince = nowNs();
      std::lock_guard lock(self.mutex);
      ++self.counters.accepted;
      if (conn->limited) ++self.perClient[conn->remote];
      *socketContext = conn.get();
      self.connections.insert(conn.release());
      return;
    }
    // Closed: libmicrohttpd closes the socket only after this returns, and the sweeper shuts
    // sockets down only under the same lock, so it never touches a descriptor reused since.
    std::unique_ptr<Connection> conn(static_cast<Connection*>(*socketContext));
    if (!conn) return;
    *socketContext = nullptr;
    std::lock_guard lock(self.mutex);
    self.connections.erase(conn.get());
    if (conn->limited) {
      if (auto it = self.perClient.find(conn->remote); it != self.perClient.end() && --it->second <= 0) {
        self.perClient.erase(it);
      }
    }
  }

  // A request ended (answered, or its connection closed): the connection is ready for the next.
  static void requestCompleted(void*, MHD_Connection* connection, void** requestContext,
                               MHD_RequestTerminationCode) {
    if (*requestContext == nullptr) return;
    *requestContext = nullptr;
    const auto* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (info == nullptr || info->socket_context == nullptr) return;
    auto* conn = static_cast<Connection*>(info->socket_context);
    conn->request.finish();
    conn->readySince = nowNs();
  }

  static MHD_Result handle(void* cls, MHD_Connection* connection, const char* url, const char* method, const char*,
                           const char* upload, size_t* uploadSize, void** requestContext) {
    auto& self = *static_cast<State*>(cls);
    const auto* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (info == nullptr || info->socket_context == nullptr) return MHD_NO;
    MhdRequest& request = static_cast<Connection*>(info->socket_context)->request;
    try {
      if (*requestContext == nullptr) {  // the request line and headers are in
        *requestContext = &request;
        request.begin(connection, method, targetPath(url), static_cast<Connection*>(info->socket_context)->remote);
        const auto it = self.routes.find(std::string(request.path()));
        if (it == self.routes.end()) return queue(connection, errorResponse(404, "not found"));
        const Route& route = it->second;
        if (!route.head) return queue(connection, route.respond(request));
        if (auto refusal = route.head(request)) {
          refusal->close = refusal->close || announcesBody(request);  // the body stays unread
          return queue(connection, *refusal);
        }
        if (auto refusal = framingProblem(request)) return queue(connection, *refusal);  // in case the head did not look
        request.accept(route);
        return MHD_YES;  // libmicrohttpd answers a 100-continue now and hands over the body
      }
      if (*uploadSize > 0) {  // never more than Content-Length in total
        request.append(upload, *uploadSize);
        *uploadSize = 0;
        return MHD_YES;
      }
      return queue(connection, request.route()->respond(request));
    } catch (const std::exception& e) {
      return queue(connection, errorResponse(500, std::string("internal error: ") + e.what(), {}, true));
    }
  }

  // Closes every connection whose request has outlived the deadline. shutdown() rather than
  // close(): libmicrohttpd still owns the descriptor; it sees the end of the stream at once and
  // tears the connection down itself.
  void sweep(std::stop_token stop) {
    const auto limit = std::chrono::duration_cast<std::chrono::nanoseconds>(options.requestTimeout).count();
    std::unique_lock lock(mutex);
    while (!stop.stop_requested()) {
      wake.wait_for(lock, stop, std::chrono::milliseconds(100), [] { return false; });
      const std::int64_t now = nowNs();
      for (Connection* conn : connections) {
        if (conn->shut || now - conn->readySince.load(std::memory_order_relaxed) <= limit) continue;
        ::shutdown(conn->fd, SHUT_RDWR);
        conn->shut = true;
        ++counters.timedOut;
      }
    }
  }
};

MicroHttpdListener::MicroHttpdListener(MicroHttpdOptions options) : state_(std::make_unique<State>()) {
  state_->options = std::move(options);
  const auto& o = state_->options;
  const auto address = parseListenAddress(o.listenAddress);
  sockaddr_in bindTo{};
  bindTo.sin_family = AF_INET;
  bindTo.sin_port = htons(static_cast<std::uint16_t>(address.port));
  bindTo.sin_addr.s_addr = htonl(INADDR_ANY);
  if (!address.host.empty()) inet_pton(AF_INET, address.host.c_str(), &bindTo.sin_addr);
  const auto timeoutSeconds = static_cast<unsigned>((o.requestTimeout.count() + 999) / 1000);

  errno = 0;
  state_->daemon = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, &State::accept, state_.get(),
      &State::handle, state_.get(),
      MHD_OPTION_EXTERNAL_LOGGER, &logFromMicroHttpd, nullptr,  // first, or earlier options log to stderr
      MHD_OPTION_SOCK_ADDR, reinterpret_cast<const sockaddr*>(&bindTo),
      MHD_OPTION_THREAD_POOL_SIZE, static_cast<unsigned>(std::max(1, o.threads)),
      // The accept policy enforces maxConnections; this is libmicrohttpd's own backstop.
      MHD_OPTION_CONNECTION_LIMIT, static_cast<unsigned>(o.maxConnections + 64),
      // An idle timeout: the whole-request deadline is the sweeper's.
      MHD_OPTION_CONNECTION_TIMEOUT, timeoutSeconds,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, o.memoryPerConnection,
      MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
      MHD_OPTION_STRICT_FOR_CLIENT, 1,
      MHD_OPTION_NOTIFY_CONNECTION, &State::notifyConnection, state_.get(),
      MHD_OPTION_NOTIFY_COMPLETED, &State::requestCompleted, state_.get(),
      MHD_OPTION_END);
  if (state_->daemon == nullptr) {
    const int error = errno;
    throw std::runtime_error("cannot listen on " + o.listenAddress + ": " +
                             (error != 0 ? std::strerror(error) : "libmicrohttpd could not start") +
                             " (is the port in use?)");
  }
  state_->sweeper = std::jthread([state = state_.get()](std::stop_token stop) { state->sweep(stop); });
}

MicroHttpdListener::~MicroHttpdListener() {
  state_->sweeper.request_stop();
  state_->sweeper.join();
  MHD_stop_daemon(state_->daemon);  // closes every connection; their notifications free them
}

void MicroHttpdListener::route(const std::string& path, Route route) { state_->routes[path] = std::move(route); }

int MicroHttpdListener::port() const {
  const auto* info = MHD_get_daemon_info(state_->daemon, MHD_DAEMON_INFO_BIND_PORT);
  return info ? info->port : 0;
}

ListenerStats MicroHttpdListener::stats() const {
  std::lock_guard lock(state_->mutex);
  ListenerStats s = state_->counters;
  s.open = state_->connections.size();
  return s;
}

}  // namespace apphealth
