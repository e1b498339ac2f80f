// The beacon endpoints through the real exporter binary: every refusal path with its status
// and reason, and what accepted beacons turn into.

#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>
#include <memory>
#include <thread>

#include "TestSupport.h"

using namespace apphealth::test;

namespace {

const std::string kJson = "Content-Type: application/json";
const std::string kText = "Content-Type: text/plain;charset=UTF-8";

// Lines of an `ingest:` section (the listener is added by BeaconExporter).
std::string ingestConfig(const std::string& extra = "") {
  return "  allowed_origins: [\"https://app.example\"]\n"
         "  routes: [\"/tutors/:id\", \"/blog/*\"]\n"
         "  max_body_bytes: 4096\n"
         "  max_batch: 5\n"
         "  rate_per_second: 1000\n"
         "  burst: 1000\n" + extra;
}

// The exporter with an `ingest:` section made of `lines` and its beacon listener (the default
// layout) on a free loopback port.
class BeaconExporter : public ExporterProcess {
 public:
  explicit BeaconExporter(const std::string& lines, int port = freePort())
      : ExporterProcess(section(lines, port)), port_(port) {}
  static std::string section(const std::string& lines, int port) {
    return "ingest:\n  listen_address: \"127.0.0.1:" + std::to_string(port) + "\"\n" + lines;
  }
  std::string beaconUrl(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  int beaconPort() const { return port_; }

 private:
  int port_;
};

HttpResult post(const BeaconExporter& e, const std::string& path, const std::string& body,
                std::vector<std::string> headers = {kText}) {
  return httpRequest("POST", e.beaconUrl(path), headers, body);
}

// A client that opens a connection, sends half a request and stalls: it holds a connection (on
// CivetWeb, a worker thread) until the request timeout. Closed by the destructor.
class StalledClient {
 public:
  explicit StalledClient(int port) : fd_(connectLoopback(port)) {
    const std::string partial = "POST /ingest/vitals HTTP/1.1\r\nHost: x\r\n";
    ok_ = fd_ >= 0 && write(fd_, partial.data(), partial.size()) == static_cast<ssize_t>(partial.size());
  }
  ~StalledClient() {
    if (fd_ >= 0) close(fd_);
  }
  StalledClient(const StalledClient&) = delete;
  StalledClient& operator=(const StalledClient&) = delete;
  bool ok() const { return ok_; }

