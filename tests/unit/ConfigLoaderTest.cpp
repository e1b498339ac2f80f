#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "ConfigErrors.h"
#include "config/ConfigLoader.h"

using namespace apphealth;
using namespace std::chrono_literals;

namespace {

using apphealth::test::errorsOf;

}  // namespace

TEST(ConfigLoader, FullConfigWithDefaults) {
  setenv("APPHEALTH_TEST_REDIS_PASSWORD", "s3cret", 1);
  const auto result = loadConfigText(R"(
postgres:
  - name: main
    dsn: "host=127.0.0.1 dbname=app user=monitor"
    password_env: APPHEALTH_TEST_REDIS_PASSWORD
  - name: replica
    host: 10.0.0.2
    dbname: app
    user: monitor
    interval: 30s
    timeout: 3s
    thresholds:
      probe_latency: 250ms
    oldest_transaction_exclude_applications: [pg_dump, "nightly backup"]
redis:
  - name: jobs
    address: unix:/run/redis/redis.sock
    queues:
      - preset: sidekiq
        queues: [default, mailers]
        thresholds: {waiting: 50}
      - key: "stream:*"
        type: stream
backups:
  - name: db
    directory: /var/backups/db
    glob: "full-*.sql.gz"
    verify_checksum: true
)", "c.yml");
  ASSERT_TRUE(result.errors.empty()) << result.errors.front().format();
  const auto& c = *result.config;
  ASSERT_EQ(c.postgres.size(), 2u);
  EXPECT_EQ(c.postgres[0].probe_query, "SELECT 1");
  EXPECT_EQ(c.postgres[0].interval, 15s);
  EXPECT_EQ(c.postgres[0].timeout, 5s);
  EXPECT_EQ(c.postgres[0].probe_latency_threshold_seconds, 1.0);
  EXPECT_EQ(c.postgres[0].password.env, "APPHEALTH_TEST_REDIS_PASSWORD");
  EXPECT_EQ(c.postgres[1].dsn, "host='10.0.0.2' dbname='app' user='monitor'");
  EXPECT_DOUBLE_EQ(c.postgres[1].probe_latency_threshold_seconds, 0.25);
  EXPECT_EQ(c.postgres[0].oldest_transaction_exclude_applications,
            (std::vector<std::string>{"pg_dump", "pg_dumpall", "pg_basebackup"}));
  EXPECT_EQ(c.postgres[1].oldest_transaction_exclude_applications,
            (std::vector<std::string>{"pg_dump", "nightly backup"}));
  ASSERT_EQ(c.redis.size(), 1u);
  EXPECT_EQ(c.redis[0].unix_socket, "/run/redis/redis.sock");
  ASSERT_EQ(c.redis[0].queues.size(), 2u);
  EXPECT_EQ(c.redis[0].queues[0].preset, RedisQueueSpec::Preset::Sidekiq);
  EXPECT_EQ(c.redis[0].queues[0].thresholds.at("waiting"), 50);
  EXPECT_EQ(c.redis[0].queues[1].key, "stream:*");
  ASSERT_EQ(c.backups.size(), 1u);
  EXPECT_EQ(c.backups[0].max_age, 26h);
  EXPECT_TRUE(c.backups[0].verify_checksum);
}

TEST(ConfigLoader, ExcludedApplicationsAreValidApplicationNames) {
  const auto errors = errorsOf(R"(postgres:
  - name: main
    dsn: "host=127.0.0.1"
    oldest_transaction_exclude_applications: ["", "0123456789012345678901234567890123456789012345678901234567890123"]
  - name: none
    dsn: "host=127.0.0.1"
    oldest_transaction_exclude_applications: []
)");
  EXPECT_EQ(errors, (std::vector<std::string>{"c.yml:4:47: an application_name has 1 to 63 bytes",
                                              "c.yml:4:51: an application_name has 1 to 63 bytes"}));
}

TEST(ConfigLoader, EmptyFileIsValid) {
  EXPECT_TRUE(loadConfigText("", "c.yml").config.has_value());
}

TEST(ConfigLoader, ReportsEveryProblemWithLineAndColumn) {
  const auto errors = errorsOf(R"(postgres:
  - name: main
    dsn: "host=x"
    intervall: 15s
  - name: main
    dsn: "host=y"
    timeout: fast
redis:
  - name: jobs
    address: "localhost:notaport"
    db: [1]
    queues:
      - preset: resque
        queues: [a]
backups:
  - name: db
    verify_checksum: maybe
)");
  const std::vector<std::string> expected = {
      "c.yml:4:5: unknown key 'intervall' in a postgres target",
      "c.yml:5:11: duplicate postgres target name 'main'",
      "c.yml:7:14: 'timeout' must be a duration such as 500ms, 15s, 5m or 26h",
      "c.yml:10:14: address must be host:port or unix:/path/to/socket",
      "c.yml:11:9: 'db' must be an integer, got 'a collection'",
      "c.yml:13:17: unknown preset 'resque' (celery, rq, sidekiq, laravel, bullmq)",
      "c.yml:16:5: a backup needs exactly one of 'directory' (local) or 's3' (off-site)",
      "c.yml:17:22: 'verify_checksum' must be true or false",
  };
  EXPECT_EQ(errors, expected);
}

