// The PostgreSQL collector against a real PostgreSQL 15 started for each test: the metric
// contract, and that a stopped, hung or locked database never slows a scrape, that the
// collector recovers without a restart, and that it leaks no connections.

#include <gtest/gtest.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <thread>

#include "TestSupport.h"

using namespace apphealth::test;
using Clock = std::chrono::steady_clock;

namespace {

// Every config below samples every 300 ms with a 300 ms timeout, so the backoff after
// failures is capped at 8 intervals = 2.4 s (CollectorRunner::backoff).
constexpr auto kDownWithin = 1000ms;   // one interval + one timeout + scheduling slack
constexpr auto kRecoverWithin = 4s;    // the longest backoff + one sample + slack
constexpr double kFastScrape = 0.2;    // seconds

const std::string kUp = "apphealth_db_up{target=\"main\"}";
const std::string kCollectorUp = "apphealth_collector_up{collector=\"postgres\",target=\"main\"}";
const std::string kFailures = "apphealth_collector_failures_total{collector=\"postgres\",target=\"main\"}";
const std::string kProbeCount = "apphealth_db_probe_duration_seconds_count{target=\"main\"}";
const std::string kOldestTx = "apphealth_db_oldest_transaction_age_seconds{target=\"main\"}";
const std::string kExporterPids =
    "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE application_name = 'apphealth_exporter'";

std::string connections(const std::string& state) {
  return "apphealth_db_connections{target=\"main\",state=\"" + state + "\"}";
}

std::string configFor(const TempPostgres& pg, const std::string& extra = "", const std::string& user = "postgres",
                      const std::string& timeout = "300ms") {
  return "postgres:\n"
         "  - name: main\n"
         "    dsn: \"" + pg.dsn(user) + "\"\n"
         "    interval: " + timeout + "\n"
         "    timeout: " + timeout + "\n" + extra;
}

// For tests that assert no sample ever fails: a timeout with room for a loaded machine.
std::string relaxedConfigFor(const TempPostgres& pg) {
  return "postgres:\n"
         "  - name: main\n"
         "    dsn: \"" + pg.dsn() + "\"\n"
         "    interval: 500ms\n"
         "    timeout: 500ms\n";
}

// A client connection the test keeps open: to hold a lock or a transaction, or to be counted.
class Session {
 public:
  explicit Session(const std::string& dsn) : conn_(PQconnectdb((dsn + " connect_timeout=5").c_str())) {
    if (PQstatus(conn_.get()) != CONNECTION_OK) throw std::runtime_error(PQerrorMessage(conn_.get()));
  }
  explicit Session(const TempPostgres& pg) : Session(pg.dsn() + " application_name=test_session") {}
  bool ok() const { return PQstatus(conn_.get()) == CONNECTION_OK; }
  // Runs SQL; returns the first column of the first row ("" if none). Throws on error.
  std::string exec(const std::string& sql) {
    std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn_.get(), sql.c_str()), &PQclear);
    const auto status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      throw std::runtime_error("SQL failed: " + std::string(PQresultErrorMessage(result.get())));
    }
    return status == PGRES_TUPLES_OK && PQntuples(result.get()) > 0 ? PQgetvalue(result.get(), 0, 0) : "";
  }

 private:
  struct Finisher {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  std::unique_ptr<PGconn, Finisher> conn_;
};

// Counts, every 20 ms on its own thread and over one kept connection, how many connections
// the exporter holds; remembers the largest count seen. Survives server restarts.
class ConnectionWatcher {
 public:
  explicit ConnectionWatcher(const TempPostgres& pg)
      : thread_([this, &pg](std::stop_token stop) {
          std::unique_ptr<Session> session;
          while (!stop.stop_requested()) {
            try {
              if (!session || !session->ok()) session = std::make_unique<Session>(pg);
              const int n = std::stoi(session->exec(
                  "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'apphealth_exporter'"));
              max_ = std::max(max_.load(), n);
              ++samples_;
            } catch (const std::exception&) {
              session.reset();  // server down or restarting: reconnect next round
            }
            std::this_thread::sleep_for(20ms);
          }
        }) {}
  int max() const { return max_; }
  int samples() const { return samples_; }