 private:
  int fd_;
  bool ok_ = false;
};

const std::string kBeacon = R"({"name":"LCP","value":1200,"id":"v4-own","page":"/tutors/1"})";

}  // namespace

TEST(IngestVitals, BatchIsRecordedPerRouteAndDeviceInSeconds) {
  BeaconExporter e(ingestConfig());
  const std::string batch = R"([
    {"name":"LCP","value":2100,"rating":"good","delta":2100,"id":"v4-1","navigationType":"navigate","page":"/tutors/42?ref=x","pageViewId":"pv1"},
    {"name":"TTFB","value":350,"id":"v4-2","page":"/tutors/42","pageViewId":"pv1"},
    {"name":"CLS","value":0.3,"id":"v4-3","page":"/blog/2024/post","device":"mobile","pageViewId":"pv2"},
    {"name":"INP","value":180,"id":"v4-4","page":"/pricing","attribution":{"x":1},"pageViewId":"pv2"}
  ])";
  auto r = post(e, "/ingest/vitals", batch, {kText, "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/120"});
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.body, "");
  auto m = e.metrics();
  EXPECT_EQ(m["apphealth_web_vitals_lcp_seconds_sum{route=\"/tutors/:id\",device=\"desktop\"}"], 2.1);
  EXPECT_EQ(m["apphealth_web_vitals_lcp_seconds_bucket{route=\"/tutors/:id\",device=\"desktop\",le=\"2\"}"], 0);
  EXPECT_EQ(m["apphealth_web_vitals_lcp_seconds_bucket{route=\"/tutors/:id\",device=\"desktop\",le=\"2.5\"}"], 1);
  EXPECT_EQ(m["apphealth_web_vitals_ttfb_seconds_sum{route=\"/tutors/:id\",device=\"desktop\"}"], 0.35);
  EXPECT_EQ(m["apphealth_web_vitals_cls_bucket{route=\"/blog/*\",device=\"mobile\",le=\"0.25\"}"], 0);
  EXPECT_EQ(m["apphealth_web_vitals_cls_bucket{route=\"/blog/*\",device=\"mobile\",le=\"0.3\"}"], 1);
  EXPECT_EQ(m["apphealth_web_vitals_inp_seconds_count{route=\"other\",device=\"desktop\"}"], 1);
  EXPECT_EQ(m["apphealth_web_vitals_page_views_total{route=\"/tutors/:id\",device=\"desktop\"}"], 1);
  EXPECT_EQ(m["apphealth_web_vitals_page_views_total{route=\"/blog/*\",device=\"mobile\"}"], 1);
  EXPECT_EQ(m["apphealth_ingest_requests_total{endpoint=\"vitals\",code=\"204\"}"], 1);
  // Official thresholds are bucket bounds.
  for (const char* series : {"apphealth_web_vitals_lcp_seconds_bucket{route=\"/tutors/:id\",device=\"desktop\",le=\"4\"}",
                             "apphealth_web_vitals_inp_seconds_bucket{route=\"other\",device=\"desktop\",le=\"0.2\"}",
                             "apphealth_web_vitals_inp_seconds_bucket{route=\"other\",device=\"desktop\",le=\"0.5\"}",
                             "apphealth_web_vitals_cls_bucket{route=\"/blog/*\",device=\"mobile\",le=\"0.1\"}",
                             "apphealth_web_vitals_ttfb_seconds_bucket{route=\"/tutors/:id\",device=\"desktop\",le=\"0.8\"}",
                             "apphealth_web_vitals_ttfb_seconds_bucket{route=\"/tutors/:id\",device=\"desktop\",le=\"1.8\"}"}) {
    EXPECT_TRUE(m.count(series)) << series;
  }
}

TEST(IngestVitals, RetriedBeaconIsCountedOnce) {
  BeaconExporter e(ingestConfig());
  const std::string beacon = R"({"name":"FCP","value":900,"id":"v4-retry","page":"/tutors/1"})";
  EXPECT_EQ(post(e, "/ingest/vitals", beacon).status, 204);
  EXPECT_EQ(post(e, "/ingest/vitals", beacon).status, 204);
  auto m = e.metrics();
  EXPECT_EQ(m["apphealth_web_vitals_fcp_seconds_count{route=\"/tutors/:id\",device=\"desktop\"}"], 1);
  EXPECT_EQ(m["apphealth_ingest_rejected_total{endpoint=\"vitals\",reason=\"duplicate\"}"], 1);
}

TEST(IngestVitals, BadEntriesAreRejectedOneByOneAndTheRestKept) {
  BeaconExporter e(ingestConfig());
  auto r = post(e, "/ingest/vitals", R"([{"name":"LCP","value":1000,"id":"a"},{"name":"XYZ","value":1},
      {"name":"INP","value":-1},{"name":"LCP","value":700000},{"name":"CLS","value":150}])");
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(post(e, "/ingest/vitals", R"([{"name":"FCP"},{"name":"TTFB","value":"fast"},7])").status, 204);
  auto m = e.metrics();
  EXPECT_EQ(m["apphealth_web_vitals_lcp_seconds_count{route=\"other\",device=\"desktop\"}"], 1);
  EXPECT_EQ(m["apphealth_ingest_rejected_total{endpoint=\"vitals\",reason=\"unknown_metric\"}"], 1);
  EXPECT_EQ(m["apphealth_ingest_rejected_total{endpoint=\"vitals\",reason=\"invalid_value\"}"], 2);
  EXPECT_EQ(m["apphealth_ingest_rejected_total{endpoint=\"vitals\",reason=\"absurd_value\"}"], 2);
  EXPECT_EQ(m["apphealth_ingest_rejected_total{endpoint=\"vitals\",reason=\"missing_field\"}"], 1);
  EXPECT_EQ(m["apphealth_ingest_rejected_total{endpoint=\"vitals\",reason=\"not_an_object\"}"], 1);
}

