#pragma once
// What the MySQL integration tests share: a database and a monitoring user of each test's
// own on the server shared by the test binary (sharedMariaDb()), the password in a file,
// and a mysql target config for them.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "TempMariaDb.h"
#include "TestSupport.h"

namespace apphealth::test {

// A database and a monitoring user of the test's own on the shared server, the password in a file.
class MysqlFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    database_ = "db_" + std::to_string(std::hash<std::string>{}(name) % 1000000);
    user_ = "u_" + database_.substr(3);
    db().createDatabaseAndUser(database_, user_, password_);
    secrets_.write("password", password_ + "\n");
  }
  void TearDown() override {
    db().resume();
    db().start();  // a test that stopped the server must not leave it stopped for the next one
    db().query("DROP DATABASE IF EXISTS " + database_ + "; DROP USER IF EXISTS '" + user_ + "'@'127.0.0.1'");
  }

  static TempMariaDb& db() { return sharedMariaDb(); }

  // Without TLS unless asked (tls: ssl_mode preferred, the default, which the test server
  // offers): a TLS handshake per connect costs a loaded machine hundreds of milliseconds.
  // The timing leaves room for such a machine too; tests about timeouts set their own.
  std::string target(const std::string& extra = "", const std::string& timing = "", bool tls = false) const {
    return "mysql:\n"
           "  - name: main\n"
           "    host: 127.0.0.1\n"
           "    port: " + std::to_string(db().port()) + "\n"
           "    user: " + user_ + "\n"
           "    database: " + database_ + "\n"
           "    password_file: " + secrets_.file("password") + "\n" +
           (tls ? "" : "    ssl_mode: disabled\n") +
           (timing.empty() ? "    interval: 1s\n    timeout: 1s\n" : timing) + extra;
  }

  // Thread ids of the exporter's connections, comma-separated, in id order.
  std::string exporterThreads() const {
    return db().query("SELECT group_concat(ID ORDER BY ID) FROM information_schema.PROCESSLIST WHERE USER = '" + user_ +
                      "'");
  }
  int exporterConnections() const { return db().connectionsOf(user_); }

  static bool waitUp(const ExporterProcess& exporter, double value, std::chrono::milliseconds timeout) {
    return waitFor([&] { return exporter.metric("apphealth_db_up{target=\"main\"}") == value; }, timeout);
  }

  // Scrapes /metrics back to back for `duration`; returns the slowest one. Each must answer 200.
  static double slowestScrape(const ExporterProcess& exporter, std::chrono::milliseconds duration) {
    using Clock = std::chrono::steady_clock;
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

  std::string database_;
  std::string user_;
  std::string password_ = "correct-horse-" + std::to_string(::getpid());
  TempDir secrets_{"apphealth-secrets"};
};

inline void promtoolAccepts(const ExporterProcess& exporter) {
  TempDir dir("apphealth-promtool");
  dir.write("m.txt", exporter.get("/metrics").body);
  std::string out;
  EXPECT_EQ(run("promtool check metrics < " + dir.file("m.txt") + " 2>&1", &out), 0) << out;
}

}  // namespace apphealth::test
