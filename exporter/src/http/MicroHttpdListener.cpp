#include "http/MicroHttpdListener.h"

#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
#include <vector>
#include <optional>

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
  gnutls_session_t session = nullptr;  // TLS listeners
  bool firstRead = true;               // TLS: nothing received yet
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

void logFromMicroHttpd(void* name, const char* format, va_list args) {
  char message[512];
  std::vsnprintf(message, sizeof message, format, args);
  std::string_view text(message);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  spdlog::debug("{}: {}", *static_cast<const std::string*>(name), text);
}

// The TLS sessions of every listener and the credentials each was started with. GnuTLS calls
// back during a handshake (to pick the certificate, to check the client's) with nothing but
// the session, so this is where those callbacks find them.
struct TlsSession {
  std::shared_ptr<const TlsCredentials> credentials;
  MicroHttpdListener::State* listener = nullptr;
};

class TlsSessions {
 public:
  void add(gnutls_session_t session, TlsSession entry) {
    std::lock_guard lock(mutex_);
    sessions_[session] = std::move(entry);
  }
  void remove(gnutls_session_t session) {
    std::lock_guard lock(mutex_);
    sessions_.erase(session);
  }
  std::optional<TlsSession> find(gnutls_session_t session) const {
    std::lock_guard lock(mutex_);
    const auto it = sessions_.find(session);
    if (it == sessions_.end()) return std::nullopt;
    return it->second;
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<gnutls_session_t, TlsSession> sessions_;
};

// Never destroyed: listeners may still be closing when static destructors run.
TlsSessions& tlsSessions() {
  static auto* sessions = new TlsSessions();
  return *sessions;
}

// gnutls_certificate_retrieve_function2: the chain and key of the session's credentials.
int retrieveCertificate(gnutls_session_t session, const gnutls_datum_t*, int, const gnutls_pk_algorithm_t*, int,
                        gnutls_pcert_st** chain, unsigned int* length, gnutls_privkey_t* key) {
  const auto entry = tlsSessions().find(session);
  if (!entry) return -1;
  *chain = entry->credentials->chain();
  *length = entry->credentials->chainLength();
  *key = entry->credentials->key();
  return 0;
}

int verifyClient(gnutls_session_t session);

// What a client that speaks plain HTTP to the TLS port gets instead of a silent close: Go's
// net/http (so every exporter-toolkit exporter) answers it the same way.
constexpr std::string_view kPlainHttpOnTls =
    "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
    "Client sent an HTTP request to an HTTPS server.\n";

// GnuTLS' reads from a TLS connection's socket. The first bytes of a TLS connection are a
// handshake record (0x16); an upper-case letter is the method of a plain HTTP request.
ssize_t pullFromSocket(gnutls_transport_ptr_t ptr, void* data, size_t size) {
  auto* conn = static_cast<Connection*>(ptr);
  if (conn == nullptr) {  // the connection is closing
    errno = EBADF;
    return -1;
  }
  const ssize_t n = ::recv(conn->fd, data, size, 0);
  if (n > 0 && conn->firstRead) {
    conn->firstRead = false;
    const auto first = static_cast<const unsigned char*>(data)[0];
    if (first >= 'A' && first <= 'Z') {
      ::send(conn->fd, kPlainHttpOnTls.data(), kPlainHttpOnTls.size(), MSG_NOSIGNAL);
      errno = ECONNRESET;
      return -1;
    }
  }
  return n;
}

}  // namespace

struct MicroHttpdListener::State {
  MicroHttpdOptions options;
  std::unordered_map<std::string, Route> routes;
  RequestFilter filter;
  MHD_Daemon* daemon = nullptr;

  mutable std::mutex mutex;  // connections, perClient, reserved and the counters
  std::unordered_set<Connection*> connections;
  std::unordered_map<std::string, int> perClient;  // open and reserved connections per address
  int reserved = 0;  // admitted by the accept policy, not yet set up (see Reservation)

