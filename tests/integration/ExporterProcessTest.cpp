// The exporter binary as users run it: flags, endpoints, reload, shutdown, and the live
// exposition checked by promtool.

#include <gtest/gtest.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <sstream>

#include "TestSupport.h"

using namespace apphealth::test;

namespace {

std::string backupConfig(const TempDir& dir, const std::string& name = "nightly") {
  return "backups:\n"
         "  - name: " + name + "\n"
         "    directory: " + dir.path() + "\n"
         "    interval: 200ms\n";
}

int runExporter(const std::string& args, std::string* output) {
  return run(exporterBinary() + " " + args, output);
}

}  // namespace

TEST(ExporterCli, VersionAndHelp) {
  std::string out;
  EXPECT_EQ(runExporter("--version", &out), 0);
  EXPECT_EQ(out, "apphealth_exporter " APPHEALTH_VERSION "\n");
  EXPECT_EQ(runExporter("--help", &out), 0);
  EXPECT_NE(out.find("--web.listen-address"), std::string::npos);
  EXPECT_EQ(runExporter("--bogus", &out), 2);
  EXPECT_NE(out.find("unknown flag --bogus"), std::string::npos);
  EXPECT_EQ(runExporter("", &out), 2);
  EXPECT_NE(out.find("--config.file is required"), std::string::npos);
}

TEST(ExporterCli, CheckConfigPrintsEveryProblemWithPosition) {
  TempDir dir;
  dir.write("good.yml", backupConfig(dir));
  dir.write("bad.yml", "backups:\n  - name: a\n    directroy: /x\n  - name: a\n    directory: /y\n    max_age: soon\n");
  std::string out;
  EXPECT_EQ(runExporter("--config.file=" + dir.file("good.yml") + " --check-config", &out), 0) << out;
  EXPECT_NE(out.find("configuration is valid"), std::string::npos);
  EXPECT_EQ(runExporter("--config.file=" + dir.file("bad.yml") + " --check-config", &out), 1);
  const std::string file = dir.file("bad.yml");
  EXPECT_EQ(out, file + ":2:5: a backup needs exactly one of 'directory' (local) or 's3' (off-site)\n" +
                     file + ":3:5: unknown key 'directroy' in a backup\n" +
                     file + ":4:11: duplicate backup target name 'a'\n" +
                     file + ":6:14: 'max_age' must be a duration such as 500ms, 15s, 5m or 26h\n");
}

TEST(ExporterCli, ShippedExampleConfigIsValid) {
  TempDir dir;
  dir.write("pg.pass", "secret\n");
  std::string example;
  ASSERT_EQ(run("cat " APPHEALTH_SOURCE_DIR "/exporter/apphealth.example.yml", &example), 0);
  // The files the example names, here in a temporary directory.
  dir.write("ca.pem", "placeholder\n");
  for (const auto& [original, replacement] : {std::pair{"/etc/apphealth/secrets/postgres_password", "pg.pass"},
                                              {"/etc/apphealth/secrets/mysql_password", "pg.pass"},
                                              {"/etc/apphealth/mysql-ca.pem", "ca.pem"}}) {
    const auto at = example.find(original);
    ASSERT_NE(at, std::string::npos) << original;
    example.replace(at, std::string(original).size(), dir.file(replacement));
  }
  dir.write("example.yml", example);
  std::string out;
  EXPECT_EQ(runExporter("--config.file=" + dir.file("example.yml") + " --check-config", &out), 0) << out;
  EXPECT_NE(out.find("configuration is valid (1 postgres, 1 mysql, 1 redis, 1 backup, 2 access log, 2 http probe targets; ingest on)"), std::string::npos) << out;
}

TEST(ExporterCli, InvalidConfigAtStartExitsWithTheErrors) {
  TempDir dir;
  dir.write("bad.yml", "postgres:\n  - name: x\n");
  std::string out;
  EXPECT_EQ(runExporter("--config.file=" + dir.file("bad.yml") + " --web.listen-address=127.0.0.1:" +
                            std::to_string(freePort()),
                        &out),
            1);
  EXPECT_NE(out.find(dir.file("bad.yml") + ":2:5: a postgres target needs 'dsn' or 'host'/'dbname'/'user'"),
            std::string::npos)
      << out;
}

TEST(ExporterCli, PortInUseIsAClearError) {
  TempDir dir;
  dir.write("c.yml", backupConfig(dir));
  ExporterProcess first(backupConfig(dir));
  std::string out;
  EXPECT_EQ(runExporter("--config.file=" + dir.file("c.yml") + " --web.listen-address=127.0.0.1:" +
                            std::to_string(first.port()),
                        &out),
            1);
  EXPECT_NE(out.find("cannot listen on 127.0.0.1:" + std::to_string(first.port())), std::string::npos) << out;
}

