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
      exact_.push_back(entry);
    }
  }
}

bool ClientAddress::isTrusted(std::string_view address) const {
  std::uint32_t ip = 0;
  if (parseV4(address, ip)) {
    return std::any_of(v4_.begin(), v4_.end(), [&](const Cidr& c) { return (ip & c.mask) == c.network; });
  }
  return std::find(exact_.begin(), exact_.end(), address) != exact_.end();
}

std::string ClientAddress::resolve(std::string_view peer, std::string_view forwardedFor) const {
  if (forwardedFor.empty() || !isTrusted(peer)) return std::string(peer);
  // Walk from the right: each trusted hop vouches for the one before it.
  std::string_view rest = forwardedFor;
  while (!rest.empty()) {
    const auto comma = rest.rfind(',');
    const std::string_view hop = trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
    if (hop.empty()) continue;
    if (!isTrusted(hop)) return std::string(hop.substr(0, 64));
  }
  return std::string(peer);
}

RateLimiter::RateLimiter(double ratePerSecond, double burst, std::size_t maxKeys)
    : rate_(ratePerSecond), burst_(burst), maxPerShard_(std::max<std::size_t>(1, maxKeys / kShards)) {}

bool RateLimiter::allow(std::string_view key) { return allow(key, std::chrono::steady_clock::now()); }

bool RateLimiter::allow(std::string_view key, std::chrono::steady_clock::time_point now) {
  auto& shard = shards_[std::hash<std::string_view>{}(key) % kShards];
  std::lock_guard lock(shard.mutex);
  auto it = shard.buckets.find(std::string(key));
  if (it == shard.buckets.end()) {
    if (shard.buckets.size() >= maxPerShard_) {
      // Drop buckets that have refilled: forgetting them changes nothing.
      const auto refill = std::chrono::duration<double>(burst_ / rate_);
      std::erase_if(shard.buckets, [&](const auto& entry) { return now - entry.second.last >= refill; });
      if (shard.buckets.size() >= maxPerShard_) shard.buckets.clear();
    }
    it = shard.buckets.emplace(std::string(key), Bucket{burst_, now}).first;
  }
  auto& bucket = it->second;
  const double elapsed = std::chrono::duration<double>(now - bucket.last).count();
  bucket.tokens = std::min(burst_, bucket.tokens + elapsed * rate_);
  bucket.last = now;
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

std::size_t RateLimiter::size() {
  std::size_t total = 0;
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    total += shard.buckets.size();
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
