// The access-log collector against a real nginx from Debian on 127.0.0.1: requests sent with
// libcurl (a bounded, known count per status class), the log rotated both ways while the
// load runs, and the exporter binary's counters compared with what was sent. Plus in-process
// samples of the collector for start position, unparsable lines and the histogram.

#include <gtest/gtest.h>
#include <curl/curl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "TestSupport.h"
#include "collectors/access_log/AccessLogCollector.h"
#include "metrics/Exposition.h"

using namespace apphealth;
using namespace apphealth::test;
namespace fs = std::filesystem;

namespace {

// Formats: nginx's built-in combined, combined + $request_time, and JSON lines.
const std::string kLogFormats = R"(
  log_format timed '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
                   '"$http_referer" "$http_user_agent" $request_time';
  log_format jsonl escape=json '{"time":"$time_iso8601","request_method":"$request_method",'
                               '"request_uri":"$request_uri","status":$status,"request_time":$request_time}';
)";

// One server: 200 on /ok, /tutors/..., /blog/...; 500 on /boom; 404 elsewhere.
std::string nginxBlock(const std::string& accessLogs) {
  return kLogFormats + R"(
  server {
    listen 127.0.0.1:@PORT@;
    keepalive_requests 100000;
)" + accessLogs + R"(
    location = /ok { return 200 "ok\n"; }
    location = /boom { return 500; }
    location /tutors/ { return 200 "tutor\n"; }
    location /blog/ { return 200 "blog\n"; }
    location / { return 404; }
  }
)";
}

// Enough requests to keep nginx busy for a few seconds on a shared 2-core machine.
constexpr int kPerThread = 6000;
constexpr long kTotal = 4L * kPerThread;

struct Sent {
  std::atomic<long> total{0}, c2xx{0}, c4xx{0}, c5xx{0}, failed{0};
};

// `threads` clients, each sending `perThread` requests on one keep-alive connection:
// every 10th /boom (500), every 10th+1 /missing (404), the rest /ok (200).
void load(int port, int threads, int perThread, Sent& sent) {
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      CURL* curl = curl_easy_init();
      std::string sink;
      curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
      curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 20000L);
      curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, +[](char*, size_t s, size_t n, void*) { return s * n; });
      for (int i = 0; i < perThread; ++i) {
        const int k = (t * perThread + i) % 10;
        const char* path = k == 0 ? "/boom" : k == 1 ? "/missing" : "/ok";
        const std::string url = "http://127.0.0.1:" + std::to_string(port) + path;
        curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
        long status = 0;
        if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        ++sent.total;
        if (status == 200) ++sent.c2xx;
        else if (status == 404) ++sent.c4xx;
        else if (status == 500) ++sent.c5xx;
        else ++sent.failed;
      }
      curl_easy_cleanup(curl);
    });
  }
  for (auto& w : workers) w.join();
}

// Sum of the series of `name` whose label block contains every `needle`.
double sum(const std::map<std::string, double>& metrics, const std::string& name,
           const std::vector<std::string>& needles = {}) {
  double total = 0;
  for (const auto& [series, value] : metrics) {
    if (series.rfind(name + "{", 0) != 0) continue;
    bool all = true;
    for (const auto& n : needles) all = all && series.find(n) != std::string::npos;
    if (all) total += value;
  }
  return total;
}

long countLines(const std::string& path) {
  std::ifstream in(path);
  long n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

long linesIn(const std::vector<std::string>& paths) {
  long n = 0;
  for (const auto& p : paths) n += countLines(p);
  return n;
}

std::string exporterConfig(const std::string& entries) { return "access_logs:\n" + entries; }

std::string logEntry(const std::string& name, const std::string& path, const std::string& extra = "") {
  return "  - name: " + name + "\n    path: " + path + "\n    interval: 200ms\n" + extra;
}

// Freezes nginx (master and worker): clients block, nothing is written meanwhile.
void signalNginx(const TempNginx& nginx, int sig) {
  std::string out;
  run("pgrep -P " + std::to_string(nginx.pid()), &out);
  std::istringstream pids(out);
  pid_t pid;
  while (pids >> pid) kill(pid, sig);
  kill(nginx.pid(), sig);
}

void expectExactCounts(const std::map<std::string, double>& m, const std::string& log, const Sent& sent) {
  const std::string l = "log=\"" + log + "\"";
  EXPECT_EQ(sent.failed.load(), 0);
  EXPECT_EQ(sum(m, "apphealth_http_requests_total", {l}), sent.total.load());
  EXPECT_EQ(sum(m, "apphealth_http_requests_total", {l, "method=\"GET\"", "code_class=\"2xx\""}), sent.c2xx.load());
  EXPECT_EQ(sum(m, "apphealth_http_requests_total", {l, "method=\"GET\"", "code_class=\"4xx\""}), sent.c4xx.load());
  EXPECT_EQ(sum(m, "apphealth_http_requests_total", {l, "method=\"GET\"", "code_class=\"5xx\""}), sent.c5xx.load());
  EXPECT_EQ(sum(m, "apphealth_http_requests_total", {l, "code_class=\"1xx\""}), 0);
  EXPECT_EQ(sum(m, "apphealth_log_lines_total", {l, "result=\"parsed\""}), sent.total.load());
  EXPECT_EQ(sum(m, "apphealth_log_lines_total", {l, "result=\"unparsable\""}), 0);
}

}  // namespace

