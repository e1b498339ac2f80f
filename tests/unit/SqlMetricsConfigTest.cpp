// The `sql_metrics:` config of a postgres target, and the row checks of custom SQL metrics
// (no server needed: the checks work on SqlRows).

#include <gtest/gtest.h>

#include "collectors/sql/SqlMetricQueries.h"
#include "collectors/sql/SqlMetricRows.h"
#include "collectors/sql/SqlMetricsSampler.h"
#include "config/ConfigLoader.h"
#include "config/SqlMetricsSection.h"
#include "metrics/Exposition.h"

using namespace apphealth;
using namespace std::chrono_literals;

namespace {

std::string withSqlMetrics(const std::string& entries, const std::string& targetExtra = "") {
  return "postgres:\n"
         "  - name: main\n"
         "    dsn: \"host=127.0.0.1 dbname=app\"\n"
         "    interval: 20s\n"
         "    timeout: 4s\n" + targetExtra +
         "    sql_metrics:\n" + entries;
}

std::string allErrors(const std::string& yaml) {
  std::string out;
  for (const auto& e : loadConfigText(yaml, "c.yml").errors) out += e.format() + "\n";
  return out;
}

void expectError(const std::string& entries, const std::string& fragment) {
  const auto errors = allErrors(withSqlMetrics(entries));
  EXPECT_NE(errors.find(fragment), std::string::npos) << "expected '" << fragment << "' in:\n" << errors;
}

const char* kGood = R"(      - name: apphealth_orders_pending
        help: Orders waiting for payment.
        type: gauge
        query: "SELECT shop, count(*) AS n FROM orders WHERE state = 'pending' GROUP BY shop;  "
        labels: [shop]
        value: n
)";

}  // namespace

TEST(SqlMetricsConfig, CustomMetricWithDefaultsFromTheTarget) {
  const auto result = loadConfigText(withSqlMetrics(std::string(kGood) + R"(      - name: apphealth_signups_total
        help: Sign-ups since launch.
        type: counter
        query: SELECT count(*) AS v FROM users
        value: v
        interval: 1m
        timeout: 10s
        max_rows: 5
)"), "c.yml");
  ASSERT_TRUE(result.errors.empty()) << result.errors.front().format();
  const auto& metrics = result.config->postgres.at(0).sql_metrics;
  ASSERT_EQ(metrics.size(), 2u);
  const auto& a = metrics[0];
  EXPECT_EQ(a.kind, SqlMetricSpec::Kind::Custom);
  EXPECT_EQ(a.name, "apphealth_orders_pending");
  EXPECT_FALSE(a.counter);
  EXPECT_EQ(a.query, "SELECT shop, count(*) AS n FROM orders WHERE state = 'pending' GROUP BY shop");  // ';' cut
  EXPECT_EQ(a.labels, std::vector<std::string>{"shop"});
  EXPECT_EQ(a.value, "n");
  EXPECT_EQ(a.interval, 20s);
  EXPECT_EQ(a.timeout, 4s);
  EXPECT_EQ(a.max_rows, 100);
  const auto& b = metrics[1];
  EXPECT_TRUE(b.counter);
  EXPECT_EQ(b.interval, 60s);
  EXPECT_EQ(b.timeout, 10s);
  EXPECT_EQ(b.max_rows, 5);
}

TEST(SqlMetricsConfig, Presets) {
  const auto result = loadConfigText(withSqlMetrics(R"(      - preset: laravel
        queues: [default, emails]
      - preset: laravel
        name: laravel_archive
        jobs_table: archive.jobs
        failed_jobs_table: ""
      - preset: table
        name: exports
        table: export_requests
        created_at_column: requested_at
        created_at_unix: true
        state_column: status
        waiting_state: new
        where: "deleted_at IS NULL"
)"), "c.yml");
  ASSERT_TRUE(result.errors.empty()) << result.errors.front().format();
  const auto& m = result.config->postgres.at(0).sql_metrics;
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].kind, SqlMetricSpec::Kind::Laravel);
  EXPECT_EQ(m[0].name, "laravel");
  EXPECT_EQ(m[0].jobs_table, "jobs");
  EXPECT_EQ(m[0].failed_jobs_table, "failed_jobs");
  EXPECT_EQ(m[0].queues, (std::vector<std::string>{"default", "emails"}));
  EXPECT_EQ(m[1].jobs_table, "archive.jobs");
  EXPECT_EQ(m[1].failed_jobs_table, "");
  EXPECT_EQ(m[2].kind, SqlMetricSpec::Kind::Table);
  EXPECT_EQ(m[2].queue, "exports");  // no queue_column: the entry name
  EXPECT_TRUE(m[2].created_at_unix);
  EXPECT_EQ(m[2].waiting_state, "new");
  EXPECT_EQ(SqlMetricsSampler::runnerTarget(result.config->postgres[0].name, m[2]), "main/exports");
  EXPECT_NE(buildSqlMetricQuery(m[1], SqlDialect::Postgres).find("FROM \"archive\".\"jobs\""), std::string::npos);
  EXPECT_NE(buildSqlMetricQuery(m[2], SqlDialect::Postgres).find("WHERE (\ndeleted_at IS NULL\n)"), std::string::npos);
  // jobs_table: "" (the queue is in Redis): failed_jobs alone, in both dialects.
  SqlMetricSpec failedOnly = m[0];
  failedOnly.jobs_table = "";
  EXPECT_NE(buildSqlMetricQuery(failedOnly, SqlDialect::Postgres).find("count(*) OVER () FROM \"failed_jobs\" GROUP BY 1"),
            std::string::npos);
  EXPECT_NE(buildSqlMetricQuery(failedOnly, SqlDialect::Mysql).find("count(*) OVER () FROM `failed_jobs` GROUP BY 1"),
            std::string::npos);
  EXPECT_EQ(buildSqlMetricQuery(failedOnly, SqlDialect::Mysql).find("`jobs`"), std::string::npos);
}

