// Off-site copies in S3-compatible storage: s3rver (npm) on 127.0.0.1 as the server, Debian's
// s3cmd as the real client that uploads the backups. One server for the whole binary (run as
// one ctest test), one bucket per test case. Failure modes: bad credentials, a missing bucket,
// a hung endpoint, a non-XML answer, thousands of objects in many pages; and through the
// exporter, that scrapes never wait on S3.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utime.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "TempS3.h"
#include "TestSupport.h"
#include "collectors/backup/BackupCollector.h"
#include "collectors/backup/S3Listing.h"
#include "metrics/Exposition.h"

using namespace apphealth;
using namespace apphealth::test;
namespace fs = std::filesystem;

namespace {

TempS3* s3 = nullptr;

class SharedS3 : public ::testing::Environment {
 public:
  void SetUp() override {
    s3 = new TempS3();
    // Every test case's bucket in one s3cmd run (each run costs a Python start).
    std::string out;
    if (s3->s3cmd("mb s3://acme-backups s3://acme-offsite s3://acme-creds s3://acme-many", &out) != 0) {
      throw std::runtime_error("s3cmd mb failed: " + out);
    }
  }
  void TearDown() override {
    delete s3;
    s3 = nullptr;
  }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new SharedS3);

void s3cmdOk(const std::string& args) {
  std::string out;
  ASSERT_EQ(s3->s3cmd(args, &out), 0) << "s3cmd " << args << "\n" << out;
}

// Credentials as files, the way a deployment keeps them.
struct Credentials {
  TempDir dir{"apphealth-s3cred"};
  Credentials(const std::string& key = TempS3::kAccessKey, const std::string& secret = TempS3::kSecretKey) {
    dir.write("key", key + "\n");
    dir.write("secret", secret + "\n");
  }
};

BackupTarget s3Target(const Credentials& creds, const std::string& bucket, const std::string& prefix,
                      const std::string& endpoint = "") {
  BackupTarget t;
  t.name = "offsite";
  t.s3.emplace();
  t.s3->endpoint = endpoint.empty() ? s3->endpoint() : endpoint;
  t.s3->bucket = bucket;
  t.s3->prefix = prefix;
  t.s3->path_style = true;
  t.s3->access_key_id.file = creds.dir.file("key");
  t.s3->secret_access_key.file = creds.dir.file("secret");
  t.settle_time = Duration(0);
  t.timeout = 10s;
  return t;
}

std::map<std::string, double> sampleOnce(BackupCollector& collector, SampleResult* result = nullptr) {
  SnapshotBuilder builder;
  auto r = collector.sample(builder, std::stop_token());
  if (result) *result = r;
  return parseMetrics(renderText(builder.take()));
}

void setMtime(const std::string& path, double unixSeconds) {
  utimbuf times{static_cast<time_t>(unixSeconds), static_cast<time_t>(unixSeconds)};
  ASSERT_EQ(utime(path.c_str(), &times), 0);
}

double now() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

}  // namespace

TEST(BackupS3, UploadedWithS3cmdListedLikeALocalDirectory) {
  // A local tree mirrored with `s3cmd sync`: file backups, a directory backup (mongodump-shaped)
  // under db/, and a backup under another prefix that must not count.
  TempDir local("apphealth-local");
  fs::create_directories(local.file("db/full-backup-20261122-020000/app"));
  fs::create_directories(local.file("elsewhere"));
  local.write("db/full-backup-20261120-020000.sql.gz", std::string(1000, 'a'));
  local.write("db/full-backup-20261121-020000.sql.gz", std::string(3000, 'b'));
  local.write("db/full-backup-20261122-020000/app/users.bson.gz", std::string(500, 'c'));
  local.write("db/full-backup-20261122-020000/app/users.metadata.json.gz", std::string(20, 'd'));
  local.write("elsewhere/full-backup-20261120-020000.sql.gz", std::string(1000, 'a'));
  s3cmdOk("sync " + local.path() + "/ s3://acme-backups/");

  Credentials creds;
  auto t = s3Target(creds, "acme-backups", "db/");
  t.glob = "full-backup-*";
  t.name_time_format = "full-backup-%Y%m%d-%H%M%S";
  t.retention.keep_daily = 3;
  BackupCollector collector(t);
  SampleResult result;
  auto m = sampleOnce(collector, &result);
  ASSERT_TRUE(result.ok) << result.problem;
  EXPECT_EQ(m["apphealth_backup_files{backup=\"offsite\"}"], 3);
  EXPECT_EQ(m["apphealth_backup_last_timestamp_seconds{backup=\"offsite\"}"], 1795312800);  // 2026-11-22 02:00 UTC
  EXPECT_EQ(m["apphealth_backup_last_size_bytes{backup=\"offsite\"}"], 520);
  EXPECT_EQ(m["apphealth_backup_previous_size_bytes{backup=\"offsite\"}"], 3000);
  EXPECT_EQ(m["apphealth_backup_oldest_timestamp_seconds{backup=\"offsite\"}"], 1795140000);
  EXPECT_EQ(m["apphealth_backup_retention_periods{backup=\"offsite\",period=\"daily\"}"], 3);
  EXPECT_EQ(m["apphealth_backup_in_progress{backup=\"offsite\"}"], 0);
}

