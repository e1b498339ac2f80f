// What the job frameworks write into Redis, parsed without a server: enqueue times, kombu
// messages and Celery's control replies, Sidekiq process records, CLIENT LIST names; and
// base64. The samples are copied from what the real frameworks wrote (tests/queues/ runs them).

#include <gtest/gtest.h>

#include "collectors/redis/QueueFormats.h"
#include "util/Base64.h"

using namespace apphealth;

TEST(QueueFormats, IsoTimes) {
  // RQ's utcformat and Celery's eta.
  EXPECT_DOUBLE_EQ(*parseIsoTime("2024-05-01T12:00:00.123456Z"), 1714564800.123456);
  EXPECT_DOUBLE_EQ(*parseIsoTime("2026-11-29T21:11:12.153896+00:00"), 1795986672.153896);
  EXPECT_DOUBLE_EQ(*parseIsoTime("2024-05-01T12:00:00"), 1714564800);             // no zone: UTC
  EXPECT_DOUBLE_EQ(*parseIsoTime("2024-05-01 12:00:00"), 1714564800);
  EXPECT_DOUBLE_EQ(*parseIsoTime("2024-05-01T14:00:00+02:00"), 1714564800);
  EXPECT_DOUBLE_EQ(*parseIsoTime("2024-05-01T07:00:00-0500"), 1714564800);
  for (const char* bad : {"", "yesterday", "2024-5-1T12:00:00", "2024-05-01T12:00:00.", "2024-05-01T12:00:00Zjunk",
                          "2024-05-01T12:00:00+2", "2024-13-01T12:00:00", "2024-05-01T25:00:00", "2024-05-01T12:00:00+25:00",
                          "1714564800"}) {
    EXPECT_FALSE(parseIsoTime(bad)) << bad;
  }
}

TEST(QueueFormats, MillisAndJsonTimes) {
  EXPECT_DOUBLE_EQ(*parseMillis("1714564800123"), 1714564800.123);  // BullMQ's timestamp
  for (const char* bad : {"", "-5", "0", "abc", "12abc", "nan", "inf", "1e999"}) EXPECT_FALSE(parseMillis(bad)) << bad;

  // Sidekiq <= 7: float seconds; Sidekiq 8: integer milliseconds; Laravel 12: integer seconds.
  EXPECT_DOUBLE_EQ(*parseJsonTime(R"({"class":"HardJob","enqueued_at":1714564800.5})", "enqueued_at"), 1714564800.5);
  EXPECT_DOUBLE_EQ(*parseJsonTime(R"({"enqueued_at":1714564800500})", "enqueued_at"), 1714564800.5);
  EXPECT_DOUBLE_EQ(*parseJsonTime(R"({"uuid":"x","createdAt":1714564800})", "createdAt"), 1714564800);
  EXPECT_FALSE(parseJsonTime(R"({"enqueued_at":"yesterday"})", "enqueued_at"));
  EXPECT_FALSE(parseJsonTime(R"({"enqueued_at":-1})", "enqueued_at"));
  EXPECT_FALSE(parseJsonTime(R"({"class":"HardJob"})", "enqueued_at"));
  EXPECT_FALSE(parseJsonTime("not json at all", "enqueued_at"));
  EXPECT_FALSE(parseJsonTime(R"(["enqueued_at", 1])", "enqueued_at"));
  EXPECT_TRUE(jsonHasField(R"({"enqueued_at":null})", "enqueued_at"));
  EXPECT_FALSE(jsonHasField(R"({"created_at":1})", "enqueued_at"));
  EXPECT_FALSE(jsonHasField("{", "enqueued_at"));
}

TEST(QueueFormats, Base64RoundTrip) {
  for (const std::string& text : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\0\xff\x10", 3)}) {
    EXPECT_EQ(base64Decode(base64Encode(text)), text);
  }
  EXPECT_EQ(base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64Encode("render5"), "cmVuZGVyNQ==");  // BullMQ's worker client names
  EXPECT_EQ(base64Decode("cmVuZGVyNQ"), "render5");    // unpadded too
  EXPECT_FALSE(base64Decode("cmVu\nZGVy"));
  EXPECT_FALSE(base64Decode("c"));
  EXPECT_FALSE(base64Decode("***="));
}

