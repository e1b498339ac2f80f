#include "ingest/IngestGuards.h"

#include <arpa/inet.h>

#include <algorithm>
#include <functional>

namespace apphealth::ingest {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool parseV4(std::string_view text, std::uint32_t& out) {
  in_addr addr{};
  if (text.size() >= INET_ADDRSTRLEN || inet_pton(AF_INET, std::string(text).c_str(), &addr) != 1) return false;
  out = ntohl(addr.s_addr);
  return true;
}

// The canonical text of an IPv4 or IPv6 address, or "" when `text` is not one.
std::string canonicalAddress(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return {};
  const std::string input(text);
  char out[INET6_ADDRSTRLEN];
  in_addr v4{};
  if (inet_pton(AF_INET, input.c_str(), &v4) == 1) return inet_ntop(AF_INET, &v4, out, sizeof out);
  in6_addr v6{};
  if (inet_pton(AF_INET6, input.c_str(), &v6) == 1) return inet_ntop(AF_INET6, &v6, out, sizeof out);
  return {};
}

bool contains(std::string_view haystack, std::string_view needle) { return haystack.find(needle) != std::string_view::npos; }

}  // namespace

ClientAddress::ClientAddress(const std::vector<std::string>& trusted) {
  for (const auto& entry : trusted) {
    const auto slash = entry.find('/');
    std::uint32_t ip = 0;
    if (parseV4(std::string_view(entry).substr(0, slash), ip)) {
      const int bits = slash == std::string::npos ? 32 : std::clamp(std::stoi(entry.substr(slash + 1)), 0, 32);
      const std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits);
      v4_.push_back({ip & mask, mask});
    } else {
      const std::string canonical = canonicalAddress(entry);
      exact_.push_back(canonical.empty() ? entry : canonical);
    }
  }
}

bool ClientAddress::isTrusted(std::string_view address) const {
  std::uint32_t ip = 0;
  if (parseV4(address, ip)) {
    return std::any_of(v4_.begin(), v4_.end(), [&](const Cidr& c) { return (ip & c.mask) == c.network; });
  }
  const std::string canonical = canonicalAddress(address);
  return !canonical.empty() && std::find(exact_.begin(), exact_.end(), canonical) != exact_.end();
}

std::string ClientAddress::resolve(std::string_view peer, std::string_view forwardedFor) const {
  std::string vouching(peer);
  if (forwardedFor.empty() || !isTrusted(peer)) return vouching;
  // Walk from the right: each trusted hop vouches for the one before it.
  std::string_view rest = forwardedFor;
  while (!rest.empty()) {
    const auto comma = rest.rfind(',');
    const std::string_view hop = trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
    if (hop.empty()) continue;
    std::string address = canonicalAddress(hop);
    if (address.empty()) return vouching;  // not an address: the proxy that passed it on answers for it
    if (!isTrusted(address)) return address;
    vouching = std::move(address);
  }
  return vouching;
}

std::string rateLimitKey(std::string_view address) {
  in6_addr v6{};
  if (address.find(':') == std::string_view::npos || address.size() >= INET6_ADDRSTRLEN ||
      inet_pton(AF_INET6, std::string(address).c_str(), &v6) != 1) {
    return std::string(address);
  }
  std::fill(v6.s6_addr + 8, v6.s6_addr + 16, 0);
  char out[INET6_ADDRSTRLEN];
  return std::string(inet_ntop(AF_INET6, &v6, out, sizeof out)) + "/64";
}

RateLimiter::RateLimiter(double ratePerSecond, double burst, std::size_t maxKeys)
    : rate_(ratePerSecond), burst_(burst), maxPerShard_(std::max<std::size_t>(1, maxKeys / kShards)) {
  for (auto& shard : shards_) shard.overflow = {burst_, std::chrono::steady_clock::now()};
}

bool RateLimiter::allow(std::string_view key) { return allow(key, std::chrono::steady_clock::now()); }

bool RateLimiter::refilled(const Bucket& bucket, std::chrono::steady_clock::time_point now) const {
  return bucket.tokens + std::chrono::duration<double>(now - bucket.last).count() * rate_ >= burst_;
}

bool RateLimiter::take(Bucket& bucket, std::chrono::steady_clock::time_point now) const {
  const double elapsed = std::max(0.0, std::chrono::duration<double>(now - bucket.last).count());
  bucket.tokens = std::min(burst_, bucket.tokens + elapsed * rate_);
  bucket.last = std::max(bucket.last, now);
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

bool RateLimiter::allow(std::string_view key, std::chrono::steady_clock::time_point now) {
  auto& shard = shards_[std::hash<std::string_view>{}(key) % kShards];
  std::lock_guard lock(shard.mutex);
  if (const auto found = shard.index.find(key); found != shard.index.end()) {
    shard.recent.splice(shard.recent.begin(), shard.recent, found->second);  // now the most recent
    return take(found->second->bucket, now);
  }
  if (shard.index.size() >= maxPerShard_) {
    auto& oldest = shard.recent.back();
    if (!refilled(oldest.bucket, now)) return take(shard.overflow, now);
    shard.index.erase(oldest.key);
    shard.recent.pop_back();
  }
  shard.recent.push_front({std::string(key), {burst_, now}});
  shard.index.emplace(shard.recent.front().key, shard.recent.begin());
  return take(shard.recent.front().bucket, now);
}

std::size_t RateLimiter::size() {
  std::size_t total = 0;
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    total += shard.index.size();
  }
  return total;
}

const char* classifyDevice(std::string_view claimed, std::string_view ua) {
  if (claimed == "mobile") return "mobile";
  if (claimed == "tablet") return "tablet";
  if (claimed == "desktop") return "desktop";
  if (contains(ua, "iPad") || contains(ua, "Tablet") || (contains(ua, "Android") && !contains(ua, "Mobile"))) {
    return "tablet";
  }
  if (contains(ua, "Mobi") || contains(ua, "iPhone") || contains(ua, "Android")) return "mobile";
  return "desktop";
}

}  // namespace apphealth::ingest