 private:
  std::atomic<int> max_{0};
  std::atomic<int> samples_{0};
  std::jthread thread_;  // declared last: joined before the counters go away
};

// Scrapes /metrics back to back for `duration`; returns the slowest one. Each must answer 200.
double slowestScrape(const ExporterProcess& exporter, std::chrono::milliseconds duration) {
  double slowest = 0;
  int scrapes = 0;
  for (const auto end = Clock::now() + duration; Clock::now() < end; ++scrapes) {
    const auto r = exporter.get("/metrics");
    EXPECT_EQ(r.status, 200);
    slowest = std::max(slowest, r.seconds);
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_GE(scrapes, 5);
  return slowest;
}

int occurrences(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

// Probes that ran out of time: cancelled by the server's statement_timeout (set a little below
// the timeout) or, when that came too late, given up on by the exporter.
int timeoutsLogged(const ExporterProcess& exporter) {
  const auto log = exporter.log();
  return occurrences(log, "canceling statement due to statement timeout") + occurrences(log, "query timed out");
}

double secondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

bool waitUp(const ExporterProcess& exporter, double value, std::chrono::milliseconds timeout) {
  return waitFor([&] { return exporter.metric(kUp) == value; }, timeout);
}

}  // namespace

TEST(PostgresCollector, UpDatabaseIsProbedAndReportsTheMetricContract) {
  TempPostgres pg;
  ExporterProcess exporter(relaxedConfigFor(pg));
  ASSERT_TRUE(waitUp(exporter, 1, 5s)) << exporter.log();
  const double first = exporter.metric(kProbeCount).value_or(0);
  ASSERT_TRUE(waitFor([&] { return exporter.metric(kProbeCount).value_or(0) >= first + 2; }, 3s));

  const auto body = exporter.get("/metrics").body;
  auto m = parseMetrics(body);
  EXPECT_EQ(m[kCollectorUp], 1);
  EXPECT_EQ(m[kFailures], 0);
  // Every successful probe finished within the 500 ms timeout: all fall in the le="1" bucket.
  const double count = m[kProbeCount];
  EXPECT_EQ(m["apphealth_db_probe_duration_seconds_bucket{target=\"main\",le=\"1\"}"], count);
  EXPECT_EQ(m["apphealth_db_probe_duration_seconds_bucket{target=\"main\",le=\"+Inf\"}"], count);
  EXPECT_GT(m["apphealth_db_probe_duration_seconds_sum{target=\"main\"}"], 0);
  EXPECT_EQ(m["apphealth_db_max_connections{target=\"main\"}"], 50);  // the harness starts it so
  EXPECT_EQ(m["apphealth_threshold_db_probe_latency_seconds{target=\"main\"}"], 1);
  // Nobody else is connected: the exporter itself, running the statistics query.
  EXPECT_EQ(m[connections("active")], 1);
  EXPECT_EQ(m[connections("idle")], 0);
  EXPECT_EQ(m[connections("idle_in_transaction")], 0);
  EXPECT_EQ(m[kOldestTx], 0);
  ASSERT_TRUE(m.count("apphealth_db_connect_duration_seconds{target=\"main\"}"));
  EXPECT_GT(m["apphealth_db_connect_duration_seconds{target=\"main\"}"], 0);
  EXPECT_LT(m["apphealth_db_connect_duration_seconds{target=\"main\"}"], 0.5);
  EXPECT_NE(body.find("# HELP apphealth_db_up Whether the database answered the probe query (1) or not (0). "
                      "Sampled every 500ms.\n"),
            std::string::npos);
  EXPECT_NE(body.find("# TYPE apphealth_db_probe_duration_seconds histogram\n"), std::string::npos);
}

TEST(PostgresCollector, KeepsOneConnectionAndReopensItWithoutAFalseDown) {
  TempPostgres pg;
  ExporterProcess exporter(relaxedConfigFor(pg));
  ASSERT_TRUE(waitUp(exporter, 1, 5s)) << exporter.log();
  const std::string pid = pg.query(kExporterPids);
  ASSERT_FALSE(pid.empty());
  double count = exporter.metric(kProbeCount).value_or(0);
  ASSERT_TRUE(waitFor([&] { return exporter.metric(kProbeCount).value_or(0) >= count + 2; }, 3s));
  EXPECT_EQ(pg.query(kExporterPids), pid);  // the same backend served every sample

  // The server drops the kept connection between samples (as a restart, idle_session_timeout
  // or a NAT would): the next sample must reconnect and still report the database up.
  pg.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'apphealth_exporter'");
  ASSERT_TRUE(waitFor([&] {
    const auto now = pg.query(kExporterPids);
    return !now.empty() && now != pid;
  }, 3s)) << exporter.log();
  count = exporter.metric(kProbeCount).value_or(0);
  ASSERT_TRUE(waitFor([&] { return exporter.metric(kProbeCount).value_or(0) >= count + 2; }, 3s));
  EXPECT_EQ(exporter.metric(kFailures), 0) << exporter.log();
  EXPECT_EQ(exporter.metric(kUp), 1);
}

TEST(PostgresCollector, StoppedDatabaseIsDownFastAndRecoversWithoutRestart) {
  TempPostgres pg;
  ExporterProcess exporter(configFor(pg));
  ASSERT_TRUE(waitUp(exporter, 1, 5s)) << exporter.log();

  pg.stop();
  ASSERT_TRUE(waitUp(exporter, 0, kDownWithin)) << exporter.log();
  EXPECT_EQ(exporter.metric(kCollectorUp), 0);
  // While it is down every scrape is served from the last sample at once.
  EXPECT_LT(slowestScrape(exporter, 600ms), kFastScrape);
  EXPECT_GE(exporter.metric(kFailures).value_or(0), 1);

  pg.start();
  ASSERT_TRUE(waitUp(exporter, 1, kRecoverWithin)) << exporter.log();
  EXPECT_EQ(exporter.metric(kCollectorUp), 1);
}

TEST(PostgresCollector, HungDatabaseTimesOutWhileScrapesStayFast) {
  TempPostgres pg;
  ExporterProcess exporter(configFor(pg));
  ASSERT_TRUE(waitUp(exporter, 1, 5s)) << exporter.log();

  pg.pause();  // SIGSTOP: connections are accepted by the kernel and never answered
  ASSERT_TRUE(waitUp(exporter, 0, kDownWithin)) << exporter.log();
  EXPECT_LT(slowestScrape(exporter, 800ms), kFastScrape);
  // The sample gave up at the timeout, not earlier and not much later.
  const double took = exporter.metric("apphealth_collector_duration_seconds{collector=\"postgres\",target=\"main\"}")
                          .value_or(-1);
  EXPECT_GE(took, 0.3);
  EXPECT_LT(took, 0.6);
  // "query timed out" or, when the kept connection was already dropped, "connect timed out".
  EXPECT_GE(occurrences(exporter.log(), " timed out"), 1) << exporter.log();

  pg.resume();
  ASSERT_TRUE(waitUp(exporter, 1, kRecoverWithin)) << exporter.log();
}

TEST(PostgresCollector, ProbeBlockedByALockTimesOutAndOldTransactionsAreAged) {
  TempPostgres pg;
  pg.query("CREATE TABLE t (id int)");
  ExporterProcess exporter(configFor(pg, "    probe_query: SELECT count(*) FROM t\n"));
  ASSERT_TRUE(waitUp(exporter, 1, 5s)) << exporter.log();
  ASSERT_EQ(exporter.metric(kOldestTx), 0);

  Session holder(pg);
  const auto begun = Clock::now();
  holder.exec("BEGIN");
  ASSERT_TRUE(waitFor([&] { return exporter.metric(kOldestTx).value_or(0) >= 1.0; }, 2s)) << exporter.log();
  // Sampled while the transaction was open: at least 1 s, at most its age now.
  EXPECT_LE(exporter.metric(kOldestTx).value_or(0), secondsSince(begun) + 0.05);
  EXPECT_EQ(exporter.metric(kUp), 1);

  // The open transaction now locks the table the probe reads: the probe waits on the lock.
  holder.exec("LOCK TABLE t IN ACCESS EXCLUSIVE MODE");
  ASSERT_TRUE(waitUp(exporter, 0, kDownWithin)) << exporter.log();
  EXPECT_LT(slowestScrape(exporter, 600ms), kFastScrape);
  EXPECT_GE(timeoutsLogged(exporter), 1) << exporter.log();

  holder.exec("COMMIT");
  ASSERT_TRUE(waitUp(exporter, 1, kRecoverWithin)) << exporter.log();
  EXPECT_TRUE(waitFor([&] { return exporter.metric(kOldestTx) == 0; }, 1s));
}

// A real pg_dump whose output nobody reads: it blocks writing to the full pipe in the middle of
// a large table, with its REPEATABLE READ transaction open, like a slow nightly dump.
class BlockedDump {
 public:
  explicit BlockedDump(const TempPostgres& pg) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // a test killed by ctest's timeout takes it along
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      const std::string port = std::to_string(pg.port());
      execl("/usr/lib/postgresql/15/bin/pg_dump", "pg_dump", "-h", "127.0.0.1", "-p", port.c_str(), "-U",
            "postgres", "-d", "postgres", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    readEnd_ = fds[0];  // kept open and never read: pg_dump blocks once the pipe is full
  }
  ~BlockedDump() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    close(readEnd_);
  }

 private:
  pid_t pid_ = -1;
  int readEnd_ = -1;
};

