#include <gtest/gtest.h>

#include <cmath>

#include "metrics/HistogramQuantile.h"
#include "status/StatusReport.h"

using namespace apphealth;

namespace {

CollectorHealth health(const std::string& collector, const std::string& target, bool up,
                       std::vector<StatusCheck> checks = {}, std::string problem = {}) {
  CollectorHealth h;
  h.collector = collector;
  h.target = target;
  h.interval = std::chrono::seconds(15);
  h.sampled = true;
  h.up = up;
  h.lastSampleTime = 1000;
  h.lastSuccessTime = up ? 1000 : 0;
  h.checks = std::move(checks);
  h.problem = std::move(problem);
  return h;
}

StatusInputs inputs(std::vector<CollectorHealth> collectors) {
  StatusInputs in;
  in.collectors = std::move(collectors);
  in.now = 1010;
  in.configFile = "/etc/apphealth/apphealth.yml";
  return in;
}

StatusCheck check(const std::string& name, double value, double threshold, bool critical = false) {
  return {name, value, threshold, "s", value > threshold || (critical && std::isnan(threshold)), critical};
}

}  // namespace

TEST(StatusReport, OverallRule) {
  EXPECT_EQ(evaluate(inputs({})).status, OverallStatus::Healthy);
  EXPECT_EQ(evaluate(inputs({health("backup", "a", true, {check("age", 10, 100)})})).status, OverallStatus::Healthy);

  auto pending = health("postgres", "p", false);
  pending.sampled = false;
  EXPECT_EQ(collectorState(pending), CollectorState::Pending);
  EXPECT_EQ(evaluate(inputs({pending})).status, OverallStatus::Healthy);

  const auto over = health("backup", "a", true, {check("age", 200, 100)});
  EXPECT_EQ(collectorState(over), CollectorState::Warning);
  const auto overReport = evaluate(inputs({over}));
  EXPECT_EQ(overReport.status, OverallStatus::Degraded);
  ASSERT_EQ(overReport.reasons.size(), 1u);
  EXPECT_EQ(overReport.reasons[0], "backup a: age: 3 min 20 s over 1 min 40 s");

  const auto partial = health("postgres", "p", true, {}, "statistics query failed: permission denied");
  EXPECT_EQ(evaluate(inputs({partial})).status, OverallStatus::Degraded);

  StatusCheck probe{"probe answered as expected", 0.2, NAN, "s", true, true};
  const auto failing = health("http_probe", "site", true, {probe}, "probe failed: HTTP 502");
  EXPECT_EQ(collectorState(failing), CollectorState::Failing);
  EXPECT_EQ(evaluate(inputs({over, failing})).status, OverallStatus::Unhealthy);

  const auto down = health("redis", "jobs", false, {}, "127.0.0.1:6379: Connection refused");
  const auto downReport = evaluate(inputs({over, down}));
  EXPECT_EQ(downReport.status, OverallStatus::Unhealthy);
  EXPECT_EQ(downReport.reasons.back(), "redis jobs is down: 127.0.0.1:6379: Connection refused");

  auto reloadFailed = inputs({});
  reloadFailed.lastReloadOk = false;
  EXPECT_EQ(evaluate(reloadFailed).status, OverallStatus::Degraded);
}

TEST(StatusReport, SanitizeMasksCredentialsAndBadBytes) {
  EXPECT_EQ(sanitizeText("connect host=db password=hunter2 user=x"), "connect host=db password=*** user=x");
  EXPECT_EQ(sanitizeText("PASSWORD = 'a b c' dbname=x"), "PASSWORD = *** dbname=x");
  EXPECT_EQ(sanitizeText("GET https://monitor:s3cret@example.com/health failed"),
            "GET https://monitor:***@example.com/health failed");
  EXPECT_EQ(sanitizeText("redis://:pw@127.0.0.1:6379"), "redis://:***@127.0.0.1:6379");
  EXPECT_EQ(sanitizeText("line1\nline2\x01"), "line1 line2 ");
  EXPECT_EQ(sanitizeText("bad \xff byte, overlong \xc0\xaf"), "bad \xEF\xBF\xBD byte, overlong \xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(sanitizeText("caf\xc3\xa9"), "caf\xc3\xa9");
  // Cut on a character boundary: "é" (2 bytes) does not fit in 4 bytes after "abc".
  EXPECT_EQ(sanitizeText("abc\xc3\xa9", 4), "abc…");
}

TEST(StatusReport, PageEscapesEverythingFromOutside) {
  auto h = health("backup", "x\"><script>alert(1)</script>", false, {}, "cannot read <img src=x onerror=alert(1)>");
  const auto page = renderStatusPage(inputs({h}));
  EXPECT_EQ(page.find("<script>"), std::string::npos);
  EXPECT_EQ(page.find("<img"), std::string::npos);
  EXPECT_NE(page.find("data-target=\"x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\""), std::string::npos) << page;
  EXPECT_NE(page.find("cannot read &lt;img src=x onerror=alert(1)&gt;"), std::string::npos);
  EXPECT_NE(page.find("<span id=\"overall\" class=\"badge unhealthy\">unhealthy</span>"), std::string::npos);
}

TEST(StatusReport, JsonHasNullsForMissingValues) {
  auto pending = health("postgres", "p", false);
  pending.sampled = false;
  pending.checks = {{"probe latency", NAN, 1, "s", false, false}};
  const auto json = renderStatusJson(inputs({pending}));
  EXPECT_NE(json.find("\"state\":\"pending\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"last_success_timestamp_seconds\":null"), std::string::npos) << json;
  EXPECT_NE(json.find("\"value\":null,\"threshold\":1,"), std::string::npos) << json;
}

TEST(HistogramQuantile, InterpolatesLikePromQL) {
  const double inf = INFINITY;
  EXPECT_TRUE(std::isnan(histogramQuantile(0.95, {{1, 0}, {inf, 0}})));
  // 100 observations: 50 in (0,1], 40 in (1,2], 10 in (2,+Inf).
  const std::vector<BucketCount> b = {{1, 50}, {2, 90}, {inf, 100}};
  EXPECT_DOUBLE_EQ(histogramQuantile(0.5, b), 1.0);
  EXPECT_DOUBLE_EQ(histogramQuantile(0.7, b), 1.5);
  EXPECT_DOUBLE_EQ(histogramQuantile(0.95, b), 2.0);  // in +Inf: the highest finite bound
  EXPECT_DOUBLE_EQ(histogramQuantile(0.25, b), 0.5);
}
