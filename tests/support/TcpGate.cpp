#include "TcpGate.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "TestSupport.h"

namespace apphealth::test {

namespace {

// Writes all of `data` (blocking); false when the peer is gone.
bool sendAll(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

TcpGate::TcpGate(int serverPort, std::uint64_t budget) : serverPort_(serverPort), budget_(budget) {
  listenFd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listenFd_ < 0 || bind(listenFd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(listenFd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 || listen(listenFd_, 8) != 0) {
    if (listenFd_ >= 0) close(listenFd_);
    throw std::runtime_error("TcpGate: cannot listen on 127.0.0.1");
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::jthread([this](std::stop_token stop) { relay(stop); });
}

TcpGate::~TcpGate() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
  close(listenFd_);
}

void TcpGate::relay(const std::stop_token& stop) {
  struct Pair {
    int client;
    int server;
  };
  std::vector<Pair> pairs;
  std::vector<char> buffer(64 * 1024);
  while (!stop.stop_requested()) {
    // One poll over the listener and both ends of every connection; the server ends are
    // watched only while the budget lasts, so what the server sends after it stays unread.
    std::vector<pollfd> fds{{listenFd_, POLLIN, 0}};
    const bool open = passed_ < budget_;
    for (const auto& p : pairs) {
      fds.push_back({p.client, POLLIN, 0});
      fds.push_back({p.server, static_cast<short>(open ? POLLIN : 0), 0});
    }
    if (poll(fds.data(), fds.size(), 50) <= 0) continue;
    std::vector<Pair> kept;
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      const Pair& p = pairs[i];
      bool alive = true;
      const short fromClient = fds[1 + 2 * i].revents;
      if (fromClient & (POLLIN | POLLHUP | POLLERR)) {
        const ssize_t n = recv(p.client, buffer.data(), buffer.size(), 0);
        alive = n > 0 && sendAll(p.server, buffer.data(), static_cast<std::size_t>(n));
      }
      const short fromServer = fds[2 + 2 * i].revents;
      if (alive && (fromServer & (POLLIN | POLLHUP | POLLERR))) {
        if (passed_ < budget_) {
          const std::size_t room = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), budget_ - passed_));
          const ssize_t n = recv(p.server, buffer.data(), room, 0);
          alive = n > 0 && sendAll(p.client, buffer.data(), static_cast<std::size_t>(n));
          if (n > 0) passed_ += static_cast<std::uint64_t>(n);
        } else if (fromServer & (POLLHUP | POLLERR)) {
          alive = false;  // the server hung up (or failed) while its answer was held back
        }
      }
      if (alive) {
        kept.push_back(p);
      } else {
        close(p.client);
        close(p.server);
      }
    }
    pairs = std::move(kept);
    if (fds[0].revents & POLLIN) {
      const int client = accept(listenFd_, nullptr, nullptr);
      const int server = client >= 0 ? connectLoopback(serverPort_) : -1;
      if (server >= 0) {
        pairs.push_back({client, server});
      } else if (client >= 0) {
        close(client);
      }
    }
  }
  for (const auto& p : pairs) {
    close(p.client);
    close(p.server);
  }
}

}  // namespace apphealth::test
