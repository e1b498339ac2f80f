#include "AttackClients.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "TestSupport.h"

namespace apphealth::test {

namespace {

bool setBlocking(int fd, bool blocking) {
  const int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0) return false;
  return fcntl(fd, F_SETFL, blocking ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK)) == 0;
}

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int connectFrom(const std::string& source, int port, std::chrono::milliseconds timeout) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in local{};
  local.sin_family = AF_INET;
  if (inet_pton(AF_INET, source.c_str(), &local.sin_addr) != 1 ||
      bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
    close(fd);
    return -1;
  }
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(static_cast<uint16_t>(port));
  remote.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  setBlocking(fd, false);
  if (connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0) {
    if (errno != EINPROGRESS) {
      close(fd);
      return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    int error = 0;
    socklen_t length = sizeof error;
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
      close(fd);
      return -1;
    }
  }
  setBlocking(fd, true);
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

std::string loopbackSource(int i) {
  return "127.0." + std::to_string(i / 250 + 1) + "." + std::to_string(i % 250 + 1);
}

RawExchange readUntilClosed(int fd, std::chrono::milliseconds timeout) {
  RawExchange result;
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + timeout;
  char buffer[4096];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) {  // orderly close, or a reset: either way the server ended it
      result.closed = true;
      break;
    }
    result.received.append(buffer, static_cast<std::size_t>(n));
  }
  result.seconds = secondsSince(start);
  return result;
}

RawExchange rawExchange(int port, const std::string& request, std::chrono::milliseconds timeout,
                        const std::string& source) {
  const int fd = connectFrom(source, port);
  if (fd < 0) return {"", true, 0};
  std::size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  auto result = readUntilClosed(fd, timeout);
  close(fd);
  return result;
}

int firstStatus(const std::string& bytes) {
  if (bytes.rfind("HTTP/1.", 0) != 0 || bytes.size() < 12) return 0;
  return std::atoi(bytes.substr(9, 3).c_str());
}

// ---------------------------------------------------------------- SlowCrowd

SlowCrowd::SlowCrowd(int port, int count, std::vector<std::string> sources, std::string prefix, std::string drip,
                     std::chrono::milliseconds interval)
    : drip_(std::move(drip)), interval_(interval) {
  conns_.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    const int fd = connectFrom(sources[static_cast<std::size_t>(i) % sources.size()], port);
    if (fd < 0) continue;
    const auto now = std::chrono::steady_clock::now();
    Conn conn{fd, now, now};
    if (!prefix.empty() && send(fd, prefix.data(), prefix.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(prefix.size())) {
      conn.serverClosed = true;
    }
    setBlocking(fd, false);
    conns_.push_back(conn);
    ++connected_;
  }
  thread_ = std::thread([this] { run(); });
}

SlowCrowd::~SlowCrowd() {
  stop_ = true;
  thread_.join();
  for (auto& c : conns_) close(c.fd);
}

void SlowCrowd::run() {
  auto nextDrip = std::chrono::steady_clock::now() + interval_;
  std::vector<pollfd> polls;
  while (!stop_) {
    polls.clear();
    {
      std::lock_guard lock(mutex_);
      for (const auto& c : conns_) polls.push_back({c.serverClosed ? -1 : c.fd, POLLIN | POLLRDHUP, 0});
    }
    poll(polls.data(), polls.size(), 50);
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      auto& c = conns_[i];
      if (c.serverClosed || polls[i].revents == 0) continue;
      // Anything readable here is an answer or the end: the request is never complete, so an
      // answer can only be a refusal followed by a close. Drain it and look for the close.
      char buffer[1024];
      const ssize_t n = recv(c.fd, buffer, sizeof buffer, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) || (polls[i].revents & (POLLRDHUP | POLLHUP | POLLERR))) {
        c.serverClosed = true;
        c.closed = now;
      }
    }
    if (now < nextDrip) continue;
    nextDrip = now + interval_;
    for (auto& c : conns_) {
      if (c.serverClosed || drip_.empty()) continue;
      const char byte = drip_[c.dripped % drip_.size()];
      const ssize_t n = send(c.fd, &byte, 1, MSG_NOSIGNAL);
      if (n == 1) {
        ++c.dripped;
      } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        c.serverClosed = true;
        c.closed = now;
      }
    }
  }
}

int SlowCrowd::open() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(std::count_if(conns_.begin(), conns_.end(), [](const Conn& c) { return !c.serverClosed; }));
}

int SlowCrowd::closedByServer() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(std::count_if(conns_.begin(), conns_.end(), [](const Conn& c) { return c.serverClosed; }));
}

double SlowCrowd::longestHeldSeconds() const {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  double longest = 0;
  for (const auto& c : conns_) {
    longest = std::max(longest, std::chrono::duration<double>((c.serverClosed ? c.closed : now) - c.opened).count());
  }
  return longest;
}

// ---------------------------------------------------------------- HonestClient

HonestClient::HonestClient(std::string url, std::string body, std::vector<std::string> headers,
                           std::chrono::milliseconds period, std::chrono::milliseconds timeout)
    : url_(std::move(url)), body_(std::move(body)), headers_(std::move(headers)), period_(period), timeout_(timeout) {
  // At least one request, even when stop() comes before the thread first runs: a case that
  // finishes quickly must still show that an honest beacon was served meanwhile.
  thread_ = std::thread([this] {
    do {
      const auto started = std::chrono::steady_clock::now();
      const auto r = httpRequest("POST", url_, headers_, body_, timeout_.count());
      {
        std::lock_guard lock(mutex_);
        statuses_.push_back(r.status);
        latencies_.push_back(r.seconds);
      }
      const auto next = started + period_;
      while (!stop_ && std::chrono::steady_clock::now() < next) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    } while (!stop_);
  });
}

HonestClient::~HonestClient() { stop(); }

void HonestClient::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

HonestClient::Summary HonestClient::summary(long expected) const {
  std::lock_guard lock(mutex_);
  Summary s;
  s.sent = static_cast<int>(statuses_.size());
  s.statuses = statuses_;
  s.ok = static_cast<int>(std::count(statuses_.begin(), statuses_.end(), expected));
  std::vector<double> sorted = latencies_;
  std::sort(sorted.begin(), sorted.end());
  if (!sorted.empty()) {
    s.p50 = sorted[sorted.size() / 2];
    s.p99 = sorted[std::min(sorted.size() - 1, sorted.size() * 99 / 100)];
    s.max = sorted.back();
  }
  return s;
}

std::string HonestClient::Summary::describe() const {
  std::ostringstream out;
  out << ok << " of " << sent << " answered as expected; latency p50 " << p50 * 1000 << " ms, p99 " << p99 * 1000
      << " ms, max " << max * 1000 << " ms; statuses:";
  for (std::size_t i = 0; i < statuses.size() && i < 40; ++i) out << ' ' << statuses[i];
  return out.str();
}

std::size_t residentBytes(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6)) * 1024;
  }
  return 0;
}

}  // namespace apphealth::test
