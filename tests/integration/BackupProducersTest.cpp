// Backups made by the real tools, checked by the backup collector (sampled directly, one
// PostgreSQL shared by the whole binary, which runs as one ctest test to keep it lean):
//   pg_dump plain, custom, directory, through gzip and zstd; each also killed halfway with
//   SIGKILL (held mid-stream by a TcpGate, so never by luck); pg_basebackup (plain with its
//   backup_manifest, tar); the "backup in progress" contract (settle_time, the sidecar grace);
//   retention; bounded walks; and WAL archiving with an archive_command that succeeds and then
//   fails.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <utime.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <tuple>

#include "TcpGate.h"
#include "TestSupport.h"
#include "collectors/backup/BackupCollector.h"
#include "collectors/postgres/PostgresCollector.h"
#include "metrics/Exposition.h"

using namespace apphealth;
using namespace apphealth::test;
namespace fs = std::filesystem;

namespace {

TempPostgres* pg = nullptr;

class SharedPostgres : public ::testing::Environment {
 public:
  void SetUp() override {
    pg = new TempPostgres();
    // About 4 MB as a plain dump: several times what a gated dump is let through (kGateBytes).
    pg->query("CREATE TABLE orders AS SELECT g AS id, md5(g::text) AS ref, now() AS at FROM generate_series(1, 60000) g");
    pg->query("CREATE TABLE users AS SELECT g AS id, 'user ' || g AS name FROM generate_series(1, 1000) g");
  }
  void TearDown() override {
    delete pg;
    pg = nullptr;
  }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new SharedPostgres);

double now() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

// Connection options for pg_dump, pg_dumpall and pg_basebackup, and --no-sync: they fsync what
// they wrote by default, which takes seconds on a loaded machine and changes no byte of it.
std::string pgArgs() { return "-h 127.0.0.1 -p " + std::to_string(pg->port()) + " -U postgres --no-sync"; }

void setMtime(const std::string& path, double unixSeconds) {
  // A directory backup's time is its newest entry's: age everything in it.
  std::vector<std::string> paths{path};
  if (fs::is_directory(path)) {
    for (const auto& e : fs::recursive_directory_iterator(path)) paths.push_back(e.path().string());
  }
  for (const auto& p : paths) {
    utimbuf times{static_cast<time_t>(unixSeconds), static_cast<time_t>(unixSeconds)};
    ASSERT_EQ(utime(p.c_str(), &times), 0) << p;
  }
}

void runOk(const std::string& command) {
  std::string out;
  ASSERT_EQ(run(command, &out), 0) << command << "\n" << out;
}

// What a gated pg_dump receives of the server's answers before it is stuck: its catalog queries
// (about 0.9 MB here) and then part of the table data, far from the end of the dump.
constexpr std::uint64_t kGateBytes = 3 << 19;
// What its output must hold before it is killed: well inside the table data.
constexpr std::uintmax_t kKilledAt = 256 << 10;

std::uintmax_t bytesIn(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    const auto size = fs::file_size(path, ec);
    return ec ? 0 : size;
  }
  std::uintmax_t size = 0;
  for (const auto& e : fs::recursive_directory_iterator(path, ec)) size += e.is_regular_file(ec) ? e.file_size(ec) : 0;
  return size;
}

// A pg_dump killed halfway, deterministically: `pg_dump ARGS` connects through a TcpGate, which
// passes only kGateBytes of the server's answers, so it can never finish; once all of that
// passed and `output` holds more than kKilledAt bytes, it gets SIGKILL.
void killPgDumpHalfway(const std::vector<std::string>& args, const std::string& output) {
  TcpGate gate(pg->port(), kGateBytes);
  std::vector<std::string> argv{"/usr/bin/pg_dump", "-h", "127.0.0.1", "-p", std::to_string(gate.port()), "-U", "postgres"};
  argv.insert(argv.end(), args.begin(), args.end());
  TempDir logs("apphealth-log");
  const pid_t pgDump = spawnWithLog(argv, logs.file("pg_dump.log"));
  const bool midway = waitFor([&] { return gate.passed() == kGateBytes && bytesIn(output) > kKilledAt; }, 60s);
  kill(pgDump, SIGKILL);
  int status = 0;
  waitpid(pgDump, &status, 0);
  ASSERT_TRUE(midway) << "after the gate passed " << gate.passed() << " bytes, " << output << " holds " << bytesIn(output)
                      << " (waiting for more than " << kKilledAt << ")\n"
                      << std::ifstream(logs.file("pg_dump.log")).rdbuf();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "pg_dump ended otherwise: status " << status;
}

