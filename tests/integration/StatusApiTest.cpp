// /api/v1/status and the status page against the exporter binary: the overall state follows
// real targets (a backup directory, a PostgreSQL that stops), every answer validates against
// docs/status.schema.json (python3-jsonschema, Debian's), and hostile text from a target's
// error never reaches the page unescaped.

#include <gtest/gtest.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <utime.h>

#include <ctime>

#include "TestSupport.h"

using namespace apphealth::test;

namespace {

// Validates `json` against the schema; returns "" or the validator's complaint.
std::string schemaErrors(const std::string& json) {
  TempDir dir("apphealth-schema");
  dir.write("status.json", json);
  std::string out;
  const int code = run("python3 -c 'import json, sys, jsonschema\n"
                       "schema = json.load(open(sys.argv[1]))\n"
                       "jsonschema.Draft202012Validator.check_schema(schema)\n"
                       "jsonschema.Draft202012Validator(schema).validate(json.load(open(sys.argv[2])))' " APPHEALTH_SOURCE_DIR
                       "/docs/status.schema.json " +
                           dir.file("status.json"),
                       &out);
  return code == 0 ? std::string() : out.empty() ? "validator exited " + std::to_string(code) : out;
}

struct Status {
  long code = 0;
  std::string body;
  std::string overall;
};

Status status(const ExporterProcess& exporter) {
  auto r = exporter.get("/api/v1/status");
  Status s{r.status, r.body, ""};
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(r.body).get(doc) == simdjson::SUCCESS) {
    std::string_view overall;
    if (doc["status"].get(overall) == simdjson::SUCCESS) s.overall = std::string(overall);
  }
  return s;
}

// The JSON object of one collector, re-serialized, or "" when absent.
std::string collectorJson(const std::string& body, const std::string& target) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc) != simdjson::SUCCESS) return "";
  simdjson::dom::array collectors;
  if (doc["collectors"].get(collectors) != simdjson::SUCCESS) return "";
  for (auto c : collectors) {
    std::string_view t;
    if (c["target"].get(t) == simdjson::SUCCESS && t == target) return simdjson::to_string(c);
  }
  return "";
}

void writeBackup(const TempDir& dir, const std::string& name, std::time_t mtime) {
  dir.write(name, "dump\n");
  utimbuf times{mtime, mtime};
  utime(dir.file(name).c_str(), &times);
}

std::string backup(const std::string& name, const std::string& directory, const std::string& maxAge = "26h") {
  return "  - name: " + name + "\n    directory: \"" + directory + "\"\n    max_age: " + maxAge +
         "\n    interval: 200ms\n";
}

}  // namespace

