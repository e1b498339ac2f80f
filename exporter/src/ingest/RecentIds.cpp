#include "ingest/RecentIds.h"

#include <algorithm>
#include <bit>
#include <functional>
#include <new>

namespace apphealth::ingest {

namespace {

std::uint64_t fingerprint(std::string_view scope, std::string_view id) {
  const std::uint64_t a = std::hash<std::string_view>{}(scope);
  const std::uint64_t b = std::hash<std::string_view>{}(id);
  const std::uint64_t h = b ^ (a + 0x9e3779b97f4a7c15ULL + (b << 6) + (b >> 2));
  return h == 0 ? 1 : h;  // 0 marks an empty slot
}

// calloc: large blocks come zeroed from mmap, so untouched slots cost no resident memory.
auto zeroed(std::size_t count) {
  auto* p = static_cast<std::uint64_t*>(std::calloc(count, sizeof(std::uint64_t)));
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

RecentIds::RecentIds(std::size_t capacity)
    : perShard_(std::max<std::size_t>(1, capacity / kShards)), tableSize_(std::bit_ceil(2 * perShard_)) {
  for (auto& shard : shards_) {
    shard.slots.reset(zeroed(tableSize_));
    shard.order.reset(zeroed(perShard_));
  }
}

std::size_t RecentIds::findOrEmpty(const Shard& shard, std::uint64_t fp) const {
  const std::size_t mask = tableSize_ - 1;
  std::size_t i = fp & mask;
  while (shard.slots[i] != 0 && shard.slots[i] != fp) i = (i + 1) & mask;
  return i;
}

// Removes `fp` and closes the gap (backward-shift deletion), so probes never need tombstones.
void RecentIds::erase(Shard& shard, std::uint64_t fp) const {
  const std::size_t mask = tableSize_ - 1;
  std::size_t hole = findOrEmpty(shard, fp);
  if (shard.slots[hole] != fp) return;
  for (std::size_t j = (hole + 1) & mask; shard.slots[j] != 0; j = (j + 1) & mask) {
    const std::size_t home = shard.slots[j] & mask;
    // The entry at j may fill the hole unless its home lies cyclically in (hole, j].
    const bool homeBetween = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (!homeBetween) {
      shard.slots[hole] = shard.slots[j];
      hole = j;
    }
  }
  shard.slots[hole] = 0;
}

std::size_t RecentIds::shardOf(std::string_view scope, std::string_view id) {
  return static_cast<std::size_t>(fingerprint(scope, id) >> 60);
}

bool RecentIds::insert(std::string_view scope, std::string_view id) {
  const std::uint64_t fp = fingerprint(scope, id);
  Shard& shard = shards_[fp >> 60];
  std::lock_guard lock(shard.mutex);
  std::size_t slot = findOrEmpty(shard, fp);
  if (shard.slots[slot] == fp) return false;
  if (shard.size == perShard_) {
    erase(shard, shard.order[shard.next]);  // the oldest
    slot = findOrEmpty(shard, fp);          // the eviction may have moved entries
  } else {
    ++shard.size;
  }
  shard.order[shard.next] = fp;
  shard.next = (shard.next + 1) % perShard_;
  shard.slots[slot] = fp;
  return true;
}

}  // namespace apphealth::ingest
