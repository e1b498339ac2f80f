#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <random>
#include <set>
#include <vector>

#include "ingest/BeaconParser.h"
#include "ingest/RecentIds.h"
#include "util/JsonEscape.h"
#include "ingest/ErrorReportLog.h"
#include "ingest/IngestGuards.h"
#include "ingest/IngestMetrics.h"

using namespace apphealth::ingest;
using namespace std::chrono_literals;

TEST(BeaconParser, SingleObjectAndUnits) {
  auto r = parseVitals(R"({"name":"INP","value":184,"id":"v4-9","page":"/x","navigationType":"reload"})", 10);
  ASSERT_TRUE(r.error.empty());
  ASSERT_EQ(r.accepted.size(), 1u);
  EXPECT_EQ(r.accepted[0].vital, Vital::INP);
  EXPECT_DOUBLE_EQ(r.accepted[0].value, 0.184);
  EXPECT_EQ(r.accepted[0].navigationType, "reload");
  auto cls = parseVitals(R"({"name":"CLS","value":0.25})", 10);
  EXPECT_DOUBLE_EQ(cls.accepted.at(0).value, 0.25);  // unitless, not divided
}

TEST(BeaconParser, LimitsAndShapes) {
  EXPECT_EQ(parseVitals(R"({"name":"LCP","value":600000})", 10).accepted.size(), 1u);  // exactly 10 min
  EXPECT_EQ(parseVitals(R"({"name":"LCP","value":600001})", 10).rejected.at(0), RejectReason::AbsurdValue);
  EXPECT_EQ(parseVitals(R"({"name":"CLS","value":100.5})", 10).rejected.at(0), RejectReason::AbsurdValue);
  EXPECT_EQ(parseVitals(R"({"name":"LCP","value":null})", 10).rejected.at(0), RejectReason::InvalidValue);
  EXPECT_EQ(parseVitals(R"({"value":1})", 10).rejected.at(0), RejectReason::MissingField);
  EXPECT_EQ(parseVitals(R"({"name":"lcp","value":1})", 10).rejected.at(0), RejectReason::UnknownMetric);
  EXPECT_EQ(parseVitals("[1,2]", 10).rejected.size(), 2u);
  EXPECT_EQ(parseVitals("[{},{},{}]", 2).error, "batch of 3 entries exceeds the limit of 2");
  EXPECT_EQ(parseVitals("42", 2).error, "expected a JSON object or an array of objects");
  EXPECT_EQ(parseVitals(R"({"name":"LCP","value":1e999})", 2).error.rfind("malformed JSON", 0), 0u);
}

TEST(BeaconParser, ErrorReportsNormalizeBoundedFields) {
  auto r = parseErrors(R"([{"message":"m","level":"weird","severity":"panic"},{"message":""}])", 10);
  ASSERT_EQ(r.accepted.size(), 1u);
  EXPECT_EQ(r.accepted[0].level, "other");
  EXPECT_EQ(r.accepted[0].severity, "error");
  EXPECT_EQ(r.rejected.at(0), RejectReason::MissingField);
}

TEST(Sanitizer, MasksEmailsAndLongNumbersAndCutsLength) {
  EXPECT_EQ(sanitizeMessage("user jane.doe+x@mail.example.org failed"), "user [email] failed");
  EXPECT_EQ(sanitizeMessage("card 4111-1111-1111-1111 declined"), "card [number] declined");
  EXPECT_EQ(sanitizeMessage("call +44 20 7946 0958 now"), "call +[number] now");
  EXPECT_EQ(sanitizeMessage("line 42 col 7 of app.js"), "line 42 col 7 of app.js");
  EXPECT_EQ(sanitizeMessage("@decorator and a@b"), "@decorator and a@b");
  EXPECT_EQ(sanitizeMessage(std::string(5000, 'x')).size(), 1024u);
}

TEST(ClientAddress, ForwardedForOnlyFromTrustedPeers) {
  ClientAddress resolver({"10.0.0.0/8", "192.0.2.1"});
  EXPECT_EQ(resolver.resolve("203.0.113.5", "1.2.3.4"), "203.0.113.5");          // untrusted peer
  EXPECT_EQ(resolver.resolve("10.1.2.3", "1.2.3.4, 10.9.9.9"), "1.2.3.4");     // skip trusted hops
  EXPECT_EQ(resolver.resolve("192.0.2.1", "6.6.6.6, 1.2.3.4"), "1.2.3.4");    // rightmost untrusted wins
  EXPECT_EQ(resolver.resolve("10.1.2.3", ""), "10.1.2.3");
  EXPECT_EQ(resolver.resolve("10.1.2.3", " , 10.2.2.2"), "10.1.2.3");          // all trusted
  EXPECT_FALSE(resolver.isTrusted("11.0.0.1"));
}

