// The Redis queue collector against a real redis-server started for each test. Every preset
// test lays its keys out exactly as the framework itself does (the version mirrored is named
// beside each test), then checks the exported counts exactly.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <sstream>
#include <set>
#include <thread>

#include <unistd.h>

#include "TestSupport.h"
#include "collectors/redis/ReadScript.h"

using namespace apphealth::test;

namespace {

std::string configFor(const TempRedis& redis, const std::string& queuesYaml, const std::string& target = "main",
                      const std::string& extra = "") {
  return "redis:\n"
         "  - name: " + target + "\n"
         "    address: 127.0.0.1:" + std::to_string(redis.port()) + "\n"
         "    interval: 200ms\n"
         "    timeout: 150ms\n" + extra +
         "    queues:\n" + queuesYaml;
}

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// RQ's utcformat(): "%Y-%m-%dT%H:%M:%S.%fZ".
std::string rqTime(double unixSeconds) {
  const auto whole = static_cast<std::time_t>(std::floor(unixSeconds));
  const int micros = static_cast<int>((unixSeconds - static_cast<double>(whole)) * 1e6);
  std::tm tm{};
  gmtime_r(&whole, &tm);
  char buffer[64];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[80];
  std::snprintf(out, sizeof out, "%s.%06dZ", buffer, micros);
  return out;
}

std::string num(double v) {
  char out[64];
  std::snprintf(out, sizeof out, "%.6f", v);
  return out;
}

std::string jobs(const std::string& target, const std::string& queue, const std::string& state) {
  return "apphealth_queue_jobs{target=\"" + target + "\",queue=\"" + queue + "\",state=\"" + state + "\"}";
}
std::string age(const std::string& target, const std::string& queue) {
  return "apphealth_queue_oldest_job_age_seconds{target=\"" + target + "\",queue=\"" + queue + "\"}";
}
std::string up(const std::string& target = "main") { return "apphealth_redis_up{target=\"" + target + "\"}"; }

// Waits for a successful sample of `target` and returns the metrics it produced.
std::map<std::string, double> sampled(const ExporterProcess& exporter, const std::string& target = "main") {
  std::map<std::string, double> m;
  const bool ok = waitFor(
      [&] {
        m = exporter.metrics();
        return m.count(up(target)) && m[up(target)] == 1;
      },
      5s);
  EXPECT_TRUE(ok) << exporter.log();
  return m;
}

// Only the apphealth_queue_* series of `m`.
std::map<std::string, double> queueSeries(const std::map<std::string, double>& m) {
  std::map<std::string, double> out;
  for (const auto& [series, value] : m) {
    if (series.rfind("apphealth_queue_", 0) == 0) out[series] = value;
  }
  return out;
}

// The same series with the same values in `a` and `b` (ages within 3 s: samples differ in time).
void expectSameSeries(const std::map<std::string, double>& a, const std::map<std::string, double>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [series, value] : a) {
    ASSERT_TRUE(b.count(series)) << series;
    if (series.rfind("apphealth_queue_oldest_job_age_seconds", 0) == 0) {
      EXPECT_NEAR(b.at(series), value, 3.0) << series;
    } else {
      EXPECT_EQ(b.at(series), value) << series;
    }
  }
}

// The series of one metric family (name{...}) in `m`, for counting.
std::size_t countSeries(const std::map<std::string, double>& m, const std::string& prefix) {
  std::size_t n = 0;
  for (const auto& [series, value] : m) n += series.rfind(prefix, 0) == 0;
  return n;
}

void rqEnqueue(const TempRedis& r, const std::string& queue, const std::string& id, double enqueuedAt) {
  // RQ 1.16 / 2.x Queue.enqueue_job: job.save() (HSET rq:job:<id> ...), SADD rq:queues, RPUSH.
  r.command({"HSET", "rq:job:" + id, "status", "queued", "origin", queue, "created_at", rqTime(enqueuedAt),
             "enqueued_at", rqTime(enqueuedAt), "description", "tasks.count_words('x')", "timeout", "180",
             "data", "\x78\x9c\x6b\x60\x00\x00\x00\x01\x00\x01"});
  r.command({"SADD", "rq:queues", "rq:queue:" + queue});
  r.command({"RPUSH", "rq:queue:" + queue, id});
}

std::string sidekiqJob(const std::string& queue, const std::string& jid, const std::string& enqueuedAt) {
  return R"({"retry":true,"queue":")" + queue + R"(","class":"HardWorker","args":["bob",5],"jid":")" + jid +
         R"(","created_at":)" + enqueuedAt + R"(,"enqueued_at":)" + enqueuedAt + "}";
}

std::string laravelPayload(const std::string& uuid, int attempts) {
  return R"({"uuid":")" + uuid +
         R"(","displayName":"App\\Jobs\\SendWelcomeEmail","job":"Illuminate\\Queue\\CallQueuedHandler@call",)"
         R"("maxTries":null,"maxExceptions":null,"failOnTimeout":false,"backoff":null,"timeout":null,)"
         R"("retryUntil":null,"data":{"commandName":"App\\Jobs\\SendWelcomeEmail","command":"O:25:..."},"id":")" +
         uuid + R"(","attempts":)" + std::to_string(attempts) + "}";
}

void bullJob(const TempRedis& r, const std::string& queue, const std::string& id, double timestampMs) {
  // BullMQ 5 addStandardJob-*.lua: HMSET <prefix>:<queue>:<id> name data opts timestamp delay priority.
  r.command({"HSET", "bull:" + queue + ":" + id, "name", "render", "data", R"({"page":)" + id + "}", "opts",
             R"({"attempts":3,"delay":0})", "timestamp", std::to_string(static_cast<long long>(timestampMs)), "delay",
             "0", "priority", "0"});
}

}  // namespace

// Celery 5 on kombu 5 (kombu/transport/redis.py): each queue is a list named after the
// queue; Channel._put LPUSHes the JSON message, workers BRPOP. A message sent with priority
// p goes to "<queue>\x06\x16<step>" (priority_steps [0, 3, 6, 9]; step 0 is the plain name).
// Messages a worker holds are in the `unacked` hash as [message, exchange, routing_key]:
// reserved, or scheduled when headers.eta is in the future. `_kombu.binding.*` sets are not
// queues. tests/queues/ checks the same against the real Celery.
TEST(RedisQueueCollector, CeleryCountsQueueListsAndUnackedMessages) {
  TempRedis redis;
  const auto message = [](const std::string& id, const std::string& routingKey, const std::string& eta) {
    return R"({"body":"W1s0LCA0XSwge30sIHsiY2FsbGJhY2tzIjogbnVsbH1d","content-encoding":"utf-8",)"
           R"("content-type":"application/json","headers":{"lang":"py","task":"tasks.add","id":")" + id +
           R"(","retries":0,"eta":)" + eta + R"(,"root_id":"4cc7438e","parent_id":null},"properties":{"correlation_id":"4cc7438e",)"
           R"("delivery_mode":2,"delivery_info":{"exchange":"","routing_key":")" + routingKey + R"("},"priority":0,)"
           R"("body_encoding":"base64","delivery_tag":"a1b2"}})";
  };
  for (int i = 0; i < 3; ++i) redis.command({"LPUSH", "celery", message("c" + std::to_string(i), "celery", "null")});
  for (int i = 0; i < 5; ++i) redis.command({"LPUSH", "emails", message("e" + std::to_string(i), "emails", "null")});
  for (int i = 0; i < 2; ++i) redis.command({"LPUSH", std::string("emails\x06\x16") + "3", message("p", "emails", "null")});
  redis.command({"LPUSH", std::string("emails\x06\x16") + "9", message("p9", "emails", "null")});
  redis.command({"SADD", "_kombu.binding.celery", "celery\x06\x16\x06\x16" "celery"});
  // Held by a worker: two prefetched (reserved), one waiting for its ETA an hour from now, one
  // whose ETA has passed (reserved until a pool process takes it), one of another app's queue.
  const auto hold = [&](const std::string& tag, const std::string& id, const std::string& queue, const std::string& eta) {
    redis.command({"HSET", "unacked", tag, "[" + message(id, queue, eta) + ", \"\", \"" + queue + "\"]"});
    redis.command({"ZADD", "unacked_index", "1714564800", tag});
  };
  hold("t1", "r1", "emails", "null");
  hold("t2", "r2", "emails", "null");
  hold("t3", "s1", "celery", "\"2999-01-01T00:00:00.000000+00:00\"");
  hold("t4", "r3", "celery", "\"2001-01-01T00:00:00+00:00\"");
  hold("t5", "x1", "other-app", "null");

  ExporterProcess exporter(configFor(redis, "      - preset: celery\n        queues: [celery, emails, reports]\n"));
  auto m = sampled(exporter);
  EXPECT_EQ(m[jobs("main", "celery", "waiting")], 3);
  EXPECT_EQ(m[jobs("main", "emails", "waiting")], 8);
  EXPECT_EQ(m[jobs("main", "reports", "waiting")], 0);  // no key yet: an empty queue, still exported
  EXPECT_EQ(m[jobs("main", "emails", "reserved")], 2);
  EXPECT_EQ(m[jobs("main", "celery", "reserved")], 1);
  EXPECT_EQ(m[jobs("main", "celery", "scheduled")], 1);
  EXPECT_EQ(m.at(jobs("main", "reports", "scheduled")), 0);
  // No worker subscribed to the pidbox: nobody active, no live worker.
  EXPECT_EQ(m.at(jobs("main", "emails", "active")), 0);
  EXPECT_EQ(m.at("apphealth_queue_workers{target=\"main\",queue=\"emails\"}"), 0);
  EXPECT_EQ(countSeries(m, "apphealth_queue_jobs{"), 12u);  // 3 queues x waiting, reserved, scheduled, active
  EXPECT_EQ(countSeries(m, "apphealth_queue_oldest_job_age_seconds{"), 0u);  // kombu records no enqueue time
  EXPECT_EQ(m["apphealth_threshold_queue_jobs{target=\"main\",queue=\"emails\",state=\"waiting\"}"], 1000);

  // Workers consume (BRPOP from the tail): the next sample follows.
  redis.command({"RPOP", "emails"});
  redis.command({"RPOP", "emails"});
  EXPECT_TRUE(waitFor([&] { return exporter.metric(jobs("main", "emails", "waiting")) == 6.0; }, 3s));
  // The binding the exporter adds while it asks the workers is removed again.
  EXPECT_EQ(redis.command({"SCARD", "_kombu.binding.reply.celery.pidbox"}), "0");
}

