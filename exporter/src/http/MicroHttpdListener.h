#pragma once
// The beacon listener, the one strangers on the internet reach: GNU libmicrohttpd (Debian's
// libmicrohttpd12), event-driven. A few threads, each with its own epoll loop, serve every
// connection; an open connection costs a socket and a small buffer, not a thread, so a crowd of
// slow clients cannot take the endpoint away the way it takes a thread-per-connection server's
// workers. On top of libmicrohttpd's strict request parsing (RFC 9112 framing, Host required,
// 100-continue, header size capped by the per-connection memory), this listener adds:
//   - a deadline for the whole request, headers and body: a request not complete within
//     `requestTimeout` of the moment its connection was ready for it (accepted, or the
//     previous response sent) is closed. libmicrohttpd's own timeout is an idle timeout, which
//     a client sending a byte every few seconds never meets;
//   - a cap on open connections per client address, checked at accept (clients for which
//     `unlimitedClient` says so, e.g. a trusted reverse proxy, are exempt), and in total;
//   - counters of all of it (stats()).
// With `tls` set it speaks TLS only (GnuTLS, which Debian's libmicrohttpd is built with): each
// connection takes the credentials current when it is accepted, so a renewed certificate is
// served from the next connection on; the deadline works on the TCP socket either way. With
// `threadPerConnection` it serves each connection on its own thread instead: for the main
// listener when it needs TLS, whose handlers (a reload) may take long enough to hold up an
// event loop's other connections.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "http/HttpMessage.h"
#include "http/ListenAddress.h"
#include "http/TlsCredentials.h"

namespace apphealth {

struct MicroHttpdOptions {
  std::string name = "beacon listener";  // in log lines
  std::string listenAddress;  // host:port or :port
  int threads = 2;            // event loops
  bool threadPerConnection = false;  // a thread per open connection instead of `threads` event loops
  int maxConnections = 1024;  // open connections in total; more are refused at accept
  int maxConnectionsPerClient = 16;
  std::function<bool(std::string_view address)> unlimitedClient;  // no per-client cap for these
  std::chrono::milliseconds requestTimeout{10000};
  std::size_t memoryPerConnection = 32 * 1024;  // request line and headers must fit
  // TLS: called at each accepted connection for the credentials its handshake uses; nullptr
  // refuses the connection (e.g. while the web config is broken). Unset: plain HTTP.
  std::function<std::shared_ptr<const TlsCredentials>()> tls;
};

struct ListenerStats {
  std::uint64_t accepted = 0;
  std::uint64_t refusedClientLimit = 0;    // over maxConnectionsPerClient
  std::uint64_t refusedListenerLimit = 0;  // over maxConnections
  std::uint64_t timedOut = 0;              // closed at the request deadline
  std::uint64_t refusedTls = 0;            // TLS: no credentials, or a client certificate refused
  std::size_t open = 0;
};

class MicroHttpdListener : public HttpListener {
 public:
  // Throws std::runtime_error with a readable reason when the address cannot be bound.
  explicit MicroHttpdListener(MicroHttpdOptions options);
  ~MicroHttpdListener() override;
  MicroHttpdListener(const MicroHttpdListener&) = delete;
  MicroHttpdListener& operator=(const MicroHttpdListener&) = delete;

  void route(const std::string& path, Route route) override;
  void filter(RequestFilter filter) override;
  int port() const override;
  ListenerStats stats() const;

  struct State;  // everything libmicrohttpd's callbacks reach (defined in the .cpp)

 private:
  std::unique_ptr<State> state_;
};

}  // namespace apphealth