TEST(ConfigLoader, SecretsNeverInline) {
  const auto errors = errorsOf(R"(postgres:
  - name: a
    dsn: "host=x password=hunter2"
  - name: b
    dsn: "postgresql://monitor:hunter2@db/app"
  - name: c
    dsn: "host=x"
    password: hunter2
)");
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0], "c.yml:3:10: the dsn must not contain the password: use password_file or password_env");
  EXPECT_EQ(errors[1], "c.yml:5:10: the dsn must not contain the password: use password_file or password_env");
  EXPECT_EQ(errors[2], "c.yml:8:15: inline passwords are not accepted: use password_file or password_env");
  for (const auto& e : errors) EXPECT_EQ(e.find("hunter2 "), std::string::npos);
}

TEST(ConfigLoader, UnreadablePasswordFileAndMissingEnvironmentVariable) {
  unsetenv("APPHEALTH_TEST_UNSET");
  const auto errors = errorsOf(R"(redis:
  - name: a
    address: 127.0.0.1:6379
    password_file: /nonexistent/redis.pass
  - name: b
    address: 127.0.0.1:6379
    password_env: APPHEALTH_TEST_UNSET
)");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0], "c.yml:4:20: cannot read password_file /nonexistent/redis.pass: No such file or directory");
  EXPECT_EQ(errors[1], "c.yml:7:19: environment variable APPHEALTH_TEST_UNSET is not set");
}

TEST(ConfigLoader, PasswordFileIsReadWithoutTrailingNewline) {
  const std::string path = "/tmp/apphealth-config-test.pass";
  std::ofstream(path) << "s3cret\n";
  EXPECT_EQ(readSecret({path, ""}), "s3cret");
  std::remove(path.c_str());
}