BackupTarget target(const std::string& directory) {
  BackupTarget t;
  t.name = "db";
  t.directory = directory;
  t.settle_time = Duration(0);
  t.check_complete = true;
  return t;
}

std::map<std::string, double> sampleOnce(BackupCollector& collector, SampleResult* result = nullptr) {
  SnapshotBuilder builder;
  auto r = collector.sample(builder, std::stop_token());
  if (result) *result = r;
  return parseMetrics(renderText(builder.take()));
}

// One backup alone in a directory, checked: 1 complete, 0 incomplete, -1 no verdict.
double completeness(const std::string& directory, const std::string& glob = "*") {
  auto t = target(directory);
  t.glob = glob;
  BackupCollector collector(t);
  auto m = sampleOnce(collector);
  auto it = m.find("apphealth_backup_complete{backup=\"db\"}");
  return it == m.end() ? -1 : it->second;
}

}  // namespace

TEST(BackupProducers, PgDumpEveryFormatCompleteAndKilledHalfway) {
  struct Format {
    std::string name;
    std::vector<std::string> options;        // for the whole dump
    std::vector<std::string> killedOptions;  // for the one killed halfway (uncompressed: more of it on disk)
  };
  const std::vector<Format> formats = {
      {"plain.sql", {}, {}},
      {"custom.dump", {"-Fc"}, {"-Fc", "-Z0"}},
      {"dirformat", {"-Fd"}, {"-Fd", "-Z0"}},
  };
  TempDir whole("apphealth-dump"), killed("apphealth-dump");
  for (const auto& format : formats) {
    SCOPED_TRACE(format.name);
    std::string command = "pg_dump " + pgArgs();
    for (const auto& o : format.options) command += " " + o;
    runOk(command + " -f " + whole.file(format.name) + " postgres");
    EXPECT_EQ(completeness(whole.path(), format.name), 1);

    std::vector<std::string> args = format.killedOptions;
    args.insert(args.end(), {"--no-sync", "-f", killed.file(format.name), "postgres"});
    killPgDumpHalfway(args, killed.file(format.name));
    EXPECT_EQ(completeness(killed.path(), format.name), 0);
  }
  // Why the custom and directory checks read every data block: `pg_restore --list` passes a
  // killed dump, because its table of contents is written first.
  std::string out;
  EXPECT_EQ(run("pg_restore --list " + killed.file("custom.dump") + " >/dev/null", &out), 0) << out;
  EXPECT_NE(run("pg_restore --file=/dev/null " + killed.file("custom.dump"), &out), 0);

  // `pg_dump | gzip` and `pg_dump | zstd`: the compressor gets exactly the bytes pg_dump writes
  // (here, from the dumps above). When pg_dump is killed, the compressor still ends its stream
  // cleanly: only the missing pg_dump trailer inside tells.
  for (const auto& [name, compress, test] : {std::tuple{"plain.sql.gz", "gzip -c", "gzip -t"}, std::tuple{"plain.sql.zst", "zstd -qc", "zstd -qt"}}) {
    SCOPED_TRACE(name);
    runOk(std::string(compress) + " " + whole.file("plain.sql") + " > " + whole.file(name));
    EXPECT_EQ(completeness(whole.path(), name), 1);
    runOk(std::string(compress) + " " + killed.file("plain.sql") + " > " + killed.file(name));
    runOk(std::string(test) + " " + killed.file(name));
    EXPECT_EQ(completeness(killed.path(), name), 0);
  }
  // A pg_dumpall script ends with its own "cluster dump complete" trailer.
  runOk("pg_dumpall " + pgArgs() + " -f " + whole.file("cluster.sql"));
  EXPECT_EQ(completeness(whole.path(), "cluster.sql"), 1);
}