// A value of kombu's unacked hash, as Celery 5.2 / kombu 5.2 wrote it for a task with a
// countdown (eta) on the default exchange.
TEST(QueueFormats, KombuUnackedEntry) {
  const std::string entry =
      R"([{"body": "W1sxXSwge30sIHt9XQ==", "content-encoding": "utf-8", "content-type": "application/json", )"
      R"("headers": {"lang": "py", "task": "tasks.sleepy", "id": "a163b214-2b8e-4d3c-9e34-6b2d7ce0a0b1", "shadow": null, )"
      R"("eta": "2026-11-29T21:11:12.153896+00:00", "expires": null, "retries": 0}, "properties": {"delivery_mode": 2, )"
      R"("delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", )"
      R"("delivery_tag": "553ea3c3-3d9f-4c15-8326-1e8bea7afb91"}}, "", "celery"])";
  auto parsed = parseKombuUnacked(entry);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->exchange, "");
  EXPECT_EQ(parsed->routingKey, "celery");
  EXPECT_EQ(parsed->taskId, "a163b214-2b8e-4d3c-9e34-6b2d7ce0a0b1");
  ASSERT_TRUE(parsed->eta);
  EXPECT_DOUBLE_EQ(*parsed->eta, 1795986672.153896);
  EXPECT_FALSE(parsed->etaUnreadable);

  auto noEta = parseKombuUnacked(R"([{"headers": {"id": "x", "eta": null}}, "emails", "emails"])");
  ASSERT_TRUE(noEta);
  EXPECT_FALSE(noEta->eta);
  EXPECT_FALSE(noEta->etaUnreadable);
  auto badEta = parseKombuUnacked(R"([{"headers": {"eta": "soon"}}, "", "emails"])");
  ASSERT_TRUE(badEta);
  EXPECT_TRUE(badEta->etaUnreadable);
  for (const char* bad : {"", "{}", "[1, 2]", R"([{}, 1, "q"])", R"([{}, "", 7])", "not json", R"([{}, "", "q", 4])"}) {
    EXPECT_FALSE(parseKombuUnacked(bad)) << bad;
  }
}

// The request Celery 5.2's `inspect active_queues` PUBLISHed (captured with MONITOR), and the
// reply a worker LPUSHed: the exporter's request has the same shape and a reply parses.
TEST(QueueFormats, CeleryControlRequestAndReplies) {
  const std::string request = celeryControlRequest("active_queues", "9af47a1a-ea09-42cb-8da1-7e5dae6d35eb",
                                                   "f0436c3a-8fdd-38ff-abbd-49d96b5c000c",
                                                   "84288eaa-55bc-415d-a284-43461c0a6ae4", 1795986042.734091);
  EXPECT_EQ(request,
            R"({"body": "eyJtZXRob2QiOiAiYWN0aXZlX3F1ZXVlcyIsICJhcmd1bWVudHMiOiB7fSwgImRlc3RpbmF0aW9uIjogbnVsbCwgInBhdHRlcm4iOiBudWxsLCAibWF0Y2hlciI6IG51bGwsICJ0aWNrZXQiOiAiOWFmNDdhMWEtZWEwOS00MmNiLThkYTEtN2U1ZGFlNmQzNWViIiwgInJlcGx5X3RvIjogeyJleGNoYW5nZSI6ICJyZXBseS5jZWxlcnkucGlkYm94IiwgInJvdXRpbmdfa2V5IjogImYwNDM2YzNhLThmZGQtMzhmZi1hYmJkLTQ5ZDk2YjVjMDAwYyJ9fQ==", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"clock": 1, "expires": 1795986042.734091}, "properties": {"delivery_mode": 2, "delivery_info": {"exchange": "celery.pidbox", "routing_key": ""}, "priority": 0, "body_encoding": "base64", "delivery_tag": "84288eaa-55bc-415d-a284-43461c0a6ae4"}})");

  const std::string body =
      R"({"w1@vm": [{"name": "celery", "exchange": {"name": "celery", "type": "direct"}, "routing_key": "celery"}, )"
      R"({"name": "emails", "exchange": {"name": "emails", "type": "direct"}, "routing_key": "emails"}]})";
  const std::string reply = R"({"body": ")" + base64Encode(body) +
                            R"(", "content-encoding": "utf-8", "content-type": "application/json", )"
                            R"("headers": {"ticket": "9af47a1a-ea09-42cb-8da1-7e5dae6d35eb", "clock": 3}, )"
                            R"("properties": {"delivery_mode": 1, "body_encoding": "base64"}})";
  auto message = parseKombuMessage(reply);
  ASSERT_TRUE(message);
  EXPECT_EQ(message->ticket, "9af47a1a-ea09-42cb-8da1-7e5dae6d35eb");
  auto queues = parseCeleryActiveQueues(message->body);
  ASSERT_TRUE(queues);
  EXPECT_EQ(queues->worker, "w1@vm");
  ASSERT_EQ(queues->queues.size(), 2u);
  EXPECT_EQ(queues->queues[1], (std::pair<std::string, std::string>{"emails", "emails"}));

  auto active = parseCeleryActive(
      R"({"w1@vm": [{"id": "8318c9e1", "name": "tasks.sleepy", "delivery_info": {"exchange": "", "routing_key": "emails"}}, )"
      R"({"id": "9cd8284c", "delivery_info": {}}]})");
  ASSERT_TRUE(active);
  ASSERT_EQ(active->tasks.size(), 2u);
  EXPECT_EQ(active->tasks[0], (std::pair<std::string, std::string>{"8318c9e1", "emails"}));
  EXPECT_EQ(active->tasks[1], (std::pair<std::string, std::string>{"9cd8284c", ""}));

  EXPECT_FALSE(parseKombuMessage(R"({"body": "***", "properties": {"body_encoding": "base64"}})"));
  EXPECT_FALSE(parseKombuMessage(R"({"headers": {}})"));
  EXPECT_FALSE(parseCeleryActiveQueues(R"({"a": [], "b": []})"));  // one worker per reply
  EXPECT_FALSE(parseCeleryActiveQueues(R"({"a": {}})"));
  EXPECT_FALSE(parseCeleryActive("[]"));
}

