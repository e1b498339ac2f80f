// Backup building blocks without servers: config, retention periods, S3 key grouping, the
// stream and trailer checks, and mongodump-shaped directories. The real producers (pg_dump,
// pg_basebackup, gzip, zstd, s3cmd + s3rver) are in tests/integration/Backup*Test.cpp.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "collectors/backup/BackupCollector.h"
#include "collectors/backup/Completeness.h"
#include "collectors/backup/Retention.h"
#include "collectors/backup/S3Listing.h"
#include "config/ConfigLoader.h"
#include "util/Gzip.h"

using namespace apphealth;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string allErrors(const std::string& yaml) {
  std::string out;
  for (const auto& e : loadConfigText(yaml, "c.yml").errors) out += e.format() + "\n";
  return out;
}

BackupCandidate at(double time, std::string name = "b") {
  BackupCandidate c;
  c.name = std::move(name);
  c.time = c.mtime = time;
  return c;
}

struct ScratchDir {
  ScratchDir() {
    char pattern[] = "/tmp/apphealth-unit-XXXXXX";
    path = mkdtemp(pattern);
  }
  ~ScratchDir() { fs::remove_all(path); }
  void write(const std::string& name, const std::string& content) const {
    fs::create_directories(fs::path(path + "/" + name).parent_path());
    std::ofstream(path + "/" + name, std::ios::binary) << content;
  }
  std::string path;
};

std::string bsonDocument(const std::string& key, const std::string& value) {
  // { key: "value" }: int32 length, 0x02 string element, name, int32 strlen+1, bytes, 0, 0.
  std::string body;
  body += '\x02';
  body += key;
  body += '\0';
  const std::uint32_t n = static_cast<std::uint32_t>(value.size() + 1);
  body.append(reinterpret_cast<const char*>(&n), 4);
  body += value;
  body += '\0';
  body += '\0';  // end of document
  const std::uint32_t total = static_cast<std::uint32_t>(body.size() + 4);
  return std::string(reinterpret_cast<const char*>(&total), 4) + body;
}

CheckContext noLimit() { return {std::chrono::steady_clock::now() + 60s, {}}; }

}  // namespace

TEST(BackupConfig, LocalAndS3EntriesWithEveryOption) {
  setenv("APPHEALTH_TEST_S3_KEY", "AKID", 1);
  setenv("APPHEALTH_TEST_S3_SECRET", "secret", 1);
  const auto result = loadConfigText(R"(backups:
  - name: nightly
    directory: /var/backups/mongodb
    glob: "full-backup-*"
    name_time_format: "full-backup-%Y-%m-%dT%H-%M-%S"
    check_complete: true
    verify_checksum: true
    settle_time: 10m
    checksum_grace: 1h
    check_timeout: 20m
    max_files: 5000
    max_depth: 4
    retention: {keep_daily: 7, keep_weekly: 4, keep_monthly: 12, min_count: 20, max_count: 30, max_age: 400d}
  - name: nightly-offsite
    s3:
      endpoint: https://s3.eu-central-1.amazonaws.com
      region: eu-central-1
      bucket: acme-backups
      prefix: mongodb/
      access_key_id_env: APPHEALTH_TEST_S3_KEY
      secret_access_key_env: APPHEALTH_TEST_S3_SECRET
      max_objects: 20000
      max_keys: 500
    glob: "full-backup-*"
    offsite_of: nightly
    offsite_delay: 3h
    timeout: 20s
)",
                                     "c.yml");
  ASSERT_TRUE(result.errors.empty()) << allErrors("");
  const auto& b = result.config->backups;
  ASSERT_EQ(b.size(), 2u);
  EXPECT_TRUE(b[0].check_complete);
  EXPECT_EQ(b[0].settle_time, 10min);
  EXPECT_EQ(b[0].checksum_grace, 1h);
  EXPECT_EQ(b[0].retention.keep_monthly, 12);
  EXPECT_EQ(b[0].retention.max_age, 400 * 24h);
  ASSERT_TRUE(b[1].s3);
  EXPECT_EQ(b[1].s3->bucket, "acme-backups");
  EXPECT_EQ(b[1].s3->max_objects, 20000);
  EXPECT_EQ(b[1].s3->max_keys, 500);
  ASSERT_TRUE(b[1].offsite_local);
  EXPECT_EQ(b[1].offsite_local->directory, "/var/backups/mongodb");
  EXPECT_EQ(b[1].offsite_delay, 3h);
}

TEST(BackupConfig, Defaults) {
  const auto result = loadConfigText("backups:\n  - name: n\n    directory: /x\n", "c.yml");
  ASSERT_TRUE(result.config);
  const auto& b = result.config->backups[0];
  EXPECT_EQ(b.settle_time, 5min);
  EXPECT_EQ(b.checksum_grace, 30min);
  EXPECT_EQ(b.timeout, 30s);
  EXPECT_FALSE(b.check_complete);
  EXPECT_FALSE(b.retention.any());
}

