#include <gtest/gtest.h>

#include "metrics/Exposition.h"
#include "metrics/SnapshotBuilder.h"

using namespace apphealth;
using namespace std::chrono_literals;

TEST(SnapshotBuilder, MergesFamiliesOfTheSameNameAcrossCollectors) {
  SnapshotBuilder a, b;
  a.gauge("apphealth_db_up", "help", {{"target", "a"}}, 1);
  b.gauge("apphealth_db_up", "help", {{"target", "b"}}, 0);
  b.counter("apphealth_collector_failures_total", "failures", {{"target", "b"}}, 3);
  const auto ra = renderFamilies(a.take()), rb = renderFamilies(b.take());
  const auto text = joinRendered({&ra, &rb});
  EXPECT_EQ(text,
            "# HELP apphealth_db_up help\n# TYPE apphealth_db_up gauge\n"
            "apphealth_db_up{target=\"a\"} 1\napphealth_db_up{target=\"b\"} 0\n"
            "# HELP apphealth_collector_failures_total failures\n# TYPE apphealth_collector_failures_total counter\n"
            "apphealth_collector_failures_total{target=\"b\"} 3\n");
}

TEST(SnapshotBuilder, HistogramIsCopiedWithBuckets) {
  prometheus::Histogram h({0.1, 1});
  h.Observe(0.05);
  h.Observe(0.5);
  SnapshotBuilder b;
  b.histogram("apphealth_db_probe_duration_seconds", "probe", {{"target", "main"}}, h);
  const auto text = renderText(b.take());
  EXPECT_NE(text.find("apphealth_db_probe_duration_seconds_bucket{target=\"main\",le=\"0.1\"} 1"), std::string::npos);
  EXPECT_NE(text.find("apphealth_db_probe_duration_seconds_bucket{target=\"main\",le=\"1\"} 2"), std::string::npos);
  EXPECT_NE(text.find("apphealth_db_probe_duration_seconds_count{target=\"main\"} 2"), std::string::npos);
}

TEST(Exposition, JoinedRenderingEqualsMergedSerialization) {
  // Two collectors' snapshots joined must equal one builder holding everything (a builder
  // groups samples of one family itself), serialized by prometheus-cpp in one go.
  prometheus::Histogram h({0.5});
  h.Observe(0.25);
  auto fillA = [](SnapshotBuilder& s) {
    s.gauge("apphealth_db_up", "up", {{"target", "a"}}, 1);
    s.counter("apphealth_collector_failures_total", "failures", {{"target", "a"}}, 2);
  };
  auto fillB = [&](SnapshotBuilder& s) {
    s.gauge("apphealth_db_up", "up", {{"target", "b\"quoted\\"}}, 0);
    s.histogram("apphealth_db_probe_duration_seconds", "multi\nline help", {{"target", "b"}}, h);
  };
  SnapshotBuilder a, b, all;
  fillA(a);
  fillB(b);
  fillA(all);
  fillB(all);
  const auto ra = renderFamilies(a.take()), rb = renderFamilies(b.take());
  EXPECT_EQ(joinRendered({&ra, &rb}), renderText(all.take()));
}

TEST(SnapshotBuilder, ReserveKeepsOrderAndAddsNoEmptyFamily) {
  SnapshotBuilder reserved, plain;
  reserved.reserve("apphealth_queue_jobs", "jobs", prometheus::MetricType::Gauge, 2);
  reserved.reserve("apphealth_queue_workers", "workers", prometheus::MetricType::Gauge, 0);
  for (auto* s : {&reserved, &plain}) {
    s->gauge("apphealth_queue_jobs", "jobs", {{"queue", "a"}}, 1);
    s->gauge("apphealth_queue_jobs", "jobs", {{"queue", "b"}}, 2);
  }
  const auto text = renderText(reserved.take());
  EXPECT_EQ(text, renderText(plain.take()));
  EXPECT_EQ(text.find("apphealth_queue_workers"), std::string::npos);
}
