#pragma once
// A loopback TCP relay in front of a server that passes the client's bytes freely but only the
// first `budget` bytes of the server's answers, then holds the rest back. A client behind it
// (pg_dump, pg_basebackup) is stuck mid-stream, waiting for data that never comes, however
// fast or slow the machine is: the test can then kill it "halfway" deterministically, instead
// of racing a poll against the producer.

#include <atomic>
#include <cstdint>
#include <thread>

namespace apphealth::test {

class TcpGate {
 public:
  TcpGate(int serverPort, std::uint64_t budget);  // listening on 127.0.0.1:port() when it returns
  ~TcpGate();
  TcpGate(const TcpGate&) = delete;
  TcpGate& operator=(const TcpGate&) = delete;

  int port() const { return port_; }
  // Server-to-client bytes passed so far, over every connection (at most the budget).
  std::uint64_t passed() const { return passed_; }

 private:
  void relay(const std::stop_token& stop);

  int serverPort_;
  std::uint64_t budget_;
  int listenFd_ = -1;
  int port_ = 0;
  std::atomic<std::uint64_t> passed_{0};
  std::jthread thread_;
};

}  // namespace apphealth::test