TEST(BackupProducers, PgBasebackupWithManifestAndTar) {
  TempDir dir("apphealth-base");
  const std::string base = dir.file("base-20261122");
  runOk("pg_basebackup " + pgArgs() + " -D " + base + " -Fp -X stream --checkpoint=fast");
  ASSERT_TRUE(fs::exists(base + "/backup_manifest"));
  auto t = target(dir.path());
  t.verify_checksum = true;
  {
    BackupCollector collector(t);
    auto m = sampleOnce(collector);
    EXPECT_EQ(m["apphealth_backup_verified{backup=\"db\"}"], 1);
    EXPECT_EQ(m["apphealth_backup_complete{backup=\"db\"}"], 1);
    EXPECT_GT(m["apphealth_backup_last_size_bytes{backup=\"db\"}"], 1e6);
    EXPECT_EQ(m["apphealth_backup_files{backup=\"db\"}"], 1);  // one directory, one backup
  }
  // A data file changed after the backup: pg_verifybackup sees it against the manifest.
  runOk("echo corrupted >> " + base + "/PG_VERSION");
  {
    BackupCollector collector(t);
    auto m = sampleOnce(collector);
    EXPECT_EQ(m["apphealth_backup_verified{backup=\"db\"}"], 0);
    EXPECT_EQ(m["apphealth_backup_complete{backup=\"db\"}"], 0);
  }
  // Tar format, compressed: every stream intact and the manifest written last.
  TempDir tar("apphealth-base");
  runOk("pg_basebackup " + pgArgs() + " -D " + tar.file("base-tar") + " -Ft -Z 1 -X stream --checkpoint=fast");
  EXPECT_EQ(completeness(tar.path()), 1);
  const auto tarSize = fs::file_size(tar.file("base-tar/base.tar.gz"));
  fs::resize_file(tar.file("base-tar/base.tar.gz"), tarSize / 2);
  EXPECT_EQ(completeness(tar.path()), 0);
}

// The contract issue 13's alert backtest relies on.
TEST(BackupProducers, InProgressBackupDoesNotReplaceTheFinishedOne) {
  TempDir dir("apphealth-dump");
  runOk("cd " + dir.path() + " && pg_dump " + pgArgs() + " -Fc -f nightly-1.dump postgres");
  runOk("cd " + dir.path() + " && sha256sum nightly-1.dump > nightly-1.dump.sha256");
  const double yesterday = now() - 86400;
  setMtime(dir.file("nightly-1.dump"), yesterday);
  // Tonight's dump is being written in place (here: killed, so it stays partial and fresh).
  killPgDumpHalfway({"-Fc", "-Z0", "--no-sync", "-f", dir.file("nightly-2.dump"), "postgres"}, dir.file("nightly-2.dump"));
  BackupTarget t = target(dir.path());
  t.glob = "nightly-*";
  t.settle_time = std::chrono::minutes(5);
  t.verify_checksum = true;
  BackupCollector collector(t);
  auto m = sampleOnce(collector);
  EXPECT_EQ(m["apphealth_backup_in_progress{backup=\"db\"}"], 1);
  EXPECT_EQ(m["apphealth_backup_files{backup=\"db\"}"], 2);
  EXPECT_EQ(m["apphealth_backup_last_timestamp_seconds{backup=\"db\"}"], static_cast<double>(static_cast<time_t>(yesterday)));
  EXPECT_EQ(m["apphealth_backup_last_size_bytes{backup=\"db\"}"], fs::file_size(dir.file("nightly-1.dump")));
  EXPECT_EQ(m["apphealth_backup_complete{backup=\"db\"}"], 1);  // yesterday's
  EXPECT_EQ(m["apphealth_backup_verified{backup=\"db\"}"], 1);  // yesterday's sidecar

  // Settled 10 minutes ago, no sidecar yet: within checksum_grace no verdict; the dump itself
  // is seen to be incomplete at once.
  setMtime(dir.file("nightly-2.dump"), now() - 600);
  m = sampleOnce(collector);
  EXPECT_EQ(m["apphealth_backup_in_progress{backup=\"db\"}"], 0);
  EXPECT_EQ(m["apphealth_backup_complete{backup=\"db\"}"], 0);
  EXPECT_FALSE(m.count("apphealth_backup_verified{backup=\"db\"}"));
  EXPECT_EQ(m["apphealth_backup_previous_size_bytes{backup=\"db\"}"], fs::file_size(dir.file("nightly-1.dump")));
  // Past settle_time + checksum_grace without a sidecar: a failure.
  setMtime(dir.file("nightly-2.dump"), now() - 3600);
  m = sampleOnce(collector);
  EXPECT_EQ(m["apphealth_backup_verified{backup=\"db\"}"], 0);
  // Each backup is checked once, not once per sample.
  const auto checks = collector.completenessChecks();
  sampleOnce(collector);
  EXPECT_EQ(collector.completenessChecks(), checks);
}