TEST(BackupConfig, ClearErrors) {
  auto expectError = [](const std::string& entry, const std::string& fragment) {
    const auto errors = allErrors("backups:\n  - name: n\n" + entry);
    EXPECT_NE(errors.find(fragment), std::string::npos) << "expected '" << fragment << "' in:\n" << errors;
  };
  expectError("    glob: '*'\n", "exactly one of 'directory' (local) or 's3'");
  expectError("    directory: /x\n    s3: {endpoint: 'http://h', bucket: bkt, access_key_id_env: A, secret_access_key_env: B}\n",
              "exactly one of");
  expectError("    s3: {endpoint: 'http://h', bucket: bkt, access_key_id: AKID, secret_access_key_env: HOME}\n",
              "inline access_key_id is not accepted");
  expectError("    s3: {endpoint: 'http://user:pw@h', bucket: bkt, access_key_id_env: HOME, secret_access_key_env: HOME}\n",
              "without a path or credentials");
  expectError("    s3: {endpoint: 'http://h', bucket: Bad_Bucket, access_key_id_env: HOME, secret_access_key_env: HOME}\n",
              "bucket must be");
  expectError("    s3: {endpoint: 'http://h', bucket: bkt, access_key_id_env: HOME}\n",
              "needs secret_access_key_file or secret_access_key_env");
  expectError("    s3: {endpoint: 'http://h', bucket: bkt, access_key_id_env: HOME, secret_access_key_env: HOME}\n"
              "    offsite_of: nowhere\n",
              "offsite_of 'nowhere' is not the name of a local (directory) backup");
  expectError("    s3: {endpoint: 'http://h', bucket: bkt, access_key_id_env: HOME, secret_access_key_env: HOME, max_keys: 5000}\n",
              "'max_keys' must be between 1 and 1000");
  expectError("    directory: /x\n    offsite_of: other\n", "offsite_of belongs to an s3 backup");
  expectError("    directory: /x\n    retention: {}\n", "needs at least one of keep_daily");
  expectError("    directory: /x\n    retention: {min_count: 5, max_count: 2}\n", "max_count must not be below min_count");
  expectError("    directory: /x\n    retention: {keep_dayly: 7}\n", "keep_dayly");
  expectError("    directory: /x\n    timeout: 2m\n", "must not exceed interval");
}

TEST(BackupRetention, CountsDistinctDaysIsoWeeksAndMonths) {
  // 2026-11-23 is a Monday. Backups: Sun 22nd, Mon 23rd twice, Mon 30th, Oct 1st.
  const double mon23 = 1795392000;
  std::vector<BackupCandidate> kept = {at(mon23 - 86400 + 7200), at(mon23 + 3600), at(mon23 + 7200),
                                       at(mon23 + 7 * 86400), at(1790812800 /* 2026-10-01 */)};
  const auto s = summarizeRetention(kept);
  EXPECT_EQ(s.days, 4);
  EXPECT_EQ(s.weeks, 4);   // the Sunday belongs to the week before the Monday
  EXPECT_EQ(s.months, 2);  // October and November
  EXPECT_EQ(s.oldest, 1790812800);
}

TEST(BackupS3Listing, GroupsKeysIntoFileAndDirectoryBackups) {
  BackupTarget t;
  t.name = "off";
  t.s3.emplace();
  t.s3->prefix = "mongo/";
  t.glob = "full-backup-*";
  std::vector<S3Object> objects = {
      {"mongo/full-backup-1/app/users.bson.gz", 100, 1000},
      {"mongo/full-backup-1/app/users.metadata.json.gz", 10, 1005},
      {"mongo/full-backup-2.tar.gz", 50, 2000},
      {"mongo/full-backup-2.tar.gz.sha256", 80, 2001},
      {"mongo/", 0, 900},
      {"mongo/other", 1, 900},
  };
  auto backups = groupS3Objects(t, objects);
  ASSERT_EQ(backups.size(), 2u);
  EXPECT_EQ(backups[0].name, "full-backup-1");
  EXPECT_TRUE(backups[0].directory);
  EXPECT_EQ(backups[0].size, 110u);
  EXPECT_EQ(backups[0].files, 2u);
  EXPECT_EQ(backups[0].mtime, 1005);
  EXPECT_EQ(backups[1].name, "full-backup-2.tar.gz");
  EXPECT_FALSE(backups[1].directory);
}

TEST(BackupCompleteness, PgDumpTrailerAlsoBeforeUnrestrict) {
  EXPECT_TRUE(hasPgDumpTrailer("COPY ...\n\\.\n\n\n--\n-- PostgreSQL database dump complete\n--\n\n"));
  EXPECT_TRUE(hasPgDumpTrailer("--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict 7eml8ngq\n\n"));
  EXPECT_TRUE(hasPgDumpTrailer("--\n-- PostgreSQL database cluster dump complete\n--\n\n"));
  EXPECT_FALSE(hasPgDumpTrailer("COPY public.t (g, m) FROM stdin;\n1\tc4ca4238a0b923820dcc509a6f75849b\n15"));
}

