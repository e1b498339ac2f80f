// SQL-defined metrics and the job-queue table presets against a real PostgreSQL 15: Laravel's
// jobs / failed_jobs tables as its migrations create them, a generic table queue, custom gauges
// and counters with labels, and every failure mode of a query, which must fail only that
// query (apphealth_collector_up 0 with a clear log line) while the others go on.

#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "TestSupport.h"

using namespace apphealth::test;

namespace {

std::string target(const TempPostgres& pg, const std::string& sqlMetrics, const std::string& timing = "") {
  return "postgres:\n"
         "  - name: main\n"
         "    dsn: \"" + pg.dsn() + "\"\n" +
         (timing.empty() ? "    interval: 500ms\n    timeout: 500ms\n" : timing) +
         "    sql_metrics:\n" + sqlMetrics;
}

std::string up(const std::string& entry) {
  return "apphealth_collector_up{collector=\"sql\",target=\"main/" + entry + "\"}";
}
std::string jobs(const std::string& queue, const std::string& state) {
  return "apphealth_queue_jobs{target=\"main\",queue=\"" + queue + "\",state=\"" + state + "\"}";
}
std::string age(const std::string& queue) {
  return "apphealth_queue_oldest_job_age_seconds{target=\"main\",queue=\"" + queue + "\"}";
}

void promtoolAccepts(const ExporterProcess& exporter) {
  TempDir dir("apphealth-promtool");
  dir.write("m.txt", exporter.get("/metrics").body);
  std::string out;
  EXPECT_EQ(run("promtool check metrics < " + dir.file("m.txt") + " 2>&1", &out), 0) << out;
}

// The tables exactly as Laravel's `queue:table` and `queue:failed-table` migrations create them.
constexpr const char* kLaravelTables = R"(
CREATE TABLE jobs (
  id bigserial PRIMARY KEY,
  queue varchar(255) NOT NULL,
  payload text NOT NULL,
  attempts smallint NOT NULL,
  reserved_at integer NULL,
  available_at integer NOT NULL,
  created_at integer NOT NULL);
CREATE INDEX jobs_queue_index ON jobs (queue);
CREATE TABLE failed_jobs (
  id bigserial PRIMARY KEY,
  uuid varchar(255) NOT NULL UNIQUE,
  connection text NOT NULL,
  queue text NOT NULL,
  payload text NOT NULL,
  exception text NOT NULL,
  failed_at timestamp(0) without time zone NOT NULL DEFAULT CURRENT_TIMESTAMP);
)";

// One row of `jobs`, times relative to now in seconds (reserved: seconds ago, or none).
std::string job(const std::string& queue, int createdAgo, int availableIn, std::optional<int> reservedAgo = {}) {
  const std::string now = "extract(epoch FROM now())::int";
  return "INSERT INTO jobs (queue, payload, attempts, reserved_at, available_at, created_at) VALUES ('" + queue +
         "', '{\"displayName\":\"App\\\\Jobs\\\\SendMail\"}', " + (reservedAgo ? "1" : "0") + ", " +
         (reservedAgo ? now + " - " + std::to_string(*reservedAgo) : std::string("NULL")) + ", " + now + " + " +
         std::to_string(availableIn) + ", " + now + " - " + std::to_string(createdAgo) + ");";
}

std::string failedJob(const std::string& queue) {
  return "INSERT INTO failed_jobs (uuid, connection, queue, payload, exception) VALUES (gen_random_uuid()::text, "
         "'database', '" + queue + "', '{}', 'RuntimeException: boom');";
}

// A job inserted `base` seconds old at `inserted` is, in any later sample, between `base` and
// `base` plus the time since (a second either way for whole-second timestamps). A fixed
// tolerance fails on a loaded machine where the exporter takes seconds to start.
void expectAge(double actual, double base, std::chrono::steady_clock::time_point inserted) {
  const double since = std::chrono::duration<double>(std::chrono::steady_clock::now() - inserted).count();
  EXPECT_GE(actual, base - 1);
  EXPECT_LE(actual, base + since + 1);
}

}  // namespace