TEST(StatusApi, OverallStateFollowsTheTargetsAndEveryAnswerMatchesTheSchema) {
  TempDir fresh, stale;
  writeBackup(fresh, "db.sql.gz", std::time(nullptr) - 60);
  writeBackup(stale, "db.sql.gz", std::time(nullptr) - 2 * 3600);
  ExporterProcess exporter("backups:\n" + backup("fresh", fresh.path()));

  // healthy: the one backup is an hour within its threshold.
  ASSERT_TRUE(waitFor([&] { return status(exporter).overall == "healthy"; }, 10s)) << status(exporter).body;
  auto s = status(exporter);
  EXPECT_EQ(s.code, 200);
  EXPECT_EQ(exporter.get("/api/v1/status").headers["content-type"], "application/json");
  EXPECT_EQ(schemaErrors(s.body), "") << s.body;
  const auto freshJson = collectorJson(s.body, "fresh");
  EXPECT_NE(freshJson.find("\"state\":\"up\""), std::string::npos) << freshJson;
  EXPECT_NE(freshJson.find("\"name\":\"age of the newest backup\""), std::string::npos) << freshJson;
  EXPECT_NE(freshJson.find("\"threshold\":93600"), std::string::npos) << freshJson;
  EXPECT_NE(freshJson.find("\"failing\":false"), std::string::npos) << freshJson;

  // degraded: a second backup two hours old against a one-hour max_age.
  exporter.rewriteConfig("backups:\n" + backup("fresh", fresh.path()) + backup("stale", stale.path(), "1h"));
  ASSERT_EQ(httpRequest("POST", exporter.url("/-/reload")).status, 200);
  ASSERT_TRUE(waitFor([&] { return status(exporter).overall == "degraded"; }, 10s)) << status(exporter).body;
  s = status(exporter);
  EXPECT_EQ(s.code, 200);
  EXPECT_EQ(schemaErrors(s.body), "") << s.body;
  EXPECT_NE(s.body.find("backup stale: age of the newest backup: 2 h 0 min over 1 h 0 min"), std::string::npos)
      << s.body;
  EXPECT_NE(collectorJson(s.body, "stale").find("\"state\":\"warning\""), std::string::npos) << s.body;

  // unhealthy: a PostgreSQL that stops answering is down, with libpq's reason; 503.
  TempPostgres pg;
  exporter.rewriteConfig("backups:\n" + backup("fresh", fresh.path()) + backup("stale", stale.path(), "1h") +
                         "postgres:\n  - name: db\n    dsn: \"" + pg.dsn() +
                         "\"\n    interval: 300ms\n    timeout: 300ms\n");
  ASSERT_EQ(httpRequest("POST", exporter.url("/-/reload")).status, 200);
  ASSERT_TRUE(waitFor([&] { return collectorJson(status(exporter).body, "db").find("\"state\":\"up\"") != std::string::npos; }, 10s))
      << status(exporter).body;
  EXPECT_NE(collectorJson(status(exporter).body, "db").find("\"name\":\"probe latency\""), std::string::npos);
  pg.stop();
  ASSERT_TRUE(waitFor([&] { return status(exporter).overall == "unhealthy"; }, 10s)) << status(exporter).body;
  s = status(exporter);
  EXPECT_EQ(s.code, 503);
  EXPECT_EQ(schemaErrors(s.body), "") << s.body;
  const auto db = collectorJson(s.body, "db");
  EXPECT_NE(db.find("\"state\":\"down\""), std::string::npos) << db;
  EXPECT_NE(db.find("\"up\":false"), std::string::npos) << db;
  EXPECT_EQ(db.find("\"problem\":null"), std::string::npos) << db;
  EXPECT_NE(s.body.find("postgres db is down: "), std::string::npos) << s.body;

  // A failed reload keeps the collectors and says so.
  exporter.rewriteConfig("backups: [\n");
  ASSERT_EQ(httpRequest("POST", exporter.url("/-/reload")).status, 500);
  s = status(exporter);
  EXPECT_NE(s.body.find("\"config_reload_successful\":false"), std::string::npos) << s.body;
  EXPECT_NE(s.body.find("the last configuration reload failed"), std::string::npos) << s.body;
  EXPECT_EQ(schemaErrors(s.body), "") << s.body;
}

TEST(StatusApi, SchemaRejectsWhatTheExporterMustNeverSend) {
  // The validator itself must be able to fail: a wrong overall state and a missing field.
  EXPECT_NE(schemaErrors(R"({"status":"ok","version":"1","timestamp_seconds":1,"config_reload_successful":true,"reasons":[],"collectors":[]})"), "");
  EXPECT_NE(schemaErrors(R"({"status":"healthy","version":"1","timestamp_seconds":1,"config_reload_successful":true,"reasons":[]})"), "");
  EXPECT_EQ(schemaErrors(R"({"status":"healthy","version":"1","timestamp_seconds":1,"config_reload_successful":true,"reasons":[],"collectors":[]})"), "");
}

TEST(StatusPage, HostileErrorTextIsEscapedAndThePageRunsNothing) {
  TempDir dir;
  const std::string hostile = dir.path() + "/<script>alert(1)</script><img src=x onerror=alert(2)>";
  ExporterProcess exporter("backups:\n" + backup("evil", hostile));
  ASSERT_TRUE(waitFor([&] { return status(exporter).overall == "unhealthy"; }, 10s)) << status(exporter).body;
  const auto page = exporter.get("/");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.body.find("<script"), std::string::npos) << page.body;
  EXPECT_EQ(page.body.find("<img"), std::string::npos) << page.body;
  EXPECT_NE(page.body.find("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"), std::string::npos)
      << page.body;
  EXPECT_EQ(page.headers.at("content-security-policy").rfind("default-src 'none';", 0), 0u);
  EXPECT_NE(page.body.find("<meta http-equiv=\"refresh\""), std::string::npos);
  // The JSON carries the text as it is (escaped for JSON only), for machines to show safely.
  const auto json = status(exporter).body;
  EXPECT_EQ(schemaErrors(json), "") << json;
  EXPECT_NE(json.find("<script>alert(1)</script>"), std::string::npos) << json;
}