TEST(AccessLogCollector, RenameRotationUnderLoadCountsEveryRequestExactlyOnce) {
  TempNginx nginx(nginxBlock("    access_log @DIR@/access.log combined;"));
  const std::string log = nginx.file("access.log");
  ExporterProcess exporter(exporterConfig(logEntry("web", log)));
  ASSERT_TRUE(waitFor([&] { return exporter.metric("apphealth_collector_up{collector=\"access_log\",target=\"web\"}") == 1.0; }, 5s));

  Sent sent;
  std::atomic<bool> done{false};
  std::thread clients([&] {
    load(nginx.port(), 4, kPerThread, sent);
    done = true;
  });
  // logrotate's default: rename, then tell nginx to reopen. Every other time the new file is
  // created first (logrotate `create`), otherwise nginx creates it.
  std::vector<std::string> files = {log};
  int underLoad = 0;
  for (int i = 1; i <= 8 && !done; ++i) {
    std::this_thread::sleep_for(200ms);
    const std::string rotated = log + "." + std::to_string(i);
    fs::rename(log, rotated);
    files.push_back(rotated);
    if (i % 2 == 0) std::ofstream(log).close();
    nginx.reopenLogs();
    if (!done) ++underLoad;
  }
  clients.join();
  ASSERT_EQ(sent.total.load(), kTotal);
  ASSERT_GE(underLoad, 3) << "the load ended too early to rotate under load";
  ASSERT_EQ(linesIn(files), kTotal) << "nginx wrote a line per request";

  ASSERT_TRUE(waitFor([&] { return sum(exporter.metrics(), "apphealth_log_lines_total") >= kTotal; }, 30s))
      << exporter.log();
  std::this_thread::sleep_for(1s);  // no late double counting either
  const auto m = exporter.metrics();
  expectExactCounts(m, "web", sent);
  EXPECT_EQ(m.at("apphealth_collector_up{collector=\"access_log\",target=\"web\"}"), 1);
  EXPECT_EQ(m.at("apphealth_threshold_http_error_ratio{log=\"web\"}"), 0.05);
  EXPECT_EQ(m.at("apphealth_threshold_http_latency_seconds{log=\"web\"}"), 2);
  EXPECT_FALSE(m.count("apphealth_http_request_duration_seconds_count{log=\"web\"}"));  // combined has no time
  EXPECT_NE(exporter.log().find("was rotated"), std::string::npos);
}