TEST(SqlMetrics, LaravelPresetCountsJobsByQueueAndStateLikeTheRedisQueues) {
  TempPostgres pg;
  pg.query(kLaravelTables);
  pg.query(job("default", 100, -100) + job("default", 50, -50) + job("default", 10, -10) +  // waiting
           job("default", 1000, 600) + job("default", 5, 3600) +                           // delayed
           job("default", 2000, -2000, 5) +                                                 // active
           job("emails", 30, -30) + job("reports", 400, -400, 60));
  pg.query(failedJob("default") + failedJob("default") + failedJob("payments"));
  const auto inserted = std::chrono::steady_clock::now();
  ExporterProcess exporter(target(pg, "      - preset: laravel\n        queues: [idle]\n"));
  ASSERT_TRUE(waitFor([&] { return exporter.metric(up("laravel")) == 1; }, 5s)) << exporter.log();
  // The database probe is its own collector: its first sample may land after the preset's.
  ASSERT_TRUE(waitFor([&] { return exporter.metric("apphealth_db_up{target=\"main\"}") == 1; }, 5s)) << exporter.log();

  auto m = exporter.metrics();
  EXPECT_EQ(m[jobs("default", "waiting")], 3);
  EXPECT_EQ(m[jobs("default", "delayed")], 2);
  EXPECT_EQ(m[jobs("default", "active")], 1);
  EXPECT_EQ(m[jobs("default", "failed")], 2);
  expectAge(m[age("default")], 100, inserted);  // the oldest *waiting* job, not the delayed/active ones
  EXPECT_EQ(m[jobs("emails", "waiting")], 1);
  EXPECT_EQ(m[jobs("emails", "delayed")], 0);
  EXPECT_EQ(m[jobs("emails", "active")], 0);
  EXPECT_EQ(m[jobs("emails", "failed")], 0);
  expectAge(m[age("emails")], 30, inserted);
  EXPECT_EQ(m[jobs("reports", "waiting")], 0);
  EXPECT_EQ(m[jobs("reports", "active")], 1);
  EXPECT_EQ(m[age("reports")], 0);
  // A queue with only failed jobs, and a configured queue with no jobs at all.
  EXPECT_EQ(m[jobs("payments", "failed")], 1);
  EXPECT_EQ(m[jobs("payments", "waiting")], 0);
  ASSERT_TRUE(m.count(jobs("idle", "waiting")));
  EXPECT_EQ(m[jobs("idle", "waiting")], 0);
  EXPECT_EQ(m[age("idle")], 0);
  EXPECT_EQ(m["apphealth_sql_rows_dropped{target=\"main/laravel\"}"], 0);
  EXPECT_EQ(m["apphealth_db_up{target=\"main\"}"], 1);

  // A worker reserves the oldest job, another one fails: the next sample shows it.
  pg.query("UPDATE jobs SET reserved_at = extract(epoch FROM now())::int, attempts = 1 WHERE queue = 'default' "
           "AND reserved_at IS NULL AND available_at <= extract(epoch FROM now()) AND created_at = "
           "(SELECT min(created_at) FROM jobs WHERE queue = 'default' AND reserved_at IS NULL AND "
           "available_at <= extract(epoch FROM now()))");
  pg.query(failedJob("emails"));
  ASSERT_TRUE(waitFor([&] { return exporter.metric(jobs("emails", "failed")) == 1; }, 3s));
  m = exporter.metrics();
  EXPECT_EQ(m[jobs("default", "waiting")], 2);
  EXPECT_EQ(m[jobs("default", "active")], 2);
  expectAge(m[age("default")], 50, inserted);
  promtoolAccepts(exporter);
}

TEST(SqlMetrics, LaravelPresetWithCustomTableNamesAndNoFailedJobsTable) {
  TempPostgres pg;
  pg.query("CREATE SCHEMA q; CREATE TABLE q.queue_jobs (id bigserial PRIMARY KEY, queue varchar(255) NOT NULL, "
           "payload text NOT NULL, attempts smallint NOT NULL, reserved_at integer NULL, available_at integer NOT NULL, "
           "created_at integer NOT NULL)");
  pg.query("INSERT INTO q.queue_jobs (queue, payload, attempts, available_at, created_at) "
           "SELECT 'bulk', '{}', 0, extract(epoch FROM now())::int - 20, extract(epoch FROM now())::int - 20 "
           "FROM generate_series(1, 7)");
  const auto inserted = std::chrono::steady_clock::now();
  ExporterProcess exporter(target(pg, "      - preset: laravel\n        name: archive\n"
                                      "        jobs_table: q.queue_jobs\n        failed_jobs_table: \"\"\n"));
  ASSERT_TRUE(waitFor([&] { return exporter.metric(up("archive")) == 1; }, 5s)) << exporter.log();
  EXPECT_EQ(exporter.metric(jobs("bulk", "waiting")), 7);
  EXPECT_EQ(exporter.metric(jobs("bulk", "failed")), 0);
  expectAge(exporter.metric(age("bulk")).value_or(-1), 20, inserted);
}

