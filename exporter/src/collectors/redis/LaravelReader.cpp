#include "collectors/redis/LaravelReader.h"

#include "collectors/redis/QueueFormats.h"
#include "collectors/redis/RedisReplies.h"

namespace apphealth {

// Layout (Illuminate\Queue\RedisQueue and LuaScripts, 8.x to 12.x), every key behind the
// connection's prefix (database.redis.options.prefix):
//   queues:NAME            list of JSON payloads, RPUSHed, popped from the head
//   queues:NAME:delayed    zset payload -> available_at (later(), released with a delay)
//   queues:NAME:reserved   zset payload -> reserved until (jobs being executed)
//   queues:NAME:notify     list used to wake blocking pops: not jobs
// Payloads carry createdAt (Unix seconds) since Laravel 12; older ones record no enqueue
// time. Failed jobs go to the failed_jobs database table, not to Redis.
LaravelReader::LaravelReader(std::string prefix, std::vector<std::string> queues)
    : prefix_(std::move(prefix)), queues_(std::move(queues)) {}

std::vector<std::pair<std::string, std::string>> LaravelReader::fixedStates() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& q : queues_) {
    for (const char* state : {"waiting", "delayed", "active"}) out.emplace_back(q, state);
  }
  return out;
}

void LaravelReader::start(RedisRounds& rounds, ReadContext& ctx) {
  beginSample(ctx);
  for (const auto& q : queues_) {
    const std::string base = prefix_ + "queues:" + q;
    countInto(rounds, {"LLEN", base}, q, "waiting", "laravel");
    countInto(rounds, {"ZCARD", base + ":delayed"}, q, "delayed", "laravel");
    countInto(rounds, {"ZCARD", base + ":reserved"}, q, "active", "laravel");
    rounds.add({"LINDEX", base, "0"}, [this, &ctx, q, base](const redisReply& r, const RedisCommand&) {
      auto payload = reply::text(r);
      if (!payload) {
        // Empty queue: age 0 (so that "oldest job too old" resolves) for apps whose payloads
        // have been seen to carry the time.
        if (timed_.count(q)) ctx.out.addAge(q, 0);
        return;
      }
      if (auto created = parseJsonTime(*payload, "createdAt")) {
        timed_.insert(q);
        ctx.out.addAge(q, std::max(0.0, ctx.now - *created));
      } else if (jsonHasField(*payload, "createdAt")) {
        ctx.problems.report("laravel-age:" + q, "laravel queue " + q + ": the oldest job has an unreadable createdAt");
      } else if (!jsonHasField(*payload, "uuid") && !jsonHasField(*payload, "job")) {
        ctx.problems.report("laravel-age:" + q, "laravel queue " + q + ": the oldest job in " + base +
                                                    " is not a Laravel JSON payload");
      } else {
        ctx.problems.note("laravel-noage:" + q, "laravel queue " + q + ": payloads carry no createdAt (Laravel "
                                                "before 12): no oldest-job age for this queue");
      }
    });
  }
}

}  // namespace apphealth
