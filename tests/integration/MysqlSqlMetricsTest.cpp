// SQL-defined metrics and the job-queue table presets on a mysql target, against the MariaDB
// shared by this test binary: Laravel's database queue driven by real Laravel (its migration
// stubs create the tables, its Queue API pushes, its Worker takes and fails jobs, its own API
// counts them), a generic table queue, custom gauges and counters with labels, and every
// failure mode of a query, which must fail only that query while the others go on.

#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <thread>

#include "MysqlFixture.h"

using namespace apphealth::test;
using Clock = std::chrono::steady_clock;

namespace {

std::string up(const std::string& entry) {
  return "apphealth_collector_up{collector=\"sql\",target=\"main/" + entry + "\"}";
}
std::string jobs(const std::string& queue, const std::string& state) {
  return "apphealth_queue_jobs{target=\"main\",queue=\"" + queue + "\",state=\"" + state + "\"}";
}
std::string age(const std::string& queue) {
  return "apphealth_queue_oldest_job_age_seconds{target=\"main\",queue=\"" + queue + "\"}";
}

double secondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

}  // namespace

class MysqlSqlMetrics : public MysqlFixture {
 protected:
  std::string withSqlMetrics(const std::string& entries, const std::string& timing = "") const {
    return target("    sql_metrics:\n" + entries, timing);
  }

  // Runs tests/integration/php/laravel_database_queue.php with Debian's Laravel against this
  // test's database; returns its output. Fails the test when Laravel fails.
  std::string laravel(const std::string& command) const {
    const std::string cmd = "php " + std::string(APPHEALTH_SOURCE_DIR) +
                            "/tests/integration/php/laravel_database_queue.php 127.0.0.1 " +
                            std::to_string(db().port()) + " " + user_ + " " + secrets_.file("password") + " " +
                            database_ + " " + command;
    std::string out;
    EXPECT_EQ(run(cmd, &out), 0) << cmd << "\n" << out;
    return out;
  }

  // Laravel's own counts: "size QUEUE N" (Queue::size) and "failed QUEUE N" (failed-job provider).
  std::map<std::string, double> laravelCounts(const std::string& queues) const {
    std::map<std::string, double> counts;
    std::istringstream lines(laravel("counts " + queues));
    std::string what, queue;
    double n = 0;
    while (lines >> what >> queue >> n) counts[what + " " + queue] = n;
    return counts;
  }
};

TEST_F(MysqlSqlMetrics, LaravelPresetAgreesWithLaravelsOwnQueueApi) {
  laravel("migrate");  // Laravel's queue:table and queue:failed-table stubs, by its schema builder
  const auto pushed = Clock::now();
  laravel("push default 3");
  laravel("later default 2 600");        // delayed by 10 minutes
  laravel("push emails 2");
  laravel("fail payments 2");            // pushed, taken by the Worker, thrown, logged as failed
  laravel("reserve default");            // a worker holds the oldest default job
  laravel("work emails");                // a worker processes one emails job (deleted)
  ExporterProcess exporter(withSqlMetrics("      - preset: laravel\n        queues: [idle]\n"));
  ASSERT_TRUE(waitFor([&] { return exporter.metric(up("laravel")) == 1; }, 10s)) << exporter.log();
  ASSERT_TRUE(waitUp(exporter, 1, 10s)) << exporter.log();

  auto m = exporter.metrics();
  EXPECT_EQ(m[jobs("default", "waiting")], 2);
  EXPECT_EQ(m[jobs("default", "delayed")], 2);
  EXPECT_EQ(m[jobs("default", "active")], 1);
  EXPECT_EQ(m[jobs("default", "failed")], 0);
  EXPECT_EQ(m[jobs("emails", "waiting")], 1);
  EXPECT_EQ(m[jobs("emails", "active")], 0);
  EXPECT_EQ(m[jobs("payments", "failed")], 2);
  EXPECT_EQ(m[jobs("payments", "waiting")], 0);
  ASSERT_TRUE(m.count(jobs("idle", "waiting")));  // configured, never used: exported at 0
  EXPECT_EQ(m[jobs("idle", "waiting")], 0);
  EXPECT_EQ(m[age("idle")], 0);
  // The oldest waiting default job was pushed after `pushed` (Laravel stamps whole seconds).
  EXPECT_GE(m[age("default")], 0);
  EXPECT_LE(m[age("default")], secondsSince(pushed) + 1);
  EXPECT_EQ(m["apphealth_sql_rows_dropped{target=\"main/laravel\"}"], 0);

  // Laravel's own API: size() counts every job of a queue (waiting, delayed and reserved), the
  // failed-job provider the failed ones.
  const auto counts = laravelCounts("default emails payments idle");
  for (const char* queue : {"default", "emails", "payments", "idle"}) {
    const std::string q = queue;
    EXPECT_EQ(m[jobs(q, "waiting")] + m[jobs(q, "delayed")] + m[jobs(q, "active")], counts.at("size " + q)) << q;
    EXPECT_EQ(m[jobs(q, "failed")], counts.at("failed " + q)) << q;
  }

  // The worker finishes the reserved job's successor; another job fails.
  laravel("work default");
  laravel("fail payments 1");
  ASSERT_TRUE(waitFor([&] { return exporter.metric(jobs("payments", "failed")) == 3; }, 5s)) << exporter.log();
  m = exporter.metrics();
  EXPECT_EQ(m[jobs("default", "waiting")], 1);
  EXPECT_EQ(m[jobs("default", "active")], 1);
  const auto after = laravelCounts("default payments");
  EXPECT_EQ(m[jobs("default", "waiting")] + m[jobs("default", "delayed")] + m[jobs("default", "active")],
            after.at("size default"));
  EXPECT_EQ(m[jobs("payments", "failed")], after.at("failed payments"));
  promtoolAccepts(exporter);

  // An app whose queue is on Redis keeps only failed_jobs in the database (jobs_table: ""):
  // the failed state alone, as Laravel's failed-job provider counts it.
  ExporterProcess failedOnly(withSqlMetrics("      - preset: laravel\n        jobs_table: \"\"\n"));
  ASSERT_TRUE(waitFor([&] { return failedOnly.metric(up("laravel")) == 1; }, 10s)) << failedOnly.log();
  m = failedOnly.metrics();
  EXPECT_EQ(m[jobs("payments", "failed")], after.at("failed payments"));
  EXPECT_FALSE(m.count(jobs("payments", "waiting")));
  EXPECT_FALSE(m.count(jobs("default", "failed")));  // no failed default job, no jobs table read
}

