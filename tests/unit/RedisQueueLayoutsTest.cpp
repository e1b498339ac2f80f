// layoutFor() and parseEnqueueTime(): which keys each framework preset reads, and how enqueue
// times are parsed. No server needed.

#include <gtest/gtest.h>

#include <algorithm>

#include "collectors/redis/RedisQueueLayouts.h"

using namespace apphealth;

namespace {

RedisQueueSpec preset(RedisQueueSpec::Preset p, std::vector<std::string> queues, std::string prefix = "") {
  RedisQueueSpec spec;
  spec.preset = p;
  spec.queue_names = std::move(queues);
  spec.prefix = std::move(prefix);
  return spec;
}

// "key queue state type" per key, in layout order: easy to compare and to read on failure.
std::vector<std::string> describe(const QueueLayout& layout) {
  std::vector<std::string> out;
  for (const auto& k : layout.keys) {
    const char* type = "?";
    switch (k.type) {
      case KeyType::List: type = "list"; break;
      case KeyType::ZSet: type = "zset"; break;
      case KeyType::Set: type = "set"; break;
      case KeyType::Stream: type = "stream"; break;
      case KeyType::None: type = "none"; break;
      case KeyType::Unknown: type = "unknown"; break;
    }
    out.push_back(k.key + " " + k.queue + " " + k.state + " " + type);
  }
  return out;
}

using Source = AgeRead::Source;
using Strings = std::vector<std::string>;

}  // namespace

TEST(RedisQueueLayouts, KeyTypeFromName) {
  EXPECT_EQ(keyTypeFromName("list"), KeyType::List);
  EXPECT_EQ(keyTypeFromName("zset"), KeyType::ZSet);
  EXPECT_EQ(keyTypeFromName("set"), KeyType::Set);
  EXPECT_EQ(keyTypeFromName("stream"), KeyType::Stream);
  EXPECT_EQ(keyTypeFromName("none"), KeyType::None);
  EXPECT_EQ(keyTypeFromName("hash"), KeyType::Unknown);
  EXPECT_EQ(keyTypeFromName("string"), KeyType::Unknown);
  EXPECT_EQ(keyTypeFromName(""), KeyType::Unknown);
}

TEST(RedisQueueLayouts, CeleryListPerQueueWithKombuPriorityLists) {
  const auto layout = layoutFor(preset(RedisQueueSpec::Preset::Celery, {"celery", "emails"}));
  EXPECT_EQ(describe(layout), (Strings{
                                  "celery celery waiting list",
                                  "celery\x06\x16" "3 celery waiting list",
                                  "celery\x06\x16" "6 celery waiting list",
                                  "celery\x06\x16" "9 celery waiting list",
                                  "emails emails waiting list",
                                  "emails\x06\x16" "3 emails waiting list",
                                  "emails\x06\x16" "6 emails waiting list",
                                  "emails\x06\x16" "9 emails waiting list",
                              }));
  EXPECT_TRUE(layout.ages.empty());  // kombu messages carry no enqueue time
  EXPECT_TRUE(layout.patterns.empty());
}

TEST(RedisQueueLayouts, RqQueueAndRegistries) {
  const auto layout = layoutFor(preset(RedisQueueSpec::Preset::Rq, {"default"}));
  EXPECT_EQ(describe(layout), (Strings{
                                  "rq:queue:default default waiting list",
                                  "rq:wip:default default active zset",
                                  "rq:failed:default default failed zset",
                                  "rq:scheduled:default default scheduled zset",
                                  "rq:deferred:default default delayed zset",
                              }));
  ASSERT_EQ(layout.ages.size(), 1u);
  EXPECT_EQ(layout.ages[0].queue, "default");
  EXPECT_EQ(layout.ages[0].listKey, "rq:queue:default");
  EXPECT_EQ(layout.ages[0].index, 0);  // RPUSH: the oldest id is at the head
  EXPECT_EQ(layout.ages[0].source, Source::RqJobHash);
  EXPECT_EQ(layout.ages[0].hashPrefix, "rq:job:");
}

