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
// TLS is possible on this listener (libmicrohttpd is built with GnuTLS: MHD_USE_TLS with
// MHD_OPTION_HTTPS_MEM_KEY/CERT); closing at the deadline works on the TCP socket either way.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "http/HttpMessage.h"
#include "http/ListenAddress.h"

namespace apphealth {

struct MicroHttpdOptions {
  std::string listenAddress;  // host:port or :port
  int threads = 2;            // event loops
  int maxConnections = 1024;  // open connections in total; more are refused at accept
  int maxConnectionsPerClient = 16;
  std::function<bool(std::string_view address)> unlimitedClient;  // no per-client cap for these
  std::chrono::milliseconds requestTimeout{10000};
  std::size_t memoryPerConnection = 32 * 1024;  // request line and headers must fit
};

struct ListenerStats {
  std::uint64_t accepted = 0;
  std::uint64_t refusedClientLimit = 0;    // over maxConnectionsPerClient
  std::uint64_t refusedListenerLimit = 0;  // over maxConnections
  std::uint64_t timedOut = 0;              // closed at the request deadline
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
  int port() const override;
  ListenerStats stats() const;

  struct State;  // everything libmicrohttpd's callbacks reach (defined in the .cpp)

 private:
  std::unique_ptr<State> state_;
};

}  // namespace apphealth
