// The access-log pieces without servers: the line parser on tricky lines, route patterns,
// the `access_logs:` config section, and the tailer on files in a temporary directory
// (partial lines, start at end, rename rotation, copytruncate, a file that appears later).

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "ConfigErrors.h"
#include "collectors/access_log/AccessLogTailer.h"
#include "config/ConfigLoader.h"
#include "collectors/access_log/AccessLogParser.h"
#include "routes/RoutePatterns.h"

using namespace apphealth;
using namespace std::chrono_literals;

namespace {

AccessLogTarget targetWith(AccessLogFormat format) {
  AccessLogTarget t;
  t.name = "web";
  t.path = "/dev/null";
  t.format = format;
  return t;
}

std::optional<AccessLogRecord> parse(AccessLogParser& parser, std::string_view line) {
  AccessLogRecord r;
  if (!parser.parse(line, r)) return std::nullopt;
  return r;
}

}  // namespace

// ------------------------------------------------------------------------------ combined

TEST(AccessLogParser, CombinedLine) {
  AccessLogParser p(targetWith(AccessLogFormat::Combined));
  auto r = parse(p, R"L(203.0.113.9 - - [10/Oct/2023:13:55:36 +0000] "GET /tutors/42?x=1 HTTP/1.1" 200 2326 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64)")L");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->target, "/tutors/42?x=1");
  EXPECT_EQ(r->status, 200);
  EXPECT_FALSE(r->seconds);
}

TEST(AccessLogParser, QuotesInUserAgentAndRequestBothEscapingStyles) {
  AccessLogParser p(targetWith(AccessLogFormat::CombinedRequestTime));
  // Apache escapes a quote as \", nginx as \x22.
  auto apache = parse(p, R"L(1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET /a HTTP/1.1" 404 0 "-" "evil \"agent\" 1.0" 0.010)L");
  ASSERT_TRUE(apache);
  EXPECT_EQ(apache->status, 404);
  EXPECT_DOUBLE_EQ(*apache->seconds, 0.010);
  auto nginx = parse(p, R"L(1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "POST /q\x22x HTTP/1.1" 500 12 "-" "say \x22hi\x22 \\" 1.250)L");
  ASSERT_TRUE(nginx);
  EXPECT_EQ(nginx->method, "POST");
  EXPECT_EQ(nginx->status, 500);
  EXPECT_DOUBLE_EQ(*nginx->seconds, 1.25);
}

TEST(AccessLogParser, DashFieldsIpv6AndUserWithSpace) {
  AccessLogParser p(targetWith(AccessLogFormat::Combined));
  auto r = parse(p, R"L(2001:db8::1 - - [10/Oct/2023:13:55:36 +0000] "HEAD / HTTP/1.0" 304 - "-" "-")L");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->method, "HEAD");
  EXPECT_EQ(r->status, 304);
  auto user = parse(p, R"L(::1 - john smith [10/Oct/2023:13:55:36 +0000] "DELETE /x HTTP/2.0" 204 0 "-" "curl/7.88")L");
  ASSERT_TRUE(user);
  EXPECT_EQ(user->method, "DELETE");
  // A request line nginx could not read: a request all the same, with no method or path.
  auto dash = parse(p, R"L(10.0.0.1 - - [10/Oct/2023:13:55:36 +0000] "-" 400 0 "-" "-")L");
  ASSERT_TRUE(dash);
  EXPECT_EQ(dash->status, 400);
  EXPECT_EQ(classifyMethod(dash->method), HttpMethod::Other);
  auto tls = parse(p, R"L(10.0.0.1 - - [10/Oct/2023:13:55:36 +0000] "\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03" 400 157 "-" "-")L");
  ASSERT_TRUE(tls);
  EXPECT_EQ(classifyMethod(tls->method), HttpMethod::Other);
  EXPECT_TRUE(tls->target.empty());
}

TEST(AccessLogParser, CombinedIgnoresExtraFieldsRequestTimeFormatReadsThem) {
  const std::string line = R"L(1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 200 5 "-" "ua" 0.004)L";
  AccessLogParser combined(targetWith(AccessLogFormat::Combined));
  auto r = parse(combined, line);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->seconds);
  AccessLogParser timed(targetWith(AccessLogFormat::CombinedRequestTime));
  r = parse(timed, line);
  ASSERT_TRUE(r);
  EXPECT_DOUBLE_EQ(*r->seconds, 0.004);
}