// A Laravel app whose queue is on Redis keeps failed jobs only in failed_jobs and has no
// `jobs` table: `jobs_table: ""` reads failed_jobs alone and exports only the failed state
// (waiting, delayed and active come from the redis preset). tests/queues/ checks it with the
// real Laravel worker writing failed_jobs.
TEST(SqlMetrics, LaravelPresetFailedJobsOnlyForARedisQueue) {
  TempPostgres pg;
  pg.query(R"(CREATE TABLE failed_jobs (id bigserial PRIMARY KEY, uuid varchar(255) NOT NULL UNIQUE,
    connection text NOT NULL, queue text NOT NULL, payload text NOT NULL, exception text NOT NULL,
    failed_at timestamp(0) without time zone NOT NULL DEFAULT CURRENT_TIMESTAMP))");
  pg.query(failedJob("default") + failedJob("default") + failedJob("emails"));
  ExporterProcess exporter(target(pg, "      - preset: laravel\n        jobs_table: \"\"\n        queues: [reports]\n"));
  ASSERT_TRUE(waitFor([&] { return exporter.metric(up("laravel")) == 1; }, 5s)) << exporter.log();
  auto m = exporter.metrics();
  EXPECT_EQ(m[jobs("default", "failed")], 2);
  EXPECT_EQ(m[jobs("emails", "failed")], 1);
  EXPECT_EQ(m.at(jobs("reports", "failed")), 0);  // configured, none failed
  for (const char* state : {"waiting", "delayed", "active"}) EXPECT_FALSE(m.count(jobs("default", state))) << state;
  EXPECT_FALSE(m.count(age("default")));
  pg.query(failedJob("reports"));
  EXPECT_TRUE(waitFor([&] { return exporter.metric(jobs("reports", "failed")) == 1; }, 3s));
}

TEST(SqlMetrics, GenericTablePreset) {
  TempPostgres pg;
  pg.query("CREATE TABLE exports (id serial PRIMARY KEY, kind text, status text NOT NULL, "
           "requested_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);"
           "INSERT INTO exports (kind, status, requested_at) VALUES "
           "('pdf', 'new', now() - interval '120 s'), ('pdf', 'new', now() - interval '10 s'), "
           "('pdf', 'running', now() - interval '3000 s'), ('csv', 'new', now() - interval '40 s');"
           "INSERT INTO exports (kind, status, requested_at, deleted_at) VALUES ('pdf', 'new', now() - interval '5000 s', now());"
           "CREATE TABLE outbox (id serial, body text, created_at timestamp NOT NULL DEFAULT now());"
           "INSERT INTO outbox (body, created_at) SELECT 'x', now() - interval '60 s' FROM generate_series(1, 3);"
           "CREATE TABLE tasks (id serial, created_at bigint NOT NULL);"
           "INSERT INTO tasks (created_at) VALUES (extract(epoch FROM now())::bigint - 15)");
  const auto inserted = std::chrono::steady_clock::now();
  ExporterProcess exporter(target(pg,
      "      - preset: table\n"
      "        name: exports\n"
      "        table: exports\n"
      "        created_at_column: requested_at\n"
      "        queue_column: kind\n"
      "        state_column: status\n"
      "        waiting_state: new\n"
      "        where: deleted_at IS NULL\n"
      "      - preset: table\n"
      "        name: mail_outbox\n"
      "        table: outbox\n"
      "      - preset: table\n"
      "        name: tasks\n"
      "        table: public.tasks\n"
      "        queue: background\n"
      "        created_at_unix: true\n"));
  ASSERT_TRUE(waitFor([&] {
    return exporter.metric(up("exports")) == 1 && exporter.metric(up("mail_outbox")) == 1 && exporter.metric(up("tasks")) == 1;
  }, 5s)) << exporter.log();
  auto m = exporter.metrics();
  EXPECT_EQ(m[jobs("pdf", "waiting")], 2);   // the deleted row is filtered by `where`
  EXPECT_EQ(m[jobs("pdf", "running")], 1);
  EXPECT_EQ(m[jobs("csv", "waiting")], 1);
  EXPECT_FALSE(m.count(jobs("pdf", "new")));  // the waiting state is exported as "waiting"
  expectAge(m[age("pdf")], 120, inserted);        // not the running job's 3000 s, nor the deleted one
  expectAge(m[age("csv")], 40, inserted);
  EXPECT_EQ(m[jobs("mail_outbox", "waiting")], 3);
  expectAge(m[age("mail_outbox")], 60, inserted);
  EXPECT_EQ(m[jobs("background", "waiting")], 1);
  expectAge(m[age("background")], 15, inserted);

  pg.query("DELETE FROM outbox");
  ASSERT_TRUE(waitFor([&] { return exporter.metric(jobs("mail_outbox", "waiting")) == 0; }, 3s));
  EXPECT_EQ(exporter.metric(age("mail_outbox")), 0);  // empty queue: age 0, so the alert resolves
  promtoolAccepts(exporter);
}