TEST(PostgresCollector, OldestTransactionLeavesOutBackupToolsButSeesTheApplication) {
  TempPostgres pg;
  // About 50 MB of rows: far more than the pipe and the loopback socket buffers hold, so
  // pg_dump stops inside the COPY and its backend waits to write (ClientWrite).
  pg.query("CREATE TABLE big AS SELECT g AS id, repeat('x', 100) AS filler FROM generate_series(1, 400000) g");
  ExporterProcess exporter(configFor(pg) + "  - name: all\n"
                                           "    dsn: \"" + pg.dsn() + "\"\n"
                                           "    interval: 300ms\n"
                                           "    timeout: 300ms\n"
                                           "    oldest_transaction_exclude_applications: []\n");
  const std::string allOldest = "apphealth_db_oldest_transaction_age_seconds{target=\"all\"}";
  ASSERT_TRUE(waitUp(exporter, 1, 5s)) << exporter.log();

  BlockedDump dump(pg);
  const auto dumpStarted = Clock::now();
  ASSERT_TRUE(waitFor([&] {
    return pg.query("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' "
                    "AND xact_start IS NOT NULL AND wait_event = 'ClientWrite'") == "1";
  }, 20s)) << "pg_dump did not block on its output";
  // The target that excludes nothing sees the dump's transaction age...
  ASSERT_TRUE(waitFor([&] { return exporter.metric(allOldest).value_or(0) >= 1.5; }, 5s)) << exporter.log();
  // ...the default one does not, although the dump's transaction is still open.
  EXPECT_LT(exporter.metric(kOldestTx).value_or(99), 1.0);
  EXPECT_EQ(pg.query("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' "
                     "AND xact_start < now() - interval '1 second'"), "1");

  // An application transaction opened now is still seen, and only its own age is reported.
  Session app(pg);
  const auto appBegun = Clock::now();  // before BEGIN: xact_start is taken by BEGIN, and the scan takes a while
  app.exec("BEGIN");
  app.exec("SELECT count(*) FROM big");
  ASSERT_TRUE(waitFor([&] { return exporter.metric(kOldestTx).value_or(0) >= 1.0; }, 5s)) << exporter.log();
  const double seen = exporter.metric(kOldestTx).value_or(0);
  EXPECT_LE(seen, secondsSince(appBegun) + 0.05);
  EXPECT_LT(seen, secondsSince(dumpStarted) - 1.0);  // not the dump's age
  app.exec("COMMIT");
  EXPECT_TRUE(waitFor([&] { return exporter.metric(kOldestTx).value_or(99) < 1.0; }, 5s));
}