TEST_F(MysqlSqlMetrics, GenericTablePresetAndCustomMetrics) {
  const std::string longShop(200, 's');
  MariaSession s(db(), user_, password_, database_);
  s.exec("SET time_zone = '+00:00';"
         "CREATE TABLE exports (id int AUTO_INCREMENT PRIMARY KEY, kind varchar(20), status varchar(20) NOT NULL, "
         "requested_at datetime(3) NOT NULL, deleted_at timestamp NULL);"
         "INSERT INTO exports (kind, status, requested_at) VALUES "
         "('pdf', 'new', UTC_TIMESTAMP(3) - INTERVAL 120 SECOND), ('pdf', 'new', UTC_TIMESTAMP(3) - INTERVAL 10 SECOND), "
         "('pdf', 'running', UTC_TIMESTAMP(3) - INTERVAL 3000 SECOND), ('csv', 'new', UTC_TIMESTAMP(3) - INTERVAL 40 SECOND);"
         "INSERT INTO exports (kind, status, requested_at, deleted_at) VALUES "
         "('pdf', 'new', UTC_TIMESTAMP(3) - INTERVAL 5000 SECOND, NOW());"
         "CREATE TABLE tasks (id int, created_at int unsigned NOT NULL);"
         "INSERT INTO tasks VALUES (1, UNIX_TIMESTAMP() - 15);"
         "CREATE TABLE orders (id int, shop varchar(255), state varchar(20), amount decimal(10,2));"
         "INSERT INTO orders VALUES (1, 'berlin', 'pending', 10), (2, 'berlin', 'pending', 5), (3, 'berlin', 'paid', 7), "
         "(4, 'paris', 'pending', 1.25), (5, '" + longShop + "', 'paid', 1);"
         "CREATE TABLE users (id int); INSERT INTO users VALUES (1), (2), (3)");
  const auto inserted = Clock::now();
  ExporterProcess exporter(withSqlMetrics(
      "      - preset: table\n"
      "        name: exports\n"
      "        table: exports\n"
      "        created_at_column: requested_at\n"
      "        queue_column: kind\n"
      "        state_column: status\n"
      "        waiting_state: new\n"
      "        where: deleted_at IS NULL\n"
      "      - preset: table\n"
      "        name: tasks\n"
      "        table: " + database_ + ".tasks\n"
      "        queue: background\n"
      "        created_at_unix: true\n"
      "      - name: apphealth_orders_amount\n"
      "        help: Order amounts by shop and state.\n"
      "        type: gauge\n"
      "        query: |\n"
      "          SELECT shop, state, sum(amount) AS total\n"
      "          FROM orders GROUP BY shop, state  -- a trailing comment\n"
      "        labels: [shop, state]\n"
      "        value: total\n"
      "      - name: apphealth_signups_total\n"
      "        help: Users ever signed up.\n"
      "        type: counter\n"
      "        query: SELECT count(*) AS n FROM users;\n"
      "        value: n\n"));
  ASSERT_TRUE(waitFor([&] {
    auto m = exporter.metrics();
    return m[up("exports")] == 1 && m[up("tasks")] == 1 && m[up("apphealth_orders_amount")] == 1 &&
           m[up("apphealth_signups_total")] == 1;
  }, 10s)) << exporter.log();
  const auto body = exporter.get("/metrics").body;
  auto m = parseMetrics(body);
  const double slack = secondsSince(inserted) + 1;
  EXPECT_EQ(m[jobs("pdf", "waiting")], 2);  // the deleted row is filtered by `where`
  EXPECT_EQ(m[jobs("pdf", "running")], 1);
  EXPECT_EQ(m[jobs("csv", "waiting")], 1);
  EXPECT_FALSE(m.count(jobs("pdf", "new")));  // the waiting state is exported as "waiting"
  // DATETIME read as UTC; not the running job's 3000 s, nor the deleted one's.
  EXPECT_GE(m[age("pdf")], 120);
  EXPECT_LE(m[age("pdf")], 120 + slack);
  EXPECT_GE(m[age("csv")], 40);
  EXPECT_LE(m[age("csv")], 40 + slack);
  EXPECT_EQ(m[jobs("background", "waiting")], 1);
  EXPECT_GE(m[age("background")], 14);  // UNIX_TIMESTAMP() - 15 truncates to whole seconds
  EXPECT_LE(m[age("background")], 15 + slack);

  EXPECT_EQ(m["apphealth_orders_amount{target=\"main\",shop=\"berlin\",state=\"pending\"}"], 15);
  EXPECT_EQ(m["apphealth_orders_amount{target=\"main\",shop=\"berlin\",state=\"paid\"}"], 7);
  EXPECT_EQ(m["apphealth_orders_amount{target=\"main\",shop=\"paris\",state=\"pending\"}"], 1.25);
  // Label values from rows are cut to 128 bytes.
  EXPECT_EQ(m["apphealth_orders_amount{target=\"main\",shop=\"" + std::string(128, 's') + "\",state=\"paid\"}"], 1);
  EXPECT_EQ(body.find(std::string(129, 's')), std::string::npos);
  EXPECT_EQ(m["apphealth_signups_total{target=\"main\"}"], 3);
  EXPECT_NE(body.find("# TYPE apphealth_signups_total counter\n"), std::string::npos);
  s.exec("INSERT INTO users VALUES (4), (5)");
  ASSERT_TRUE(waitFor([&] { return exporter.metric("apphealth_signups_total{target=\"main\"}") == 5; }, 5s));

  s.exec("DELETE FROM tasks");
  ASSERT_TRUE(waitFor([&] { return exporter.metric(jobs("background", "waiting")) == 0; }, 5s));
  EXPECT_EQ(exporter.metric(age("background")), 0);  // empty queue: age 0, so the alert resolves
  promtoolAccepts(exporter);
}