TEST(SqlMetricsConfig, RejectsBadNamesTypesAndColumns) {
  expectError("      - {name: orders, help: h, type: gauge, query: SELECT 1 AS v, value: v}\n", "must start with 'apphealth_'");
  expectError("      - {name: apphealth_bad-name, help: h, type: gauge, query: SELECT 1 AS v, value: v}\n",
              "not a valid Prometheus metric name");
  expectError("      - {name: apphealth_queue_jobs, help: h, type: gauge, query: SELECT 1 AS v, value: v}\n",
              "collides with a built-in");
  expectError("      - {name: apphealth_db_probe_duration_seconds_count, help: h, type: gauge, query: SELECT 1 AS v, value: v}\n",
              "collides with a built-in");
  expectError("      - {name: apphealth_collector_mine, help: h, type: gauge, query: SELECT 1 AS v, value: v}\n",
              "collides with a built-in");
  expectError("      - {name: apphealth_signups, help: h, type: counter, query: SELECT 1 AS v, value: v}\n",
              "must end in '_total'");
  expectError("      - {name: apphealth_x, help: h, type: summary, query: SELECT 1 AS v, value: v}\n",
              "type must be 'gauge' or 'counter'");
  expectError("      - {name: apphealth_x, help: h, type: gauge, value: v}\n", "needs 'query'");
  expectError("      - {name: apphealth_x, help: h, type: gauge, query: SELECT 1}\n", "needs 'value'");
  expectError("      - {name: apphealth_x, type: gauge, query: SELECT 1 AS v, value: v}\n", "needs 'help'");
  expectError("      - {name: apphealth_x, help: h, type: gauge, query: SELECT 1 AS v, value: v, labels: [v]}\n",
              "both a label and the value");
  expectError("      - {name: apphealth_x, help: h, type: gauge, query: SELECT 1 AS v, value: v, labels: [target]}\n",
              "label 'target' is reserved");
  expectError("      - {name: apphealth_x, help: h, type: gauge, query: SELECT 1 AS v, value: v, labels: [__x]}\n",
              "not a valid Prometheus label name");
  expectError("      - {name: apphealth_x, help: h, type: gauge, query: SELECT 1 AS v, value: v, max_rows: 0}\n",
              "'max_rows' must be between 1 and 10000");
  expectError("      - {name: apphealth_x, help: h, type: gauge, query: SELECT 1 AS v, value: v, timeout: 30s}\n",
              "timeout (30s) must not exceed interval (20s)");
  expectError("      - {name: apphealth_x, help: h, type: gauge, query: SELECT 1 AS v, value: v, intervall: 1s}\n",
              "intervall");
  expectError("      - {name: apphealth_x, help: h, type: gauge, query: SELECT 1 AS v, value: v}\n"
              "      - {name: apphealth_x, help: h, type: gauge, query: SELECT 2 AS v, value: v}\n",
              "duplicate sql_metrics name 'apphealth_x' in postgres target 'main'");
}

TEST(SqlMetricsConfig, RejectsBadPresets) {
  expectError("      - preset: sidekiq\n", "unknown preset 'sidekiq' (known: laravel, table)");
  expectError("      - {preset: laravel, jobs_table: \"jobs; DROP TABLE x\"}\n", "'jobs_table' must be a table name");
  expectError("      - {preset: laravel, jobs_table: \"\", failed_jobs_table: \"\"}\n", "both empty: the preset would read nothing");
  expectError("      - {preset: laravel, query: SELECT 1}\n", "'query' is for custom metrics");
  expectError("      - {preset: table}\n", "needs 'table'");
  expectError("      - {preset: table, table: t, queue_column: q, queue: x}\n", "either 'queue' or 'queue_column'");
  expectError("      - {preset: table, table: t, created_at_column: \"a b\"}\n", "must be a column name");
  expectError("      - {preset: table, table: t, waiting_state: new}\n", "'waiting_state' needs 'state_column'");
  expectError("      - {preset: laravel}\n      - {preset: laravel}\n", "duplicate sql_metrics name 'laravel'");
}