TEST(AccessLogParser, MissingRequestTimeStillCountsAsRequest) {
  AccessLogParser p(targetWith(AccessLogFormat::CombinedRequestTime));
  auto none = parse(p, R"L(1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 200 5 "-" "ua")L");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->seconds);
  auto dash = parse(p, R"L(1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 200 5 "-" "ua" -)L");
  ASSERT_TRUE(dash);
  EXPECT_FALSE(dash->seconds);
  EXPECT_FALSE(parse(p, R"L(1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 200 5 "-" "ua" fast)L"));
  EXPECT_FALSE(parse(p, R"L(1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 200 5 "-" "ua" -1.0)L"));
}

TEST(AccessLogParser, GarbageIsUnparsable) {
  AccessLogParser p(targetWith(AccessLogFormat::Combined));
  for (const char* line : {
           "",
           "garbage",
           "2023/10/10 13:55:36 [error] 123#0: *1 open() failed",  // an error-log line
           R"L(1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 2000 5 "-" "ua")L",
           R"L(1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 099 5 "-" "ua")L",
           R"L(1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 200 5 "-" "unterminated)L",
           R"L(1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1 200 5 "-" "ua")L",
           R"L(1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 200 five "-" "ua")L",
           R"L([10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 200 5 "-" "ua")L",
           R"L(1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 200 5 "-")L",
           "{\"status\":200}",
       }) {
    EXPECT_FALSE(parse(p, line)) << line;
  }
}

TEST(AccessLogParser, MethodsAndCodeClassesAreBounded) {
  EXPECT_EQ(classifyMethod("GET"), HttpMethod::Get);
  EXPECT_EQ(classifyMethod("OPTIONS"), HttpMethod::Options);
  EXPECT_EQ(classifyMethod("PATCH"), HttpMethod::Patch);
  EXPECT_EQ(classifyMethod("get"), HttpMethod::Other);
  EXPECT_EQ(classifyMethod("PROPFIND"), HttpMethod::Other);
  EXPECT_EQ(classifyMethod(""), HttpMethod::Other);
  EXPECT_STREQ(methodLabel(HttpMethod::Other), "other");
  EXPECT_STREQ(codeClassLabel(0), "1xx");
  EXPECT_STREQ(codeClassLabel(4), "5xx");
}

// ------------------------------------------------------------------------------ JSON

TEST(AccessLogParser, JsonDefaultFieldsNumbersOrStrings) {
  AccessLogParser p(targetWith(AccessLogFormat::Json));
  auto r = parse(p, R"L({"time":"2023-10-10T13:55:36+00:00","request_method":"PUT","request_uri":"/a?b","status":503,"request_time":2.5})L");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->method, "PUT");
  EXPECT_EQ(r->target, "/a?b");
  EXPECT_EQ(r->status, 503);
  EXPECT_DOUBLE_EQ(*r->seconds, 2.5);
  // nginx's escape=json writes strings; "-" for an unknown time.
  r = parse(p, R"L({"request_method":"GET","request_uri":"/","status":"200","request_time":"0.003"})L");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_DOUBLE_EQ(*r->seconds, 0.003);
  r = parse(p, R"L({"request":"PATCH /p HTTP/1.1","status":201,"request_time":"-"})L");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->method, "PATCH");
  EXPECT_EQ(r->target, "/p");
  EXPECT_FALSE(r->seconds);
}

TEST(AccessLogParser, JsonNestedFieldsAndUnits) {
  auto t = targetWith(AccessLogFormat::Json);
  t.json_fields = {"request.method", "status", "request.uri", "", "duration"};
  t.request_time_scale = 1e-9;  // Traefik's Duration, nanoseconds
  AccessLogParser p(t);
  auto r = parse(p, R"L({"request":{"method":"POST","uri":"/blog/x"},"status":302,"duration":1500000000})L");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->method, "POST");
  EXPECT_EQ(r->target, "/blog/x");
  EXPECT_EQ(r->status, 302);
  EXPECT_NEAR(*r->seconds, 1.5, 1e-12);
}

