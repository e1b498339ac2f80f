// The backup collector on real files in a temporary directory: sampled directly for exact
// values, and once through the exporter binary.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <utime.h>

#include <chrono>
#include <filesystem>

#include "TestSupport.h"
#include "collectors/backup/BackupCollector.h"
#include "metrics/Exposition.h"

using namespace apphealth;
using namespace apphealth::test;

namespace {

void setMtime(const std::string& path, double unixSeconds) {
  utimbuf times{static_cast<time_t>(unixSeconds), static_cast<time_t>(unixSeconds)};
  ASSERT_EQ(utime(path.c_str(), &times), 0);
}

std::string sha256sumLine(const TempDir& dir, const std::string& name) {
  std::string out;
  EXPECT_EQ(run("cd " + dir.path() + " && sha256sum " + name, &out), 0);
  return out;
}

std::map<std::string, double> sampleOnce(BackupCollector& collector, bool* ok = nullptr) {
  SnapshotBuilder builder;
  const bool result = collector.sample(builder, std::stop_token()).ok;
  if (ok) *ok = result;
  return parseMetrics(renderText(builder.take()));
}

BackupTarget target(const TempDir& dir) {
  BackupTarget t;
  t.name = "db";
  t.directory = dir.path();
  t.glob = "full-backup-*";
  t.settle_time = Duration(0);  // these files are written whole: none is in progress
  return t;
}

const double kNow = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();

}  // namespace

TEST(BackupCollector, NewestFileByMtimeWithSizeAndCount) {
  TempDir dir;
  dir.write("full-backup-a.sql", std::string(100, 'a'));
  dir.write("full-backup-b.sql", std::string(250, 'b'));
  dir.write("full-backup-c.sql", std::string(7, 'c'));
  dir.write("unrelated.log", "x");
  setMtime(dir.file("full-backup-a.sql"), kNow - 3 * 86400);
  setMtime(dir.file("full-backup-b.sql"), kNow - 3600);
  setMtime(dir.file("full-backup-c.sql"), kNow - 86400);
  setMtime(dir.file("unrelated.log"), kNow);
  BackupCollector collector(target(dir));
  bool ok = false;
  auto m = sampleOnce(collector, &ok);
  EXPECT_TRUE(ok);
  EXPECT_EQ(m["apphealth_backup_files{backup=\"db\"}"], 3);
  EXPECT_EQ(m["apphealth_backup_last_timestamp_seconds{backup=\"db\"}"], static_cast<double>(static_cast<time_t>(kNow - 3600)));
  EXPECT_EQ(m["apphealth_backup_last_size_bytes{backup=\"db\"}"], 250);
  EXPECT_EQ(m["apphealth_backup_previous_size_bytes{backup=\"db\"}"], 7);
  EXPECT_EQ(m["apphealth_threshold_backup_max_age_seconds{backup=\"db\"}"], 26 * 3600);
  EXPECT_FALSE(m.count("apphealth_backup_verified{backup=\"db\"}"));  // verification is off
}

TEST(BackupCollector, TimeParsedFromNameBeatsMtime) {
  TempDir dir;
  dir.write("full-backup-20261120-010000.sql", "old");
  dir.write("full-backup-20261122-010000.sql", "newer");
  dir.write("full-backup-latest.sql", "ignored: does not match the format");
  setMtime(dir.file("full-backup-20261120-010000.sql"), kNow);  // touched recently, but older by name
  auto t = target(dir);
  t.name_time_format = "full-backup-%Y%m%d-%H%M%S";
  BackupCollector collector(t);
  auto m = sampleOnce(collector);
  EXPECT_EQ(m["apphealth_backup_files{backup=\"db\"}"], 2);
  EXPECT_EQ(m["apphealth_backup_last_timestamp_seconds{backup=\"db\"}"], 1795309200);  // 2026-11-22T01:00:00Z
  EXPECT_EQ(m["apphealth_backup_last_size_bytes{backup=\"db\"}"], 5);
}

TEST(BackupCollector, ChecksumOkMismatchAndMissing) {
  TempDir dir;
  dir.write("full-backup-1.sql", "first backup");
  dir.write("full-backup-1.sql.sha256", sha256sumLine(dir, "full-backup-1.sql"));
  auto t = target(dir);
  t.verify_checksum = true;
  t.checksum_grace = Duration(0);  // a missing sidecar fails at once (the grace is tested with pg_dump)
  BackupCollector collector(t);
  auto m = sampleOnce(collector);
  EXPECT_EQ(m["apphealth_backup_verified{backup=\"db\"}"], 1);
  EXPECT_EQ(m["apphealth_backup_files{backup=\"db\"}"], 1);  // the sidecar is not a backup

  // A newer backup whose content does not match its sidecar.
  dir.write("full-backup-2.sql", "second backup");
  dir.write("full-backup-2.sql.sha256", sha256sumLine(dir, "full-backup-1.sql"));
  setMtime(dir.file("full-backup-2.sql"), kNow + 10);
  m = sampleOnce(collector);
  EXPECT_EQ(m["apphealth_backup_verified{backup=\"db\"}"], 0);

  // A newer backup without a sidecar at all.
  dir.write("full-backup-3.sql", "third backup");
  setMtime(dir.file("full-backup-3.sql"), kNow + 20);
  m = sampleOnce(collector);
  EXPECT_EQ(m["apphealth_backup_verified{backup=\"db\"}"], 0);
  // ...and once the sidecar appears, the same file verifies without a restart.
  dir.write("full-backup-3.sql.sha256", sha256sumLine(dir, "full-backup-3.sql"));
  m = sampleOnce(collector);
  EXPECT_EQ(m["apphealth_backup_verified{backup=\"db\"}"], 1);
}

