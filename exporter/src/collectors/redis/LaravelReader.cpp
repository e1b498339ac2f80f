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

namespace {
// Per queue: LLEN, ZCARD :delayed, ZCARD :reserved, LINDEX 0 (the oldest payload).
const ReadScript& laravelScript() {
  static const ReadScript script(R"lua(#!lua flags=no-writes
local out, n = {}, 0
for i = 2, #ARGV do
  local base = ARGV[1] .. 'queues:' .. ARGV[i]
  out[n + 1] = redis.pcall('LLEN', base)
  out[n + 2] = redis.pcall('ZCARD', base .. ':delayed')
  out[n + 3] = redis.pcall('ZCARD', base .. ':reserved')
  out[n + 4] = out[n + 1] ~= 0 and redis.pcall('LINDEX', base, 0) or false
  n = n + 4
end
return out
)lua");
  return script;
}
}  // namespace

void LaravelReader::start(RedisRounds& rounds, ReadContext& ctx) {
  beginSample(ctx);
  for (const auto& q : queues_) {
    for (const char* state : {"waiting", "delayed", "active"}) ctx.out.addJobs(q, state, 0);
  }
  readQueues(
      rounds, laravelScript(), queues_, {prefix_}, 4,
      [this, &ctx](std::size_t i, redisReply* const* e) {
        const std::string& q = queues_[i];
        const std::string base = prefix_ + "queues:" + q;
        takeCount(*e[0], q, "waiting", "laravel", base);
        takeCount(*e[1], q, "delayed", "laravel", base + ":delayed");
        takeCount(*e[2], q, "active", "laravel", base + ":reserved");
        takeHead(ctx, q, base, *e[3]);
      },
      [this, &rounds, &ctx](std::size_t i) { queueCommands(rounds, ctx, queues_[i]); }, "laravel");
}

void LaravelReader::queueCommands(RedisRounds& rounds, ReadContext& ctx, const std::string& q) {
  const std::string base = prefix_ + "queues:" + q;
  countInto(rounds, {"LLEN", base}, q, "waiting", "laravel");
  countInto(rounds, {"ZCARD", base + ":delayed"}, q, "delayed", "laravel");
  countInto(rounds, {"ZCARD", base + ":reserved"}, q, "active", "laravel");
  rounds.add({"LINDEX", base, "0"}, [this, &ctx, &q, base](const redisReply& r, const RedisCommand&) { takeHead(ctx, q, base, r); });
}

void LaravelReader::takeHead(ReadContext& ctx, const std::string& q, const std::string& base, const redisReply& r) {
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
}

}  // namespace apphealth