TEST(AccessLogCollector, CopyTruncateUnderLoadCountsEveryRequestExactlyOnce) {
  TempNginx nginx(nginxBlock("    access_log @DIR@/access.log combined;"));
  const std::string log = nginx.file("access.log");
  ExporterProcess exporter(exporterConfig(logEntry("web", log)));
  ASSERT_TRUE(waitFor([&] { return exporter.metric("apphealth_collector_up{collector=\"access_log\",target=\"web\"}") == 1.0; }, 5s));

  Sent sent;
  std::atomic<bool> done{false};
  std::thread clients([&] {
    load(nginx.port(), 4, kPerThread, sent);
    done = true;
  });
  // copytruncate loses whatever is appended between the copy and the truncation, for every
  // reader; nginx is frozen for that instant (its clients keep waiting) so the count stays
  // exact. Everything else runs under load.
  std::vector<std::string> copies;
  for (int i = 1; i <= 6 && !done; ++i) {
    std::this_thread::sleep_for(200ms);
    signalNginx(nginx, SIGSTOP);
    const long written = linesIn(copies) + countLines(log);
    const bool caughtUp = waitFor([&] { return sum(exporter.metrics(), "apphealth_log_lines_total") == written; }, 10s);
    const std::string copy = log + "." + std::to_string(i);
    fs::copy_file(log, copy);
    fs::resize_file(log, 0);
    copies.push_back(copy);
    signalNginx(nginx, SIGCONT);
    if (!caughtUp) {
      ADD_FAILURE() << "exporter did not catch up with " << written << " lines: "
                    << sum(exporter.metrics(), "apphealth_log_lines_total");
      break;
    }
  }
  clients.join();
  if (HasFailure()) return;
  ASSERT_EQ(sent.total.load(), kTotal);
  ASSERT_GE(copies.size(), 3u) << "the load ended too early to truncate under load";
  ASSERT_EQ(linesIn(copies) + countLines(log), kTotal);

  ASSERT_TRUE(waitFor([&] { return sum(exporter.metrics(), "apphealth_log_lines_total") >= kTotal; }, 30s))
      << exporter.log();
  std::this_thread::sleep_for(1s);
  expectExactCounts(exporter.metrics(), "web", sent);
  EXPECT_NE(exporter.log().find("was truncated"), std::string::npos);
}

TEST(AccessLogCollector, RequestTimeRoutesAndJsonLines) {
  TempNginx nginx(nginxBlock("    access_log @DIR@/timed.log timed;\n    access_log @DIR@/json.log jsonl;"));
  ExporterProcess exporter(exporterConfig(
      logEntry("timed", nginx.file("timed.log"),
               "    format: combined_request_time\n"
               "    routes: [\"/tutors/:id\", \"/blog/*\", \"/ok\"]\n"
               "    thresholds: {error_ratio: 0.02, latency: 750ms, slo_objective: 0.995}\n") +
      logEntry("json", nginx.file("json.log"), "    format: json\n")));
  ASSERT_TRUE(waitFor([&] { return exporter.metrics().count("apphealth_log_lines_total{log=\"json\",result=\"parsed\"}") > 0; }, 5s));

  const std::vector<std::pair<std::string, std::string>> requests = {
      {"GET", "/tutors/1"}, {"GET", "/tutors/2?tab=x"}, {"POST", "/tutors/3"}, {"GET", "/blog/a/b"},
      {"GET", "/blog/"},    {"GET", "/ok"},             {"HEAD", "/ok"},       {"GET", "/missing"},
      {"DELETE", "/boom"},  {"PROPFIND", "/ok"},        {"GET", "/tutors/1/reviews"}};
  for (const auto& [method, path] : requests) httpRequest(method, nginx.url(path));
  const double n = static_cast<double>(requests.size());
  ASSERT_TRUE(waitFor(
      [&] {
        auto m = exporter.metrics();
        return sum(m, "apphealth_log_lines_total", {"log=\"timed\""}) == n &&
               sum(m, "apphealth_log_lines_total", {"log=\"json\""}) == n;
      },
      10s))
      << exporter.get("/metrics").body;
  const auto m = exporter.metrics();
  auto series = [&](const std::string& log, const std::string& method, const std::string& route, const std::string& cls) {
    const std::string key = "apphealth_http_requests_total{log=\"" + log + "\",method=\"" + method + "\"" +
                            (route.empty() ? "" : ",route=\"" + route + "\"") + ",code_class=\"" + cls + "\"}";
    auto it = m.find(key);
    return it == m.end() ? -1.0 : it->second;
  };
  EXPECT_EQ(series("timed", "GET", "/tutors/:id", "2xx"), 2);
  EXPECT_EQ(series("timed", "POST", "/tutors/:id", "2xx"), 1);
  EXPECT_EQ(series("timed", "GET", "/tutors/:id", "5xx"), 0);  // exported at 0 once GET /tutors/:id was seen
  EXPECT_EQ(series("timed", "GET", "/blog/*", "2xx"), 2);
  EXPECT_EQ(series("timed", "GET", "/ok", "2xx"), 1);
  EXPECT_EQ(series("timed", "HEAD", "/ok", "2xx"), 1);
  EXPECT_EQ(series("timed", "other", "/ok", "2xx"), 1);  // PROPFIND: not a standard verb
  EXPECT_EQ(series("timed", "GET", "other", "4xx"), 1);   // /missing
  EXPECT_EQ(series("timed", "GET", "other", "2xx"), 1);   // /tutors/1/reviews: nginx says 200, no pattern fits
  EXPECT_EQ(series("timed", "DELETE", "other", "5xx"), 1);
  EXPECT_EQ(sum(m, "apphealth_http_requests_total", {"log=\"timed\""}), n);
  EXPECT_EQ(m.at("apphealth_http_request_duration_seconds_count{log=\"timed\"}"), n);
  EXPECT_EQ(m.at("apphealth_http_request_duration_seconds_bucket{log=\"timed\",le=\"2\"}"), n);
  EXPECT_EQ(m.at("apphealth_http_request_duration_seconds_bucket{log=\"timed\",le=\"0.75\"}"), n);  // the threshold
  EXPECT_EQ(m.at("apphealth_threshold_http_error_ratio{log=\"timed\"}"), 0.02);
  EXPECT_EQ(m.at("apphealth_threshold_http_latency_seconds{log=\"timed\"}"), 0.75);
  EXPECT_EQ(m.at("apphealth_threshold_slo_objective{log=\"timed\"}"), 0.995);

  EXPECT_EQ(series("json", "GET", "", "2xx"), 6);  // no routes configured: no route label
  EXPECT_EQ(series("json", "GET", "", "4xx"), 1);
  EXPECT_EQ(series("json", "DELETE", "", "5xx"), 1);
  EXPECT_EQ(series("json", "other", "", "2xx"), 1);
  EXPECT_EQ(sum(m, "apphealth_http_requests_total", {"log=\"json\""}), n);
  EXPECT_EQ(m.at("apphealth_http_request_duration_seconds_count{log=\"json\"}"), n);
  EXPECT_EQ(m.at("apphealth_log_lines_total{log=\"json\",result=\"unparsable\"}"), 0);
  EXPECT_EQ(m.at("apphealth_threshold_http_latency_seconds{log=\"json\"}"), 2);
  EXPECT_EQ(m.at("apphealth_threshold_slo_objective{log=\"json\"}"), 0.999);  // the default
}