TEST(BackupS3, OffsiteCopyMatchesTheNewestLocalBackup) {
  TempDir local("apphealth-local");
  local.write("nightly-1.sql.gz", std::string(2000, 'a'));
  local.write("nightly-2.sql.gz", std::string(2500, 'b'));
  const auto yesterday = static_cast<time_t>(now() - 86400);
  setMtime(local.file("nightly-1.sql.gz"), yesterday - 86400);
  setMtime(local.file("nightly-2.sql.gz"), yesterday);
  s3cmdOk("put " + local.file("nightly-1.sql.gz") + " " + local.file("nightly-2.sql.gz") + " s3://acme-offsite/");

  auto localTarget = std::make_shared<BackupTarget>();
  localTarget->name = "nightly";
  localTarget->directory = local.path();
  localTarget->glob = "nightly-*";
  Credentials creds;
  auto t = s3Target(creds, "acme-offsite", "");
  t.glob = "nightly-*";
  t.offsite_local = localTarget;
  BackupCollector collector(t);
  auto m = sampleOnce(collector);
  EXPECT_EQ(m["apphealth_backup_offsite_match{backup=\"offsite\"}"], 1);
  EXPECT_EQ(m["apphealth_threshold_backup_offsite_delay_seconds{backup=\"offsite\"}"], 7200);
  EXPECT_EQ(m["apphealth_backup_offsite_source_timestamp_seconds{backup=\"offsite\"}"], yesterday);

  // Tonight's local backup is not uploaded (yet): no match, dated by the local backup.
  local.write("nightly-3.sql.gz", std::string(2600, 'c'));
  setMtime(local.file("nightly-3.sql.gz"), now() - 3600);
  m = sampleOnce(collector);
  EXPECT_EQ(m["apphealth_backup_offsite_match{backup=\"offsite\"}"], 0);
  // Uploaded, but cut short: sizes differ, still no match.
  TempDir partial("apphealth-local");
  partial.write("nightly-3.sql.gz", std::string(1300, 'c'));
  s3cmdOk("put " + partial.file("nightly-3.sql.gz") + " s3://acme-offsite/");
  EXPECT_EQ(sampleOnce(collector)["apphealth_backup_offsite_match{backup=\"offsite\"}"], 0);
  s3cmdOk("put " + local.file("nightly-3.sql.gz") + " s3://acme-offsite/");
  EXPECT_EQ(sampleOnce(collector)["apphealth_backup_offsite_match{backup=\"offsite\"}"], 1);
}

TEST(BackupS3, BadCredentialsAndMissingBucketAreClearErrors) {
  // s3rver checks the access key, not the secret: bad credentials are an unknown key here.
  SampleResult result;
  Credentials unknown("NOBODY", "x");
  BackupCollector badKey(s3Target(unknown, "acme-creds", ""));
  auto m = sampleOnce(badKey, &result);
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.problem.find("403 InvalidAccessKeyId"), std::string::npos) << result.problem;
  EXPECT_FALSE(m.count("apphealth_backup_files{backup=\"offsite\"}"));  // down, not "no backups"

  Credentials creds;
  BackupCollector missing(s3Target(creds, "no-such-bucket", ""));
  m = sampleOnce(missing, &result);
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.problem.find("404 NoSuchBucket"), std::string::npos) << result.problem;
  EXPECT_EQ(m["apphealth_backup_files{backup=\"offsite\"}"], 0);  // the copy does not exist: "no backup" is true
}