TEST(BackupCollector, EachBackupIsHashedOnceUntilItChanges) {
  TempDir dir;
  dir.write("full-backup-1.sql", "content");
  dir.write("full-backup-1.sql.sha256", sha256sumLine(dir, "full-backup-1.sql"));
  auto t = target(dir);
  t.verify_checksum = true;
  BackupCollector collector(t);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(sampleOnce(collector)["apphealth_backup_verified{backup=\"db\"}"], 1);
  EXPECT_EQ(collector.hashesComputed(), 1u);
  // Rewritten in place (size changes): hashed again, and now it no longer matches.
  dir.write("full-backup-1.sql", "content, tampered");
  EXPECT_EQ(sampleOnce(collector)["apphealth_backup_verified{backup=\"db\"}"], 0);
  EXPECT_EQ(collector.hashesComputed(), 2u);
}

TEST(BackupCollector, EmptyDirectoryHasNoBackups) {
  TempDir dir;
  BackupCollector collector(target(dir));
  bool ok = false;
  auto m = sampleOnce(collector, &ok);
  EXPECT_TRUE(ok);
  EXPECT_EQ(m["apphealth_backup_files{backup=\"db\"}"], 0);
  EXPECT_FALSE(m.count("apphealth_backup_last_timestamp_seconds{backup=\"db\"}"));
}

TEST(BackupCollector, MissingDirectoryFailsTheCollectorAndReportsNoFiles) {
  BackupTarget t;
  t.name = "db";
  t.directory = "/nonexistent/apphealth-backups";
  BackupCollector collector(t);
  bool ok = true;
  auto m = sampleOnce(collector, &ok);
  EXPECT_FALSE(ok);
  EXPECT_EQ(m["apphealth_backup_files{backup=\"db\"}"], 0);
  EXPECT_EQ(m["apphealth_threshold_backup_max_age_seconds{backup=\"db\"}"], 26 * 3600);
}

TEST(BackupCollector, StatusAgeCheckIsHeldOffWhileABackupIsWritten) {
  // What the status page shows: the age of the newest finished backup against max_age, not
  // failing while tonight's dump is still being written (as the "too old" alert waits too).
  TempDir dir;
  dir.write("full-backup-1.sql", "old");
  setMtime(dir.file("full-backup-1.sql"), kNow - 30 * 3600);
  BackupTarget t = target(dir);
  t.settle_time = std::chrono::minutes(5);
  auto ageCheck = [&](BackupCollector& collector) {
    SnapshotBuilder builder;
    const auto result = collector.sample(builder, std::stop_token());
    EXPECT_TRUE(result.ok) << result.problem;
    for (const auto& c : result.checks) {
      if (c.name == "age of the newest backup") return c;
    }
    ADD_FAILURE() << "no age check";
    return StatusCheck{};
  };
  BackupCollector collector(t);
  auto age = ageCheck(collector);
  EXPECT_TRUE(age.failing);
  EXPECT_NEAR(age.value, 30 * 3600, 60);
  dir.write("full-backup-2.sql", "being written");  // modified just now: in progress
  age = ageCheck(collector);
  EXPECT_FALSE(age.failing);
  EXPECT_NEAR(age.value, 30 * 3600, 60);  // still the finished one's age
  setMtime(dir.file("full-backup-2.sql"), kNow - 600);  // settled
  age = ageCheck(collector);
  EXPECT_FALSE(age.failing);
  EXPECT_NEAR(age.value, 600, 60);
}

TEST(BackupCollector, ThroughTheExporter) {
  TempDir dir;
  dir.write("full-backup-20261122-010000.sql", "backup");
  dir.write("full-backup-20261122-010000.sql.sha256", sha256sumLine(dir, "full-backup-20261122-010000.sql"));
  ExporterProcess exporter("backups:\n"
                           "  - name: nightly\n"
                           "    directory: " + dir.path() + "\n"
                           "    glob: \"full-backup-*\"\n"
                           "    name_time_format: \"full-backup-%Y%m%d-%H%M%S\"\n"
                           "    verify_checksum: true\n"
                           "    max_age: 2h\n"
                           "    settle_time: 0s\n"
                           "    interval: 200ms\n");
  ASSERT_TRUE(waitFor([&] { return exporter.metric("apphealth_backup_verified{backup=\"nightly\"}") == 1.0; }, 5s))
      << exporter.log();
  auto m = exporter.metrics();
  EXPECT_EQ(m["apphealth_backup_last_timestamp_seconds{backup=\"nightly\"}"], 1795309200);
  EXPECT_EQ(m["apphealth_threshold_backup_max_age_seconds{backup=\"nightly\"}"], 7200);
  EXPECT_EQ(m["apphealth_collector_up{collector=\"backup\",target=\"nightly\"}"], 1);
  // The directory disappears: the collector reports the failure and no backups.
  std::filesystem::remove_all(dir.path());
  ASSERT_TRUE(waitFor([&] { return exporter.metric("apphealth_collector_up{collector=\"backup\",target=\"nightly\"}") == 0.0; }, 5s));
  EXPECT_EQ(exporter.metric("apphealth_backup_files{backup=\"nightly\"}"), 0.0);
  EXPECT_NE(exporter.log().find("cannot read directory"), std::string::npos);
}