TEST(SqlMetricsConfig, BuiltinNames) {
  EXPECT_TRUE(isBuiltinMetricName("apphealth_db_up"));
  EXPECT_TRUE(isBuiltinMetricName("apphealth_http_request_duration_seconds_bucket"));
  EXPECT_TRUE(isBuiltinMetricName("apphealth_sql_rows_dropped"));
  EXPECT_FALSE(isBuiltinMetricName("apphealth_orders_pending"));
}

// ------------------------------------------------------------ row checks

namespace {

SqlMetricSpec customSpec(bool counter = false) {
  SqlMetricSpec s;
  s.name = counter ? "apphealth_things_total" : "apphealth_things";
  s.help = "Things.";
  s.counter = counter;
  s.labels = {"kind"};
  s.value = "v";
  return s;
}

SqlRows rowsOf(std::vector<std::vector<std::optional<std::string>>> rows) {
  SqlRows r;
  r.columns = {"kind", "v"};
  r.rows = std::move(rows);
  r.total = static_cast<long long>(r.rows.size());
  return r;
}

std::string render(const SqlMetricSpec& spec, const SqlRows& rows) {
  SnapshotBuilder out;
  exportCustomRows(spec, "main", rows, out);
  return renderText(out.take());
}

}  // namespace

TEST(SqlMetricRows, GaugeAndCounterWithLabels) {
  const auto text = render(customSpec(), rowsOf({{"a", "1.5"}, {std::nullopt, "2"}, {"c", "-Infinity"}}));
  EXPECT_NE(text.find("# TYPE apphealth_things gauge"), std::string::npos) << text;
  EXPECT_NE(text.find("apphealth_things{target=\"main\",kind=\"a\"} 1.5"), std::string::npos) << text;
  EXPECT_NE(text.find("apphealth_things{target=\"main\",kind=\"\"} 2"), std::string::npos) << text;
  const auto counter = render(customSpec(true), rowsOf({{"a", "12345678901"}}));
  EXPECT_NE(counter.find("# TYPE apphealth_things_total counter"), std::string::npos) << counter;
  EXPECT_NE(counter.find("apphealth_things_total{target=\"main\",kind=\"a\"} 12345678901"), std::string::npos) << counter;
}

TEST(SqlMetricRows, FailuresNameTheProblem) {
  auto failure = [](const SqlMetricSpec& spec, const SqlRows& rows) -> std::string {
    SnapshotBuilder out;
    try {
      exportCustomRows(spec, "main", rows, out);
    } catch (const SqlMetricError& e) {
      EXPECT_TRUE(out.take().empty());  // nothing half-written
      return e.what();
    }
    return "";
  };
  EXPECT_NE(failure(customSpec(), rowsOf({{"a", "1"}, {"b", std::nullopt}})).find("value column 'v' is NULL in row 2"),
            std::string::npos);
  EXPECT_NE(failure(customSpec(), rowsOf({{"a", "lots"}})).find("not numeric in row 1 {target=\"main\",kind=\"a\"}: 'lots'"),
            std::string::npos);
  EXPECT_NE(failure(customSpec(), rowsOf({{"a", "t"}})).find("not numeric"), std::string::npos);
  EXPECT_NE(failure(customSpec(), rowsOf({{"a", "1"}, {"a", "2"}})).find("duplicate label set {target=\"main\",kind=\"a\"}"),
            std::string::npos);
  auto spec = customSpec();
  spec.value = "n";
  EXPECT_NE(failure(spec, rowsOf({})).find("value column 'n' is not in the result (columns: kind, v)"), std::string::npos);
  spec = customSpec();
  spec.labels = {"shop"};
  EXPECT_NE(failure(spec, rowsOf({})).find("label column 'shop' is not in the result"), std::string::npos);
}

TEST(SqlMetricRows, LabelValuesAreCutTo128BytesOnACharacterBoundary) {
  EXPECT_EQ(truncateLabelValue(std::string(200, 'x')), std::string(128, 'x'));
  EXPECT_EQ(truncateLabelValue("short"), "short");
  // 127 ASCII bytes + a 2-byte character straddling the limit: the character goes entirely.
  const std::string straddling = std::string(127, 'a') + "\xc3\xa9" + "zzz";
  EXPECT_EQ(truncateLabelValue(straddling), std::string(127, 'a'));
  // Two long values that agree on their first 128 bytes become a duplicate label set.
  SnapshotBuilder out;
  EXPECT_THROW(exportCustomRows(customSpec(), "main",
                                rowsOf({{std::string(130, 'k') + "1", "1"}, {std::string(130, 'k') + "2", "2"}}), out),
               SqlMetricError);
}
