// The PostgreSQL collector against a real PostgreSQL 15 started for each test.

#include <gtest/gtest.h>

#include "TestSupport.h"

using namespace apphealth::test;

namespace {

std::string configFor(const TempPostgres& pg, const std::string& extra = "") {
  return "postgres:\n"
         "  - name: main\n"
         "    dsn: \"" + pg.dsn() + "\"\n"
         "    interval: 500ms\n"
         "    timeout: 400ms\n" + extra;
}

}  // namespace

TEST(PostgresCollector, UpDatabaseIsProbedAndHistogramGrows) {
  TempPostgres pg;
  ExporterProcess exporter(configFor(pg));
  ASSERT_TRUE(waitFor([&] { return exporter.metric("apphealth_db_up{target=\"main\"}") == 1.0; }, 5s)) << exporter.log();
  const double first = exporter.metric("apphealth_db_probe_duration_seconds_count{target=\"main\"}").value_or(0);
  ASSERT_TRUE(waitFor([&] {
    return exporter.metric("apphealth_db_probe_duration_seconds_count{target=\"main\"}").value_or(0) >= first + 2;
  }, 5s));
  auto m = exporter.metrics();
  EXPECT_EQ(m["apphealth_db_max_connections{target=\"main\"}"], 50);
  EXPECT_EQ(m["apphealth_threshold_db_probe_latency_seconds{target=\"main\"}"], 1);
  EXPECT_EQ(m["apphealth_collector_up{collector=\"postgres\",target=\"main\"}"], 1);
  EXPECT_TRUE(m.count("apphealth_db_probe_duration_seconds_bucket{target=\"main\",le=\"1\"}"));
}