TEST(PostgresCollector, NoConnectionLeaksAcrossTimeoutsReloadsAndARestart) {
  TempPostgres pg;
  pg.query("CREATE TABLE t (id int)");
  // interval > timeout: after a failure the collector sleeps, so the reloads below replace an
  // idle collector rather than interrupt one mid-probe.
  ExporterProcess exporter("postgres:\n"
                           "  - name: main\n"
                           "    dsn: \"" + pg.dsn() + "\"\n"
                           "    probe_query: SELECT count(*) FROM t\n"
                           "    interval: 500ms\n"
                           "    timeout: 300ms\n");
  ASSERT_TRUE(waitUp(exporter, 1, 5s)) << exporter.log();
  ConnectionWatcher watcher(pg);
  {
    Session holder(pg);
    holder.exec("BEGIN");
    holder.exec("LOCK TABLE t IN ACCESS EXCLUSIVE MODE");
    // Every probe now hangs on the lock until a timeout ends it. A reload after each one
    // starts a fresh collector (whose predecessor's connection must be closed), so timeouts
    // come every ~300 ms instead of backing off.
    const auto deadline = Clock::now() + 15s;
    int timeouts = 0;
    while ((timeouts = timeoutsLogged(exporter)) < 15 && Clock::now() < deadline) {
      waitFor([&] { return timeoutsLogged(exporter) > timeouts; }, 1500ms);
      EXPECT_EQ(httpRequest("POST", exporter.url("/-/reload")).status, 200);
    }
    ASSERT_GE(timeouts, 15) << exporter.log();
    EXPECT_TRUE(waitUp(exporter, 0, kDownWithin));
  }  // closing the holder releases the lock

  pg.stop();
  pg.start();
  ASSERT_TRUE(waitUp(exporter, 1, 6s)) << exporter.log();  // backoff up to 8 x 500 ms
  // Once the abandoned backends are gone, the exporter holds exactly its one connection.
  EXPECT_TRUE(waitFor([&] { return occurrences(pg.query(kExporterPids), ",") == 0; }, 1s));
  EXPECT_FALSE(pg.query(kExporterPids).empty());
  EXPECT_LE(watcher.max(), 2);
  EXPECT_GE(watcher.samples(), 50);
}