TEST(ExporterHttp, EndpointsStatusesAndMethods) {
  TempDir dir;
  ExporterProcess exporter(backupConfig(dir));
  EXPECT_EQ(exporter.get("/-/healthy").status, 200);
  EXPECT_EQ(exporter.get("/-/ready").status, 200);
  auto landing = exporter.get("/");
  EXPECT_EQ(landing.status, 200);
  EXPECT_EQ(landing.headers["content-type"], "text/html; charset=utf-8");
  EXPECT_NE(landing.body.find("<a href=\"/metrics\">"), std::string::npos);
  EXPECT_NE(landing.body.find("<tr class=\"collector\" data-collector=\"backup\" data-target=\"nightly\""),
            std::string::npos)
      << landing.body;
  EXPECT_EQ(exporter.get("/nope").status, 404);
  EXPECT_EQ(exporter.get("/metricsx").status, 404);
  auto post = httpRequest("POST", exporter.url("/metrics"));
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.headers["allow"], "GET, HEAD");
  EXPECT_EQ(post.body, "method POST not allowed; use GET, HEAD\n");
  EXPECT_EQ(exporter.get("/-/reload").status, 405);
  auto metrics = exporter.get("/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(metrics.body.find("apphealth_build_info{version=\"" APPHEALTH_VERSION "\""), std::string::npos);
}

TEST(ExporterHttp, GzipWhenAskedAndIdenticalContent) {
  TempDir dir;
  ExporterProcess exporter(backupConfig(dir));
  auto plain = exporter.get("/metrics");
  EXPECT_TRUE(plain.headers.find("content-encoding") == plain.headers.end());
  auto raw = exporter.get("/metrics", {"Accept-Encoding: gzip"});
  EXPECT_EQ(raw.headers["content-encoding"], "gzip");
  EXPECT_EQ(static_cast<unsigned char>(raw.body[0]), 0x1f);
  auto decoded = httpRequest("GET", exporter.url("/metrics"), {}, "", 5000, /*decodeGzip=*/true);
  EXPECT_EQ(decoded.body.substr(0, 200), plain.body.substr(0, 200));
  EXPECT_NE(decoded.body.find("apphealth_backup_files{backup=\"nightly\"}"), std::string::npos);
}