TEST(AccessLogParser, JsonGarbageIsUnparsable) {
  AccessLogParser p(targetWith(AccessLogFormat::Json));
  for (const char* line : {
           "not json",
           R"L({"request_method":"GET","status":200)L",
           R"L([1,2,3])L",
           R"L({"request_method":"GET"})L",
           R"L({"request_method":"GET","status":"abc"})L",
           R"L({"request_method":"GET","status":42})L",
           R"L({"request_method":"GET","status":200.5})L",
           R"L({"request_method":7,"status":200})L",
           R"L({"request_method":"GET","status":200,"request_time":"slow"})L",
           R"L({"request_method":"GET","status":200,"request_time":-1})L",
       }) {
    EXPECT_FALSE(parse(p, line)) << line;
  }
}

// ------------------------------------------------------------------------------ routes

TEST(RoutePatterns, ParamsWildcardsQueryAndOther) {
  RoutePatterns routes({"/tutors/:id", "/blog/*", "/", "/about"});
  EXPECT_EQ(routes.match("/tutors/42"), "/tutors/:id");
  EXPECT_EQ(routes.match("/tutors/42/"), "/tutors/:id");
  EXPECT_EQ(routes.match("/tutors/42?tab=reviews#top"), "/tutors/:id");
  EXPECT_EQ(routes.match("/tutors"), "other");
  EXPECT_EQ(routes.match("/tutors/42/reviews"), "other");
  EXPECT_EQ(routes.match("/blog"), "/blog/*");
  EXPECT_EQ(routes.match("/blog/2023/10/post"), "/blog/*");
  EXPECT_EQ(routes.match("/blogger"), "other");
  EXPECT_EQ(routes.match("/"), "/");
  EXPECT_EQ(routes.match("/?utm=1"), "/");
  EXPECT_EQ(routes.match("/About"), "other");  // case-sensitive
  EXPECT_EQ(routes.match("http://example.com/about?x"), "/about");
  EXPECT_EQ(routes.match("-"), "other");
  EXPECT_EQ(routes.match(""), "other");
  EXPECT_EQ(routes.match("*"), "other");
  EXPECT_EQ(routes.labelCount(), 5u);
}

TEST(RoutePatterns, MostSpecificWinsWhateverTheOrder) {
  RoutePatterns routes({"/tutors/*", "/tutors/:id", "/tutors/new", "/tutors/:id/edit"});
  EXPECT_EQ(routes.match("/tutors/new"), "/tutors/new");
  EXPECT_EQ(routes.match("/tutors/7"), "/tutors/:id");
  EXPECT_EQ(routes.match("/tutors/7/edit"), "/tutors/:id/edit");
  EXPECT_EQ(routes.match("/tutors/7/photos/1"), "/tutors/*");
  EXPECT_EQ(routes.match("/tutors"), "/tutors/*");
  EXPECT_EQ(routes.index("/tutors/new"), 2u);
  EXPECT_EQ(routes.index("/nope"), routes.otherIndex());
}

TEST(RoutePatterns, InvalidPatterns) {
  EXPECT_FALSE(RoutePatterns::check("/a/:id/*"));
  EXPECT_TRUE(RoutePatterns::check("tutors/:id"));
  EXPECT_TRUE(RoutePatterns::check("/blog/*/x"));
  EXPECT_TRUE(RoutePatterns::check("/blog/x*"));
  EXPECT_TRUE(RoutePatterns::check("/a/:"));
  EXPECT_TRUE(RoutePatterns::check("/a/:i-d"));
  EXPECT_TRUE(RoutePatterns::check("/a/b:c"));
  EXPECT_TRUE(RoutePatterns::check("/a?b"));
  EXPECT_TRUE(RoutePatterns::check("/a//b"));
  EXPECT_THROW(RoutePatterns({"/a", "/a"}), std::invalid_argument);
  EXPECT_THROW(RoutePatterns({"nope"}), std::invalid_argument);
}

// ------------------------------------------------------------------------------ config

namespace {
using apphealth::test::errorsOf;
}  // namespace