// RQ 1.13 to 2.x: Queue.enqueue_job RPUSHes the job id on rq:queue:NAME and stores the job in
// the hash rq:job:<id> (enqueued_at in utcformat "%Y-%m-%dT%H:%M:%S.%fZ"); workers BLPOP
// from the head. Registries are zsets of job ids scored by expiry: StartedJobRegistry
// rq:wip:NAME, FailedJobRegistry rq:failed:NAME, FinishedJobRegistry rq:finished:NAME,
// CanceledJobRegistry rq:canceled:NAME; ScheduledJobRegistry rq:scheduled:NAME (by run time)
// and DeferredJobRegistry rq:deferred:NAME. Expired entries are what RQ's cleanup drops.
TEST(RedisQueueCollector, RqQueueRegistriesAndOldestJobAge) {
  TempRedis redis;
  const double now = nowSeconds();
  rqEnqueue(redis, "default", "6f0d3a2c-0001", now - 120.5);  // the oldest, at the head
  rqEnqueue(redis, "default", "6f0d3a2c-0002", now - 30);
  rqEnqueue(redis, "default", "6f0d3a2c-0003", now - 5);
  const std::string expiry = num(now + 600);
  for (const char* id : {"w1", "w2"}) redis.command({"ZADD", "rq:wip:default", expiry, id});
  for (const char* id : {"f1", "f2", "f3", "f4"}) redis.command({"ZADD", "rq:failed:default", expiry, id});
  redis.command({"ZADD", "rq:scheduled:default", num(now + 3600), "s1"});
  for (const char* id : {"d1", "d2", "d3"}) redis.command({"ZADD", "rq:deferred:default", "+inf", id});
  for (const char* id : {"x1", "x2"}) redis.command({"ZADD", "rq:finished:default", expiry, id});
  redis.command({"ZADD", "rq:finished:default", num(now - 5), "expired"});  // past its result_ttl
  redis.command({"ZADD", "rq:canceled:default", num(now), "c1"});
  redis.command({"SADD", "rq:workers", "rq:worker:host.123"});

  ExporterProcess exporter(configFor(redis, "      - preset: rq\n        queues: [default, low]\n"));
  auto m = sampled(exporter);
  EXPECT_EQ(m[jobs("main", "default", "waiting")], 3);
  EXPECT_EQ(m[jobs("main", "default", "active")], 2);
  EXPECT_EQ(m[jobs("main", "default", "failed")], 4);
  EXPECT_EQ(m[jobs("main", "default", "scheduled")], 1);
  EXPECT_EQ(m[jobs("main", "default", "deferred")], 3);
  EXPECT_EQ(m[jobs("main", "default", "completed")], 2);
  EXPECT_EQ(m[jobs("main", "default", "canceled")], 1);
  for (const char* state : {"waiting", "active", "failed", "scheduled", "deferred", "completed", "canceled"}) {
    EXPECT_EQ(m.at(jobs("main", "low", state)), 0) << state;
  }
  EXPECT_EQ(countSeries(m, "apphealth_queue_jobs{"), 14u);
  EXPECT_NEAR(m[age("main", "default")], 120.5 + (nowSeconds() - now), 3.0);
  EXPECT_EQ(m[age("main", "low")], 0);
  EXPECT_EQ(m["apphealth_threshold_queue_jobs{target=\"main\",queue=\"default\",state=\"failed\"}"], 100);

  // A worker takes the oldest job (BLPOP): the age now comes from the next one.
  redis.command({"LPOP", "rq:queue:default"});
  ASSERT_TRUE(waitFor([&] { return exporter.metric(jobs("main", "default", "waiting")) == 2.0; }, 3s));
  EXPECT_NEAR(exporter.metric(age("main", "default")).value_or(-1), 30 + (nowSeconds() - now), 3.0);
}

// Sidekiq 7.2 (Sidekiq::Client#raw_push): LPUSH queue:NAME of the JSON job, SADD queues NAME;
// processors BRPOP, so the oldest job is the tail and Sidekiq's own Queue#latency reads
// LRANGE queue:NAME -1 -1. enqueued_at is float seconds up to 7.x and integer milliseconds
// in Sidekiq 8.0. retry, schedule and dead are zsets shared by all queues.
TEST(RedisQueueCollector, SidekiqQueuesSharedSetsAndLatency) {
  TempRedis redis;
  const double now = nowSeconds();
  // Sidekiq 7: float seconds. Oldest first; each LPUSH puts the newer job at the head.
  redis.command({"LPUSH", "queue:default", sidekiqJob("default", "b4a577edbccf1d805744efa9", num(now - 300.25))});
  redis.command({"LPUSH", "queue:default", sidekiqJob("default", "c5b688fecdd02e916855fab0", num(now - 40))});
  redis.command({"LPUSH", "queue:default", sidekiqJob("default", "d6c799aedee13fa27966abc1", num(now - 2))});
  // Sidekiq 8: integer milliseconds.
  const auto ms = [&](double secondsAgo) { return std::to_string(static_cast<long long>((now - secondsAgo) * 1000)); };
  redis.command({"LPUSH", "queue:mailers", sidekiqJob("mailers", "e7d8a0bfef24ab038a77bcd2", ms(60))});
  redis.command({"LPUSH", "queue:mailers", sidekiqJob("mailers", "f8e9b1c0a035bc149b88cde3", ms(1))});
  redis.command({"SADD", "queues", "default"});
  redis.command({"SADD", "queues", "mailers"});
  for (int i = 0; i < 2; ++i) redis.command({"ZADD", "retry", num(now + 30 + i), sidekiqJob("default", "r" + std::to_string(i), num(now - 100))});
  for (int i = 0; i < 3; ++i) redis.command({"ZADD", "schedule", num(now + 3600 + i), sidekiqJob("default", "s" + std::to_string(i), num(now))});
  redis.command({"ZADD", "dead", num(now - 10), sidekiqJob("default", "d0", num(now - 1000))});
  redis.command({"SET", "stat:processed", "1234"});
  redis.command({"SET", "stat:failed", "56"});

  ExporterProcess exporter(configFor(redis,
                                    "      - preset: sidekiq\n        queues: [default, mailers, critical]\n"
                                    "        thresholds: {waiting: 500, retry: 50}\n"));
  auto m = sampled(exporter);
  EXPECT_EQ(m[jobs("main", "default", "waiting")], 3);
  EXPECT_EQ(m[jobs("main", "mailers", "waiting")], 2);
  EXPECT_EQ(m[jobs("main", "critical", "waiting")], 0);
  EXPECT_EQ(m[jobs("main", "sidekiq", "retry")], 2);
  EXPECT_EQ(m[jobs("main", "sidekiq", "scheduled")], 3);
  EXPECT_EQ(m[jobs("main", "sidekiq", "dead")], 1);
  EXPECT_EQ(m.at(jobs("main", "default", "active")), 0);  // no process runs anything
  EXPECT_EQ(countSeries(m, "apphealth_queue_jobs{"), 9u);
  EXPECT_EQ(m["apphealth_queue_jobs_processed_total{target=\"main\",queue=\"sidekiq\"}"], 1234);
  EXPECT_EQ(m["apphealth_queue_jobs_failed_total{target=\"main\",queue=\"sidekiq\"}"], 56);
  EXPECT_EQ(m.at("apphealth_queue_workers{target=\"main\",queue=\"mailers\"}"), 0);
  const double elapsed = nowSeconds() - now;
  EXPECT_NEAR(m[age("main", "default")], 300.25 + elapsed, 3.0);  // the tail, not the head (2 s)
  EXPECT_NEAR(m[age("main", "mailers")], 60 + elapsed, 3.0);       // milliseconds understood
  EXPECT_EQ(m[age("main", "critical")], 0);
  const auto threshold = [&](const std::string& queue, const std::string& state) {
    return "apphealth_threshold_queue_jobs{target=\"main\",queue=\"" + queue + "\",state=\"" + state + "\"}";
  };
  EXPECT_EQ(m[threshold("sidekiq", "dead")], 100);   // default
  EXPECT_EQ(m[threshold("sidekiq", "retry")], 50);   // configured
  EXPECT_EQ(m[threshold("mailers", "waiting")], 500);
  // Thresholds only for the (queue, state) pairs the layout has.
  EXPECT_FALSE(m.count(threshold("sidekiq", "waiting")));
  EXPECT_FALSE(m.count(threshold("default", "retry")));
  EXPECT_EQ(countSeries(m, "apphealth_threshold_queue_jobs{"), 5u);  // 3 waiting, retry, dead
}