TEST(IngestVitals, RefusalsCarryStatusAndReason) {
  BeaconExporter e(ingestConfig());
  auto malformed = post(e, "/ingest/vitals", "{\"name\": ");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(malformed.body.rfind("malformed JSON: ", 0), 0u) << malformed.body;
  EXPECT_EQ(malformed.body.find('\n'), malformed.body.size() - 1);  // one line

  EXPECT_EQ(post(e, "/ingest/vitals", "\"just a string\"").body, "expected a JSON object or an array of objects\n");
  EXPECT_EQ(post(e, "/ingest/vitals", "").status, 400);

  auto batch = post(e, "/ingest/vitals", "[{},{},{},{},{},{}]");
  EXPECT_EQ(batch.status, 413);
  EXPECT_EQ(batch.body, "batch of 6 entries exceeds the limit of 5\n");

  auto big = post(e, "/ingest/vitals", std::string(5000, ' ') + "{}");
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(big.body, "body of 5002 bytes exceeds the limit of 4096\n");
  EXPECT_EQ(big.headers["connection"], "close");

  // A body of unknown length is refused before a byte of it is read.
  auto chunked = post(e, "/ingest/vitals", std::string(100000, ' '), {kText, "Transfer-Encoding: chunked"});
  EXPECT_EQ(chunked.status, 411);
  EXPECT_EQ(chunked.body, "a Content-Length is required (Transfer-Encoding bodies are not accepted)\n");
  EXPECT_EQ(chunked.headers["connection"], "close");

  auto form = post(e, "/ingest/vitals", "{}", {"Content-Type: application/x-www-form-urlencoded"});
  EXPECT_EQ(form.status, 415);

  auto get = httpRequest("GET", e.beaconUrl("/ingest/vitals"));
  EXPECT_EQ(get.status, 405);
  EXPECT_EQ(get.headers["allow"], "POST, OPTIONS");

  auto evil = post(e, "/ingest/vitals", "{}", {kText, "Origin: https://evil.example"});
  EXPECT_EQ(evil.status, 403);
  EXPECT_EQ(evil.body, "origin https://evil.example is not allowed\n");

  auto m = e.metrics();
  EXPECT_EQ(m["apphealth_ingest_requests_total{endpoint=\"vitals\",code=\"400\"}"], 3);
  EXPECT_EQ(m["apphealth_ingest_requests_total{endpoint=\"vitals\",code=\"413\"}"], 2);
  EXPECT_EQ(m["apphealth_ingest_requests_total{endpoint=\"vitals\",code=\"411\"}"], 1);
  EXPECT_EQ(m["apphealth_ingest_requests_total{endpoint=\"vitals\",code=\"415\"}"], 1);
  EXPECT_EQ(m["apphealth_ingest_requests_total{endpoint=\"vitals\",code=\"405\"}"], 1);
  EXPECT_EQ(m["apphealth_ingest_requests_total{endpoint=\"vitals\",code=\"403\"}"], 1);
  // The server is still healthy and serving after all that.
  EXPECT_EQ(post(e, "/ingest/vitals", R"({"name":"LCP","value":1})").status, 204);
}

TEST(IngestVitals, CorsPreflightAndAllowedOrigin) {
  BeaconExporter e(ingestConfig());
  auto preflight = httpRequest("OPTIONS", e.beaconUrl("/ingest/vitals"),
                               {"Origin: https://app.example", "Access-Control-Request-Method: POST"});
  EXPECT_EQ(preflight.status, 204);
  EXPECT_EQ(preflight.headers["access-control-allow-origin"], "https://app.example");
  EXPECT_EQ(preflight.headers["access-control-allow-methods"], "POST, OPTIONS");
  EXPECT_EQ(preflight.headers["access-control-allow-headers"], "Content-Type");
  EXPECT_EQ(httpRequest("OPTIONS", e.beaconUrl("/ingest/vitals"), {"Origin: https://evil.example"}).status, 403);
  auto ok = post(e, "/ingest/vitals", R"({"name":"LCP","value":1})", {kJson, "Origin: https://app.example"});
  EXPECT_EQ(ok.status, 204);
  EXPECT_EQ(ok.headers["access-control-allow-origin"], "https://app.example");
}

