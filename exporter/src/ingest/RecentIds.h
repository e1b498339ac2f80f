#pragma once
// A bounded memory of recent beacon ids, so a retried beacon (same metric id) or a second
// report of the same page view is counted once. FIFO eviction past the capacity.
//
// Ids are kept as 64-bit fingerprints in open-addressing tables (linear probing, load <= 1/2):
// one cache miss per lookup and 16 bytes per id. Strings in a node-based set cost several times
// the memory and, as the set outgrew the caches, 15% of the CPU under beacon load. Two distinct
// ids share a fingerprint with odds of about capacity / 2^64 per insert: never, in practice.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string_view>

namespace apphealth::ingest {

class RecentIds {
 public:
  explicit RecentIds(std::size_t capacity = 200000);
  // True when (scope, id) was not among the last `capacity` ids; remembers it. `scope` keeps
  // kinds of ids apart ("LCP" metric ids, "pv" page views).
  bool insert(std::string_view scope, std::string_view id);
  // Which of the kShards FIFOs an id belongs to (eviction is per shard); for tests.
  static std::size_t shardOf(std::string_view scope, std::string_view id);

 private:
  struct FreeDeleter {
    void operator()(std::uint64_t* p) const { std::free(p); }
  };
  using Array = std::unique_ptr<std::uint64_t[], FreeDeleter>;
  struct Shard {
    std::mutex mutex;
    Array slots;             // 0 = empty; tableSize_ entries
    Array order;             // ring of the fingerprints held; once full, order[next] is the oldest
    std::size_t next = 0;
    std::size_t size = 0;
  };
  static constexpr std::size_t kShards = 16;  // chosen by the fingerprint's top 4 bits

  std::size_t findOrEmpty(const Shard& shard, std::uint64_t fingerprint) const;
  void erase(Shard& shard, std::uint64_t fingerprint) const;

  std::size_t perShard_;
  std::size_t tableSize_;  // a power of two >= 2 * perShard_
  Shard shards_[kShards];
};

}  // namespace apphealth::ingest