TEST(ExporterHttp, KeepAliveServesSeveralRequestsOnOneConnection) {
  TempDir dir;
  ExporterProcess exporter(backupConfig(dir));
  const int fd = connectLoopback(exporter.port());
  ASSERT_GE(fd, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int answered = 0;
  for (int i = 0; i < 3; ++i) {
    const std::string request = "GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
    std::string response;
    char buffer[1024];
    while (response.find("Healthy\n") == std::string::npos) {
      const ssize_t n = read(fd, buffer, sizeof buffer);
      if (n <= 0) break;
      response.append(buffer, static_cast<size_t>(n));
    }
    if (response.rfind("HTTP/1.1 200", 0) == 0 && response.find("Healthy\n") != std::string::npos) ++answered;
  }
  close(fd);
  EXPECT_EQ(answered, 3);
}

TEST(ExporterReload, SighupAppliesAValidConfigAndKeepsTheOldOneOnErrors) {
  TempDir dir;
  ExporterProcess exporter(backupConfig(dir, "first"));
  ASSERT_TRUE(waitFor([&] { return exporter.metric("apphealth_backup_files{backup=\"first\"}").has_value(); }, 5s));

  exporter.rewriteConfig(backupConfig(dir, "second"));
  exporter.signal(SIGHUP);
  ASSERT_TRUE(waitFor([&] { return exporter.metric("apphealth_backup_files{backup=\"second\"}").has_value(); }, 5s))
      << exporter.log();
  EXPECT_FALSE(exporter.metric("apphealth_backup_files{backup=\"first\"}").has_value());
  EXPECT_EQ(exporter.metric("apphealth_config_last_reload_successful"), 1.0);

  exporter.rewriteConfig("backups:\n  - name: third\n    directory: [\n");
  exporter.signal(SIGHUP);
  ASSERT_TRUE(waitFor([&] { return exporter.metric("apphealth_config_last_reload_successful") == 0.0; }, 5s));
  EXPECT_TRUE(exporter.metric("apphealth_backup_files{backup=\"second\"}").has_value());
  EXPECT_NE(exporter.log().find("reload failed, keeping the running configuration"), std::string::npos);
  EXPECT_NE(exporter.log().find(exporter.configPath() + ":4:1:"), std::string::npos) << exporter.log();
}

TEST(ExporterReload, HttpReloadAnswersWithTheReason) {
  TempDir dir;
  ExporterProcess exporter(backupConfig(dir, "first"));
  exporter.rewriteConfig("backups:\n  - name: x\n    directory: /tmp\n    colour: blue\n");
  auto failed = httpRequest("POST", exporter.url("/-/reload"));
  EXPECT_EQ(failed.status, 500);
  EXPECT_EQ(failed.body, "reload failed, running configuration kept:\n" + exporter.configPath() +
                             ":4:5: unknown key 'colour' in a backup\n\n");
  exporter.rewriteConfig(backupConfig(dir, "second"));
  auto ok = httpRequest("POST", exporter.url("/-/reload"));
  EXPECT_EQ(ok.status, 200);
  EXPECT_TRUE(waitFor([&] { return exporter.metric("apphealth_backup_files{backup=\"second\"}").has_value(); }, 5s));
}

TEST(ExporterShutdown, SigtermExitsCleanlyWithinTwoSeconds) {
  TempDir dir;
  ExporterProcess exporter(backupConfig(dir));
  const auto started = std::chrono::steady_clock::now();
  exporter.signal(SIGTERM);
  const auto code = exporter.waitExit(2s);
  ASSERT_TRUE(code.has_value()) << "still running 2 s after SIGTERM";
  EXPECT_EQ(*code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  EXPECT_NE(exporter.log().find("SIGTERM: shutting down"), std::string::npos);
}

TEST(ExporterExposition, PromtoolAcceptsLiveOutputOfEveryCollector) {
  TempPostgres pg;
  TempRedis redis;
  redis.command({"LPUSH", "celery", "a", "b"});
  redis.command({"XADD", "events", "*", "k", "v"});
  redis.command({"XGROUP", "CREATE", "events", "workers", "0"});
  TempDir dir;
  dir.write("full-backup-1.sql", "x");
  ExporterProcess exporter("postgres:\n  - name: main\n    dsn: \"" + pg.dsn() + "\"\n    interval: 300ms\n    timeout: 300ms\n"
                           "redis:\n  - name: jobs\n    address: 127.0.0.1:" + std::to_string(redis.port()) +
                           "\n    interval: 300ms\n    timeout: 300ms\n    queues:\n"
                           "      - {preset: celery, queues: [celery]}\n      - {preset: rq, queues: [reports]}\n"
                           "      - {preset: sidekiq, queues: [default]}\n      - {preset: laravel, queues: [invoices]}\n"
                           "      - {preset: bullmq, queues: [email]}\n      - {key: events}\n      - {key: \"jobs:*\"}\n" +
                           "backups:\n  - name: db\n    directory: " + dir.path() + "\n    verify_checksum: true\n    interval: 300ms\n");
  ASSERT_TRUE(waitFor([&] {
    auto m = exporter.metrics();
    return m["apphealth_db_up{target=\"main\"}"] == 1 && m["apphealth_redis_up{target=\"jobs\"}"] == 1 &&
           m.count("apphealth_queue_stream_group_lag{target=\"jobs\",queue=\"events\",group=\"workers\"}");
  }, 10s)) << exporter.log();
  dir.write("metrics.txt", exporter.get("/metrics").body);
  std::string out;
  EXPECT_EQ(run("promtool check metrics < " + dir.file("metrics.txt"), &out), 0) << out;
  EXPECT_EQ(out, "");
}

TEST(ExporterSecrets, PasswordsNeverReachLogsMetricsOrTheLandingPage) {
  TempPostgres pg;
  TempDir dir;
  const std::string secret = "pw-7f3a9c-never-print-me";
  dir.write("pg.pass", secret + "\n");
  // Trust auth accepts any password: the secret is read and sent, and the probe succeeds.
  ExporterProcess exporter("postgres:\n  - name: main\n    dsn: \"" + pg.dsn() + "\"\n    password_file: " +
                               dir.file("pg.pass") + "\n    interval: 300ms\n    timeout: 300ms\n",
                           {"--log.level=debug"});
  ASSERT_TRUE(waitFor([&] { return exporter.metric("apphealth_db_up{target=\"main\"}") == 1.0; }, 5s));
  pg.stop();  // failures log libpq's messages: still no password
  ASSERT_TRUE(waitFor([&] { return exporter.metric("apphealth_db_up{target=\"main\"}") == 0.0; }, 5s));
  EXPECT_EQ(exporter.get("/metrics").body.find(secret), std::string::npos);
  EXPECT_EQ(exporter.get("/").body.find(secret), std::string::npos);
  EXPECT_EQ(exporter.get("/api/v1/status").body.find(secret), std::string::npos);
  EXPECT_EQ(exporter.log().find(secret), std::string::npos);
  EXPECT_EQ(exporter.log().find("pw-7f3a9c"), std::string::npos);
}

TEST(ExporterLogging, JsonFormatWritesOneValidObjectPerLine) {
  TempDir dir;
  ExporterProcess exporter(backupConfig(dir) + "  - name: missing\n    directory: /nonexistent/\"quoted\"\n",
                           {"--log.format=json"});
  ASSERT_TRUE(waitFor([&] { return exporter.log().find("cannot read directory") != std::string::npos; }, 5s));
  std::istringstream lines(exporter.log());
  std::string line;
  int parsed = 0;
  simdjson::dom::parser parser;
  while (std::getline(lines, line)) {
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(line).get(doc), simdjson::SUCCESS) << line;
    std::string_view msg;
    ASSERT_EQ(doc["msg"].get(msg), simdjson::SUCCESS) << line;
    ++parsed;
  }
  EXPECT_GE(parsed, 2);
}