TEST(IngestVitals, RateLimitPerClientHonoursForwardedForOnlyFromTrustedProxies) {
  BeaconExporter e("  rate_per_second: 0.01\n  burst: 3\n  trusted_proxies: [\"127.0.0.0/8\"]\n");
  const std::string beacon = R"({"name":"LCP","value":1})";
  auto from = [&](const std::string& client) {
    return post(e, "/ingest/vitals", beacon, {kText, "X-Forwarded-For: " + client + ", 127.0.0.5"}).status;
  };
  for (int i = 0; i < 3; ++i) EXPECT_EQ(from("203.0.113.7"), 204);
  auto limited = post(e, "/ingest/vitals", beacon, {kText, "X-Forwarded-For: 203.0.113.7"});
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.body, "rate limit exceeded for this client\n");
  EXPECT_EQ(limited.headers["retry-after"], "1");
  EXPECT_EQ(from("198.51.100.9"), 204);  // another client has its own bucket

  // Without trusted proxies the header is ignored: every request is the peer 127.0.0.1.
  BeaconExporter untrusted("  rate_per_second: 0.01\n  burst: 2\n");
  int accepted = 0;
  for (int i = 0; i < 4; ++i) {
    accepted += post(untrusted, "/ingest/vitals", beacon, {kText, "X-Forwarded-For: 10.0.0." + std::to_string(i)}).status == 204;
  }
  EXPECT_EQ(accepted, 2);
}

TEST(IngestVitals, LabelSetsAreCappedPerFamily) {
  BeaconExporter e("  routes: [\"/a\", \"/b\", \"/c\"]\n  max_routes: 2\n  rate_per_second: 1000\n  burst: 1000\n");
  for (const char* page : {"/a", "/b", "/c", "/c", "/zzz"}) {
    EXPECT_EQ(post(e, "/ingest/vitals", std::string(R"({"name":"LCP","value":1,"page":")") + page + "\"}").status, 204);
  }
  // Thousands of distinct paths: still only the capped routes plus "other".
  for (int i = 0; i < 200; ++i) post(e, "/ingest/vitals", R"({"name":"LCP","value":1,"page":"/x/)" + std::to_string(i) + "\"}");
  auto m = e.metrics();
  EXPECT_EQ(m["apphealth_web_vitals_lcp_seconds_count{route=\"/a\",device=\"desktop\"}"], 1);
  EXPECT_EQ(m["apphealth_web_vitals_lcp_seconds_count{route=\"/b\",device=\"desktop\"}"], 1);
  EXPECT_FALSE(m.count("apphealth_web_vitals_lcp_seconds_count{route=\"/c\",device=\"desktop\"}"));
  EXPECT_EQ(m["apphealth_web_vitals_lcp_seconds_count{route=\"other\",device=\"desktop\"}"], 203);
}

