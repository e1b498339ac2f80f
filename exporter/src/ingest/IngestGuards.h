#pragma once
// The small, thread-safe guards in front of the beacon endpoints: which client IP a request
// really comes from, a per-IP token bucket, and the device class. All are bounded in memory
// whatever the traffic (the memory of recent beacon ids is in RecentIds.h).

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace apphealth::ingest {

// Resolves the client address: the peer, or, when the peer is a trusted proxy, the rightmost
// address in X-Forwarded-For that is not itself a trusted proxy.
class ClientAddress {
 public:
  // `trusted`: IPv4/IPv6 addresses or IPv4 CIDRs ("10.0.0.0/8"), validated by the config.
  explicit ClientAddress(const std::vector<std::string>& trusted);
  std::string resolve(std::string_view peer, std::string_view forwardedFor) const;
  bool isTrusted(std::string_view address) const;

 private:
  struct Cidr {
    std::uint32_t network;
    std::uint32_t mask;
  };
  std::vector<Cidr> v4_;
  std::vector<std::string> exact_;  // IPv6 and anything else, compared as text
};

// Token bucket per key, sharded to keep lock contention low. When a shard holds too many
// keys, idle (full) buckets are dropped; a flood of distinct addresses cannot grow memory.
class RateLimiter {
 public:
  RateLimiter(double ratePerSecond, double burst, std::size_t maxKeys = 65536);
  bool allow(std::string_view key);
  bool allow(std::string_view key, std::chrono::steady_clock::time_point now);
  std::size_t size();  // buckets held, for tests and debugging

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point last;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Bucket> buckets;
  };
  static constexpr std::size_t kShards = 16;
  double rate_;
  double burst_;
  std::size_t maxPerShard_;
  Shard shards_[kShards];
};

// "mobile", "tablet" or "desktop": the client's own claim when it is one of those, else a
// User-Agent heuristic (the same split as Chrome UX Report's form factors).
const char* classifyDevice(std::string_view claimed, std::string_view userAgent);

}  // namespace apphealth::ingest