TEST(ConfigLoader, TimeoutMustNotExceedInterval) {
  const auto errors = errorsOf("postgres:\n  - name: a\n    dsn: host=x\n    interval: 1s\n    timeout: 2s\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "c.yml:5:14: timeout (2s) must not exceed interval (1s)");
}

TEST(ConfigLoader, YamlSyntaxErrorHasPosition) {
  const auto errors = errorsOf("postgres:\n  - name: a\n    dsn: [unclosed\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("c.yml:", 0), 0u);
  EXPECT_NE(errors[0].find(":4:"), std::string::npos) << errors[0];
}

TEST(ConfigLoader, WrongShapes) {
  EXPECT_EQ(errorsOf("postgres: {name: a}\n"), std::vector<std::string>{"c.yml:1:11: 'postgres' must be a list"});
  EXPECT_EQ(errorsOf("- a\n- b\n"), std::vector<std::string>{"c.yml:1:1: the top level must be a mapping of keys to values"});
  EXPECT_EQ(errorsOf("backups:\n  - name: \"bad name\"\n    directory: /x\n"),
            std::vector<std::string>{
                "c.yml:2:11: name 'bad name' must be 1-64 characters of letters, digits, '_', '-', '.', ':'"});
}

TEST(ConfigLoader, QueueNamesAreUniquePerRedisTarget) {
  const auto errors = errorsOf(R"(redis:
  - name: jobs
    queues:
      - {preset: rq, queues: [default]}
      - {preset: sidekiq, queues: [mailers, default]}
  - name: other
    queues:
      - {preset: celery, queues: [default]}
)");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "c.yml:5:9: queue 'default' is already read by another entry of redis target 'jobs'; give one of them another name");
}

TEST(ConfigLoader, QueueWorkersSwitchAndNewStates) {
  const auto ok = loadConfigText(R"(redis:
  - name: jobs
    queues:
      - {preset: celery, queues: [a], workers: false}
      - {preset: bullmq, queues: [b]}
      - {key: "x", state: waiting_children, thresholds: {paused: 5, reserved: 7}}
)", "c.yml");
  ASSERT_TRUE(ok.config) << (ok.errors.empty() ? "" : ok.errors[0].format());
  EXPECT_FALSE(ok.config->redis[0].queues[0].workers);
  EXPECT_TRUE(ok.config->redis[0].queues[1].workers);  // default
  EXPECT_EQ(ok.config->redis[0].queues[2].state, "waiting_children");
  EXPECT_EQ(ok.config->redis[0].queues[2].thresholds.at("paused"), 5);

  EXPECT_EQ(errorsOf("redis:\n  - name: r\n    queues:\n      - {preset: laravel, queues: [a], workers: true}\n"),
            std::vector<std::string>{
                "c.yml:4:49: 'workers' does not apply to laravel: its workers leave no trace in Redis"});
  EXPECT_EQ(errorsOf("redis:\n  - name: r\n    queues:\n      - {preset: rq, queues: [a], workers: maybe}\n").size(), 1u);
  EXPECT_EQ(errorsOf("redis:\n  - name: r\n    queues:\n      - {key: x, state: sleeping}\n"),
            std::vector<std::string>{"c.yml:4:25: unknown state 'sleeping'"});
}

TEST(ConfigLoader, MissingFile) {
  const auto result = loadConfigFile("/nonexistent/apphealth.yml");
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(result.errors[0].format(), "/nonexistent/apphealth.yml: cannot read the config file");
}

TEST(ConfigLoader, IngestListenerAndConnections) {
  const auto ok = loadConfigText("ingest:\n  listen_address: \"127.0.0.1:20046\"\n  max_connections: 200\n"
                                 "  max_connections_per_client: 4\n  request_timeout: 3s\n", "c.yml");
  ASSERT_TRUE(ok.config) << (ok.errors.empty() ? "" : ok.errors[0].format());
  EXPECT_EQ(ok.config->ingest.listen_address, "127.0.0.1:20046");
  EXPECT_EQ(ok.config->ingest.max_connections, 200);
  EXPECT_EQ(ok.config->ingest.max_connections_per_client, 4);
  EXPECT_EQ(ok.config->ingest.request_timeout, std::chrono::seconds(3));
  // The default layout: the beacon endpoints on their own listener.
  const auto defaults = loadConfigText("ingest: {}\n", "c.yml");
  ASSERT_TRUE(defaults.config);
  EXPECT_EQ(defaults.config->ingest.listen_address, ":10046");
  EXPECT_FALSE(defaults.config->ingest.shared_listener);
  EXPECT_EQ(defaults.config->ingest.max_connections, 1024);
  EXPECT_EQ(defaults.config->ingest.max_connections_per_client, 16);
  EXPECT_EQ(defaults.config->ingest.request_timeout, std::chrono::seconds(10));
  // Sharing the main listener is an explicit choice; there max_connections counts worker threads.
  const auto shared = loadConfigText("ingest:\n  shared_listener: true\n", "c.yml");
  ASSERT_TRUE(shared.config);
  EXPECT_TRUE(shared.config->ingest.shared_listener);
  EXPECT_EQ(shared.config->ingest.listen_address, "");
  EXPECT_EQ(shared.config->ingest.max_connections, 64);
  EXPECT_EQ(errorsOf("ingest:\n  shared_listener: true\n  listen_address: \":10046\"\n"),
            std::vector<std::string>{"c.yml:3:19: listen_address and shared_listener: true exclude each other "
                                     "(shared_listener serves the beacon endpoints on --web.listen-address)"});
  EXPECT_EQ(errorsOf("ingest:\n  shared_listener: true\n  max_connections: 2000\n").size(), 1u);

  EXPECT_EQ(errorsOf("ingest:\n  listen_address: \"10046\"\n"),
            std::vector<std::string>{"c.yml:2:19: listen address '10046' needs a port, e.g. :10045"});
  EXPECT_EQ(errorsOf("ingest:\n  listen_address: \"127.0.0.1:99999\"\n"),
            std::vector<std::string>{"c.yml:2:19: listen address '127.0.0.1:99999' has an invalid port"});
  EXPECT_EQ(errorsOf("ingest:\n  listen_address: \"beacons.example:10046\"\n"),
            std::vector<std::string>{"c.yml:2:19: listen address 'beacons.example:10046': the host must be an IPv4 "
                                     "address, localhost or empty"});
  const auto tooMany = errorsOf("ingest:\n  max_connections: 0\n");
  ASSERT_EQ(tooMany.size(), 1u);
  EXPECT_EQ(tooMany[0].rfind("c.yml:2:20: ", 0), 0u) << tooMany[0];
  EXPECT_EQ(errorsOf("ingest:\n  request_timeout: 10ms\n").size(), 1u);
}

TEST(ConfigLoader, TrustedProxiesAreWhatTheClientAddressCanMatch) {
  const auto ok = loadConfigText("ingest:\n  trusted_proxies: [127.0.0.1, 10.0.0.0/8, \"::1\"]\n", "c.yml");
  ASSERT_TRUE(ok.config) << (ok.errors.empty() ? "" : ok.errors[0].format());
  // An IPv6 CIDR or an IPv4 prefix over 32 used to pass here and then never match a client.
  EXPECT_EQ(errorsOf("ingest:\n  trusted_proxies: [\"fd00::/8\", 10.0.0.0/33, nonsense]\n"),
            (std::vector<std::string>{"c.yml:2:21: 'fd00::/8' is not an IP address or an IPv4 CIDR",
                                      "c.yml:2:33: '10.0.0.0/33' is not an IP address or an IPv4 CIDR",
                                      "c.yml:2:46: 'nonsense' is not an IP address or an IPv4 CIDR"}));
}