TEST(BackupS3, HungEndpointAndNonXmlAnswersFailWithinTheTimeout) {
  // A socket that accepts connections (the kernel does, from the backlog) and never answers.
  const int hung = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(hung, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  getsockname(hung, reinterpret_cast<sockaddr*>(&addr), &len);
  listen(hung, 8);
  Credentials creds;
  auto t = s3Target(creds, "acme-backups", "", "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)));
  t.timeout = 1500ms;
  BackupCollector collector(t);
  SampleResult result;
  const auto started = std::chrono::steady_clock::now();
  sampleOnce(collector, &result);
  const auto took = std::chrono::steady_clock::now() - started;
  close(hung);
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.problem.find("no answer"), std::string::npos) << result.problem;
  EXPECT_LT(took, 10s);  // the timeout, plus a generous margin for a loaded machine

  // Something that is not S3 on the endpoint: a web server's 200 page, or a proxy's error.
  TempNginx nginx(
      "server { listen 127.0.0.1:@PORT@; location /html { return 200 '<html><body>It works</body></html>'; }"
      " location / { return 502 'Bad Gateway'; } }");
  auto html = s3Target(creds, "html", "", "http://127.0.0.1:" + std::to_string(nginx.port()));
  BackupCollector htmlCollector(html);
  sampleOnce(htmlCollector, &result);
  EXPECT_NE(result.problem.find("not a ListBucketResult (root element html)"), std::string::npos) << result.problem;
  auto proxy = s3Target(creds, "gateway", "", "http://127.0.0.1:" + std::to_string(nginx.port()));
  BackupCollector proxyCollector(proxy);
  sampleOnce(proxyCollector, &result);
  EXPECT_NE(result.problem.find("HTTP 502 with a non-S3 body: \"Bad Gateway\""), std::string::npos) << result.problem;
}

TEST(BackupS3, ThousandsOfObjectsInManyPagesAndTheCap) {
  // Pagination and its bounds, not the client: the objects are written straight into s3rver's
  // store (2,500 uploads through s3cmd take minutes), the server still makes every page. Pages
  // of 100 keys (max_keys, S3's max-keys) walk the same continuation-token code as a bucket
  // of 25,000 objects in pages of 1,000.
  s3->seedObjects("acme-many", "hourly/dump-", 2500);
  Credentials creds;
  auto t = s3Target(creds, "acme-many", "hourly/");
  t.timeout = 120s;
  t.s3->max_keys = 100;
  S3Client client(s3ClientOptions(*t.s3));
  std::size_t pages = 0;
  const auto started = std::chrono::steady_clock::now();
  auto listing = listS3Backups(t, client, started + t.timeout, std::stop_token(), &pages);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ASSERT_EQ(listing.problem, "") << s3->log().substr(0, 4000);
  EXPECT_EQ(listing.backups.size(), 2500u);
  EXPECT_EQ(pages, 25u);
  std::cout << "[ figures ] listing 2,500 objects in " << pages << " pages took " << seconds << " s\n";

  // More objects than max_objects: the listing stops there, the collector is down with the reason.
  t.s3->max_objects = 1000;
  BackupCollector capped(t);
  SampleResult result;
  auto m = sampleOnce(capped, &result);
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.problem.find("more than max_objects (1000)"), std::string::npos) << result.problem;
  EXPECT_FALSE(m.count("apphealth_backup_files{backup=\"offsite\"}"));
}

TEST(BackupS3, ScrapesNeverWaitOnAHungEndpoint) {
  const int hung = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(hung, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  getsockname(hung, reinterpret_cast<sockaddr*>(&addr), &len);
  listen(hung, 8);
  const std::string endpoint = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  Credentials creds;
  ExporterProcess exporter("backups:\n"
                           "  - name: offsite\n"
                           "    s3:\n"
                           "      endpoint: " + endpoint + "\n"
                           "      bucket: acme-backups\n"
                           "      path_style: true\n"
                           "      access_key_id_file: " + creds.dir.file("key") + "\n"
                           "      secret_access_key_file: " + creds.dir.file("secret") + "\n"
                           "    interval: 60s\n"
                           "    timeout: 50s\n");
  // The collector's request arrives and gets no answer: while the test holds it, the collector
  // is provably waiting, and every scrape must be answered from the snapshot meanwhile.
  pollfd pending{hung, POLLIN, 0};
  ASSERT_EQ(poll(&pending, 1, 30000), 1) << "the collector never connected\n" << exporter.log();
  const int request = accept(hung, nullptr, nullptr);
  ASSERT_GE(request, 0);
  auto stillWaiting = [&] {
    pollfd p{request, POLLRDHUP, 0};
    return poll(&p, 1, 0) == 0;  // the collector has not given up on its request
  };
  double slowest = 0;
  for (int i = 0; i < 5; ++i) {
    auto r = exporter.get("/metrics");
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.body.find("apphealth_backup_files"), std::string::npos);  // no sample yet, none made up
    ASSERT_TRUE(stillWaiting()) << "scrape " << i << " returned only after the collector's request ended";
    slowest = std::max(slowest, r.seconds);
  }
  std::cout << "[ figures ] slowest of 5 scrapes while the S3 request hung: " << slowest << " s\n";
  // The endpoint drops the connection: the sample fails with the reason, the collector is down.
  close(request);
  close(hung);
  ASSERT_TRUE(waitFor([&] { return exporter.metric("apphealth_collector_up{collector=\"backup\",target=\"offsite\"}") == 0.0; }, 30s))
      << exporter.log();
  EXPECT_NE(exporter.log().find(endpoint + ": "), std::string::npos) << exporter.log();
}
