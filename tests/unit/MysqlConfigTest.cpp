// The `mysql:` section: defaults, every field, and each problem reported with its file:line:col
// (what --check-config prints); plus the SQL the MySQL dialect sends for the presets.

#include <gtest/gtest.h>

#include <cstdlib>

#include "ConfigErrors.h"
#include "collectors/sql/SqlMetricQueries.h"
#include "config/ConfigLoader.h"

using namespace apphealth;
using apphealth::test::errorsOf;

namespace {

// Expects exactly these problems, in file order.
void expectErrors(const std::string& yaml, const std::vector<std::string>& expected) {
  EXPECT_EQ(errorsOf(yaml), expected) << yaml;
}

}  // namespace

TEST(MysqlConfig, DefaultsAndEveryField) {
  setenv("APPHEALTH_TEST_MYSQL_PASSWORD", "s3cret", 1);
  const auto result = loadConfigText(R"(
mysql:
  - name: app
    user: monitor
  - name: replica
    host: db2.internal
    port: 3307
    user: monitor
    database: app
    password_env: APPHEALTH_TEST_MYSQL_PASSWORD
    ssl_mode: verify_identity
    probe_query: SELECT 1 FROM DUAL
    interval: 30s
    timeout: 3s
    thresholds: {probe_latency: 250ms}
    oldest_transaction_exclude_users: [backup, "it's"]
    sql_metrics:
      - preset: laravel
        queues: [default]
  - name: local
    socket: /run/mysqld/mysqld.sock
    user: root
)", "c.yml");
  ASSERT_TRUE(result.config) << result.errors.front().format();
  const auto& m = result.config->mysql;
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].host, "127.0.0.1");
  EXPECT_EQ(m[0].port, 3306);
  EXPECT_EQ(m[0].ssl_mode, "preferred");
  EXPECT_EQ(m[0].probe_query, "SELECT 1");
  EXPECT_EQ(m[0].interval, std::chrono::seconds(15));
  EXPECT_EQ(m[0].timeout, std::chrono::seconds(5));
  EXPECT_EQ(m[0].probe_latency_threshold_seconds, 1.0);
  EXPECT_TRUE(m[0].password.empty());
  EXPECT_EQ(m[1].host, "db2.internal");
  EXPECT_EQ(m[1].port, 3307);
  EXPECT_EQ(m[1].database, "app");
  EXPECT_EQ(m[1].password.env, "APPHEALTH_TEST_MYSQL_PASSWORD");
  EXPECT_EQ(m[1].ssl_mode, "verify_identity");
  EXPECT_EQ(m[1].probe_latency_threshold_seconds, 0.25);
  EXPECT_TRUE(m[0].oldest_transaction_exclude_users.empty());
  EXPECT_EQ(m[1].oldest_transaction_exclude_users, (std::vector<std::string>{"backup", "it's"}));
  ASSERT_EQ(m[1].sql_metrics.size(), 1u);
  EXPECT_EQ(m[1].sql_metrics[0].kind, SqlMetricSpec::Kind::Laravel);
  EXPECT_EQ(m[1].sql_metrics[0].interval, std::chrono::seconds(30));  // the target's
  EXPECT_EQ(m[2].socket, "/run/mysqld/mysqld.sock");
}

TEST(MysqlConfig, EveryProblemHasItsPosition) {
  expectErrors(R"(postgres:
  - name: main
    dsn: "host=127.0.0.1"
mysql:
  - name: main
    user: monitor
  - name: app
    user: monitor
  - name: app
    user: monitor
)",
               {"c.yml:5:11: target name 'main' is already used by a postgres target; both publish "
                "apphealth_db_*{target=\"main\"}, so database target names must be unique across postgres and mysql",
                "c.yml:9:11: duplicate mysql target name 'app'"});
  expectErrors(R"(mysql:
  - name: app
    host: 127.0.0.1
    socket: run/mysqld.sock
  - name: b
    user: monitor
    port: 3306
    socket: /run/mysqld/mysqld.sock
  - name: c
    user: monitor
    port: 70000
    password: hunter2
    ssl_mode: verify_everything
)",
               {"c.yml:2:5: a mysql target needs 'user'",
                "c.yml:4:13: socket must be an absolute path to the server's Unix socket",
                "c.yml:7:11: set either 'socket' or 'host'/'port', not both",
                "c.yml:11:11: 'port' must be between 1 and 65535",
                "c.yml:12:15: inline passwords are not accepted: use password_file or password_env",
                "c.yml:13:15: ssl_mode must be disabled, preferred, required, verify_ca or verify_identity, got "
                "'verify_everything'"});
  expectErrors(R"(mysql:
  - name: app
    user: monitor
    ssl_mode: verify_ca
  - name: b
    user: monitor
    ssl_mode: disabled
    ssl_ca: /etc/ssl/certs/ca-certificates.crt
  - name: c
    user: monitor
    ssl_ca: /nonexistent/ca.pem
    password_file: /nonexistent/password
    interval: 1s
    timeout: 2s
    intervall: 5s
    oldest_transaction_exclude_users: [backup, ""]
)",
               {"c.yml:4:15: ssl_mode: verify_ca needs ssl_ca (the PEM file of the CA that signed the server's "
                "certificate)",
                "c.yml:8:13: ssl_ca has no use with ssl_mode: disabled",
                "c.yml:11:13: cannot read ssl_ca /nonexistent/ca.pem",
                "c.yml:12:20: cannot read password_file /nonexistent/password: No such file or directory",
                "c.yml:14:14: timeout (2s) must not exceed interval (1s)",
                "c.yml:15:5: unknown key 'intervall' in a mysql target",
                "c.yml:16:48: a user name has 1 to 80 bytes"});
  expectErrors(R"(mysql:
  - name: app
    user: monitor
    sql_metrics:
      - {name: apphealth_x, help: h, type: gauge, query: SELECT 1 AS v, value: v}
      - {name: apphealth_x, help: h, type: gauge, query: SELECT 2 AS v, value: v, labels: [target]}
)",
               {"c.yml:6:16: duplicate sql_metrics name 'apphealth_x' in mysql target 'app'",
                "c.yml:6:91: label 'target' is reserved: every SQL metric carries target=\"<mysql target>\""});
}

TEST(MysqlConfig, PresetQueriesUseTheMysqlDialect) {
  SqlMetricSpec laravel;
  laravel.kind = SqlMetricSpec::Kind::Laravel;
  laravel.jobs_table = "app.jobs";
  const auto sql = buildSqlMetricQuery(laravel, SqlDialect::Mysql);
  EXPECT_NE(sql.find("FROM `app`.`jobs`"), std::string::npos) << sql;
  EXPECT_NE(sql.find("FROM `failed_jobs`"), std::string::npos) << sql;
  EXPECT_EQ(sql.find("FULL JOIN"), std::string::npos) << sql;
  laravel.failed_jobs_table = "";
  EXPECT_EQ(buildSqlMetricQuery(laravel, SqlDialect::Mysql).find("failed_jobs"), std::string::npos);

  SqlMetricSpec table;
  table.kind = SqlMetricSpec::Kind::Table;
  table.table = "exports";
  table.where = "done = 0";
  const auto t = buildSqlMetricQuery(table, SqlDialect::Mysql);
  EXPECT_NE(t.find("FROM `exports` WHERE (\ndone = 0\n)"), std::string::npos) << t;
  EXPECT_NE(t.find("TIMESTAMPDIFF(MICROSECOND, min(`created_at`), NOW(6))"), std::string::npos) << t;
}