// Sidekiq 6.4's info (queues, with duplicates from weights) and Sidekiq 8's (capsules).
TEST(QueueFormats, SidekiqProcessInfoAndWork) {
  auto six = parseSidekiqQueues(
      R"({"hostname":"vm","started_at":1795986000.1,"pid":4242,"tag":"app","concurrency":5,)"
      R"("queues":["critical","critical","default"],"labels":[],"identity":"vm:4242:0d9a5c4b1f6e"})");
  ASSERT_TRUE(six);
  EXPECT_EQ(*six, (std::vector<std::string>{"critical", "default"}));
  auto eight = parseSidekiqQueues(
      R"({"hostname":"vm","capsules":{"default":{"concurrency":5,"mode":"weighted","weights":{"mailers":2,"default":1}},)"
      R"("single":{"concurrency":1,"mode":"strict","weights":{"serial":0}}},"identity":"vm:1:abc","version":"8.0.0"})");
  ASSERT_TRUE(eight);
  EXPECT_EQ(*eight, (std::vector<std::string>{"default", "mailers", "serial"}));
  EXPECT_FALSE(parseSidekiqQueues(R"({"hostname":"vm"})"));
  EXPECT_FALSE(parseSidekiqQueues("garbage"));

  EXPECT_EQ(parseSidekiqWorkQueue(R"({"queue":"mailers","payload":{"class":"X"},"run_at":1795986000})"), "mailers");
  EXPECT_EQ(parseSidekiqWorkQueue(R"({"queue":"default","payload":"{\"class\":\"X\"}","run_at":1795986000})"), "default");
  EXPECT_FALSE(parseSidekiqWorkQueue(R"({"payload":{}})"));
  EXPECT_FALSE(parseSidekiqWorkQueue("{"));
}

// Redis 7.0's CLIENT LIST line format (7.2 adds lib-name=, which must not be read as name=).
TEST(QueueFormats, ClientListNames) {
  const std::string list =
      "id=3 addr=127.0.0.1:38784 laddr=127.0.0.1:26391 fd=7 name=bull:cmVuZGVyNQ==:w:w5 age=1 idle=1 flags=N db=0 "
      "sub=0 psub=0 cmd=blmove user=default redir=-1 resp=2\n"
      "id=4 addr=127.0.0.1:38798 laddr=127.0.0.1:26391 fd=8 name= age=1 idle=1 flags=N db=0 cmd=ping\n"
      "id=5 addr=127.0.0.1:38806 laddr=127.0.0.1:26391 fd=9 name=bull:cmVuZGVyNg== age=1 cmd=bzpopmin "
      "lib-name=ioredis lib-ver=5\r\n"
      "id=6 addr=127.0.0.1:38807 laddr=127.0.0.1:26391 fd=10 age=1 lib-name=redis-py cmd=ping\n";
  const auto names = clientListNames(list);
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0], "bull:cmVuZGVyNQ==:w:w5");
  EXPECT_EQ(names[1], "bull:cmVuZGVyNg==");
  EXPECT_TRUE(clientListNames("").empty());
  EXPECT_TRUE(clientListNames("garbage without fields").empty());
}
