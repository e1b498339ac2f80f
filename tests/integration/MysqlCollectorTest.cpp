// The MySQL/MariaDB collector against a real MariaDB 10.11 (one server shared by this test
// binary; each test has its own database and user): the same metric contract as a PostgreSQL
// target, and that a stopped, hung or locked server never slows a scrape, that the collector
// recovers without a restart, that it leaks no connections, keeps secrets out of the log, and
// connects over TCP, TLS (verified) and the Unix socket.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <thread>

#include "MysqlFixture.h"

using namespace apphealth::test;
using Clock = std::chrono::steady_clock;

namespace {

// Configs sample every second with a 1 s timeout unless a test says otherwise, so the
// backoff after failures is capped at 8 intervals = 8 s (CollectorRunner::backoff). The
// deadlines are generous: the machine running the suite is shared and often loaded.
constexpr auto kDownWithin = 5s;
constexpr auto kRecoverWithin = 15s;
constexpr double kFastScrape = 0.2;  // seconds

const std::string kUp = "apphealth_db_up{target=\"main\"}";
const std::string kCollectorUp = "apphealth_collector_up{collector=\"mysql\",target=\"main\"}";
const std::string kFailures = "apphealth_collector_failures_total{collector=\"mysql\",target=\"main\"}";
const std::string kDuration = "apphealth_collector_duration_seconds{collector=\"mysql\",target=\"main\"}";
const std::string kProbeCount = "apphealth_db_probe_duration_seconds_count{target=\"main\"}";
const std::string kOldestTx = "apphealth_db_oldest_transaction_age_seconds{target=\"main\"}";

std::string connections(const std::string& state) {
  return "apphealth_db_connections{target=\"main\",state=\"" + state + "\"}";
}

int occurrences(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

double secondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Validates /api/v1/status against docs/status.schema.json (python3-jsonschema); "" or the complaint.
std::string statusSchemaErrors(const std::string& json) {
  TempDir dir("apphealth-schema");
  dir.write("status.json", json);
  std::string out;
  const int code = run("python3 -c 'import json, sys, jsonschema\n"
                       "jsonschema.Draft202012Validator(json.load(open(sys.argv[1]))).validate(json.load(open(sys.argv[2])))' "
                       APPHEALTH_SOURCE_DIR "/docs/status.schema.json " + dir.file("status.json") + " 2>&1",
                       &out);
  return code == 0 ? std::string() : "validator exited " + std::to_string(code) + ": " + out;
}

}  // namespace

class MysqlCollector : public MysqlFixture {};

TEST_F(MysqlCollector, UpServerIsProbedAndReportsTheMetricContract) {
  ExporterProcess exporter(target("    thresholds: {probe_latency: 250ms}\n", "", true));
  ASSERT_TRUE(waitUp(exporter, 1, 10s)) << exporter.log();
  const double first = exporter.metric(kProbeCount).value_or(0);
  ASSERT_TRUE(waitFor([&] { return exporter.metric(kProbeCount).value_or(0) >= first + 2; }, 5s));

  const auto body = exporter.get("/metrics").body;
  auto m = parseMetrics(body);
  EXPECT_EQ(m[kCollectorUp], 1);
  EXPECT_EQ(m[kFailures], 0);
  const double count = m[kProbeCount];
  EXPECT_EQ(m["apphealth_db_probe_duration_seconds_bucket{target=\"main\",le=\"1\"}"], count);
  EXPECT_EQ(m["apphealth_db_probe_duration_seconds_bucket{target=\"main\",le=\"+Inf\"}"], count);
  EXPECT_GT(m["apphealth_db_probe_duration_seconds_sum{target=\"main\"}"], 0);
  EXPECT_EQ(m["apphealth_db_max_connections{target=\"main\"}"], 50);  // the harness starts it so
  EXPECT_EQ(m["apphealth_threshold_db_probe_latency_seconds{target=\"main\"}"], 0.25);
  // The exporter itself is running the statistics query; no test session is open.
  EXPECT_GE(m[connections("active")], 1);
  EXPECT_EQ(m[connections("idle_in_transaction")], 0);
  EXPECT_TRUE(m.count(connections("idle")));
  EXPECT_EQ(m[kOldestTx], 0);
  ASSERT_TRUE(m.count("apphealth_db_connect_duration_seconds{target=\"main\"}"));
  EXPECT_GT(m["apphealth_db_connect_duration_seconds{target=\"main\"}"], 0);
  EXPECT_LT(m["apphealth_db_connect_duration_seconds{target=\"main\"}"], 1.0);
  EXPECT_NE(body.find("# HELP apphealth_db_up Whether the database answered the probe query (1) or not (0). "
                      "Sampled every 1s.\n"),
            std::string::npos);
  EXPECT_NE(body.find("# TYPE apphealth_db_probe_duration_seconds histogram\n"), std::string::npos);
  EXPECT_NE(exporter.log().find("mysql target main: connected in"), std::string::npos) << exporter.log();
  EXPECT_NE(exporter.log().find("(MariaDB, TLS)"), std::string::npos) << exporter.log();  // ssl_mode: preferred
  // The status page and /api/v1/status list the target with its probe latency check.
  EXPECT_NE(exporter.get("/").body.find("<td>mysql</td><td>main</td>"), std::string::npos);
  const auto status = exporter.get("/api/v1/status").body;
  EXPECT_EQ(statusSchemaErrors(status), "") << status;
  EXPECT_NE(status.find("\"collector\":\"mysql\",\"target\":\"main\",\"state\":\"up\""), std::string::npos) << status;
  EXPECT_NE(status.find("\"name\":\"probe latency\""), std::string::npos) << status;
  EXPECT_NE(status.find("\"threshold\":0.25"), std::string::npos) << status;
  promtoolAccepts(exporter);
}

TEST_F(MysqlCollector, KeepsOneConnectionAndReopensItWithoutAFalseDown) {
  ExporterProcess exporter(target());
  ASSERT_TRUE(waitUp(exporter, 1, 10s)) << exporter.log();
  const std::string thread = exporterThreads();
  ASSERT_FALSE(thread.empty());
  double count = exporter.metric(kProbeCount).value_or(0);
  ASSERT_TRUE(waitFor([&] { return exporter.metric(kProbeCount).value_or(0) >= count + 3; }, 5s));
  EXPECT_EQ(exporterThreads(), thread);  // the same server thread served every sample

  // The server drops the kept connection between samples (as a restart, wait_timeout or a NAT
  // would): the next sample must reconnect and still report the database up.
  db().query("KILL CONNECTION " + thread);
  ASSERT_TRUE(waitFor([&] {
    const auto now = exporterThreads();
    return !now.empty() && now != thread;
  }, 5s)) << exporter.log();
  count = exporter.metric(kProbeCount).value_or(0);
  ASSERT_TRUE(waitFor([&] { return exporter.metric(kProbeCount).value_or(0) >= count + 2; }, 5s));
  EXPECT_EQ(exporter.metric(kFailures), 0) << exporter.log();
  EXPECT_EQ(exporter.metric(kUp), 1);
  EXPECT_NE(exporter.log().find("mysql target main: kept connection lost"), std::string::npos) << exporter.log();
}

TEST_F(MysqlCollector, StoppedServerIsDownFastAndRecoversWithoutRestart) {
  ExporterProcess exporter(target());
  ASSERT_TRUE(waitUp(exporter, 1, 10s)) << exporter.log();

  db().stop();
  ASSERT_TRUE(waitUp(exporter, 0, kDownWithin)) << exporter.log();
  EXPECT_EQ(exporter.metric(kCollectorUp), 0);
  // While it is down every scrape is served from the last sample at once.
  EXPECT_LT(slowestScrape(exporter, 600ms), kFastScrape);
  EXPECT_GE(exporter.metric(kFailures).value_or(0), 1);
  EXPECT_NE(exporter.log().find("mysql collector for main: ERROR 2002: Can't connect to server on '127.0.0.1'"),
            std::string::npos) << exporter.log();

  db().start();
  ASSERT_TRUE(waitUp(exporter, 1, kRecoverWithin)) << exporter.log();
  EXPECT_EQ(exporter.metric(kCollectorUp), 1);
  EXPECT_NE(exporter.log().find("mysql collector for main: recovered"), std::string::npos) << exporter.log();
}

TEST_F(MysqlCollector, HungServerTimesOutWhileScrapesStayFast) {
  // Over TLS: Connector/C reads TLS through the socket as it is, so this also shows that the
  // connection never blocks in a read (MysqlConnection puts the socket in non-blocking mode).
  ExporterProcess exporter(target("", "", true));
  ASSERT_TRUE(waitUp(exporter, 1, 10s)) << exporter.log();

  db().pause();  // SIGSTOP: connections are accepted by the kernel and never answered
  ASSERT_TRUE(waitUp(exporter, 0, kDownWithin)) << exporter.log();
  EXPECT_LT(slowestScrape(exporter, 800ms), kFastScrape);
  // The sample gave up at the timeout, not earlier and not much later.
  const double took = exporter.metric(kDuration).value_or(-1);
  EXPECT_GE(took, 1.0);
  EXPECT_LT(took, 2.0);
  // "query timed out" or, once the kept connection was dropped, "connect timed out".
  EXPECT_GE(occurrences(exporter.log(), " timed out"), 1) << exporter.log();

  db().resume();
  ASSERT_TRUE(waitUp(exporter, 1, kRecoverWithin)) << exporter.log();
  EXPECT_LE(exporterConnections(), 1);
}

TEST_F(MysqlCollector, ProbeBlockedByALockTimesOutOnTheServerAndKeepsItsConnection) {
  db().query("CREATE TABLE " + database_ + ".t (id int) ENGINE=InnoDB; INSERT INTO " + database_ + ".t VALUES (1)");
  ExporterProcess exporter(target("    probe_query: SELECT count(*) FROM t\n"));
  ASSERT_TRUE(waitUp(exporter, 1, 10s)) << exporter.log();
  ASSERT_EQ(exporter.metric(kOldestTx), 0);
  const std::string thread = exporterThreads();

  MariaSession holder(db());
  const auto begun = Clock::now();
  holder.exec("START TRANSACTION; SELECT count(*) FROM " + database_ + ".t");
  ASSERT_TRUE(waitFor([&] { return exporter.metric(kOldestTx).value_or(0) >= 1.0; }, 5s)) << exporter.log();
  // INNODB_TRX has whole seconds: at most a second more than the transaction's age now.
  EXPECT_LE(exporter.metric(kOldestTx).value_or(0), secondsSince(begun) + 1.05);
  EXPECT_EQ(exporter.metric(connections("idle_in_transaction")), 1);
  EXPECT_EQ(exporter.metric(kUp), 1);
  holder.exec("COMMIT");

  // The holder locks the table the probe reads: the probe waits on the metadata lock until the
  // server's max_statement_time (4/5 of the timeout) ends it.
  holder.exec("LOCK TABLES " + database_ + ".t WRITE");
  ASSERT_TRUE(waitUp(exporter, 0, kDownWithin)) << exporter.log();
  EXPECT_LT(slowestScrape(exporter, 600ms), kFastScrape);
  ASSERT_TRUE(waitFor([&] {
    return exporter.log().find("mysql collector for main: ERROR 1969 (70100): Query execution was interrupted "
                               "(max_statement_time exceeded)") != std::string::npos;
  }, 5s)) << exporter.log();
  // The server ended the statement, so the exporter kept its one connection.
  EXPECT_EQ(exporterThreads(), thread);

  holder.exec("UNLOCK TABLES");
  ASSERT_TRUE(waitUp(exporter, 1, kRecoverWithin)) << exporter.log();
  EXPECT_EQ(exporterThreads(), thread);
  EXPECT_TRUE(waitFor([&] { return exporter.metric(kOldestTx) == 0; }, 3s));
}

TEST_F(MysqlCollector, TransactionsOfExcludedUsersAreNotAged) {
  // A backup user (its name with a quote, to prove the quoting) holds a transaction as
  // mysqldump --single-transaction does; the application's user opens one later.
  db().query("CREATE TABLE " + database_ + ".t (id int) ENGINE=InnoDB; DROP USER IF EXISTS 'back''up'@'127.0.0.1'; "
             "CREATE USER 'back''up'@'127.0.0.1' IDENTIFIED BY 'pw'; GRANT SELECT ON " + database_ +
             ".* TO 'back''up'@'127.0.0.1'");
  ExporterProcess exporter(target("    oldest_transaction_exclude_users: [\"back'up\"]\n"));
  ASSERT_TRUE(waitUp(exporter, 1, 10s)) << exporter.log();
  {
    MariaSession dump(db(), "back'up", "pw", database_);
    dump.exec("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; START TRANSACTION WITH CONSISTENT SNAPSHOT; "
              "SELECT count(*) FROM t");
    // InnoDB refreshes what INNODB_TRX shows only when nobody read it for 0.1 s: poll slower.
    ASSERT_TRUE(waitFor([&] {
      std::this_thread::sleep_for(250ms);
      return db().query("SELECT count(*) FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = " +
                        std::to_string(dump.id())) == "1";
    }, 5s));
    // Two samples after the dump's transaction is a second old: still no open transaction.
    const auto begun = Clock::now();
    ASSERT_TRUE(waitFor([&] { return secondsSince(begun) > 1.1; }, 5s));
    const double count = exporter.metric(kProbeCount).value_or(0);
    ASSERT_TRUE(waitFor([&] { return exporter.metric(kProbeCount).value_or(0) >= count + 2; }, 10s));
    EXPECT_EQ(exporter.metric(kOldestTx), 0);
    EXPECT_EQ(exporter.metric(connections("idle_in_transaction")), 1);  // still a connection in a transaction

    MariaSession app(db(), user_, password_, database_);
    app.exec("START TRANSACTION; SELECT count(*) FROM t");
    EXPECT_TRUE(waitFor([&] { return exporter.metric(kOldestTx).value_or(0) >= 1.0; }, 5s)) << exporter.log();
    EXPECT_LT(exporter.metric(kOldestTx).value_or(0), secondsSince(begun));  // the app's, not the dump's
    app.exec("COMMIT");
  }
  db().query("DROP USER 'back''up'@'127.0.0.1'");
}

TEST_F(MysqlCollector, NoConnectionLeaksAcrossTimeoutsReloadsAndARestart) {
  db().query("CREATE TABLE " + database_ + ".t (id int) ENGINE=InnoDB");
  // interval > timeout: after a failure the collector sleeps, so the reloads below replace an
  // idle collector rather than interrupt one mid-probe.
  ExporterProcess exporter(target("    probe_query: SELECT count(*) FROM t\n", "    interval: 1500ms\n    timeout: 800ms\n"));
  ASSERT_TRUE(waitUp(exporter, 1, 10s)) << exporter.log();

  // Counts the exporter's connections every 20 ms on a kept connection (SHOW PROCESSLIST as
  // root); remembers the largest count. Survives the restart below.
  std::atomic<int> most{0}, samples{0};
  std::jthread watcher([&](std::stop_token stop) {
    std::unique_ptr<MariaSession> session;
    while (!stop.stop_requested()) {
      try {
        if (!session) session = std::make_unique<MariaSession>(db());
        const int n = std::stoi(session->exec("SELECT count(*) FROM information_schema.PROCESSLIST WHERE USER = '" +
                                              user_ + "'"));
        most = std::max(most.load(), n);
        ++samples;
      } catch (const std::exception&) {
        session.reset();  // server down or restarting: reconnect next round
      }
      std::this_thread::sleep_for(20ms);
    }
  });
  auto failures = [&] {
    return occurrences(exporter.log(), "max_statement_time exceeded") + occurrences(exporter.log(), " timed out");
  };
  {
    MariaSession holder(db());
    holder.exec("LOCK TABLES " + database_ + ".t WRITE");
    // Every probe now waits on the lock until a timeout ends it. A reload after each one
    // starts a fresh collector, whose predecessor's connection must be closed.
    const auto deadline = Clock::now() + 40s;
    int seen = 0;
    int reloads = 0;
    while ((seen = failures()) < 8 && Clock::now() < deadline) {
      waitFor([&] { return failures() > seen; }, 4s);
      EXPECT_EQ(httpRequest("POST", exporter.url("/-/reload")).status, 200);
      ++reloads;
    }
    ASSERT_GE(seen, 8) << exporter.log();
    EXPECT_GE(reloads, 4);
    EXPECT_TRUE(waitUp(exporter, 0, kDownWithin));
  }  // closing the holder releases the lock

  db().stop();
  db().start();
  ASSERT_TRUE(waitUp(exporter, 1, kRecoverWithin)) << exporter.log();
  // The exporter holds exactly its one connection, and never held more than two at once
  // (the old collector's, closing, and the new one's).
  EXPECT_TRUE(waitFor([&] { return exporterConnections() == 1; }, 3s)) << exporterThreads();
  watcher.request_stop();
  watcher.join();
  EXPECT_LE(most.load(), 2);
  EXPECT_GE(samples.load(), 50);
}

TEST_F(MysqlCollector, WrongPasswordIsLoggedWithoutTheSecretAndTheRightOneConnects) {
  secrets_.write("password", "wrong-staple-donkey\n");
  {
    ExporterProcess exporter(target());
    ASSERT_TRUE(waitUp(exporter, 0, 5s)) << exporter.log();
    EXPECT_EQ(exporter.metric(kCollectorUp), 0);
    std::string log = exporter.log();
    const auto at = log.find("Access denied for user '" + user_ + "'@'127.0.0.1' (using password: YES)");
    ASSERT_NE(at, std::string::npos) << log;
    const auto lineStart = log.rfind('\n', at) + 1;  // npos + 1 == 0 on the first line
    EXPECT_NE(log.substr(lineStart, at - lineStart).find("mysql collector for main: ERROR 1045 (28000): "),
              std::string::npos)
        << log;
    EXPECT_EQ(log.find("wrong-staple-donkey"), std::string::npos) << log;
    // The status page and /api/v1/status say why it is down, and nothing else reveals the secret.
    const auto status = exporter.get("/api/v1/status").body;
    EXPECT_NE(status.find("Access denied for user"), std::string::npos) << status;
    const auto pages = status + exporter.get("/").body + exporter.get("/metrics").body;
    EXPECT_EQ(pages.find("wrong-staple-donkey"), std::string::npos);

    secrets_.write("password", password_ + "\n");
    EXPECT_EQ(httpRequest("POST", exporter.url("/-/reload")).status, 200);
    ASSERT_TRUE(waitUp(exporter, 1, 5s)) << exporter.log();
    log = exporter.log() + exporter.get("/").body + exporter.get("/metrics").body;
    EXPECT_EQ(log.find("wrong-staple-donkey"), std::string::npos);
    EXPECT_EQ(log.find(password_), std::string::npos);
  }

  ASSERT_EQ(setenv("APPHEALTH_TEST_MYSQL_PASSWORD", password_.c_str(), 1), 0);  // inherited by the child
  std::string config = target();
  config.replace(config.find("password_file: "), config.find('\n', config.find("password_file: ")) -
                                                      config.find("password_file: "),
                 "password_env: APPHEALTH_TEST_MYSQL_PASSWORD");
  ExporterProcess fromEnv(config);
  ASSERT_TRUE(waitUp(fromEnv, 1, 5s)) << fromEnv.log();
  EXPECT_EQ(fromEnv.log().find(password_), std::string::npos);
}

TEST_F(MysqlCollector, TlsIsVerifiedAndTheUnixSocketWorks) {
  // A user the server accepts only over TLS: the connection that gets in used TLS.
  db().query("ALTER USER '" + user_ + "'@'127.0.0.1' REQUIRE SSL");
  auto config = [&](const std::string& tls) { return target(tls, "", true); };
  {
    ExporterProcess verified(config("    ssl_mode: verify_identity\n    ssl_ca: " + db().caFile() + "\n"));
    ASSERT_TRUE(waitUp(verified, 1, 10s)) << verified.log();
    EXPECT_NE(verified.log().find("(MariaDB, TLS)"), std::string::npos) << verified.log();
  }
  {
    // A certificate the configured CA did not sign is refused before the password is sent.
    ExporterProcess wrongCa(config("    ssl_mode: verify_ca\n    ssl_ca: " + db().otherCaFile() + "\n"));
    ASSERT_TRUE(waitUp(wrongCa, 0, 5s)) << wrongCa.log();
    EXPECT_NE(wrongCa.log().find("mysql collector for main: ERROR 2026"), std::string::npos) << wrongCa.log();
    EXPECT_NE(wrongCa.log().find("certificate"), std::string::npos) << wrongCa.log();
  }
  {
    // Without TLS this user is refused: proof that the connections above really used TLS.
    ExporterProcess plain(config("    ssl_mode: disabled\n"));
    ASSERT_TRUE(waitUp(plain, 0, 5s)) << plain.log();
    EXPECT_NE(plain.log().find("Access denied for user"), std::string::npos) << plain.log();
  }

  // The Unix socket, as root (who may log in there without a password).
  ExporterProcess overSocket("mysql:\n"
                             "  - name: main\n"
                             "    socket: " + db().socket() + "\n"
                             "    user: root\n"
                             "    interval: 500ms\n"
                             "    timeout: 500ms\n");
  ASSERT_TRUE(waitUp(overSocket, 1, 10s)) << overSocket.log();
  EXPECT_EQ(overSocket.metric("apphealth_db_max_connections{target=\"main\"}"), 50);
}

TEST_F(MysqlCollector, ConnectionsAreCountedByState) {
  db().query("CREATE TABLE " + database_ + ".t (id int) ENGINE=InnoDB");
  ExporterProcess exporter(target());
  ASSERT_TRUE(waitUp(exporter, 1, 10s)) << exporter.log();
  ASSERT_TRUE(waitFor([&] { return exporter.metric(connections("idle")).has_value(); }, 5s));
  const double idle = exporter.metric(connections("idle")).value_or(0);
  {
    std::vector<std::unique_ptr<MariaSession>> sessions;
    for (int i = 0; i < 3; ++i) sessions.push_back(std::make_unique<MariaSession>(db(), user_, password_, database_));
    MariaSession inTransaction(db(), user_, password_, database_);
    inTransaction.exec("START TRANSACTION; SELECT count(*) FROM t");
    EXPECT_TRUE(waitFor([&] {
      auto m = exporter.metrics();
      return m[connections("idle")] == idle + 3 && m[connections("idle_in_transaction")] == 1;
    }, 5s)) << exporter.get("/metrics").body;
    EXPECT_GE(exporter.metric(connections("active")), 1);  // the exporter's own query
  }
  EXPECT_TRUE(waitFor([&] {
    auto m = exporter.metrics();
    return m[connections("idle")] == idle && m[connections("idle_in_transaction")] == 0;
  }, 5s)) << exporter.get("/metrics").body;
}

TEST_F(MysqlCollector, ShutsDownWithinTwoSecondsWhileTheServerHangs) {
  // A 10 s timeout: only a wait that a shutdown interrupts can end in time. The probe keeps
  // the server busy for 3 s, so the SIGSTOP below lands while the probe is in flight.
  ExporterProcess exporter(target("    probe_query: SELECT SLEEP(3)\n", "    interval: 10s\n    timeout: 10s\n", true));
  ASSERT_TRUE(waitFor([&] {
    return db().query("SELECT count(*) FROM information_schema.PROCESSLIST WHERE USER = '" + user_ +
                      "' AND INFO LIKE 'SELECT SLEEP%'") == "1";
  }, 10s));
  db().pause();
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(exporter.metric(kUp).has_value());  // still stuck in its first sample
  const auto signalled = Clock::now();
  exporter.signal(SIGTERM);
  const auto code = exporter.waitExit(2s);
  ASSERT_TRUE(code.has_value()) << "still running after 2 s\n" << exporter.log();
  EXPECT_EQ(*code, 0) << exporter.log();
  EXPECT_LT(secondsSince(signalled), 2.0);
  db().resume();
}