TEST(PostgresCollector, WrongPasswordIsLoggedWithoutTheSecretAndTheRightOneConnects) {
  TempPostgres pg;
  // A 2 s timeout: SCRAM derives its key on both sides, which takes longer than 300 ms under
  // ASan on a loaded machine (it timed out there instead of failing authentication).
  pg.query("CREATE ROLE app LOGIN PASSWORD 'right-horse-battery'");
  // The superuser keeps trust (the harness's own queries); everyone else needs a password.
  pg.writeHba("local all all trust\n"
              "host all postgres 127.0.0.1/32 trust\n"
              "host all all 127.0.0.1/32 scram-sha-256\n");
  ASSERT_TRUE(waitFor([&] {  // the reload is asynchronous
    try {
      Session probe(pg.dsn("app"));
      return false;
    } catch (const std::exception&) {
      return true;
    }
  }, 3s));

  TempDir secrets("apphealth-secrets");
  secrets.write("pg-password", "wrong-staple-donkey\n");
  {
    ExporterProcess exporter(configFor(pg, "    password_file: " + secrets.file("pg-password") + "\n", "app", "2s"));
    ASSERT_TRUE(waitUp(exporter, 0, 15s)) << exporter.log();
    ASSERT_TRUE(waitFor([&] { return exporter.log().find("password authentication failed") != std::string::npos; }, 15s))
        << exporter.log();
    EXPECT_EQ(exporter.metric(kCollectorUp), 0);
    std::string log = exporter.log();
    const auto at = log.find("password authentication failed for user \"app\"");
    ASSERT_NE(at, std::string::npos) << log;
    const auto lineStart = log.rfind('\n', at) + 1;  // npos + 1 == 0 on the first line
    EXPECT_NE(log.substr(lineStart, at - lineStart).find("postgres collector for main: "), std::string::npos) << log;
    EXPECT_EQ(log.find("wrong-staple-donkey"), std::string::npos) << log;

    secrets.write("pg-password", "right-horse-battery\n");
    EXPECT_EQ(httpRequest("POST", exporter.url("/-/reload")).status, 200);
    ASSERT_TRUE(waitUp(exporter, 1, 15s)) << exporter.log();
    log = exporter.log();
    EXPECT_EQ(log.find("wrong-staple-donkey"), std::string::npos);
    EXPECT_EQ(log.find("right-horse-battery"), std::string::npos);
  }

  ASSERT_EQ(setenv("APPHEALTH_TEST_PG_PASSWORD", "right-horse-battery", 1), 0);  // inherited by the child
  ExporterProcess fromEnv(configFor(pg, "    password_env: APPHEALTH_TEST_PG_PASSWORD\n", "app", "2s"));
  ASSERT_TRUE(waitUp(fromEnv, 1, 15s)) << fromEnv.log();
  EXPECT_EQ(fromEnv.log().find("right-horse-battery"), std::string::npos);
}