TEST(RateLimiter, TokenBucketRefills) {
  RateLimiter limiter(2, 3);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(limiter.allow("a", t0));
  EXPECT_TRUE(limiter.allow("a", t0));
  EXPECT_TRUE(limiter.allow("a", t0));
  EXPECT_FALSE(limiter.allow("a", t0));
  EXPECT_TRUE(limiter.allow("b", t0));
  EXPECT_TRUE(limiter.allow("a", t0 + 500ms));   // one token back after 0.5 s at 2/s
  EXPECT_FALSE(limiter.allow("a", t0 + 500ms));
}

TEST(RateLimiter, ManyClientsStayBounded) {
  RateLimiter limiter(1, 1, 160);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 100000; ++i) {
    limiter.allow("ip" + std::to_string(i), t0);
    ASSERT_LE(limiter.size(), 160u);
  }
  EXPECT_TRUE(limiter.allow("fresh", t0));
}

TEST(RecentIds, RemembersUpToCapacity) {
  RecentIds ids(32);  // 2 per shard
  EXPECT_TRUE(ids.insert("LCP", "x"));
  EXPECT_FALSE(ids.insert("LCP", "x"));
  EXPECT_TRUE(ids.insert("CLS", "x"));  // scopes are apart
  EXPECT_TRUE(ids.insert("pv", "x"));
  for (int i = 0; i < 1000; ++i) ids.insert("LCP", "id" + std::to_string(i));
  EXPECT_TRUE(ids.insert("LCP", "x"));  // long evicted
}

// Against a reference model: per shard, a set plus a FIFO of the last capacity/16 ids. Ids are
// drawn from a small pool so repeats, evictions and the table's backward-shift deletions (long
// probe chains included) all happen many times; every answer must match the model's.
TEST(RecentIds, MatchesAFifoModelThroughManyEvictions) {
  constexpr std::size_t kCapacity = 16 * 64;
  constexpr std::size_t kPerShard = kCapacity / 16;
  RecentIds ids(kCapacity);
  std::vector<std::deque<std::string>> fifo(16);
  std::vector<std::set<std::string>> held(16);
  std::mt19937 rng(42);
  std::size_t fresh = 0, refused = 0;
  for (int step = 0; step < 300000; ++step) {
    const std::string id = "v4-" + std::to_string(rng() % 3000);
    const std::size_t shard = RecentIds::shardOf("LCP", id);
    ASSERT_LT(shard, 16u);
    const bool expectNew = !held[shard].count(id);
    if (expectNew) {
      fifo[shard].push_back(id);
      held[shard].insert(id);
      if (fifo[shard].size() > kPerShard) {
        held[shard].erase(fifo[shard].front());
        fifo[shard].pop_front();
      }
    }
    ASSERT_EQ(ids.insert("LCP", id), expectNew) << "step " << step << " id " << id;
    (expectNew ? fresh : refused) += 1;
  }
  EXPECT_GT(fresh, 50000u);
  EXPECT_GT(refused, 50000u);
}

TEST(Device, ClaimThenUserAgent) {
  EXPECT_STREQ(classifyDevice("tablet", "iPhone"), "tablet");
  EXPECT_STREQ(classifyDevice("", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"), "mobile");
  EXPECT_STREQ(classifyDevice("", "Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36"), "mobile");
  EXPECT_STREQ(classifyDevice("", "Mozilla/5.0 (Linux; Android 13; SM-X700) Safari/537.36"), "tablet");
  EXPECT_STREQ(classifyDevice("", "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)"), "tablet");
  EXPECT_STREQ(classifyDevice("smartwatch", "Mozilla/5.0 (X11; Linux x86_64) Chrome/120"), "desktop");
}

TEST(VitalBuckets, ContainOfficialThresholds) {
  auto has = [](Vital v, double bound) {
    const auto& b = vitalBuckets(v);
    return std::find(b.begin(), b.end(), bound) != b.end();
  };
  EXPECT_TRUE(has(Vital::LCP, 2.5) && has(Vital::LCP, 4));
  EXPECT_TRUE(has(Vital::INP, 0.2) && has(Vital::INP, 0.5));
  EXPECT_TRUE(has(Vital::CLS, 0.1) && has(Vital::CLS, 0.25));
  EXPECT_TRUE(has(Vital::FCP, 1.8) && has(Vital::FCP, 3));
  EXPECT_TRUE(has(Vital::TTFB, 0.8) && has(Vital::TTFB, 1.8));
  EXPECT_TRUE(has(Vital::FID, 0.1) && has(Vital::FID, 0.3));
}

TEST(JsonEscape, QuotesBackslashesAndControlCharacters) {
  std::string out;
  apphealth::appendJsonEscaped(out, std::string_view("a\"b\\c\nd\re\tf\x01g\x1fh\x7f\xc3\xa9", 18));
  EXPECT_EQ(out, "a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u001fh\x7f\xc3\xa9");
}