TEST(IngestErrors, ReportsAreCountedAndLoggedSanitizedWithRotation) {
  TempDir dir;
  BeaconExporter e(ingestConfig("  error_log:\n    file: " + dir.file("errors.jsonl") + "\n    max_bytes: 4096\n    keep: 2\n"));
  auto r = post(e, "/ingest/errors",
                R"([{"message":"TypeError: x is undefined for bob.smith@example.com, card 4111 1111 1111 1111","level":"component","component":"Cart","page":"/tutors/7","severity":"fatal"},
                    {"message":"boom","level":"global"},{"level":"page"}])",
                {kJson, "X-Forwarded-For: 203.0.113.99"});
  EXPECT_EQ(r.status, 204);
  auto m = e.metrics();
  EXPECT_EQ(m["apphealth_client_errors_total{route=\"/tutors/:id\",level=\"component\",severity=\"fatal\"}"], 1);
  EXPECT_EQ(m["apphealth_client_errors_total{route=\"other\",level=\"global\",severity=\"error\"}"], 1);
  EXPECT_EQ(m["apphealth_ingest_rejected_total{endpoint=\"errors\",reason=\"missing_field\"}"], 1);
  std::ifstream log(dir.file("errors.jsonl"));
  std::string first;
  std::getline(log, first);
  EXPECT_NE(first.find(R"("message":"TypeError: x is undefined for [email], card [number]")"), std::string::npos) << first;
  EXPECT_NE(first.find(R"("route":"/tutors/:id")"), std::string::npos);
  EXPECT_EQ(first.find("203.0.113"), std::string::npos);
  EXPECT_EQ(first.find("127.0.0.1"), std::string::npos);
  // A long message is cut to 1 KiB; enough of them rotate the file.
  for (int i = 0; i < 10; ++i) post(e, "/ingest/errors", R"({"message":")" + std::string(3000, 'x') + R"(","level":"page"})");
  std::string rotated;
  ASSERT_EQ(run("wc -c < " + dir.file("errors.jsonl.1"), &rotated), 0);
  EXPECT_LE(std::stoul(rotated), 4096u);
  EXPECT_EQ(run("test -e " + dir.file("errors.jsonl.3")), 1);  // keep: 2
  std::string line;
  std::ifstream current(dir.file("errors.jsonl"));
  std::getline(current, line);
  EXPECT_LT(line.size(), 1300u);
}

TEST(IngestExposition, PromtoolAcceptsIngestMetrics) {
  BeaconExporter e(ingestConfig());
  post(e, "/ingest/vitals", R"([{"name":"LCP","value":1200,"page":"/tutors/1"},{"name":"CLS","value":0.01}])");
  post(e, "/ingest/errors", R"({"message":"x","level":"page"})");
  TempDir dir;
  dir.write("m.txt", e.get("/metrics").body);
  std::string out;
  EXPECT_EQ(run("promtool check metrics < " + dir.file("m.txt"), &out), 0) << out;
}

TEST(IngestListener, OwnListenerServesOnlyBeaconsAndNeverDelaysScrapes) {
  BeaconExporter e(ingestConfig());
  const std::string vitals = e.beaconUrl("/ingest/vitals");
  EXPECT_EQ(httpRequest("POST", vitals, {kText}, kBeacon).status, 204);
  // The beacon endpoints moved; /metrics and the admin endpoints stay on the private listener.
  EXPECT_EQ(httpRequest("POST", e.url("/ingest/vitals"), {kText}, kBeacon).status, 404);
  EXPECT_EQ(httpRequest("GET", e.beaconUrl("/metrics")).status, 404);
  EXPECT_EQ(httpRequest("POST", e.beaconUrl("/-/reload")).status, 404);
  EXPECT_EQ(e.metric("apphealth_web_vitals_lcp_seconds_count{route=\"/tutors/:id\",device=\"desktop\"}"), 1);
  EXPECT_NE(e.get("/").body.find("on its own listener, 127.0.0.1:" + std::to_string(e.beaconPort())), std::string::npos);

  // Stalled clients hold no worker on the event-driven beacon listener: beacons, scrapes and
  // health checks are all answered while they wait.
  std::vector<std::unique_ptr<StalledClient>> stalled;
  for (int i = 0; i < 12; ++i) {
    stalled.push_back(std::make_unique<StalledClient>(e.beaconPort()));
    ASSERT_TRUE(stalled.back()->ok());
  }
  EXPECT_TRUE(waitFor([&] { return e.metric("apphealth_ingest_connections") >= 12; }, 5s));
  EXPECT_EQ(httpRequest("POST", vitals, {kText}, kBeacon, 2000).status, 204);
  for (int i = 0; i < 5; ++i) {
    auto r = httpRequest("GET", e.url("/metrics"), {}, "", 2000);
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("apphealth_web_vitals_lcp_seconds_count"), std::string::npos);
  }
  EXPECT_EQ(httpRequest("GET", e.url("/-/ready"), {}, "", 2000).status, 200);
}