TEST(PostgresCollector, ConnectionsAreCountedByState) {
  TempPostgres pg;
  ExporterProcess exporter(relaxedConfigFor(pg));
  ASSERT_TRUE(waitUp(exporter, 1, 5s)) << exporter.log();
  {
    std::vector<std::unique_ptr<Session>> idle;
    for (int i = 0; i < 3; ++i) idle.push_back(std::make_unique<Session>(pg));
    Session inTransaction(pg);
    inTransaction.exec("BEGIN");
    EXPECT_TRUE(waitFor([&] {
      auto m = exporter.metrics();
      return m[connections("idle")] == 3 && m[connections("idle_in_transaction")] == 1;
    }, 2s)) << exporter.get("/metrics").body;
    EXPECT_EQ(exporter.metric(connections("active")), 1);  // the exporter's own query
  }
  EXPECT_TRUE(waitFor([&] {
    auto m = exporter.metrics();
    return m[connections("idle")] == 0 && m[connections("idle_in_transaction")] == 0;
  }, 2s)) << exporter.get("/metrics").body;
}

TEST(PostgresCollector, ShutsDownWithinTwoSecondsWhileTheDatabaseHangs) {
  TempPostgres pg;
  // A 10 s timeout: only a wait that a shutdown interrupts can end in time. The probe keeps
  // the backend busy for 0.5 s, so the SIGSTOP below lands while the probe is in flight.
  ExporterProcess exporter("postgres:\n"
                           "  - name: main\n"
                           "    dsn: \"" + pg.dsn() + "\"\n"
                           "    probe_query: SELECT pg_sleep(0.5)\n"
                           "    interval: 10s\n"
                           "    timeout: 10s\n");
  std::this_thread::sleep_for(200ms);
  pg.pause();
  std::this_thread::sleep_for(500ms);
  EXPECT_FALSE(exporter.metric(kUp).has_value());  // still stuck in its first sample
  const auto signalled = Clock::now();
  exporter.signal(SIGTERM);
  const auto code = exporter.waitExit(2s);
  ASSERT_TRUE(code.has_value()) << "still running after 2 s\n" << exporter.log();
  EXPECT_EQ(*code, 0) << exporter.log();
  EXPECT_LT(secondsSince(signalled), 2.0);
}