TEST(BackupCompleteness, GzipStreamMustReachItsEnd) {
  ScratchDir dir;
  const std::string whole = gzipCompress(std::string(200000, 'x') + "\n--\n-- PostgreSQL database dump complete\n--\n");
  dir.write("ok.sql.gz", whole);
  dir.write("cut.sql.gz", whole.substr(0, whole.size() / 2));
  dir.write("two-members.gz", gzipCompress("first") + gzipCompress("second"));
  dir.write("garbage.gz", "this is not gzip at all");
  auto file = [&](const std::string& name) {
    BackupCandidate c;
    c.name = name;
    c.path = dir.path + "/" + name;
    return checkBackupComplete(c, noLimit());
  };
  EXPECT_EQ(file("ok.sql.gz").verdict, CheckOutcome::Verdict::Complete) << file("ok.sql.gz").detail;
  const auto cut = file("cut.sql.gz");
  EXPECT_EQ(cut.verdict, CheckOutcome::Verdict::Incomplete);
  EXPECT_NE(cut.detail.find("truncated"), std::string::npos) << cut.detail;
  EXPECT_EQ(file("two-members.gz").verdict, CheckOutcome::Verdict::Complete);
  EXPECT_EQ(file("garbage.gz").verdict, CheckOutcome::Verdict::Incomplete);
  std::string all;
  readDecompressed(dir.path + "/two-members.gz", Compression::Gzip, noLimit(), [&](const char* d, std::size_t n) {
    all.append(d, n);
    return true;
  });
  EXPECT_EQ(all, "firstsecond");
}

TEST(BackupCompleteness, CheckTimeoutIsNotAVerdictOfIncomplete) {
  ScratchDir dir;
  dir.write("big.sql", std::string(3 << 20, 'x'));
  BackupCandidate c;
  c.name = "big.sql";
  c.path = dir.path + "/big.sql";
  const auto outcome = checkBackupComplete(c, {std::chrono::steady_clock::now() - 1s, {}});
  EXPECT_EQ(outcome.verdict, CheckOutcome::Verdict::Unknown);
  EXPECT_NE(outcome.detail.find("check_timeout"), std::string::npos);
}

// The layout mongo-tools' mongodump writes with --out and --gzip (see mongodump/prepare.go):
// <db>/<collection>.bson.gz and <collection>.metadata.json.gz, prelude.json.gz last.
TEST(BackupCompleteness, MongodumpShapedDirectory) {
  ScratchDir dir;
  const std::string docs = bsonDocument("name", "ada") + bsonDocument("name", "grace");
  dir.write("full/app/users.bson.gz", gzipCompress(docs));
  dir.write("full/app/users.metadata.json.gz", gzipCompress("{\"indexes\":[]}"));
  dir.write("full/app/empty.bson.gz", gzipCompress(""));
  dir.write("full/app/empty.metadata.json.gz", gzipCompress("{}"));
  dir.write("full/admin/system.version.bson.gz", gzipCompress(bsonDocument("_id", "v")));
  dir.write("full/prelude.json.gz", gzipCompress("{\"ServerVersion\":\"7.0.12\"}"));
  BackupCandidate c;
  c.name = "full";
  c.path = dir.path + "/full";
  c.directory = true;
  auto outcome = checkBackupComplete(c, noLimit());
  EXPECT_EQ(outcome.verdict, CheckOutcome::Verdict::Complete) << outcome.detail;

  // A collection cut inside its second document (the gzip stream itself closed properly).
  dir.write("full/app/users.bson.gz", gzipCompress(docs.substr(0, docs.size() - 3)));
  outcome = checkBackupComplete(c, noLimit());
  EXPECT_EQ(outcome.verdict, CheckOutcome::Verdict::Incomplete);
  EXPECT_NE(outcome.detail.find("app/users.bson.gz: ends inside a BSON document after 1 documents"), std::string::npos)
      << outcome.detail;

  // A collection without its metadata.
  dir.write("full/app/users.bson.gz", gzipCompress(docs));
  fs::remove(dir.path + "/full/app/users.metadata.json.gz");
  outcome = checkBackupComplete(c, noLimit());
  EXPECT_EQ(outcome.verdict, CheckOutcome::Verdict::Incomplete);
  EXPECT_NE(outcome.detail.find("has no users.metadata.json"), std::string::npos) << outcome.detail;
}

TEST(BackupCompleteness, UnknownShapesAreNotGuessed) {
  ScratchDir dir;
  dir.write("photos/a.jpg", "\xff\xd8\xff");
  dir.write("notes.txt", "hello");
  BackupCandidate d;
  d.name = "photos";
  d.path = dir.path + "/photos";
  d.directory = true;
  EXPECT_EQ(checkBackupComplete(d, noLimit()).verdict, CheckOutcome::Verdict::Unknown);
  BackupCandidate f;
  f.name = "notes.txt";
  f.path = dir.path + "/notes.txt";
  EXPECT_EQ(checkBackupComplete(f, noLimit()).verdict, CheckOutcome::Verdict::Unknown);
}