// Laravel 10/11 (Illuminate\Queue\RedisQueue + LuaScripts): push = RPUSH queues:NAME payload
// and RPUSH queues:NAME:notify 1; pop = LPOP, then ZADD queues:NAME:reserved (reserved-until
// timestamp) with attempts+1; later() = ZADD queues:NAME:delayed available_at payload. Every
// key carries the connection's prefix, by default Str::slug(APP_NAME, '_').'_database_'.
TEST(RedisQueueCollector, LaravelWithAndWithoutKeyPrefix) {
  TempRedis redis;
  const double now = nowSeconds();
  auto layout = [&](const std::string& prefix, int waiting, int delayed, int reserved) {
    const std::string base = prefix + "queues:default";
    for (int i = 0; i < waiting; ++i) {
      redis.command({"RPUSH", base, laravelPayload(prefix + "w" + std::to_string(i), 0)});
      redis.command({"RPUSH", base + ":notify", "1"});
    }
    for (int i = 0; i < delayed; ++i) {
      redis.command({"ZADD", base + ":delayed", num(now + 60 + i), laravelPayload(prefix + "d" + std::to_string(i), 0)});
    }
    for (int i = 0; i < reserved; ++i) {
      redis.command({"ZADD", base + ":reserved", num(now + 90), laravelPayload(prefix + "r" + std::to_string(i), 1)});
    }
  };
  layout("", 4, 2, 1);
  layout("laravel_database_", 7, 3, 2);

  const std::string queues = "      - preset: laravel\n        queues: [default]\n";
  const std::string prefixed = "      - preset: laravel\n        queues: [default]\n        prefix: laravel_database_\n";
  std::string config = configFor(redis, queues, "plain");
  config += configFor(redis, prefixed, "prefixed").substr(std::string("redis:\n").size());
  ExporterProcess exporter(config);
  sampled(exporter, "plain");
  auto m = sampled(exporter, "prefixed");
  EXPECT_EQ(m[jobs("plain", "default", "waiting")], 4);
  EXPECT_EQ(m[jobs("plain", "default", "delayed")], 2);
  EXPECT_EQ(m[jobs("plain", "default", "active")], 1);
  EXPECT_EQ(m[jobs("prefixed", "default", "waiting")], 7);
  EXPECT_EQ(m[jobs("prefixed", "default", "delayed")], 3);
  EXPECT_EQ(m[jobs("prefixed", "default", "active")], 2);
  EXPECT_EQ(countSeries(m, "apphealth_queue_jobs{"), 6u);  // :notify is not counted anywhere
}