TEST(BackupProducers, RetentionAndBoundedWalks) {
  TempDir dir("apphealth-ret");
  // A mongodump-style directory per night (made by the test: no mongodump runs here).
  const double day = 86400, base = 1795392000;  // 2026-11-23 00:00 UTC, a Monday
  for (int i = 0; i < 10; ++i) {
    const std::string name = "full-backup-" + std::to_string(i);
    fs::create_directories(dir.file(name + "/app"));
    std::ofstream(dir.file(name + "/app/users.bson")) << std::string(100 + i, 'x');
    setMtime(dir.file(name), base - i * 3 * day);
  }
  BackupTarget t;
  t.name = "db";
  t.directory = dir.path();
  t.glob = "full-backup-*";
  t.retention.keep_daily = 7;
  t.retention.keep_weekly = 4;
  t.retention.min_count = 5;
  t.retention.max_age = 30 * 24h;
  BackupCollector collector(t);
  SampleResult result;
  auto m = sampleOnce(collector, &result);
  EXPECT_TRUE(result.ok) << result.problem;
  EXPECT_EQ(m["apphealth_backup_files{backup=\"db\"}"], 10);
  EXPECT_EQ(m["apphealth_backup_oldest_timestamp_seconds{backup=\"db\"}"], base - 27 * day);
  EXPECT_EQ(m["apphealth_backup_retention_periods{backup=\"db\",period=\"daily\"}"], 10);
  EXPECT_EQ(m["apphealth_backup_retention_periods{backup=\"db\",period=\"weekly\"}"], 5);
  EXPECT_EQ(m["apphealth_threshold_backup_retention_periods{backup=\"db\",period=\"weekly\"}"], 4);
  EXPECT_EQ(m["apphealth_threshold_backup_min_count{backup=\"db\"}"], 5);
  EXPECT_EQ(m["apphealth_threshold_backup_retention_max_age_seconds{backup=\"db\"}"], 30 * 86400);
  EXPECT_EQ(m["apphealth_backup_last_size_bytes{backup=\"db\"}"], 100);  // the directory's files summed
  EXPECT_EQ(m["apphealth_backup_previous_size_bytes{backup=\"db\"}"], 101);
  EXPECT_FALSE(m.count("apphealth_threshold_backup_retention_periods{backup=\"db\",period=\"monthly\"}"));

  // A directory backup larger than the walk allows is an error, not a silent partial size.
  for (int i = 0; i < 20; ++i) std::ofstream(dir.file("full-backup-0/app/c" + std::to_string(i) + ".bson")) << "x";
  t.max_files = 10;
  BackupCollector capped(t);
  m = sampleOnce(capped, &result);
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.problem.find("more than max_files (10)"), std::string::npos) << result.problem;
  EXPECT_FALSE(m.count("apphealth_backup_files{backup=\"db\"}"));
}

