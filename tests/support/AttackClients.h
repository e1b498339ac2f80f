#pragma once
// Hostile and honest HTTP clients for the attack suite, all on loopback. Linux routes the whole
// of 127.0.0.0/8 to lo, so one test can play many clients by binding to 127.x.y.z source
// addresses. Every loop is bounded in count and time; every socket is closed by a destructor.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace apphealth::test {

// A TCP connection from `source` (a 127.x.y.z address) to 127.0.0.1:port, or -1. Non-blocking
// connect bounded by `timeout`, then the socket is made blocking again.
int connectFrom(const std::string& source, int port, std::chrono::milliseconds timeout = std::chrono::seconds(3));

// "127.0.<i / 250 + 1>.<i % 250 + 1>": the i-th of many distinct client addresses.
std::string loopbackSource(int i);

// Sends `request` on a fresh connection and reads until the server closes it or `timeout`
// passes. `closed` tells which happened.
struct RawExchange {
  std::string received;
  bool closed = false;
  double seconds = 0;
};
RawExchange rawExchange(int port, const std::string& request, std::chrono::milliseconds timeout,
                        const std::string& source = "127.0.0.1");

// Reads what the server sends on `fd` until it closes the connection or `timeout` passes.
RawExchange readUntilClosed(int fd, std::chrono::milliseconds timeout);

// The HTTP status of the first response in `bytes` ("HTTP/1.1 204 ..." -> 204), 0 if none.
int firstStatus(const std::string& bytes);

// A crowd of slow clients: `count` connections spread over `sources` (round robin), each
// sending `prefix` at once and then one byte of `drip` every `interval` (cycling over `drip`).
// A thread keeps them dribbling and notes when the server closes one. Stops and closes
// everything on destruction.
class SlowCrowd {
 public:
  SlowCrowd(int port, int count, std::vector<std::string> sources, std::string prefix, std::string drip,
            std::chrono::milliseconds interval);
  ~SlowCrowd();
  SlowCrowd(const SlowCrowd&) = delete;
  SlowCrowd& operator=(const SlowCrowd&) = delete;

  int connected() const { return connected_; }  // connect() succeeded
  int open() const;                            // still open from the server's side
  int closedByServer() const;                  // the server closed (or reset) them
  // Longest time a connection has been held open by the server so far, in seconds.
  double longestHeldSeconds() const;

 private:
  struct Conn {
    int fd;
    std::chrono::steady_clock::time_point opened;
    std::chrono::steady_clock::time_point closed;
    bool serverClosed = false;
    std::size_t dripped = 0;
  };
  void run();

  const std::string drip_;
  const std::chrono::milliseconds interval_;
  mutable std::mutex mutex_;
  std::vector<Conn> conns_;
  int connected_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// An honest browser stand-in: posts `body` to `url` every `period` on a fresh connection with
// `timeout` per request, until stop(). Records every status and latency.
class HonestClient {
 public:
  HonestClient(std::string url, std::string body, std::vector<std::string> headers,
               std::chrono::milliseconds period = std::chrono::milliseconds(100),
               std::chrono::milliseconds timeout = std::chrono::seconds(5));
  ~HonestClient();
  void stop();

  struct Summary {
    int sent = 0;
    int ok = 0;  // answered with `expected`
    double p50 = 0, p99 = 0, max = 0;  // seconds, over all requests
    std::vector<long> statuses;
    std::string describe() const;
  };
  Summary summary(long expected = 204) const;

 private:
  const std::string url_;
  const std::string body_;
  const std::vector<std::string> headers_;
  const std::chrono::milliseconds period_, timeout_;
  mutable std::mutex mutex_;
  std::vector<long> statuses_;
  std::vector<double> latencies_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Resident set size of a process in bytes (VmRSS), 0 if unknown.
std::size_t residentBytes(int pid);

}  // namespace apphealth::test