TEST(SqlMetrics, CustomGaugeAndCounterWithLabels) {
  TempPostgres pg;
  const std::string longShop(200, 's');
  pg.query("CREATE TABLE orders (id serial, shop text, state text, amount numeric);"
           "INSERT INTO orders (shop, state, amount) VALUES ('berlin', 'pending', 10), ('berlin', 'pending', 5), "
           "('berlin', 'paid', 7), ('paris', 'pending', 1.25), ('" + longShop + "', 'paid', 1);"
           "CREATE TABLE users (id serial); INSERT INTO users SELECT FROM generate_series(1, 42);");
  ExporterProcess exporter(target(pg,
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
      "        value: n\n"
      "        interval: 300ms\n"
      "        timeout: 300ms\n"));
  ASSERT_TRUE(waitFor([&] {
    return exporter.metric(up("apphealth_orders_amount")) == 1 && exporter.metric(up("apphealth_signups_total")) == 1;
  }, 5s)) << exporter.log();
  const auto body = exporter.get("/metrics").body;
  auto m = parseMetrics(body);
  EXPECT_EQ(m["apphealth_orders_amount{target=\"main\",shop=\"berlin\",state=\"pending\"}"], 15);
  EXPECT_EQ(m["apphealth_orders_amount{target=\"main\",shop=\"berlin\",state=\"paid\"}"], 7);
  EXPECT_EQ(m["apphealth_orders_amount{target=\"main\",shop=\"paris\",state=\"pending\"}"], 1.25);
  // Label values from rows are cut to 128 bytes.
  EXPECT_EQ(m["apphealth_orders_amount{target=\"main\",shop=\"" + std::string(128, 's') + "\",state=\"paid\"}"], 1);
  EXPECT_EQ(body.find(std::string(129, 's')), std::string::npos);
  EXPECT_EQ(m["apphealth_signups_total{target=\"main\"}"], 42);
  EXPECT_NE(body.find("# HELP apphealth_orders_amount Order amounts by shop and state.\n# TYPE apphealth_orders_amount gauge\n"),
            std::string::npos);
  EXPECT_NE(body.find("# TYPE apphealth_signups_total counter\n"), std::string::npos);
  // Exported as the query returns it.
  pg.query("INSERT INTO users SELECT FROM generate_series(1, 8)");
  ASSERT_TRUE(waitFor([&] { return exporter.metric("apphealth_signups_total{target=\"main\"}") == 50; }, 3s));
  promtoolAccepts(exporter);
}