TEST(IngestListener, PerClientAndTotalConnectionCapsAtAccept) {
  BeaconExporter e(ingestConfig("  max_connections: 6\n  max_connections_per_client: 3\n"));
  std::vector<std::unique_ptr<StalledClient>> stalled;
  for (int i = 0; i < 5; ++i) stalled.push_back(std::make_unique<StalledClient>(e.beaconPort()));
  EXPECT_TRUE(waitFor([&] { return e.metric("apphealth_ingest_connections_refused_total{reason=\"client_limit\"}") == 2; }, 5s));
  EXPECT_EQ(e.metric("apphealth_ingest_connections"), 3);
  EXPECT_EQ(e.metric("apphealth_ingest_connections_refused_total{reason=\"listener_limit\"}"), 0);
}

TEST(IngestListener, TrustedProxiesAreExemptFromThePerClientCap) {
  BeaconExporter e(ingestConfig("  max_connections_per_client: 2\n  trusted_proxies: [127.0.0.1]\n"));
  std::vector<std::unique_ptr<StalledClient>> stalled;
  for (int i = 0; i < 6; ++i) stalled.push_back(std::make_unique<StalledClient>(e.beaconPort()));
  EXPECT_TRUE(waitFor([&] { return e.metric("apphealth_ingest_connections") == 6; }, 5s));
  EXPECT_EQ(e.metric("apphealth_ingest_connections_refused_total{reason=\"client_limit\"}"), 0);
}

TEST(IngestListener, SharedListenerIsAnOptInWithAWarningAndWorkersKeptForScrapes) {
  ExporterProcess e("ingest:\n  shared_listener: true\n  max_connections: 4\n  rate_per_second: 1000\n  burst: 1000\n");
  EXPECT_NE(e.log().find("ingest.shared_listener: the beacon endpoints share"), std::string::npos) << e.log();
  EXPECT_NE(e.get("/").body.find("on this listener"), std::string::npos);
  // 16 workers are kept for scrapes on top of ingest's max_connections: 16 stalled beacon
  // clients do not shut Prometheus out.
  std::vector<std::unique_ptr<StalledClient>> stalled;
  for (int i = 0; i < 16; ++i) {
    stalled.push_back(std::make_unique<StalledClient>(e.port()));
    ASSERT_TRUE(stalled.back()->ok());
  }
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(httpRequest("GET", e.url("/metrics"), {}, "", 2000).status, 200);
  EXPECT_EQ(httpRequest("POST", e.url("/ingest/vitals"), {kText}, kBeacon).status, 204);
  // The same framing rules on CivetWeb: no chunked bodies, no body cut short.
  EXPECT_EQ(httpRequest("POST", e.url("/ingest/vitals"), {kText, "Transfer-Encoding: chunked"}, kBeacon).status, 411);
}

TEST(IngestListener, MovingTheListenerOnReloadIsRefusedAndTheOldConfigKept) {
  const int ingestPort = freePort();
  BeaconExporter e(ingestConfig(), ingestPort);
  e.rewriteConfig(BeaconExporter::section(ingestConfig(), freePort()));
  auto r = httpRequest("POST", e.url("/-/reload"));
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("needs a restart"), std::string::npos) << r.body;
  EXPECT_EQ(e.metric("apphealth_config_last_reload_successful"), 0);
  EXPECT_EQ(httpRequest("POST", e.beaconUrl("/ingest/vitals"), {kText}, kBeacon).status, 204);
  e.rewriteConfig(BeaconExporter::section(ingestConfig("  request_timeout: 3s\n"), ingestPort));
  EXPECT_EQ(httpRequest("POST", e.url("/-/reload")).status, 500);
  // Other ingest settings still reload in place.
  e.rewriteConfig(BeaconExporter::section(ingestConfig("  max_routes: 7\n"), ingestPort));
  EXPECT_EQ(httpRequest("POST", e.url("/-/reload")).status, 200);
  EXPECT_EQ(e.metric("apphealth_config_last_reload_successful"), 1);
}