TEST(RedisQueueLayouts, SidekiqQueuesAndSharedSets) {
  const auto layout = layoutFor(preset(RedisQueueSpec::Preset::Sidekiq, {"default", "mailers"}));
  EXPECT_EQ(describe(layout), (Strings{
                                  "queue:default default waiting list",
                                  "queue:mailers mailers waiting list",
                                  "retry sidekiq retry zset",
                                  "schedule sidekiq scheduled zset",
                                  "dead sidekiq dead zset",
                              }));
  ASSERT_EQ(layout.ages.size(), 2u);
  EXPECT_EQ(layout.ages[1].queue, "mailers");
  EXPECT_EQ(layout.ages[1].listKey, "queue:mailers");
  EXPECT_EQ(layout.ages[1].index, -1);  // LPUSH + BRPOP: the oldest job is at the tail
  EXPECT_EQ(layout.ages[1].source, Source::JsonEnqueuedAt);

  const auto namespaced = layoutFor(preset(RedisQueueSpec::Preset::Sidekiq, {"default"}, "myapp:"));
  EXPECT_EQ(describe(namespaced), (Strings{
                                      "myapp:queue:default default waiting list",
                                      "myapp:retry sidekiq retry zset",
                                      "myapp:schedule sidekiq scheduled zset",
                                      "myapp:dead sidekiq dead zset",
                                  }));
  EXPECT_EQ(namespaced.ages.at(0).listKey, "myapp:queue:default");
}

TEST(RedisQueueLayouts, LaravelWithAndWithoutPrefix) {
  EXPECT_EQ(describe(layoutFor(preset(RedisQueueSpec::Preset::Laravel, {"default"}))),
            (Strings{
                "queues:default default waiting list",
                "queues:default:delayed default delayed zset",
                "queues:default:reserved default active zset",
            }));
  EXPECT_EQ(describe(layoutFor(preset(RedisQueueSpec::Preset::Laravel, {"high"}, "laravel_database_"))),
            (Strings{
                "laravel_database_queues:high high waiting list",
                "laravel_database_queues:high:delayed high delayed zset",
                "laravel_database_queues:high:reserved high active zset",
            }));
  EXPECT_TRUE(layoutFor(preset(RedisQueueSpec::Preset::Laravel, {"default"})).ages.empty());
}

TEST(RedisQueueLayouts, BullMqDefaultAndCustomPrefix) {
  const auto layout = layoutFor(preset(RedisQueueSpec::Preset::BullMQ, {"render"}));
  EXPECT_EQ(describe(layout), (Strings{
                                  "bull:render:wait render waiting list",
                                  "bull:render:prioritized render waiting zset",
                                  "bull:render:active render active list",
                                  "bull:render:delayed render delayed zset",
                                  "bull:render:failed render failed zset",
                                  "bull:render:completed render completed zset",
                              }));
  ASSERT_EQ(layout.ages.size(), 1u);
  EXPECT_EQ(layout.ages[0].listKey, "bull:render:wait");
  EXPECT_EQ(layout.ages[0].index, -1);
  EXPECT_EQ(layout.ages[0].source, Source::BullJobHash);
  EXPECT_EQ(layout.ages[0].hashPrefix, "bull:render:");

  const auto custom = layoutFor(preset(RedisQueueSpec::Preset::BullMQ, {"render"}, "myapp"));
  EXPECT_EQ(custom.keys.at(0).key, "myapp:render:wait");
  EXPECT_EQ(custom.ages.at(0).hashPrefix, "myapp:render:");
}

TEST(RedisQueueLayouts, ExplicitKeyAndPattern) {
  RedisQueueSpec spec;
  spec.key = "jobs:emails";
  spec.label = "emails";
  spec.type = "zset";
  spec.state = "delayed";
  EXPECT_EQ(describe(layoutFor(spec)), (Strings{"jobs:emails emails delayed zset"}));

  spec.type = "";  // no type: the collector asks TYPE
  EXPECT_EQ(layoutFor(spec).keys.at(0).type, KeyType::Unknown);

  spec.key = "jobs:*";
  const auto pattern = layoutFor(spec);
  EXPECT_TRUE(pattern.keys.empty());
  EXPECT_EQ(pattern.patterns, (Strings{"jobs:*"}));
  EXPECT_TRUE(pattern.ages.empty());
}