TEST_F(MysqlSqlMetrics, EachBrokenQueryFailsAloneWithAClearLogLine) {
  db().query("CREATE TABLE " + database_ + ".events (id int); CREATE SEQUENCE " + database_ + ".s");
  auto gauge = [](const std::string& name, const std::string& query, const std::string& extra = "") {
    return "      - name: " + name + "\n        help: Test.\n        type: gauge\n        query: \"" + query +
           "\"\n        value: v\n" + extra;
  };
  ExporterProcess exporter(withSqlMetrics(
      gauge("apphealth_good", "SELECT count(*) AS v FROM events") +
      gauge("apphealth_bad_sql", "SELEC 1 AS v") +
      gauge("apphealth_slow", "SELECT SLEEP(3) AS v") +
      gauge("apphealth_null", "SELECT NULL AS v") +
      gauge("apphealth_text", "SELECT 'many' AS v") +
      gauge("apphealth_dup", "SELECT 'a' AS k, 1 AS v UNION ALL SELECT 'a', 2", "        labels: [k]\n") +
      gauge("apphealth_writes", "SELECT nextval(s) AS v") +
      gauge("apphealth_many", "SELECT seq AS k, seq AS v FROM seq_1_to_12", "        labels: [k]\n        max_rows: 5\n"),
      // Nine collectors connect (TLS) at once: room for a loaded machine; SLEEP(3) still times out.
      "    interval: 2s\n    timeout: 1500ms\n"));
  ASSERT_TRUE(waitFor([&] { return exporter.metric(up("apphealth_good")) == 1; }, 10s)) << exporter.log();
  ASSERT_TRUE(waitFor([&] { return exporter.metric(up("apphealth_slow")).has_value(); }, 10s)) << exporter.log();
  ASSERT_TRUE(waitUp(exporter, 1, 10s)) << exporter.log();

  // The good query keeps sampling while the others fail.
  db().query("INSERT INTO " + database_ + ".events VALUES (1), (2), (3)");
  ASSERT_TRUE(waitFor([&] { return exporter.metric("apphealth_good{target=\"main\"}") == 3; }, 10s)) << exporter.log();
  auto m = exporter.metrics();
  EXPECT_EQ(m[up("apphealth_good")], 1);
  EXPECT_EQ(m["apphealth_db_up{target=\"main\"}"], 1);
  for (const char* broken : {"apphealth_bad_sql", "apphealth_slow", "apphealth_null", "apphealth_text", "apphealth_dup",
                             "apphealth_writes"}) {
    EXPECT_EQ(m[up(broken)], 0) << broken;
    EXPECT_GE(m["apphealth_collector_failures_total{collector=\"sql\",target=\"main/" + std::string(broken) + "\"}"], 1);
    for (const auto& [series, value] : m) EXPECT_NE(series.rfind(std::string(broken) + "{", 0), 0u) << series;
  }
  // Too many rows: the first max_rows are kept, the rest dropped, and the query still counts as up.
  EXPECT_EQ(m[up("apphealth_many")], 1);
  EXPECT_EQ(m["apphealth_many{target=\"main\",k=\"5\"}"], 5);
  EXPECT_FALSE(m.count("apphealth_many{target=\"main\",k=\"6\"}"));
  EXPECT_EQ(m["apphealth_sql_rows_dropped{target=\"main/apphealth_many\"}"], 7);

  // The server ends the slow query (max_statement_time, 4/5 of the timeout) on a connection
  // the collector keeps.
  const std::string slow = "sql collector for main/apphealth_slow: query failed: ERROR 1969 (70100): Query execution "
                           "was interrupted (max_statement_time exceeded)";
  ASSERT_TRUE(waitFor([&] { return exporter.log().find(slow) != std::string::npos; }, 10s)) << exporter.log();
  const auto log = exporter.log();
  EXPECT_NE(log.find("sql collector for main/apphealth_bad_sql: query failed: ERROR 1064 (42000): You have an error "
                     "in your SQL syntax"),
            std::string::npos) << log;
  EXPECT_NE(log.find("sql collector for main/apphealth_null: value column 'v' is NULL in row 1 {target=\"main\"}"),
            std::string::npos) << log;
  EXPECT_NE(log.find("sql collector for main/apphealth_text: value column 'v' is not numeric in row 1 {target=\"main\"}: 'many'"),
            std::string::npos) << log;
  EXPECT_NE(log.find("sql collector for main/apphealth_dup: duplicate label set {target=\"main\",k=\"a\"} in row 2"),
            std::string::npos) << log;
  EXPECT_NE(log.find("sql collector for main/apphealth_writes: query failed: ERROR 1792 (25006): Cannot execute "
                     "statement in a READ ONLY transaction"), std::string::npos) << log;
  EXPECT_NE(log.find("sql metric main/apphealth_many: the query returned 12 rows, more than max_rows (5): 7 rows dropped"),
            std::string::npos) << log;
  EXPECT_EQ(db().query("SELECT nextval(" + database_ + ".s)"), "1");  // the read-only guard held
  promtoolAccepts(exporter);
}

TEST_F(MysqlSqlMetrics, TimeoutsNeverLeakConnections) {
  ExporterProcess exporter(withSqlMetrics(
      "      - {name: apphealth_slow, help: Slow., type: gauge, query: \"SELECT SLEEP(2) AS v\", value: v}\n"
      "      - {name: apphealth_ok, help: Fine., type: gauge, query: \"SELECT 1 AS v\", value: v}\n",
      "    interval: 1s\n    timeout: 800ms\n"));
  ASSERT_TRUE(waitFor([&] { return exporter.metric(up("apphealth_ok")) == 1; }, 10s)) << exporter.log();
  int most = 0;
  for (auto end = Clock::now() + 5s; Clock::now() < end;) {
    most = std::max(most, exporterConnections());
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_LE(most, 3);  // the probe's and one kept connection per entry, however many timeouts
  EXPECT_EQ(exporter.metric(up("apphealth_slow")), 0);
  EXPECT_EQ(exporter.metric(up("apphealth_ok")), 1);
  EXPECT_GE(exporter.metric("apphealth_collector_failures_total{collector=\"sql\",target=\"main/apphealth_slow\"}"), 2)
      << exporter.log();
}