TEST(BackupProducers, WalArchivingSucceedsThenFails) {
  TempPostgres server;
  TempDir archive("apphealth-wal");
  runOk("chown postgres " + archive.path());
  server.query("ALTER SYSTEM SET archive_mode = on");
  server.query("ALTER SYSTEM SET archive_command = 'test ! -f " + archive.path() + "/%f && cp %p " + archive.path() + "/%f'");
  server.stop();
  server.start();
  PostgresTarget t;
  t.name = "main";
  t.dsn = server.dsn();
  t.timeout = 5s;
  PostgresCollector collector(t);
  auto sample = [&] {
    SnapshotBuilder builder;
    collector.sample(builder, std::stop_token());
    return parseMetrics(renderText(builder.take()));
  };
  server.query("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g");
  server.query("SELECT pg_switch_wal()");
  std::map<std::string, double> m;
  ASSERT_TRUE(waitFor([&] { return (m = sample())["apphealth_db_wal_archived_total{target=\"main\"}"] >= 1; }, 30s));
  EXPECT_EQ(m["apphealth_db_wal_archive_mode{target=\"main\"}"], 1);
  EXPECT_EQ(m["apphealth_threshold_db_wal_rpo_seconds{target=\"main\"}"], 900);
  EXPECT_NEAR(m["apphealth_db_wal_last_archived_timestamp_seconds{target=\"main\"}"], now(), 60);
  EXPECT_EQ(m["apphealth_db_wal_archive_failures_total{target=\"main\"}"], 0);
  EXPECT_FALSE(m.count("apphealth_db_wal_last_archive_failure_timestamp_seconds{target=\"main\"}"));
  const double archivedAt = m["apphealth_db_wal_last_archived_timestamp_seconds{target=\"main\"}"];

  // The archive destination goes away (full disk, lost mount): archive_command fails.
  server.query("ALTER SYSTEM SET archive_command = 'cp %p /nonexistent/apphealth/%f'");
  server.query("SELECT pg_reload_conf()");
  server.query("INSERT INTO t SELECT g FROM generate_series(1, 1000) g");
  server.query("SELECT pg_switch_wal()");
  ASSERT_TRUE(waitFor([&] { return (m = sample())["apphealth_db_wal_archive_failures_total{target=\"main\"}"] >= 1; }, 30s));
  EXPECT_GE(m["apphealth_db_wal_last_archive_failure_timestamp_seconds{target=\"main\"}"], archivedAt);
  EXPECT_EQ(m["apphealth_db_wal_last_archived_timestamp_seconds{target=\"main\"}"], archivedAt);
  server.query("INSERT INTO t SELECT g FROM generate_series(1, 1000) g");
  m = sample();
  EXPECT_GT(m["apphealth_db_wal_unarchived_bytes{target=\"main\"}"], 16 << 20);  // a whole segment waits, and more

  // A streaming client appears in pg_stat_replication: its lag is exported.
  TempDir received("apphealth-wal");
  runOk("chown postgres " + received.path());
  const pid_t receiver = spawnWithLog({"/usr/lib/postgresql/15/bin/pg_receivewal", "-h", "127.0.0.1", "-p", std::to_string(server.port()),
                                       "-U", "postgres", "-D", received.path(), "--no-loop", "--no-sync"},
                                      archive.file("receivewal.log"));
  EXPECT_TRUE(waitFor([&] { return sample().count("apphealth_db_replication_lag_bytes{target=\"main\",standby=\"pg_receivewal\"}") > 0; }, 30s));
  kill(receiver, SIGTERM);
  waitpid(receiver, nullptr, 0);
}

TEST(BackupProducers, ArchiveModeOffExportsOnlyTheMode) {
  PostgresTarget t;
  t.name = "main";
  t.dsn = pg->dsn();
  PostgresCollector collector(t);
  SnapshotBuilder builder;
  collector.sample(builder, std::stop_token());
  auto m = parseMetrics(renderText(builder.take()));
  EXPECT_EQ(m["apphealth_db_wal_archive_mode{target=\"main\"}"], 0);
  EXPECT_FALSE(m.count("apphealth_db_wal_archived_total{target=\"main\"}"));
  EXPECT_EQ(m["apphealth_threshold_db_wal_rpo_seconds{target=\"main\"}"], 900);
}