TEST(AccessLogConfig, DefaultsAndAllKeys) {
  const auto result = loadConfigText(R"(
access_logs:
  - name: web
    path: /var/log/nginx/access.log
  - name: api
    path: /var/log/api.json
    format: json
    json_fields: {method: m, status: s, path: p, request: "", request_time: t.ms}
    request_time_unit: ms
    routes: ["/tutors/:id", "/blog/*"]
    start_at: beginning
    interval: 250ms
    thresholds: {error_ratio: 0.02, latency: 500ms, slo_objective: 0.995}
)", "c.yml");
  ASSERT_TRUE(result.errors.empty()) << result.errors.front().format();
  const auto& logs = result.config->access_logs;
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_EQ(logs[0].format, AccessLogFormat::Combined);
  EXPECT_EQ(logs[0].interval, 1s);
  EXPECT_FALSE(logs[0].start_at_beginning);
  EXPECT_DOUBLE_EQ(logs[0].error_ratio_threshold, 0.05);
  EXPECT_DOUBLE_EQ(logs[0].latency_threshold_seconds, 2.0);
  EXPECT_DOUBLE_EQ(logs[0].slo_objective, 0.999);
  EXPECT_TRUE(logs[0].routes.empty());
  EXPECT_FALSE(logs[0].hasRequestTime());
  EXPECT_EQ(logs[1].format, AccessLogFormat::Json);
  EXPECT_EQ(logs[1].json_fields.method, "m");
  EXPECT_EQ(logs[1].json_fields.request, "");
  EXPECT_EQ(logs[1].json_fields.request_time, "t.ms");
  EXPECT_DOUBLE_EQ(logs[1].request_time_scale, 0.001);
  EXPECT_EQ(logs[1].routes.size(), 2u);
  EXPECT_TRUE(logs[1].start_at_beginning);
  EXPECT_EQ(logs[1].interval, 250ms);
  EXPECT_DOUBLE_EQ(logs[1].error_ratio_threshold, 0.02);
  EXPECT_DOUBLE_EQ(logs[1].latency_threshold_seconds, 0.5);
  EXPECT_DOUBLE_EQ(logs[1].slo_objective, 0.995);
  EXPECT_TRUE(logs[1].hasRequestTime());
}

TEST(AccessLogConfig, ErrorsWithPositions) {
  const auto errors = errorsOf(R"(access_logs:
  - name: web
    path: relative.log
    format: clf
    routes: ["/ok", "bad", "/ok", "/x/*/y"]
    start_at: middle
    request_time_unit: ms
    json_fields: {status: s}
    thresholds: {error_ratio: 1.5, latency: fast, p99: 1s}
    intervall: 1s
  - name: web
  - name: pct
    path: /var/log/pct.log
    thresholds: {slo_objective: 99.9}
  - name: one
    path: /var/log/one.log
    thresholds: {slo_objective: 1}
  - name: low
    path: /var/log/low.log
    thresholds: {slo_objective: 0.001}
)");
  const std::vector<std::string> expected = {
      "c.yml:3:11: path must be absolute",
      "c.yml:4:13: unknown format 'clf' (combined, combined_request_time, json)",
      "c.yml:8:18: 'json_fields' is only for format: json",
      "c.yml:7:24: 'request_time_unit' is only for format: json",
      "c.yml:5:21: route 'bad': a route pattern must start with '/'",
      "c.yml:5:28: duplicate route '/ok'",
      "c.yml:5:35: route '/x/*/y': '*' must be the last segment of a route pattern",
      "c.yml:6:15: start_at must be 'end' or 'beginning'",
      "c.yml:9:31: 'error_ratio' is out of range",
      "c.yml:9:45: 'latency' must be a duration such as 500ms, 15s, 5m or 26h",
      "c.yml:9:51: unknown key 'p99' in access log thresholds",
      "c.yml:10:5: unknown key 'intervall' in an access log",
      "c.yml:11:11: duplicate access log target name 'web'",
      "c.yml:11:5: an access log needs 'path'",
      "c.yml:14:33: 'slo_objective' is out of range",
      "c.yml:17:33: 'slo_objective' is the share of requests that must succeed, at least 0.5 and below 1 (e.g. 0.999 for 99.9 %)",
      "c.yml:20:33: 'slo_objective' is the share of requests that must succeed, at least 0.5 and below 1 (e.g. 0.999 for 99.9 %)",
  };
  for (const auto& e : expected) {
    EXPECT_NE(std::find(errors.begin(), errors.end(), e), errors.end()) << "missing: " << e;
  }
  EXPECT_EQ(errors.size(), expected.size()) << ::testing::PrintToString(errors);
}

// ------------------------------------------------------------------------------ tailer

