#pragma once
// The small, thread-safe guards in front of the beacon endpoints: which client IP a request
// really comes from, a per-IP token bucket, and the device class. All are bounded in memory
// whatever the traffic (the memory of recent beacon ids is in RecentIds.h).

#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace apphealth::ingest {

// Resolves the client address: the peer, or, when the peer is a trusted proxy, the rightmost
// address in X-Forwarded-For that is not itself a trusted proxy. Every hop must be an IP
// address: at the first one that is not, the walk stops and the request counts as the last
// trusted hop's (the proxy that passed the garbage on), so made-up hops buy no fresh identity.
// Addresses come back in canonical text form ("2001:db8::1", never "2001:DB8:0::1").
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
  std::vector<std::string> exact_;  // IPv6 and anything else, in canonical form
};

// The rate limiter's key for a client address: IPv4 addresses as they are, IPv6 addresses by
// their /64 (one subscriber's network: a single host can use any of its 2^64 addresses).
std::string rateLimitKey(std::string_view address);

// Token bucket per key, sharded to keep lock contention low, with a bounded memory: each shard
// holds at most maxKeys/16 keys in least-recently-used order. A new key takes the least recently
// used bucket only when that bucket has refilled, so forgetting it changes nothing; when the
// shard is full of clients active within the last burst/rate seconds, newcomers share the
// shard's one overflow bucket until some go idle. No active client is ever forgotten, and a
// flood of distinct addresses cannot grow memory or reset anybody's limit.
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
  struct Entry {
    std::string key;
    Bucket bucket;
  };
  struct Shard {
    std::mutex mutex;
    std::list<Entry> recent;  // most recently used first
    std::unordered_map<std::string_view, std::list<Entry>::iterator> index;  // views into recent's keys
    Bucket overflow;
  };
  bool take(Bucket& bucket, std::chrono::steady_clock::time_point now) const;
  bool refilled(const Bucket& bucket, std::chrono::steady_clock::time_point now) const;

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