TEST(AccessLogCollector, FileMissingAtStartIsNoFailureAndIsReadWhenItAppears) {
  TempDir logs("apphealth-logs");
  const std::string log = logs.file("access.log");
  ExporterProcess exporter(exporterConfig(logEntry("web", log)));
  ASSERT_TRUE(waitFor([&] { return exporter.metric("apphealth_collector_up{collector=\"access_log\",target=\"web\"}") == 1.0; }, 5s));
  std::this_thread::sleep_for(600ms);  // a few samples
  auto m = exporter.metrics();
  EXPECT_EQ(m.at("apphealth_log_lines_total{log=\"web\",result=\"parsed\"}"), 0);
  EXPECT_EQ(m.at("apphealth_collector_failures_total{collector=\"access_log\",target=\"web\"}"), 0);
  const auto logText = exporter.log();
  const auto first = logText.find("does not exist");
  ASSERT_NE(first, std::string::npos) << logText;
  EXPECT_EQ(logText.find("does not exist", first + 1), std::string::npos) << "logged once, not per sample";

  // nginx creates the file: every line in it counts, from the first.
  TempNginx nginx(nginxBlock("    access_log " + log + " combined;"));
  Sent sent;
  load(nginx.port(), 2, 50, sent);
  ASSERT_TRUE(waitFor([&] { return sum(exporter.metrics(), "apphealth_log_lines_total") >= 100; }, 10s)) << exporter.log();
  std::this_thread::sleep_for(400ms);
  expectExactCounts(exporter.metrics(), "web", sent);
}

TEST(AccessLogCollector, ReloadKeepsThePositionAndTheCounters) {
  TempNginx nginx(nginxBlock("    access_log @DIR@/access.log combined;"));
  const std::string log = nginx.file("access.log");
  ExporterProcess exporter(exporterConfig(logEntry("web", log)));
  ASSERT_TRUE(waitFor([&] { return exporter.metric("apphealth_collector_up{collector=\"access_log\",target=\"web\"}") == 1.0; }, 5s));
  Sent sent;
  std::thread clients([&] { load(nginx.port(), 2, 1000, sent); });
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(250ms);
    exporter.rewriteConfig(exporterConfig(logEntry("web", log, "    thresholds: {error_ratio: 0.0" + std::to_string(i + 1) + "}\n")));
    exporter.signal(SIGHUP);
  }
  clients.join();
  ASSERT_TRUE(waitFor([&] { return sum(exporter.metrics(), "apphealth_log_lines_total") >= 2000; }, 20s)) << exporter.log();
  std::this_thread::sleep_for(600ms);
  const auto m = exporter.metrics();
  expectExactCounts(m, "web", sent);
  EXPECT_EQ(m.at("apphealth_threshold_http_error_ratio{log=\"web\"}"), 0.03);
  EXPECT_EQ(m.at("apphealth_config_last_reload_successful"), 1);
}