namespace {

class TailerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/apphealth-tail-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/access.log";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void append(const std::string& text, const std::string& path = "") {
    std::ofstream out(path.empty() ? path_ : path, std::ios::app | std::ios::binary);
    out << text;
  }
  std::vector<std::string> poll(AccessLogTailer& tailer, std::size_t budget = 1 << 20,
                                AccessLogTailer::Status expect = AccessLogTailer::Status::Ok) {
    std::vector<std::string> lines;
    std::string error;
    const auto status = tailer.poll(budget, [&](std::string_view l) { lines.emplace_back(l); }, error);
    EXPECT_EQ(status, expect) << error;
    return lines;
  }
  AccessLogTailer::Options options(bool beginning = false) {
    AccessLogTailer::Options o;
    o.path = path_;
    o.start_at_beginning = beginning;
    o.chunk_bytes = 16;  // small chunks: lines straddle reads
    o.rotate_wait = 0ms;
    return o;
  }

  std::string dir_, path_;
};

using Lines = std::vector<std::string>;

}  // namespace

TEST_F(TailerTest, StartsAfterTheLastCompleteLineByDefault) {
  append("old 1\nold 2\nhalf-writ");
  AccessLogTailer tailer(options());
  EXPECT_EQ(poll(tailer), Lines{});
  append("ten line\nnew 1\n");
  EXPECT_EQ(poll(tailer), (Lines{"half-written line", "new 1"}));
}

TEST_F(TailerTest, StartAtBeginningReadsEverything) {
  append("a\r\nb\n\nc\n");
  AccessLogTailer tailer(options(true));
  EXPECT_EQ(poll(tailer), (Lines{"a", "b", "c"}));  // CR stripped, blank lines skipped
}

TEST_F(TailerTest, PartialLinesWaitForTheirNewline) {
  append("");
  AccessLogTailer tailer(options());
  poll(tailer);
  append("first li");
  EXPECT_EQ(poll(tailer), Lines{});
  append("ne\nsecond");
  EXPECT_EQ(poll(tailer), Lines{"first line"});
  EXPECT_EQ(poll(tailer), Lines{});
  append(" line\n");
  EXPECT_EQ(poll(tailer), Lines{"second line"});
}

TEST_F(TailerTest, BudgetBoundsOnePollAndNothingIsLost) {
  append("");
  AccessLogTailer tailer(options());
  poll(tailer);
  std::string text;
  for (int i = 0; i < 100; ++i) text += "line " + std::to_string(i) + "\n";
  append(text);
  Lines all;
  int polls = 0;
  while (all.size() < 100 && polls < 1000) {
    auto got = poll(tailer, 64);
    all.insert(all.end(), got.begin(), got.end());
    ++polls;
  }
  ASSERT_EQ(all.size(), 100u);
  EXPECT_GT(polls, 10);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(all[i], "line " + std::to_string(i));
}

TEST_F(TailerTest, MissingAtStartIsReadFromTheBeginningWhenItAppears) {
  AccessLogTailer tailer(options());
  poll(tailer, 1 << 20, AccessLogTailer::Status::Missing);
  EXPECT_FALSE(tailer.following());
  append("one\ntwo\n");
  EXPECT_EQ(poll(tailer), (Lines{"one", "two"}));
}

TEST_F(TailerTest, RenameRotationFinishesTheOldFileThenFollowsTheNewOne) {
  append("");
  auto o = options();
  o.rotate_wait = 10s;
  AccessLogTailer tailer(o);
  poll(tailer);
  append("a1\na2\n");
  EXPECT_EQ(poll(tailer), (Lines{"a1", "a2"}));
  // The writer keeps its descriptor on the renamed file for a while, also after a new file
  // exists (workers reopen one by one); a partial line is finished there too.
  std::ofstream old(path_, std::ios::app | std::ios::binary);
  std::filesystem::rename(path_, path_ + ".1");
  old << "a3\na4 par" << std::flush;
  EXPECT_EQ(poll(tailer), (Lines{"a3"}));  // path gone: keep reading the open file
  append("b1\n");                          // the new file
  EXPECT_EQ(poll(tailer), (Lines{"b1"}));
  old << "tial\na5\n" << std::flush;       // late writes to the rotated file
  append("b2\n");
  EXPECT_EQ(poll(tailer), (Lines{"a4 partial", "a5", "b2"}));
  EXPECT_EQ(tailer.rotations(), 1u);
  EXPECT_EQ(tailer.openFiles(), 2u);
  // Rotated again: the first file is still kept until it has been quiet for rotate_wait.
  std::filesystem::rename(path_, path_ + ".0");
  append("c1\n");
  EXPECT_EQ(poll(tailer), (Lines{"c1"}));
  EXPECT_EQ(tailer.rotations(), 2u);
}

