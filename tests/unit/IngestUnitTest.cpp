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
}

// A number beyond double's range, or a 30-digit integer, costs its entry, not the batch; a
// field nobody reads is not even parsed.
TEST(BeaconParser, OutOfRangeNumbersAreEntryLevel) {
  auto r = parseVitals(R"([{"name":"LCP","value":1e999},{"name":"LCP","value":123456789012345678901234567890},)"
                       R"({"name":"FCP","value":800,"delta":1e400,"attribution":{"x":-1e999}}])", 10);
  ASSERT_TRUE(r.error.empty()) << r.error;
  ASSERT_EQ(r.accepted.size(), 1u);
  EXPECT_EQ(r.accepted[0].vital, Vital::FCP);
  EXPECT_EQ(r.rejected, (std::vector<RejectReason>{RejectReason::InvalidValue, RejectReason::AbsurdValue}));
  EXPECT_EQ(parseVitals(R"({"name":"LCP","value":"1200"})", 2).rejected.at(0), RejectReason::InvalidValue);
  EXPECT_EQ(parseVitals(R"({"name":7,"value":1})", 2).rejected.at(0), RejectReason::MissingField);
}

TEST(BeaconParser, BrokenJsonFailsTheWholeBody) {
  for (const char* body : {R"({"name": )", R"({"name":"LCP","value":1} {"name":"LCP","value":2})", R"({"a":1}})",
                           R"([{"name":"LCP","value":1},{"name":"LCP")", "[1,2,]", R"({"name":"LCP",})", "   ",
                           "[{\"name\":\"LCP\",\"value\":1,\"page\":\"\xff\"}]"}) {
    const auto r = parseVitals(body, 10);
    EXPECT_EQ(r.error.rfind("malformed JSON", 0), 0u) << body << " -> " << r.error;
    EXPECT_TRUE(r.accepted.empty()) << body;
  }
}

TEST(BeaconParser, LongStringFieldsAreCutOnCharacterBoundaries) {
  const std::string page = "/" + std::string(2046, 'p') + "\xC3\xA9";  // the é would end at byte 2049
  auto r = parseVitals(R"({"name":"LCP","value":1,"page":")" + page + R"("})", 1);
  ASSERT_EQ(r.accepted.size(), 1u);
  EXPECT_EQ(r.accepted[0].page.size(), 2047u);
}

TEST(BeaconParser, ErrorReportsNormalizeBoundedFields) {
  auto r = parseErrors(R"([{"message":"m","level":"weird","severity":"panic"},{"message":""}])", 10);
  ASSERT_EQ(r.accepted.size(), 1u);
  EXPECT_EQ(r.accepted[0].level, "other");
  EXPECT_EQ(r.accepted[0].severity, "error");
  EXPECT_EQ(r.rejected.at(0), RejectReason::MissingField);
}

TEST(Sanitizer, EveryFreeTextFieldIsMaskedAndCutOnACharacterBoundary) {
  EXPECT_EQ(sanitizeText("Card of jane.doe@example.com 4111 1111 1111 1111", kMaxLoggedComponent),
            "Card of [email] [number]");
  const std::string cut = sanitizeMessage(std::string(1023, 'x') + "\xC3\xA9");
  EXPECT_EQ(cut, std::string(1023, 'x'));  // the é would straddle byte 1024: dropped whole
  // Masked before the cut: a number at the boundary is not left half visible.
  EXPECT_EQ(sanitizeMessage(std::string(1020, 'x') + " 4111111111111111"), std::string(1020, 'x') + " [nu");
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
  EXPECT_EQ(resolver.resolve("10.1.2.3", " , 10.2.2.2"), "10.2.2.2");          // all trusted: the furthest hop
  EXPECT_FALSE(resolver.isTrusted("11.0.0.1"));
}

TEST(ClientAddress, ForwardedHopsMustBeAddresses) {
  ClientAddress resolver({"10.0.0.0/8", "2001:db8::1"});
  // Not an address: the request is the proxy's that passed it on, so made-up hops buy nothing.
  EXPECT_EQ(resolver.resolve("10.1.2.3", "not-an-ip"), "10.1.2.3");
  EXPECT_EQ(resolver.resolve("10.1.2.3", "1.2.3.4, garbage, 10.9.9.9"), "10.9.9.9");
  EXPECT_EQ(resolver.resolve("10.1.2.3", "1.2.3.4:5678"), "10.1.2.3");
  EXPECT_EQ(resolver.resolve("10.1.2.3", std::string(300, '1')), "10.1.2.3");
  // Canonical text: one client, one key, however it is spelled.
  EXPECT_EQ(resolver.resolve("10.1.2.3", "2001:DB8:0:0::7"), "2001:db8::7");
  EXPECT_TRUE(resolver.isTrusted("2001:0db8::1"));
  EXPECT_EQ(resolver.resolve("2001:db8::1", "198.51.100.4"), "198.51.100.4");
}

TEST(RateLimitKey, IPv6ClientsAreLimitedPerSlash64) {
  EXPECT_EQ(rateLimitKey("203.0.113.9"), "203.0.113.9");
  EXPECT_EQ(rateLimitKey("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
  EXPECT_EQ(rateLimitKey("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
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
  // Once the others have refilled (1 s at 1/s), a newcomer gets a bucket of its own.
  EXPECT_TRUE(limiter.allow("fresh", t0 + 2s));
}

// A flood of distinct clients (through a trusted proxy, say) never makes the limiter forget a
// client that is still being limited: newcomers that find the table full of active clients
// share an overflow bucket instead.
TEST(RateLimiter, AnActiveClientIsNeverForgotten) {
  RateLimiter limiter(0.01, 5, 160);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.allow("active", t0));
  EXPECT_FALSE(limiter.allow("active", t0));
  int newcomersAllowed = 0;
  for (int i = 0; i < 100000; ++i) {
    newcomersAllowed += limiter.allow("other" + std::to_string(i), t0 + std::chrono::milliseconds(i / 100));
    if (i % 1000 == 0) {
      EXPECT_FALSE(limiter.allow("active", t0 + std::chrono::milliseconds(i / 100))) << i;
    }
  }
  EXPECT_FALSE(limiter.allow("active", t0 + 1s));
  EXPECT_LE(limiter.size(), 160u);
  EXPECT_LT(newcomersAllowed, 1000);  // about 160 own buckets plus the overflow buckets' bursts
}

TEST(RateLimiter, LeastRecentlyUsedIdleBucketMakesRoom) {
  RateLimiter limiter(1, 2, 16);  // one key per shard
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(limiter.allow("a", t0));
  EXPECT_TRUE(limiter.allow("a", t0));
  EXPECT_FALSE(limiter.allow("a", t0));
  // Whatever shares a's shard: after a has refilled (2 s), it may take a's place.
  for (int i = 0; i < 200; ++i) limiter.allow("k" + std::to_string(i), t0 + 3s);
  EXPECT_LE(limiter.size(), 16u);
  // Later, once those have refilled too, a comes back to a full bucket of its own.
  EXPECT_TRUE(limiter.allow("a", t0 + 10s));
  EXPECT_TRUE(limiter.allow("a", t0 + 10s));
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