// ----------------------------------------------------------------- in process, exact samples

namespace {

std::map<std::string, double> sampleOnce(AccessLogCollector& collector, bool* ok = nullptr) {
  SnapshotBuilder builder;
  const bool result = collector.sample(builder, std::stop_token()).ok;
  if (ok) *ok = result;
  return parseMetrics(renderText(builder.take()));
}

const std::string kLine = R"L(127.0.0.1 - - [10/Oct/2023:13:55:36 +0000] "GET /ok HTTP/1.1" 200 3 "-" "curl/7.88.1")L";

}  // namespace

TEST(AccessLogCollectorInProcess, StartsAtTheEndUnlessToldOtherwise) {
  TempDir dir;
  dir.write("access.log", kLine + "\n" + kLine + "\n");
  AccessLogTarget t;
  t.name = "web";
  t.path = dir.file("access.log");
  AccessLogCollector fromEnd(t);
  auto m = sampleOnce(fromEnd);
  EXPECT_EQ(m["apphealth_log_lines_total{log=\"web\",result=\"parsed\"}"], 0);
  EXPECT_FALSE(m.count("apphealth_http_requests_total{log=\"web\",method=\"GET\",code_class=\"2xx\"}"));

  t.name = "web2";  // another state: a collector of the same settings would share the position
  t.start_at_beginning = true;
  AccessLogCollector fromStart(t);
  m = sampleOnce(fromStart);
  EXPECT_EQ(m["apphealth_log_lines_total{log=\"web2\",result=\"parsed\"}"], 2);
  EXPECT_EQ(m["apphealth_http_requests_total{log=\"web2\",method=\"GET\",code_class=\"2xx\"}"], 2);
  EXPECT_EQ(m["apphealth_http_requests_total{log=\"web2\",method=\"GET\",code_class=\"5xx\"}"], 0);
}

TEST(AccessLogCollectorInProcess, UnparsableLinesAndHistogramAndHalfLines) {
  TempDir dir;
  dir.write("access.log", "");
  AccessLogTarget t;
  t.name = "timed";
  t.path = dir.file("access.log");
  t.format = AccessLogFormat::CombinedRequestTime;
  AccessLogCollector collector(t);
  sampleOnce(collector);
  {
    std::ofstream out(t.path, std::ios::app);
    out << kLine << " 0.004\n" << "garbage\n" << kLine << " 2.500\n" << kLine << "\n" << kLine.substr(0, 40);
  }
  bool ok = false;
  auto m = sampleOnce(collector, &ok);
  EXPECT_TRUE(ok);
  EXPECT_EQ(m["apphealth_log_lines_total{log=\"timed\",result=\"parsed\"}"], 3);
  EXPECT_EQ(m["apphealth_log_lines_total{log=\"timed\",result=\"unparsable\"}"], 1);
  EXPECT_EQ(m["apphealth_http_request_duration_seconds_count{log=\"timed\"}"], 2);  // one line had no time
  EXPECT_DOUBLE_EQ(m["apphealth_http_request_duration_seconds_sum{log=\"timed\"}"], 2.504);
  EXPECT_EQ(m["apphealth_http_request_duration_seconds_bucket{log=\"timed\",le=\"2\"}"], 1);
  {
    std::ofstream out(t.path, std::ios::app);
    out << kLine.substr(40) << " 0.1\n";
  }
  m = sampleOnce(collector);
  EXPECT_EQ(m["apphealth_log_lines_total{log=\"timed\",result=\"parsed\"}"], 4);
  EXPECT_EQ(m["apphealth_log_lines_total{log=\"timed\",result=\"unparsable\"}"], 1);
}

TEST(AccessLogCollectorInProcess, UnreadablePathIsAFailure) {
  TempDir dir;
  fs::create_directory(dir.file("access.log"));
  AccessLogTarget t;
  t.name = "dir";
  t.path = dir.file("access.log");
  AccessLogCollector collector(t);
  bool ok = true;
  auto m = sampleOnce(collector, &ok);
  EXPECT_FALSE(ok);
  EXPECT_EQ(m["apphealth_threshold_http_error_ratio{log=\"dir\"}"], 0.05);
}