TEST_F(TailerTest, RetiredFileIsClosedAfterRotateWait) {
  append("");
  AccessLogTailer tailer(options());  // rotate_wait 0
  poll(tailer);
  append("x\n");
  std::filesystem::rename(path_, path_ + ".1");
  append("y\n");
  EXPECT_EQ(poll(tailer), (Lines{"x", "y"}));
  EXPECT_EQ(poll(tailer), Lines{});
  EXPECT_EQ(tailer.openFiles(), 1u);
}

TEST_F(TailerTest, CopyTruncateRestartsAtZero) {
  append("");
  AccessLogTailer tailer(options());
  poll(tailer);
  append("1 aaaaaaaaaaaaaaaaaaaa\n2 bbbbbbbbbbbbbbbbbbb\n");
  EXPECT_EQ(poll(tailer).size(), 2u);
  std::filesystem::resize_file(path_, 0);
  EXPECT_EQ(poll(tailer), Lines{});
  append("3\n");
  EXPECT_EQ(poll(tailer), Lines{"3"});
  EXPECT_EQ(tailer.truncations(), 1u);
}

TEST_F(TailerTest, CopyTruncateDetectedEvenWhenTheFileRegrewPastTheOldPosition) {
  append("");
  AccessLogTailer tailer(options());
  poll(tailer);
  append("1 old line\n2 old line\n");
  EXPECT_EQ(poll(tailer).size(), 2u);
  std::filesystem::resize_file(path_, 0);
  append("3 new line that is longer\n4 new line\n5 new line\n");
  EXPECT_EQ(poll(tailer), (Lines{"3 new line that is longer", "4 new line", "5 new line"}));
  EXPECT_EQ(tailer.truncations(), 1u);
  EXPECT_EQ(poll(tailer), Lines{});
}

TEST_F(TailerTest, OverlongLinesAreDroppedAndCounted) {
  append("");
  auto o = options();
  o.max_line_bytes = 40;
  AccessLogTailer tailer(o);
  poll(tailer);
  append("short\n" + std::string(100, 'x') + "\nafter\n" + std::string(100, 'y'));
  EXPECT_EQ(poll(tailer), (Lines{"short", "after"}));
  append("\nend\n");
  EXPECT_EQ(poll(tailer), Lines{"end"});
  EXPECT_EQ(tailer.oversizedLines(), 2u);
}

TEST_F(TailerTest, UnreadableFileIsAnError) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads every file";
  append("x\n");
  std::filesystem::permissions(path_, std::filesystem::perms::none);
  AccessLogTailer tailer(options());
  poll(tailer, 1 << 20, AccessLogTailer::Status::Error);
}

TEST_F(TailerTest, DirectoryIsAnError) {
  std::filesystem::create_directory(path_);
  AccessLogTailer tailer(options());
  poll(tailer, 1 << 20, AccessLogTailer::Status::Error);
}

TEST_F(TailerTest, CopyTruncateDetectedWithRepetitiveLinesRegrownPastThePosition) {
  // Access-log lines under load look alike; only their mix differs. The old content ends
  // where the new one has a look-alike line, so only a wide fingerprint tells them apart.
  auto lineOf = [](int i, int period) { return "GET /ok HTTP/1.1 200 " + std::string(1 + i % period, '-') + "\n"; };
  append("");
  AccessLogTailer tailer(options());
  poll(tailer);
  std::string old, fresh;
  for (int i = 0; i < 300; ++i) old += lineOf(i, 3);
  append(old);
  int seen = 0;
  for (int i = 0; i < 2000 && seen < 300; ++i) seen += static_cast<int>(poll(tailer, 1 << 16).size());
  ASSERT_EQ(seen, 300);
  std::filesystem::resize_file(path_, 0);
  for (int i = 0; fresh.size() < old.size() + 500; ++i) fresh += lineOf(i, 5);
  append(fresh);
  std::size_t expected = std::count(fresh.begin(), fresh.end(), '\n');
  std::size_t got = 0;
  for (int i = 0; i < 2000; ++i) got += poll(tailer, 1 << 16).size();
  EXPECT_EQ(got, expected);
  EXPECT_EQ(tailer.truncations(), 1u);
}