TEST(SqlMetrics, EachBrokenQueryFailsAloneWithAClearLogLine) {
  TempPostgres pg;
  pg.query("CREATE TABLE events (id serial); CREATE SEQUENCE s;");
  auto gauge = [](const std::string& name, const std::string& query, const std::string& extra = "") {
    return "      - name: " + name + "\n        help: Test.\n        type: gauge\n        query: \"" + query +
           "\"\n        value: v\n" + extra;
  };
  ExporterProcess exporter(target(pg,
      gauge("apphealth_good", "SELECT count(*) AS v FROM events") +
      gauge("apphealth_bad_sql", "SELEC 1 AS v") +
      gauge("apphealth_slow", "SELECT 1 AS v FROM pg_sleep(3)") +
      gauge("apphealth_null", "SELECT NULL::int AS v") +
      gauge("apphealth_text", "SELECT 'many' AS v") +
      gauge("apphealth_dup", "SELECT 'a' AS k, 1 AS v UNION ALL SELECT 'a', 2", "        labels: [k]\n") +
      gauge("apphealth_writes", "SELECT nextval('s') AS v") +
      gauge("apphealth_many", "SELECT g::text AS k, g AS v FROM generate_series(1, 12) g ORDER BY g",
            "        labels: [k]\n        max_rows: 5\n"),
      "    interval: 1s\n    timeout: 600ms\n"));
  ASSERT_TRUE(waitFor([&] { return exporter.metric(up("apphealth_good")) == 1; }, 5s)) << exporter.log();
  ASSERT_TRUE(waitFor([&] { return exporter.metric(up("apphealth_slow")).has_value(); }, 5s)) << exporter.log();
  ASSERT_TRUE(waitFor([&] { return exporter.metric("apphealth_db_up{target=\"main\"}") == 1; }, 5s)) << exporter.log();

  // The good query keeps sampling while the others fail.
  pg.query("INSERT INTO events SELECT FROM generate_series(1, 3)");
  ASSERT_TRUE(waitFor([&] { return exporter.metric("apphealth_good{target=\"main\"}") == 3; }, 4s)) << exporter.log();
  auto m = exporter.metrics();
  EXPECT_EQ(m[up("apphealth_good")], 1);
  EXPECT_EQ(m["apphealth_db_up{target=\"main\"}"], 1);
  for (const char* broken : {"apphealth_bad_sql", "apphealth_slow", "apphealth_null", "apphealth_text", "apphealth_dup",
                             "apphealth_writes"}) {
    EXPECT_EQ(m[up(broken)], 0) << broken;
    EXPECT_GE(m["apphealth_collector_failures_total{collector=\"sql\",target=\"main/" + std::string(broken) + "\"}"], 1);
    // Nothing of a failed query is published.
    for (const auto& [series, value] : m) EXPECT_NE(series.rfind(std::string(broken) + "{", 0), 0u) << series;
  }
  // Too many rows: the first max_rows are kept, the rest dropped, and the query still counts as up.
  EXPECT_EQ(m[up("apphealth_many")], 1);
  EXPECT_EQ(m["apphealth_many{target=\"main\",k=\"5\"}"], 5);
  EXPECT_FALSE(m.count("apphealth_many{target=\"main\",k=\"6\"}"));
  EXPECT_EQ(m["apphealth_sql_rows_dropped{target=\"main/apphealth_many\"}"], 7);

  // The server cancels the slow query (statement_timeout, 4/5 of the timeout) on a connection
  // the collector keeps.
  ASSERT_TRUE(waitFor([&] {
    return exporter.log().find("sql collector for main/apphealth_slow: query failed: ERROR:  canceling statement due to "
                               "statement timeout") != std::string::npos;
  }, 8s)) << exporter.log();
  const auto log = exporter.log();
  EXPECT_NE(log.find("sql collector for main/apphealth_bad_sql: query failed: ERROR:  syntax error at or near \"1\""),
            std::string::npos) << log;
  EXPECT_NE(log.find("sql collector for main/apphealth_slow: query failed: ERROR:  canceling statement due to statement timeout"),
            std::string::npos) << log;
  EXPECT_NE(log.find("sql collector for main/apphealth_null: value column 'v' is NULL in row 1 {target=\"main\"}"),
            std::string::npos) << log;
  EXPECT_NE(log.find("sql collector for main/apphealth_text: value column 'v' is not numeric in row 1 {target=\"main\"}: 'many'"),
            std::string::npos) << log;
  EXPECT_NE(log.find("sql collector for main/apphealth_dup: duplicate label set {target=\"main\",k=\"a\"} in row 2"),
            std::string::npos) << log;
  EXPECT_NE(log.find("sql collector for main/apphealth_writes: query failed: ERROR:  cannot execute nextval() in a read-only "
                     "transaction"), std::string::npos) << log;
  EXPECT_NE(log.find("sql metric main/apphealth_many: the query returned 12 rows, more than max_rows (5): 7 rows dropped"),
            std::string::npos) << log;
  EXPECT_EQ(pg.query("SELECT nextval('s')"), "1");  // the read-only guard held
  promtoolAccepts(exporter);
}

TEST(SqlMetrics, TimeoutsNeverLeakConnections) {
  TempPostgres pg;
  ExporterProcess exporter(target(pg,
      "      - {name: apphealth_slow, help: Slow., type: gauge, query: \"SELECT 1 AS v FROM pg_sleep(2)\", value: v}\n"
      "      - {name: apphealth_ok, help: Fine., type: gauge, query: \"SELECT 1 AS v\", value: v}\n",
      "    interval: 300ms\n    timeout: 300ms\n"));
  ASSERT_TRUE(waitFor([&] { return exporter.metric(up("apphealth_ok")) == 1; }, 5s)) << exporter.log();
  int most = 0;
  for (auto end = std::chrono::steady_clock::now() + 4s; std::chrono::steady_clock::now() < end;) {
    most = std::max(most, std::stoi(pg.query("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                                             "'apphealth_exporter_sql'")));
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_LE(most, 2);  // one kept connection per entry, however many timeouts
  EXPECT_EQ(exporter.metric(up("apphealth_slow")), 0);
  EXPECT_EQ(exporter.metric(up("apphealth_ok")), 1);
  EXPECT_GE(exporter.metric("apphealth_collector_failures_total{collector=\"sql\",target=\"main/apphealth_slow\"}"), 2)
      << exporter.log();
}