TEST(RedisQueueLayouts, PresetWithNoQueuesReadsOnlySharedKeys) {
  EXPECT_TRUE(layoutFor(preset(RedisQueueSpec::Preset::Celery, {})).keys.empty());
  EXPECT_EQ(layoutFor(preset(RedisQueueSpec::Preset::Sidekiq, {})).keys.size(), 3u);
}

// ---------------------------------------------------------------- parseEnqueueTime

TEST(ParseEnqueueTime, RqIsoTimestamps) {
  // 2024-05-01T12:00:00Z = 1714564800
  EXPECT_DOUBLE_EQ(*parseEnqueueTime(Source::RqJobHash, "2024-05-01T12:00:00.123456Z"), 1714564800.123456);
  EXPECT_DOUBLE_EQ(*parseEnqueueTime(Source::RqJobHash, "2024-05-01T12:00:00Z"), 1714564800);
  EXPECT_DOUBLE_EQ(*parseEnqueueTime(Source::RqJobHash, "2024-05-01T12:00:00"), 1714564800);  // RQ < 1.0
  EXPECT_DOUBLE_EQ(*parseEnqueueTime(Source::RqJobHash, "2024-05-01T14:00:00.5+02:00"), 1714564800.5);
  EXPECT_DOUBLE_EQ(*parseEnqueueTime(Source::RqJobHash, "2024-05-01T07:00:00-0500"), 1714564800);
  EXPECT_DOUBLE_EQ(*parseEnqueueTime(Source::RqJobHash, "1970-01-01T00:00:00.000000Z"), 0);
}

TEST(ParseEnqueueTime, RqRejectsGarbage) {
  for (const char* bad : {"", "garbage", "2024-05-01", "2024-05-01 12:00:00Z", "2024-13-01T12:00:00Z",
                          "2024-05-01T12:00:00.Z", "2024-05-01T12:00:00.123456Zjunk", "2024-05-01T12:00:00+2",
                          "2024-05-01T12:00:00+25:00", "1714564800"}) {
    EXPECT_FALSE(parseEnqueueTime(Source::RqJobHash, bad).has_value()) << bad;
  }
}

TEST(ParseEnqueueTime, BullMqMilliseconds) {
  EXPECT_DOUBLE_EQ(*parseEnqueueTime(Source::BullJobHash, "1714564800123"), 1714564800.123);
  for (const char* bad : {"", "abc", "0", "-5", "12abc", "nan", "inf"}) {
    EXPECT_FALSE(parseEnqueueTime(Source::BullJobHash, bad).has_value()) << bad;
  }
}

TEST(ParseEnqueueTime, SidekiqSecondsAndMilliseconds) {
  // Sidekiq <= 7: float seconds.
  EXPECT_DOUBLE_EQ(*parseEnqueueTime(Source::JsonEnqueuedAt,
                                     R"({"class":"HardWorker","args":[1],"jid":"b4a577edbccf1d805744efa9",)"
                                     R"("queue":"default","created_at":1714564790.5,"enqueued_at":1714564800.25})"),
                   1714564800.25);
  // Integer seconds are still seconds.
  EXPECT_DOUBLE_EQ(*parseEnqueueTime(Source::JsonEnqueuedAt, R"({"enqueued_at":1714564800})"), 1714564800);
  // Sidekiq 8: integer milliseconds.
  EXPECT_DOUBLE_EQ(*parseEnqueueTime(Source::JsonEnqueuedAt,
                                     R"({"class":"HardWorker","queue":"default","enqueued_at":1714564800250})"),
                   1714564800.25);
}

TEST(ParseEnqueueTime, SidekiqRejectsGarbage) {
  for (const char* bad : {"", "not json", "[1,2]", R"({"class":"X"})", R"({"enqueued_at":"yesterday"})",
                          R"({"enqueued_at":null})", R"({"enqueued_at":-1})", R"({"enqueued_at":0})",
                          R"({"enqueued_at":1714564800.25)"}) {
    EXPECT_FALSE(parseEnqueueTime(Source::JsonEnqueuedAt, bad).has_value()) << bad;
  }
}