// BullMQ 5.x (commands/addStandardJob, moveToActive, ...): a job is the hash
// bull:NAME:<id> with timestamp in ms; ids are LPUSHed on bull:NAME:wait and moved to
// bull:NAME:active from the tail (BLMOVE/RPOPLPUSH). Jobs with a priority wait in the zset
// bull:NAME:prioritized; delayed, failed and completed are zsets. meta, id, events, marker
// and pc are bookkeeping keys, not job states.
TEST(RedisQueueCollector, BullMqStatesAndOldestWaitingJob) {
  TempRedis redis;
  const double nowMs = nowSeconds() * 1000;
  // ids 1..3 waiting, the oldest (1) pushed first and so at the tail.
  bullJob(redis, "render", "1", nowMs - 90'000);
  redis.command({"LPUSH", "bull:render:wait", "1"});
  bullJob(redis, "render", "2", nowMs - 20'000);
  redis.command({"LPUSH", "bull:render:wait", "2"});
  bullJob(redis, "render", "3", nowMs - 1'000);
  redis.command({"LPUSH", "bull:render:wait", "3"});
  for (const char* id : {"4", "5"}) redis.command({"ZADD", "bull:render:prioritized", "2097152", id});
  for (const char* id : {"6", "7"}) redis.command({"LPUSH", "bull:render:active", id});
  for (const char* id : {"8", "9", "10"}) redis.command({"ZADD", "bull:render:delayed", "7380867072000000", id});
  redis.command({"ZADD", "bull:render:failed", num(nowMs), "11"});
  for (const char* id : {"12", "13", "14", "15"}) redis.command({"ZADD", "bull:render:completed", num(nowMs), id});
  redis.command({"SET", "bull:render:id", "15"});
  redis.command({"HSET", "bull:render:meta", "opts.maxLenEvents", "10000", "version", "bullmq:5.7.8"});
  redis.command({"XADD", "bull:render:events", "*", "event", "added", "jobId", "3"});
  redis.command({"ZADD", "bull:render:marker", "0", "0"});

  ExporterProcess exporter(configFor(redis, "      - preset: bullmq\n        queues: [render, thumbnails]\n"));
  auto m = sampled(exporter);
  EXPECT_EQ(m[jobs("main", "render", "waiting")], 5);  // wait list + prioritized zset
  EXPECT_EQ(m[jobs("main", "render", "active")], 2);
  EXPECT_EQ(m[jobs("main", "render", "delayed")], 3);
  EXPECT_EQ(m[jobs("main", "render", "failed")], 1);
  EXPECT_EQ(m[jobs("main", "render", "completed")], 4);
  EXPECT_EQ(m[jobs("main", "thumbnails", "waiting")], 0);
  EXPECT_EQ(m.at(jobs("main", "render", "paused")), 0);
  EXPECT_EQ(m.at(jobs("main", "render", "waiting_children")), 0);
  EXPECT_EQ(countSeries(m, "apphealth_queue_jobs{"), 14u);
  EXPECT_NEAR(m[age("main", "render")], 90 + (nowSeconds() - nowMs / 1000), 3.0);
  EXPECT_EQ(m[age("main", "thumbnails")], 0);
  // No worker connection named after the queue; no metrics hashes: no counters.
  EXPECT_EQ(m.at("apphealth_queue_workers{target=\"main\",queue=\"render\"}"), 0);
  EXPECT_FALSE(m.count("apphealth_queue_jobs_processed_total{target=\"main\",queue=\"render\"}"));
}

// BullMQ 5 pauses by renaming wait to paused (new jobs go there too) and setting meta.paused;
// BullMQ 6 only sets meta.paused and leaves the jobs in wait. Either way every job of wait,
// paused and prioritized waits for a resume, not for a worker: state "paused". Parents of
// flows wait in waiting-children. The oldest-job age covers every priority level: here the
// oldest job sits in a middle level, neither the first nor the last of the prioritized zset.
TEST(RedisQueueCollector, BullMqPausedLayoutsPriorityLevelsAndWorkers) {
  TempRedis redis;
  const double nowMs = nowSeconds() * 1000;
  const auto prioritized = [&](const std::string& queue, const std::string& id, long long priority, long long counter,
                               double ageSeconds) {
    bullJob(redis, queue, id, nowMs - ageSeconds * 1000);
    redis.command({"ZADD", "bull:" + queue + ":prioritized", std::to_string(priority * 4294967296LL + counter), id});
  };
  // "v5": paused list, meta flag.
  for (const char* id : {"1", "2", "3"}) {
    bullJob(redis, "v5", id, nowMs - 50'000);
    redis.command({"LPUSH", "bull:v5:paused", id});
  }
  prioritized("v5", "4", 3, 1, 10);
  redis.command({"HSET", "bull:v5:meta", "paused", "1", "version", "bullmq:5.81.5"});
  // "v6": jobs stay in wait, meta flag.
  for (const char* id : {"1", "2"}) {
    bullJob(redis, "v6", id, nowMs - 20'000);
    redis.command({"LPUSH", "bull:v6:wait", id});
  }
  redis.command({"HSET", "bull:v6:meta", "paused", "1", "version", "bullmq:6.7.0"});
  // "levels": running, with three priority levels; the oldest job is in level 5.
  prioritized("levels", "10", 1, 7, 30);
  prioritized("levels", "11", 5, 2, 400);
  prioritized("levels", "12", 5, 8, 5);
  prioritized("levels", "13", 9, 3, 100);
  redis.command({"ZADD", "bull:levels:waiting-children", "0", "parent-1"});
  redis.command({"HSET", "bull:levels:metrics:completed", "count", "42", "prevTS", "0", "prevCount", "0"});
  redis.command({"HSET", "bull:levels:metrics:failed", "count", "3", "prevTS", "0", "prevCount", "0"});
  // Two workers of "levels" (named and unnamed) and one of v6: connections named as BullMQ
  // names them (CLIENT SETNAME), kept open for the test; the ":qe" one is a QueueEvents.
  std::vector<int> clients;
  struct Close {
    std::vector<int>& fds;
    ~Close() {
      for (int fd : fds) ::close(fd);
    }
  } closeClients{clients};
  for (const std::string name : {"bull:bGV2ZWxz:w:render-1", "bull:bGV2ZWxz", "bull:djY=:w:x", "bull:bGV2ZWxz:qe"}) {
    const int fd = connectLoopback(redis.port());
    ASSERT_GE(fd, 0);
    clients.push_back(fd);
    const std::string command = "*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$" + std::to_string(name.size()) + "\r\n" + name + "\r\n";
    ASSERT_EQ(::write(fd, command.data(), command.size()), static_cast<ssize_t>(command.size()));
    char ok[8] = {};
    ASSERT_EQ(::read(fd, ok, 5), 5);
    ASSERT_EQ(std::string(ok), "+OK\r\n");
  }

  ExporterProcess exporter(configFor(redis, "      - preset: bullmq\n        queues: [v5, v6, levels]\n"));
  auto m = sampled(exporter);
  EXPECT_EQ(m[jobs("main", "v5", "paused")], 4);  // paused list + prioritized
  EXPECT_EQ(m.at(jobs("main", "v5", "waiting")), 0);
  EXPECT_EQ(m[jobs("main", "v6", "paused")], 2);
  EXPECT_EQ(m.at(jobs("main", "v6", "waiting")), 0);
  EXPECT_EQ(m[jobs("main", "levels", "waiting")], 4);
  EXPECT_EQ(m.at(jobs("main", "levels", "paused")), 0);
  EXPECT_EQ(m[jobs("main", "levels", "waiting_children")], 1);
  const double elapsed = nowSeconds() - nowMs / 1000;
  EXPECT_NEAR(m[age("main", "v5")], 50 + elapsed, 3.0);  // paused jobs count for the age
  EXPECT_NEAR(m[age("main", "v6")], 20 + elapsed, 3.0);
  EXPECT_NEAR(m[age("main", "levels")], 400 + elapsed, 3.0);
  EXPECT_EQ(m["apphealth_queue_workers{target=\"main\",queue=\"levels\"}"], 2);  // not the QueueEvents connection
  EXPECT_EQ(m["apphealth_queue_workers{target=\"main\",queue=\"v6\"}"], 1);
  EXPECT_EQ(m.at("apphealth_queue_workers{target=\"main\",queue=\"v5\"}"), 0);
  EXPECT_FALSE(m.count("apphealth_queue_workers_busy{target=\"main\",queue=\"levels\"}"));  // BullMQ does not tell
  EXPECT_EQ(m["apphealth_queue_jobs_processed_total{target=\"main\",queue=\"levels\"}"], 45);
  EXPECT_EQ(m["apphealth_queue_jobs_failed_total{target=\"main\",queue=\"levels\"}"], 3);

  // Resume (BullMQ 6): the flag goes, the jobs are waiting again.
  redis.command({"HDEL", "bull:v6:meta", "paused"});
  EXPECT_TRUE(waitFor([&] { return exporter.metric(jobs("main", "v6", "waiting")) == 2.0; }, 3s));
}

// Data no framework should have written, or written by another version than expected: keys of
// the wrong type, jobs that are not JSON or have no time, registries far larger than any real
// one, queue names nobody configured. Each is a warning naming the key (once, then debug),
// the rest of the sample is exported, label values stay the configured ones, and a sample
// stays bounded in time.
TEST(RedisQueueCollector, HostileDataIsReportedAndTheRestKept) {
  TempRedis redis;
  const double now = nowSeconds();
  // Sidekiq: a job that is not JSON at the tail of "default"; "retry" is a string; a process
  // whose work hash holds 30,000 jobs of random queue names and 5 of "default".
  redis.command({"LPUSH", "queue:default", "this is not json"});
  redis.command({"LPUSH", "queue:default", sidekiqJob("default", "j2", num(now - 5))});
  redis.command({"LPUSH", "queue:mailers", R"({"class":"Mailer","jid":"j3"})"});  // no enqueued_at
  redis.command({"SET", "retry", "oops"});
  redis.command({"ZADD", "dead", "1", "d1"});
  redis.command({"SADD", "processes", "vm:1:abc"});
  redis.command({"HSET", "vm:1:abc", "info", R"({"hostname":"vm","queues":["default","mailers"],"concurrency":5})",
                 "busy", "5", "beat", num(now), "quiet", "false"});
  redis.command({"EVAL",
                 "for i = 1, 30000 do redis.call('HSET', KEYS[1], 'tid' .. i, "
                 "'{\"queue\":\"q' .. i .. '\",\"payload\":{},\"run_at\":1}') end "
                 "for i = 1, 5 do redis.call('HSET', KEYS[1], 'main' .. i, '{\"queue\":\"default\",\"payload\":{}}') end "
                 "redis.call('HSET', KEYS[1], 'garbage', 'not json') return 1",
                 "1", "vm:1:abc:work"});
  // RQ: the oldest job's hash has no enqueued_at; 50,000 registered workers, none alive.
  redis.command({"RPUSH", "rq:queue:default", "no-time"});
  redis.command({"HSET", "rq:job:no-time", "status", "queued"});
  redis.command({"RPUSH", "rq:queue:default", "later"});
  redis.command({"EVAL", "for i = 1, 50000 do redis.call('SADD', KEYS[1], 'rq:worker:ghost' .. i) end return 1", "1",
                 "rq:workers:default"});
  // Celery: unacked entries that are not kombu messages, beside one that is.
  redis.command({"HSET", "unacked", "t1", "garbage", "t2", "[1, 2, 3]", "t3",
                 R"([{"headers": {"id": "a", "eta": null}}, "", "celery"])"});
  // BullMQ: the oldest job's timestamp is not a number.
  redis.command({"HSET", "bull:render:1", "timestamp", "yesterday"});
  redis.command({"LPUSH", "bull:render:wait", "1"});
  // Laravel: a payload that is not JSON.
  redis.command({"RPUSH", "queues:default", "{oops"});

  const std::string queues =
      "      - preset: sidekiq\n        queues: [default, mailers]\n"
      "      - preset: rq\n        prefix: \"rq:\"\n        queues: [default-rq]\n"
      "      - preset: celery\n        queues: [celery]\n"
      "      - preset: bullmq\n        queues: [render]\n"
      "      - preset: laravel\n        queues: [default-laravel]\n";
  // RQ's and Laravel's queue "default" would clash with Sidekiq's label: rename the keys.
  redis.command({"RENAME", "rq:queue:default", "rq:queue:default-rq"});
  redis.command({"RENAME", "rq:workers:default", "rq:workers:default-rq"});
  redis.command({"RENAME", "queues:default", "queues:default-laravel"});
  // Generous timeout: a sanitizer build on a busy machine reads the large registries too.
  ExporterProcess exporter("redis:\n  - name: main\n    address: 127.0.0.1:" + std::to_string(redis.port()) +
                           "\n    interval: 1s\n    timeout: 900ms\n    queues:\n" + queues);
  auto m = sampled(exporter);
  // Counts are kept.
  EXPECT_EQ(m[jobs("main", "default", "waiting")], 2);
  EXPECT_EQ(m[jobs("main", "mailers", "waiting")], 1);
  EXPECT_EQ(m[jobs("main", "sidekiq", "dead")], 1);
  EXPECT_EQ(m.at(jobs("main", "sidekiq", "retry")), 0);   // unreadable: 0, and said
  EXPECT_EQ(m[jobs("main", "default-rq", "waiting")], 2);
  EXPECT_EQ(m[jobs("main", "celery", "reserved")], 1);
  EXPECT_EQ(m[jobs("main", "render", "waiting")], 1);
  EXPECT_EQ(m[jobs("main", "default-laravel", "waiting")], 1);
  // Ages that cannot be read are absent, not 0 and not a guess.
  EXPECT_FALSE(m.count(age("main", "default")));
  EXPECT_FALSE(m.count(age("main", "mailers")));
  EXPECT_FALSE(m.count(age("main", "default-rq")));
  EXPECT_FALSE(m.count(age("main", "render")));
  // Bounded: the huge work hash adds at most ~1000 active jobs and no new queue labels; the
  // 50,000 dead RQ workers cost one bounded read.
  EXPECT_LE(m[jobs("main", "default", "active")], 1000);
  EXPECT_EQ(m["apphealth_queue_workers{target=\"main\",queue=\"default\"}"], 1);
  EXPECT_EQ(m["apphealth_queue_workers_busy{target=\"main\",queue=\"default\"}"], 1);
  EXPECT_EQ(m["apphealth_queue_workers{target=\"main\",queue=\"default-rq\"}"], 0);
  std::set<std::string> queueLabels;
  for (const auto& [series, value] : m) {
    const auto at = series.find("queue=\"");
    if (series.rfind("apphealth_queue_", 0) != 0 || at == std::string::npos) continue;
    queueLabels.insert(series.substr(at + 7, series.find('"', at + 7) - at - 7));
  }
  EXPECT_EQ(queueLabels, (std::set<std::string>{"celery", "default", "default-laravel", "default-rq", "mailers", "render",
                                                "sidekiq"}));
  EXPECT_LT(m["apphealth_collector_duration_seconds{collector=\"redis\",target=\"main\"}"], 1.0);

  // A clear warning per problem, naming the key, once while it lasts.
  std::this_thread::sleep_for(1500ms);
  const std::string log = exporter.log();
  for (const char* expected : {"the oldest job in queue:default is not JSON", "queue mailers: the oldest job",
                               "cannot count retry (retry of sidekiq): WRONGTYPE", "rq:job:no-time has no enqueued_at",
                               "rq queue default-rq: its worker set holds more than about 1000", "vm:1:abc:work holds more than",
                               "entries of unacked are not kombu messages", "bull:render:1 has an unreadable timestamp",
                               "queue default-laravel: the oldest job in queues:default-laravel is not a Laravel JSON"}) {
    std::size_t warnings = 0;
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);) {
      warnings += line.find(expected) != std::string::npos && line.find("level=warn") != std::string::npos;
    }
    EXPECT_EQ(warnings, 1u) << expected << "\n" << log;
  }
  EXPECT_EQ(log.find("level=error"), std::string::npos) << log;
}

// Explicit keys: each type with `type:` given and auto-detected with TYPE; a key that does
// not exist is an empty queue; thresholds from the config are exported as series.
TEST(RedisQueueCollector, ExplicitKeysOfEveryTypeAndThresholds) {
  TempRedis redis;
  for (int i = 0; i < 4; ++i) redis.command({"RPUSH", "app:list", "job" + std::to_string(i)});
  for (int i = 0; i < 3; ++i) redis.command({"ZADD", "app:zset", std::to_string(i), "job" + std::to_string(i)});
  for (int i = 0; i < 6; ++i) redis.command({"SADD", "app:set", "job" + std::to_string(i)});
  for (int i = 0; i < 5; ++i) redis.command({"XADD", "app:stream", "*", "job", std::to_string(i)});
  redis.command({"SET", "app:string", "not a queue"});

  const std::string queues =
      "      - key: app:list\n        type: list\n"
      "      - key: app:zset\n        type: zset\n        state: delayed\n        name: reminders\n"
      "        thresholds: {delayed: 3, failed: 9}\n"
      "      - key: app:set\n        type: set\n        state: failed\n        thresholds: {failed: 5}\n"
      "      - key: app:stream\n        type: stream\n"
      "      - key: app:list\n        name: list-auto\n"
      "      - key: app:zset\n        name: zset-auto\n        state: scheduled\n"
      "      - key: app:set\n        name: set-auto\n        state: dead\n"
      "      - key: app:stream\n        name: stream-auto\n        thresholds: {waiting: 2}\n"
      "      - key: app:missing\n        thresholds: {waiting: 10}\n"
      "      - key: app:missing-typed\n        type: zset\n        state: delayed\n"
      "      - key: app:string\n";
  ExporterProcess exporter(configFor(redis, queues));
  auto m = sampled(exporter);
  EXPECT_EQ(m[jobs("main", "app:list", "waiting")], 4);
  EXPECT_EQ(m[jobs("main", "reminders", "delayed")], 3);
  EXPECT_EQ(m[jobs("main", "app:set", "failed")], 6);
  EXPECT_EQ(m[jobs("main", "app:stream", "waiting")], 5);
  EXPECT_EQ(m[jobs("main", "list-auto", "waiting")], 4);
  EXPECT_EQ(m[jobs("main", "zset-auto", "scheduled")], 3);
  EXPECT_EQ(m[jobs("main", "set-auto", "dead")], 6);
  EXPECT_EQ(m[jobs("main", "stream-auto", "waiting")], 5);
  EXPECT_EQ(m.at(jobs("main", "app:missing", "waiting")), 0);
  EXPECT_EQ(m.at(jobs("main", "app:missing-typed", "delayed")), 0);
  EXPECT_EQ(m.at(jobs("main", "app:string", "waiting")), 0);  // configured, holds no jobs
  EXPECT_EQ(countSeries(m, "apphealth_queue_jobs{"), 11u);

  const auto threshold = [&](const std::string& queue, const std::string& state) {
    return "apphealth_threshold_queue_jobs{target=\"main\",queue=\"" + queue + "\",state=\"" + state + "\"}";
  };
  EXPECT_EQ(m[threshold("app:set", "failed")], 5);        // configured
  EXPECT_EQ(m[threshold("stream-auto", "waiting")], 2);   // configured
  EXPECT_EQ(m[threshold("app:missing", "waiting")], 10);  // configured, key absent
  EXPECT_EQ(m[threshold("app:list", "waiting")], 1000);   // defaults
  EXPECT_EQ(m[threshold("set-auto", "dead")], 100);
  EXPECT_EQ(m[threshold("reminders", "delayed")], 3);       // configured
  EXPECT_FALSE(m.count(threshold("reminders", "failed")));   // not a state this entry reads
  EXPECT_FALSE(m.count(threshold("zset-auto", "scheduled")));  // no default for scheduled

  // Thresholds are configuration: still exported while Redis is down.
  redis.stop();
  ASSERT_TRUE(waitFor([&] { return exporter.metric(up()) == 0.0; }, 3s));
  EXPECT_EQ(exporter.metric(threshold("app:set", "failed")), 5.0);
}

// Streams: XLEN is the queue length; each consumer group reports pending (delivered, not
// acknowledged: XPENDING) and lag (entries not yet delivered to the group: XINFO GROUPS).
TEST(RedisQueueCollector, StreamConsumerGroupsPendingAndLag) {
  TempRedis redis;
  for (int i = 1; i <= 10; ++i) redis.command({"XADD", "events", std::to_string(i) + "-0", "job", std::to_string(i)});
  EXPECT_EQ(redis.command({"XGROUP", "CREATE", "events", "mailer", "0"}), "OK");
  EXPECT_EQ(redis.command({"XGROUP", "CREATE", "events", "indexer", "0"}), "OK");
  // mailer: 4 delivered, none acknowledged. indexer: 7 delivered, 3 acknowledged.
  redis.command({"XREADGROUP", "GROUP", "mailer", "c1", "COUNT", "4", "STREAMS", "events", ">"});
  redis.command({"XREADGROUP", "GROUP", "indexer", "c1", "COUNT", "5", "STREAMS", "events", ">"});
  redis.command({"XREADGROUP", "GROUP", "indexer", "c2", "COUNT", "2", "STREAMS", "events", ">"});
  EXPECT_EQ(redis.command({"XACK", "events", "indexer", "1-0", "2-0", "3-0"}), "3");

  ExporterProcess exporter(configFor(redis, "      - key: events\n"));
  auto m = sampled(exporter);
  const auto series = [](const char* metric, const char* group) {
    return std::string(metric) + "{target=\"main\",queue=\"events\",group=\"" + group + "\"}";
  };
  EXPECT_EQ(m[jobs("main", "events", "waiting")], 10);
  EXPECT_EQ(m.at(series("apphealth_queue_stream_group_pending", "mailer")), 4);
  EXPECT_EQ(m.at(series("apphealth_queue_stream_group_lag", "mailer")), 6);
  EXPECT_EQ(m.at(series("apphealth_queue_stream_group_pending", "indexer")), 4);
  EXPECT_EQ(m.at(series("apphealth_queue_stream_group_lag", "indexer")), 3);
  EXPECT_EQ(countSeries(m, "apphealth_queue_stream_group_pending{"), 2u);
  EXPECT_EQ(countSeries(m, "apphealth_queue_stream_group_lag{"), 2u);

  // New entries raise the lag; acknowledging lowers pending.
  redis.command({"XADD", "events", "11-0", "job", "11"});
  redis.command({"XACK", "events", "mailer", "1-0", "2-0"});
  EXPECT_TRUE(waitFor(
      [&] {
        auto now = exporter.metrics();
        return now[series("apphealth_queue_stream_group_lag", "mailer")] == 7 &&
               now[series("apphealth_queue_stream_group_pending", "mailer")] == 2 &&
               now[jobs("main", "events", "waiting")] == 11;
      },
      3s));
}

// A key reached twice (listed, and also found by a pattern) is counted once and
// gives one series per consumer group.
TEST(RedisQueueCollector, KeyReachedTwiceCountsOnce) {
  TempRedis redis;
  for (int i = 1; i <= 4; ++i) redis.command({"XADD", "events", std::to_string(i) + "-0", "job", std::to_string(i)});
  redis.command({"XGROUP", "CREATE", "events", "mailer", "0"});
  redis.command({"XREADGROUP", "GROUP", "mailer", "c1", "COUNT", "1", "STREAMS", "events", ">"});
  // Naming the same queue twice is a config error (ConfigLoader tests); a pattern that also
  // matches a listed key is not, and must not count it twice.
  const std::string queues =
      "      - key: events\n        type: stream\n"
      "      - key: \"event*\"\n";
  ExporterProcess exporter(configFor(redis, queues));
  auto m = sampled(exporter);
  EXPECT_EQ(m[jobs("main", "events", "waiting")], 4);
  EXPECT_EQ(countSeries(m, "apphealth_queue_jobs{"), 1u);
  EXPECT_EQ(m["apphealth_queue_stream_group_pending{target=\"main\",queue=\"events\",group=\"mailer\"}"], 1);
  EXPECT_EQ(m["apphealth_queue_stream_group_lag{target=\"main\",queue=\"events\",group=\"mailer\"}"], 3);
  const auto body = exporter.get("/metrics").body;
  std::size_t lines = 0;
  for (std::size_t at = body.find("apphealth_queue_stream_group_pending{"); at != std::string::npos;
       at = body.find("apphealth_queue_stream_group_pending{", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 1u) << body;
  EXPECT_EQ(countSeries(m, "apphealth_threshold_queue_jobs{"), 1u);
}

// A `*` key is expanded with SCAN, capped at max_keys_per_pattern: the cap bounds the series.
TEST(RedisQueueCollector, ScanPatternIsCappedAndFlagged) {
  TempRedis redis;
  for (int i = 0; i < 50; ++i) redis.command({"RPUSH", "jobs:" + std::to_string(i), "a", "b"});
  for (const char* k : {"small:a", "small:b", "small:c"}) redis.command({"RPUSH", k, "x"});
  redis.command({"HSET", "small:meta", "owner", "ops"});  // matches, but is no queue
  redis.command({"SET", "other", "1"});

  const std::string queues =
      "      - key: \"jobs:*\"\n"
      "      - key: \"small:*\"\n        type: list\n        state: delayed\n        thresholds: {delayed: 7}\n";
  ExporterProcess exporter(configFor(redis, queues, "main", "    max_keys_per_pattern: 10\n"));
  auto m = sampled(exporter);
  EXPECT_EQ(countSeries(m, "apphealth_queue_jobs{target=\"main\",queue=\"jobs:"), 10u);
  for (const auto& [series, value] : m) {
    if (series.rfind("apphealth_queue_jobs{target=\"main\",queue=\"jobs:", 0) == 0) {
      EXPECT_EQ(value, 2) << series;
    }
  }
  EXPECT_EQ(m["apphealth_queue_pattern_truncated{target=\"main\",pattern=\"jobs:*\"}"], 1);
  EXPECT_EQ(m["apphealth_queue_pattern_keys{target=\"main\",pattern=\"jobs:*\"}"], 10);

  EXPECT_EQ(m.at("apphealth_queue_pattern_truncated{target=\"main\",pattern=\"small:*\"}"), 0);
  EXPECT_EQ(m[jobs("main", "small:a", "delayed")], 1);
  EXPECT_EQ(m[jobs("main", "small:c", "delayed")], 1);
  EXPECT_FALSE(m.count(jobs("main", "small:meta", "delayed")));  // hash: WRONGTYPE, no series
  EXPECT_EQ(countSeries(m, "apphealth_queue_jobs{"), 13u);
  EXPECT_EQ(m["apphealth_threshold_queue_jobs{target=\"main\",queue=\"small:b\",state=\"delayed\"}"], 7);
  EXPECT_EQ(countSeries(m, "apphealth_threshold_queue_jobs{target=\"main\",queue=\"jobs:"), 10u);

  // Once fewer keys match than the cap, all of them are exported and the flag clears.
  for (int i = 0; i < 45; ++i) redis.command({"DEL", "jobs:" + std::to_string(i)});
  EXPECT_TRUE(waitFor(
      [&] {
        auto now = exporter.metrics();
        return now["apphealth_queue_pattern_truncated{target=\"main\",pattern=\"jobs:*\"}"] == 0 &&
               countSeries(now, "apphealth_queue_jobs{target=\"main\",queue=\"jobs:") == 5;
      },
      3s));
}

// A pattern in a large keyspace with few matches: the SCAN walk stops at the timeout instead
// of stretching the sample, and says so.
TEST(RedisQueueCollector, ScanWalkIsBoundedByTimeout) {
  TempRedis redis;
  // About 200 SCAN calls of ~1 ms each: several times the 80 ms timeout.
  redis.command({"EVAL", "for i = 1, 200000 do redis.call('SET', 'filler:' .. i, '1') end return 1", "0"});
  redis.command({"RPUSH", "jobs:1", "x"});
  const std::string config = "redis:\n"
                             "  - name: main\n"
                             "    address: 127.0.0.1:" + std::to_string(redis.port()) + "\n"
                             "    interval: 300ms\n"
                             "    timeout: 80ms\n"
                             "    queues:\n"
                             "      - key: \"jobs:*\"\n";
  ExporterProcess exporter(config);
  auto m = sampled(exporter);
  EXPECT_EQ(m["apphealth_queue_pattern_truncated{target=\"main\",pattern=\"jobs:*\"}"], 1);
  EXPECT_LE(m["apphealth_queue_pattern_keys{target=\"main\",pattern=\"jobs:*\"}"], 1);
  EXPECT_LT(m["apphealth_collector_duration_seconds{collector=\"redis\",target=\"main\"}"], 0.3);
  // Warned once while it lasts, then only at debug level.
  std::this_thread::sleep_for(900ms);
  std::size_t warnings = 0, debugs = 0;
  std::istringstream lines(exporter.log());
  for (std::string line; std::getline(lines, line);) {
    if (line.find("did not finish within 80ms") == std::string::npos) continue;
    warnings += line.find("level=warn") != std::string::npos;
    debugs += line.find("level=debug") != std::string::npos;
  }
  EXPECT_EQ(warnings, 1u) << exporter.log();
  EXPECT_GE(debugs, 1u) << exporter.log();
}

// AUTH with the password from password_file and SELECT of `db:`; a wrong password is a clear
// log line and up 0, and does not affect the other target.
TEST(RedisQueueCollector, PasswordFileAndDatabase) {
  TempRedis redis;
  redis.command({"RPUSH", "queue:default", "{}", "{}"});
  redis.command({"MOVE", "queue:default", "3"});  // the app's data lives in db 3
  EXPECT_EQ(redis.command({"CONFIG", "SET", "requirepass", "s3cret"}), "OK");
  TempDir secrets("apphealth-secrets");
  secrets.write("good", "s3cret\n");
  secrets.write("bad", "wrong\n");
  const std::string queues = "      - preset: sidekiq\n        queues: [default]\n";
  std::string config = configFor(redis, queues, "good", "    password_file: " + secrets.file("good") + "\n    db: 3\n");
  config += configFor(redis, queues, "bad", "    password_file: " + secrets.file("bad") + "\n    db: 3\n")
                .substr(std::string("redis:\n").size());
  ExporterProcess exporter(config);
  auto m = sampled(exporter, "good");
  EXPECT_EQ(m[jobs("good", "default", "waiting")], 2);
  EXPECT_EQ(m[up("bad")], 0);
  EXPECT_FALSE(m.count(jobs("bad", "default", "waiting")));
  EXPECT_TRUE(waitFor([&] { return exporter.log().find("AUTH failed") != std::string::npos; }, 2s)) << exporter.log();
  EXPECT_EQ(exporter.log().find("s3cret"), std::string::npos);
  EXPECT_EQ(exporter.log().find("wrong"), std::string::npos);
}

// `address: unix:/path` connects over the Unix socket.
TEST(RedisQueueCollector, UnixSocketAddress) {
  TempDir dir("apphealth-redis-unix");
  const std::string socket = dir.file("redis.sock");
  const std::string pidFile = dir.file("redis.pid");
  ASSERT_EQ(run("redis-server --port 0 --unixsocket " + socket + " --daemonize yes --pidfile " + pidFile + " --dir " +
                dir.path() + " --save '' --appendonly no"),
            0);
  struct Stop {
    std::string pidFile;
    ~Stop() { run("kill $(cat " + pidFile + ")"); }
  } stopServer{pidFile};
  ASSERT_TRUE(waitFor([&] { return run("redis-cli -s " + socket + " PING") == 0; }, 5s));
  ASSERT_EQ(run("redis-cli -s " + socket + " RPUSH queues:default a b c"), 0);

  const std::string config = "redis:\n"
                             "  - name: main\n"
                             "    address: unix:" + socket + "\n"
                             "    interval: 200ms\n"
                             "    timeout: 150ms\n"
                             "    queues:\n"
                             "      - preset: laravel\n        queues: [default]\n";
  ExporterProcess exporter(config);
  auto m = sampled(exporter);
  EXPECT_EQ(m[jobs("main", "default", "waiting")], 3);
  EXPECT_NE(exporter.log().find("connected to unix:" + socket), std::string::npos) << exporter.log();
}

// Redis stopped: up goes to 0 within about one interval, /metrics stays fast, and the
// collector reconnects on its own when Redis is back.
TEST(RedisQueueCollector, RedisDownThenBackUp) {
  TempRedis redis;
  redis.command({"LPUSH", "celery", "m"});
  ExporterProcess exporter(configFor(redis, "      - preset: celery\n        queues: [celery]\n"));
  sampled(exporter);

  redis.stop();
  ASSERT_TRUE(waitFor([&] { return exporter.metric(up()) == 0.0; }, 2s)) << exporter.log();
  for (int i = 0; i < 10; ++i) {
    const auto r = exporter.get("/metrics");
    ASSERT_EQ(r.status, 200);
    EXPECT_LT(r.seconds, 0.2);
    std::this_thread::sleep_for(50ms);
  }
  auto m = exporter.metrics();
  EXPECT_EQ(m["apphealth_collector_up{collector=\"redis\",target=\"main\"}"], 0);
  EXPECT_FALSE(m.count(jobs("main", "celery", "waiting")));  // unknown while down, not 0
  EXPECT_TRUE(m.count("apphealth_redis_probe_duration_seconds_count{target=\"main\"}"));

  redis.start();  // same port, empty data set
  redis.command({"LPUSH", "celery", "m1", "m2"});
  ASSERT_TRUE(waitFor([&] { return exporter.metric(up()) == 1.0; }, 5s)) << exporter.log();
  EXPECT_TRUE(waitFor([&] { return exporter.metric(jobs("main", "celery", "waiting")) == 2.0; }, 2s));
  EXPECT_NE(exporter.log().find("redis target main"), std::string::npos);
}

// Redis hung (SIGSTOP): connections are accepted by the kernel but nothing answers. The
// command timeout marks it down; /metrics never waits on it; SIGCONT brings it back.
TEST(RedisQueueCollector, HungRedisTimesOutAndScrapesStayFast) {
  TempRedis redis;
  redis.command({"RPUSH", "rq:queue:default", "id1"});
  ExporterProcess exporter(configFor(redis, "      - preset: rq\n        queues: [default]\n"));
  sampled(exporter);

  redis.pause();
  const auto paused = std::chrono::steady_clock::now();
  ASSERT_TRUE(waitFor([&] { return exporter.metric(up()) == 0.0; }, 3s)) << exporter.log();
  // Down within one interval plus the timeout (200 ms + 150 ms), with slack for a busy machine.
  EXPECT_LT(std::chrono::steady_clock::now() - paused, 1500ms);
  double slowest = 0;
  for (int i = 0; i < 10; ++i) {
    const auto r = exporter.get("/metrics");
    ASSERT_EQ(r.status, 200);
    slowest = std::max(slowest, r.seconds);
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_LT(slowest, 0.2);
  EXPECT_NE(exporter.log().find("timed out"), std::string::npos) << exporter.log();

  redis.resume();
  ASSERT_TRUE(waitFor([&] { return exporter.metric(up()) == 1.0; }, 5s)) << exporter.log();
  EXPECT_EQ(exporter.metric(jobs("main", "default", "waiting")), 1.0);
}

// promtool's linter accepts the live exposition with every kind of queue configured.
TEST(RedisQueueCollector, PromtoolAcceptsLiveMetricsWithAllPresets) {
  TempRedis redis;
  const double now = nowSeconds();
  redis.command({"LPUSH", "celery", "{}"});
  rqEnqueue(redis, "reports", "id1", now - 10);
  redis.command({"LPUSH", "queue:default", sidekiqJob("default", "j1", num(now - 10))});
  redis.command({"ZADD", "retry", "1", "x"});
  redis.command({"RPUSH", "laravel_database_queues:invoices", laravelPayload("u1", 0)});
  bullJob(redis, "render", "1", now * 1000 - 10'000);
  redis.command({"LPUSH", "bull:render:wait", "1"});
  redis.command({"XADD", "events", "1-0", "job", "1"});
  redis.command({"XGROUP", "CREATE", "events", "g", "0"});
  for (int i = 0; i < 3; ++i) redis.command({"RPUSH", "jobs:" + std::to_string(i), "x"});

  const std::string queues =
      "      - preset: celery\n        queues: [celery]\n"
      "      - preset: rq\n        queues: [reports]\n"
      "      - preset: sidekiq\n        queues: [default]\n        thresholds: {waiting: 50}\n"
      "      - preset: laravel\n        queues: [invoices]\n        prefix: laravel_database_\n"
      "      - preset: bullmq\n        queues: [render]\n"
      "      - key: events\n        type: stream\n"
      "      - key: \"jobs:*\"\n";
  ExporterProcess exporter(configFor(redis, queues, "main", "    max_keys_per_pattern: 2\n"));
  auto m = sampled(exporter);
  ASSERT_EQ(m[jobs("main", "render", "waiting")], 1);
  ASSERT_EQ(m["apphealth_queue_pattern_truncated{target=\"main\",pattern=\"jobs:*\"}"], 1);

  TempDir dir("apphealth-promtool");
  const auto body = exporter.get("/metrics").body;
  dir.write("metrics.txt", body);
  std::string output;
  const int status = run("promtool check metrics < " + dir.file("metrics.txt"), &output);
  EXPECT_EQ(status, 0) << output << "\n" << body;
  EXPECT_EQ(output, "") << output;
}

// Every preset reads its queues with one read-only Lua script per 100 queues; where Redis
// refuses scripts (an ACL without @scripting here; Redis before 7 refuses the no-writes flag)
// the same reads go out as pipelined commands. Both must export exactly the same series, a
// flushed script cache (NOSCRIPT) must cost nothing but one EVAL, and a refusal is one log
// line per framework, not one per sample.
TEST(RedisQueueCollector, ScriptsAndPipelinedCommandsExportTheSame) {
  TempRedis redis;
  const double now = nowSeconds();
  // Celery: a plain and a priority list, one held message.
  redis.command({"LPUSH", "emails", R"({"body":"W10=","headers":{"id":"a"}})"});
  redis.command({"LPUSH", std::string("emails\x06\x16") + "6", R"({"body":"W10=","headers":{"id":"b"}})"});
  redis.command({"HSET", "unacked", "t1", R"([{"headers":{"id":"c","eta":null}},"","emails"])"});
  // RQ: two jobs, every registry, a registry of the wrong type.
  rqEnqueue(redis, "default", "j1", now - 30);
  rqEnqueue(redis, "default", "j2", now - 10);
  redis.command({"ZADD", "rq:wip:default", num(now + 60), "w1", num(now - 60), "w2"});
  redis.command({"ZADD", "rq:finished:default", num(now + 600), "f1"});
  redis.command({"ZADD", "rq:scheduled:default", num(now + 600), "s1"});
  redis.command({"SET", "rq:failed:default", "not a zset"});
  // Sidekiq: a job and a retry.
  redis.command({"LPUSH", "queue:mailers", sidekiqJob("mailers", "k1", num(now - 40))});
  redis.command({"ZADD", "retry", num(now + 30), sidekiqJob("mailers", "k0", num(now - 90))});
  // Laravel 12: payloads with createdAt, one delayed.
  redis.command({"RPUSH", "queues:web", R"({"uuid":"u1","job":"x","createdAt":)" + num(now - 20) + "}"});
  redis.command({"ZADD", "queues:web:delayed", num(now + 60), R"({"uuid":"u2","job":"x"})"});
  // BullMQ: wait, three priority levels, a paused flag on another queue, metrics, a job
  // without a readable timestamp in a third.
  const double nowMs = now * 1000;
  bullJob(redis, "render", "1", nowMs - 15'000);
  redis.command({"LPUSH", "bull:render:wait", "1"});
  long long counter = 0;
  for (const auto& [id, priority, ageSeconds] : {std::tuple{"2", 1LL, 5.0}, {"3", 4LL, 300.0}, {"4", 9LL, 50.0}, {"5", 9LL, 70.0}}) {
    bullJob(redis, "render", id, nowMs - ageSeconds * 1000);
    redis.command({"ZADD", "bull:render:prioritized", std::to_string(priority * 4294967296LL + ++counter), id});
  }
  redis.command({"ZADD", "bull:render:completed", "1", "c1"});
  redis.command({"HSET", "bull:render:metrics:completed", "count", "7"});
  bullJob(redis, "held", "1", nowMs - 8'000);
  redis.command({"LPUSH", "bull:held:wait", "1"});
  redis.command({"HSET", "bull:held:meta", "paused", "1"});
  // Ten priority levels (the walk stops after eight; the highest priority's oldest job is read
  // apart), and 70 prioritized jobs (read level by level instead of all at once).
  for (long long level = 1; level <= 10; ++level) {
    const std::string id = "m" + std::to_string(level);
    bullJob(redis, "many", id, nowMs - (level == 1 ? 500'000 : level == 2 ? 1'000'000 : 10'000));
    redis.command({"ZADD", "bull:many:prioritized", std::to_string(level * 4294967296LL + level), id});
  }
  for (long long j = 0; j < 70; ++j) {
    const std::string id = "b" + std::to_string(j);
    bullJob(redis, "big", id, nowMs - (j == 30 ? 900'000 : 1'000.0 * static_cast<double>(j)));
    redis.command({"ZADD", "bull:big:prioritized", std::to_string((1 + j / 30) * 4294967296LL + j), id});
  }
  redis.command({"HSET", "bull:broken:9", "timestamp", "yesterday"});
  redis.command({"LPUSH", "bull:broken:wait", "9"});

  const std::string config = configFor(redis,
                                       "      - preset: celery\n        queues: [emails]\n"
                                       "      - preset: rq\n        queues: [default]\n"
                                       "      - preset: sidekiq\n        queues: [mailers]\n"
                                       "      - preset: laravel\n        queues: [web]\n"
                                       "      - preset: bullmq\n        queues: [render, held, broken, many, big]\n");
  const auto evalCalls = [&](const std::string& command) {
    const std::string stats = redis.command({"INFO", "commandstats"});
    const auto at = stats.find("cmdstat_" + command + ":calls=");
    return at == std::string::npos ? 0L : std::stol(stats.substr(at + command.size() + 15));
  };
  const auto lastSuccess = [](const ExporterProcess& e) {
    return e.metric("apphealth_collector_last_success_timestamp_seconds{collector=\"redis\",target=\"main\"}").value_or(0);
  };
  // The metrics of a sample that started after now.
  const auto nextSample = [&](const ExporterProcess& e) {
    const double before = lastSuccess(e);
    EXPECT_TRUE(waitFor([&] { return lastSuccess(e) > before + 0.3; }, 5s)) << e.log();
    return queueSeries(e.metrics());
  };

  ExporterProcess scripted(config);
  const auto withScripts = queueSeries(sampled(scripted));
  EXPECT_GT(evalCalls("evalsha"), 0);
  EXPECT_EQ(withScripts.at(jobs("main", "emails", "waiting")), 2);
  EXPECT_EQ(withScripts.at(jobs("main", "default", "failed")), 1);  // the expired wip entry; the string is reported
  EXPECT_EQ(withScripts.at(jobs("main", "render", "waiting")), 5);
  EXPECT_EQ(withScripts.at(jobs("main", "held", "paused")), 1);
  EXPECT_NEAR(withScripts.at(age("main", "render")), 300, 3.0);  // the oldest of priority level 4
  EXPECT_NEAR(withScripts.at(age("main", "default")), 30, 3.0);
  EXPECT_NEAR(withScripts.at(age("main", "web")), 20, 3.0);
  EXPECT_FALSE(withScripts.count(age("main", "broken")));
  EXPECT_NEAR(withScripts.at(age("main", "many")), 500, 3.0);  // level 1 read apart; level 2 is beyond the walk
  EXPECT_NEAR(withScripts.at(age("main", "big")), 900, 3.0);   // the first of level 2
  EXPECT_NE(scripted.log().find("rq:failed:default"), std::string::npos);

  // The server forgets the scripts: one EVAL each, the same figures, no fallback.
  const long evalsBefore = evalCalls("eval");
  redis.command({"SCRIPT", "FLUSH"});
  expectSameSeries(withScripts, nextSample(scripted));
  EXPECT_GT(evalCalls("eval"), evalsBefore);
  EXPECT_EQ(scripted.log().find("refuses the read-only Lua script"), std::string::npos) << scripted.log();

  // Scripts refused: the running exporter and a new one fall back to commands, log it once.
  redis.command({"ACL", "SETUSER", "default", "-@scripting"});
  ExporterProcess pipelined(config);
  const auto withCommands = queueSeries(sampled(pipelined));
  expectSameSeries(withScripts, withCommands);
  nextSample(scripted);  // a few samples refused
  expectSameSeries(withScripts, nextSample(scripted));
  for (const auto* e : {&scripted, &pipelined}) {
    const std::string log = e->log();
    for (const char* framework : {"celery", "rq", "sidekiq", "laravel", "bullmq"}) {
      const std::string line = std::string(framework) + ": Redis refuses the read-only Lua script";
      const auto first = log.find(line);
      EXPECT_NE(first, std::string::npos) << framework << "\n" << log;
      EXPECT_EQ(log.find(line, first + 1), std::string::npos) << framework << " logged twice\n" << log;
    }
  }
}

// A read script that fails while it runs is a bug of apphealth's, not the server's refusal:
// the reader tells the two apart by the error texts of the real Redis, which this test
// produces (and which a new Redis version could change).
TEST(RedisQueueCollector, ReadScriptErrorsTellAFailingScriptFromARefusal) {
  TempRedis redis;
  redis.command({"SET", "text", "x"});
  const std::string header = "#!lua flags=no-writes\n";
  const std::vector<std::string> failures = {
      redis.command({"EVAL", header + "return redis.call('LLEN', KEYS[1])", "1", "text"}),  // WRONGTYPE inside
      redis.command({"EVAL", header + "return nil + 1", "0"}),                             // a Lua error
      redis.command({"EVAL", header + "return redis.call('SET', 'a', 'b')", "0"}),         // a write refused
  };
  for (const auto& error : failures) {
    ASSERT_FALSE(error.empty());
    EXPECT_TRUE(apphealth::ReadScript::failedWhileRunning(error)) << error;
  }
  std::vector<std::string> refusals = {
      redis.command({"EVAL", "#!lua flags=bogus\nreturn 1", "0"}),  // what an unknown flag gets
      redis.command({"EVAL", "return (", "0"}),                      // a compile error (Redis 6 on the shebang)
      redis.command({"EVALSHA", std::string(40, '0'), "0"}),         // NOSCRIPT: handled by EVAL, never a failure
  };
  redis.command({"ACL", "SETUSER", "default", "-@scripting"});
  refusals.push_back(redis.command({"EVALSHA", std::string(40, '0'), "0"}));  // NOPERM
  EXPECT_EQ(refusals.back().rfind("NOPERM", 0), 0u) << refusals.back();
  for (const auto& error : refusals) {
    ASSERT_FALSE(error.empty());
    EXPECT_FALSE(apphealth::ReadScript::failedWhileRunning(error)) << error;
  }
}

// The read scripts' `no-writes` flag on a real read-only replica: every preset's script runs
// there (no fallback to commands) and the replica's exporter exports what the master's does.
// Celery's worker question writes (PUBLISH, SADD on the reply binding), so it is off here, as a
// replica target needs (README).
TEST(RedisQueueCollector, ReadScriptsRunOnAReadOnlyReplica) {
  TempRedis master;
  TempRedis replica;
  const double now = nowSeconds();
  master.command({"LPUSH", "emails", R"({"body":"W10=","headers":{"id":"a"}})"});
  master.command({"HSET", "unacked", "t1", R"([{"headers":{"id":"c","eta":null}},"","emails"])"});
  rqEnqueue(master, "default", "j1", now - 30);
  master.command({"ZADD", "rq:finished:default", num(now + 600), "f1"});
  master.command({"LPUSH", "queue:mailers", sidekiqJob("mailers", "k1", num(now - 40))});
  master.command({"RPUSH", "queues:web", R"({"uuid":"u1","job":"x","createdAt":)" + num(now - 20) + "}"});
  bullJob(master, "render", "1", now * 1000 - 15'000);
  master.command({"LPUSH", "bull:render:wait", "1"});
  master.command({"ZADD", "bull:render:prioritized", std::to_string(4 * 4294967296LL + 1), "2"});
  bullJob(master, "render", "2", now * 1000 - 300'000);

  master.command({"CONFIG", "SET", "repl-diskless-sync-delay", "0"});  // no 5 s wait for more replicas
  replica.command({"REPLICAOF", "127.0.0.1", std::to_string(master.port())});
  ASSERT_TRUE(waitFor([&] {
    return replica.command({"INFO", "replication"}).find("master_link_status:up") != std::string::npos &&
           replica.command({"DBSIZE"}) == master.command({"DBSIZE"});
  }, 10s)) << replica.command({"INFO", "replication"});
  ASSERT_EQ(replica.command({"SET", "probe", "x"}).rfind("READONLY", 0), 0u);  // a read-only replica

  const std::string queues = "      - preset: celery\n        queues: [emails]\n        workers: false\n"
                             "      - preset: rq\n        queues: [default]\n"
                             "      - preset: sidekiq\n        queues: [mailers]\n"
                             "      - preset: laravel\n        queues: [web]\n"
                             "      - preset: bullmq\n        queues: [render]\n";
  ExporterProcess onMaster(configFor(master, queues));
  ExporterProcess onReplica(configFor(replica, queues));
  const auto fromMaster = queueSeries(sampled(onMaster));
  const auto fromReplica = queueSeries(sampled(onReplica));
  EXPECT_EQ(fromReplica.at(jobs("main", "emails", "waiting")), 1);
  EXPECT_EQ(fromReplica.at(jobs("main", "render", "waiting")), 2);
  EXPECT_GE(fromReplica.at(age("main", "render")), 299.0);  // the prioritized job's, 300 s at `now`
  EXPECT_LE(fromReplica.at(age("main", "render")), 301.0 + (nowSeconds() - now));
  expectSameSeries(fromMaster, fromReplica);
  const std::string stats = replica.command({"INFO", "commandstats"});
  EXPECT_NE(stats.find("cmdstat_evalsha:calls="), std::string::npos) << stats;
  EXPECT_EQ(onReplica.log().find("refuses the read-only Lua script"), std::string::npos) << onReplica.log();
  EXPECT_EQ(onReplica.log().find("read script failed"), std::string::npos) << onReplica.log();
}