  // The accept policy and the set-up of the connection it admitted run one after the other in
  // the same libmicrohttpd thread, but the threads of the pool accept concurrently: the policy
  // counts the slot it admits at once, so that two threads cannot both admit the 16th
  // connection of an address. libmicrohttpd may still drop an admitted connection before
  // setting it up (no memory, its own limit), without a notification; the thread's next
  // admission then returns the slot.
  struct Reservation {
    State* owner = nullptr;
    std::string client;
    bool limited = false;
  };
  static Reservation& reservation() {
    thread_local Reservation r;
    return r;
  }
  // Gives back this thread's reservation of a connection that was never set up. Under mutex.
  void releaseStaleReservation() {
    auto& r = reservation();
    if (r.owner != this) return;
    r.owner = nullptr;
    --reserved;
    if (r.limited) {
      if (auto it = perClient.find(r.client); it != perClient.end() && --it->second <= 0) perClient.erase(it);
    }
  }
  ListenerStats counters;
  std::condition_variable_any wake;
  std::jthread sweeper;

  // Accept policy: called with the peer's address before libmicrohttpd sets the connection
  // up. A refusal closes the socket at once.
  static MHD_Result accept(void* cls, const sockaddr* addr, socklen_t) {
    auto& self = *static_cast<State*>(cls);
    if (self.options.tls && !self.options.tls()) {  // no usable credentials: no handshake can succeed
      std::lock_guard lock(self.mutex);
      ++self.counters.refusedTls;
      return MHD_NO;
    }
    const std::string client = addressText(addr);
    const bool unlimited = self.options.unlimitedClient && self.options.unlimitedClient(client);
    std::lock_guard lock(self.mutex);
    self.releaseStaleReservation();
    if (self.connections.size() + static_cast<std::size_t>(self.reserved) >=
        static_cast<std::size_t>(self.options.maxConnections)) {
      ++self.counters.refusedListenerLimit;
      return MHD_NO;
    }
    if (!unlimited) {
      const auto it = self.perClient.find(client);
      if (it != self.perClient.end() && it->second >= self.options.maxConnectionsPerClient) {
        ++self.counters.refusedClientLimit;
        return MHD_NO;
      }
      ++self.perClient[client];
    }
    ++self.reserved;
    reservation() = Reservation{&self, client, !unlimited};
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
      if (self.options.tls) self.startTls(connection, *conn);
      std::lock_guard lock(self.mutex);
      ++self.counters.accepted;
      auto& r = reservation();
      if (r.owner == &self && r.client == conn->remote) {  // the slot the policy counted
        r.owner = nullptr;
        --self.reserved;
        conn->limited = r.limited;
      } else if (conn->limited) {
        ++self.perClient[conn->remote];
      }
      *socketContext = conn.get();
      self.connections.insert(conn.release());
      return;
    }
    // Closed: libmicrohttpd closes the socket only after this returns, and the sweeper shuts
    // sockets down only under the same lock, so it never touches a descriptor reused since.
    std::unique_ptr<Connection> conn(static_cast<Connection*>(*socketContext));
    if (!conn) return;
    *socketContext = nullptr;
    if (conn->session != nullptr) {
      tlsSessions().remove(conn->session);
      gnutls_transport_set_ptr2(conn->session, nullptr, reinterpret_cast<gnutls_transport_ptr_t>(static_cast<intptr_t>(conn->fd)));
    }
    std::lock_guard lock(self.mutex);
    self.connections.erase(conn.get());
    if (conn->limited) {
      if (auto it = self.perClient.find(conn->remote); it != self.perClient.end() && --it->second <= 0) {
        self.perClient.erase(it);
      }
    }
  }

  // Before the handshake: the session gets the versions and client certificate policy of the
  // credentials current now, which it keeps for its lifetime.
  void startTls(MHD_Connection* connection, Connection& conn) {
    // The handshake goes out as several small records. With Nagle's algorithm each one after
    // the first waits for the client's ACK, which Linux delays by up to 40 ms: a third of new
    // TLS connections took 40 ms longer than nginx's (bench/tls.sh). nginx sets TCP_NODELAY
    // on TLS connections for the same reason.
    const int one = 1;
    setsockopt(conn.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const auto credentials = options.tls();
    const auto* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!credentials || info == nullptr || info->tls_session == nullptr) {
      ::shutdown(conn.fd, SHUT_RDWR);  // libmicrohttpd sees the end of the stream and closes
      std::lock_guard lock(mutex);
      ++counters.refusedTls;
      return;
    }
    conn.session = static_cast<gnutls_session_t>(info->tls_session);
    // Reads go through pullFromSocket (writes stay libmicrohttpd's, on the descriptor).
    gnutls_transport_set_ptr2(conn.session, &conn, reinterpret_cast<gnutls_transport_ptr_t>(static_cast<intptr_t>(conn.fd)));
    gnutls_transport_set_pull_function(conn.session, &pullFromSocket);
    credentials->configure(conn.session);
    if (credentials->checksPeer()) gnutls_session_set_verify_function(conn.session, &verifyClient);
    tlsSessions().add(conn.session, {credentials, this});
  }

  void refusedClient(const std::string& reason) {
    spdlog::debug("{}: TLS client refused: {}", options.name, reason);
    std::lock_guard lock(mutex);
    ++counters.refusedTls;
  }

  // Applies the filter's decoration and queues the response.
  MHD_Result respond(MHD_Connection* connection, HttpResponse response) const {
    if (filter.decorate) filter.decorate(response);
    return queue(connection, response);
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
        const Route* route = it == self.routes.end() ? nullptr : &it->second;
        if (self.filter.admit && !(route && route->open)) {
          if (auto refusal = self.filter.admit(request)) {
            refusal->close = refusal->close || announcesBody(request);  // the body stays unread
            return self.respond(connection, std::move(*refusal));
          }
        }
        if (route == nullptr) return self.respond(connection, errorResponse(404, "not found"));
        if (!route->head) {
          // Answered at the next call: a response queued now, before libmicrohttpd has taken
          // the request in, closes the connection, and scrapes would pay a handshake each.
          if (announcesBody(request)) return self.respond(connection, route->respond(request));
          request.accept(*route);
          return MHD_YES;
        }
        if (auto refusal = route->head(request)) {
          refusal->close = refusal->close || announcesBody(request);  // the body stays unread
          return self.respond(connection, std::move(*refusal));
        }
        if (auto refusal = framingProblem(request)) return self.respond(connection, std::move(*refusal));  // in case the head did not look
        request.accept(*route);
        return MHD_YES;  // libmicrohttpd answers a 100-continue now and hands over the body
      }
      if (*uploadSize > 0) {  // never more than Content-Length in total
        request.append(upload, *uploadSize);
        *uploadSize = 0;
        return MHD_YES;
      }
      return self.respond(connection, request.route()->respond(request));
    } catch (const std::exception& e) {
      return self.respond(connection, errorResponse(500, std::string("internal error: ") + e.what(), {}, true));
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

namespace {

// gnutls_certificate_verify_function, run in the handshake once the client's certificates are
// in: non-zero fails the handshake (the client gets a bad_certificate alert).
int verifyClient(gnutls_session_t session) {
  const auto entry = tlsSessions().find(session);
  if (!entry) return -1;
  const std::string problem = entry->credentials->checkPeer(session);
  if (problem.empty()) return 0;
  entry->listener->refusedClient(problem);
  return -1;
}

}  // namespace

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

  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
  // Options that depend on the mode go through an option array.
  std::vector<MHD_OptionItem> modeOptions;
  if (o.threadPerConnection) {
    flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
  } else {
    flags |= MHD_USE_EPOLL;
    modeOptions.push_back({MHD_OPTION_THREAD_POOL_SIZE, std::max(1, o.threads), nullptr});
  }
  if (o.tls) {
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
      throw std::runtime_error("cannot serve TLS on " + o.listenAddress + ": this libmicrohttpd is built without TLS");
    }
    flags |= MHD_USE_TLS;
    modeOptions.push_back({MHD_OPTION_HTTPS_CERT_CALLBACK, 0, reinterpret_cast<void*>(&retrieveCertificate)});
  }
  modeOptions.push_back({MHD_OPTION_END, 0, nullptr});

  errno = 0;
  state_->daemon = MHD_start_daemon(
      flags, 0, &State::accept, state_.get(), &State::handle, state_.get(),
      // First, or earlier options log to stderr.
      MHD_OPTION_EXTERNAL_LOGGER, &logFromMicroHttpd, static_cast<void*>(&state_->options.name),
      MHD_OPTION_SOCK_ADDR, reinterpret_cast<const sockaddr*>(&bindTo),
      MHD_OPTION_ARRAY, modeOptions.data(),
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

void MicroHttpdListener::filter(RequestFilter filter) { state_->filter = std::move(filter); }

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
