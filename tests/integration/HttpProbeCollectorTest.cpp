// HTTP probes against a real nginx on 127.0.0.1, through the exporter binary: status checks,
// timeouts, refused ports, body regexes, redirects, headers, and HTTPS with a self-signed
// certificate made by openssl here, whose expiry the metric must report to the second.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ctime>
#include <thread>

#include "TestSupport.h"
#include "clients/CurlEasy.h"
#include "collectors/http_probe/HttpProbeCollector.h"

using namespace apphealth::test;
using namespace std::chrono_literals;

namespace {

// nginx locations shared by the plain-HTTP tests.
constexpr const char* kLocations = R"(
    location = /health  { return 200 '{"status": "ok", "db": "up"}'; }
    location = /broken  { return 500 'internal error'; }
    location = /empty   { return 204; }
    location = /created { return 201 'created'; }
    location = /old     { return 302 http://127.0.0.1:@PORT@/health; }
    location = /token {
      if ($http_x_probe_token != "s3cret") { return 403; }
      return 200 'token ok';
    }
    location = /private {
      auth_basic "probe";
      auth_basic_user_file @DIR@/htpasswd;
      alias @DIR@/private.txt;  # `return` would answer before the access phase
    }
    location = /post {
      if ($request_method != POST) { return 405; }
      return 200 'posted';
    }
)";

std::string plainServer() { return "server {\n  listen 127.0.0.1:@PORT@;\n" + std::string(kLocations) + "}\n"; }

// One probe entry; `extra` lines are indented like the others.
std::string probe(const std::string& name, const std::string& url, const std::string& extra = "",
                  const std::string& interval = "2s", const std::string& timeout = "2s") {
  return "  - name: " + name + "\n    url: \"" + url + "\"\n    interval: " + interval + "\n    timeout: " + timeout +
         "\n" + extra;
}

std::string series(const std::string& metric, const std::string& probeName) {
  return metric + "{probe=\"" + probeName + "\"}";
}

// Waits until every named probe has published at least one result, then returns the metrics.
std::map<std::string, double> waitForProbes(const ExporterProcess& exporter, const std::vector<std::string>& names,
                                            std::chrono::milliseconds timeout = 10s) {
  std::map<std::string, double> metrics;
  const bool ok = waitFor(
      [&] {
        metrics = exporter.metrics();
        for (const auto& name : names) {
          if (!metrics.count(series("apphealth_probe_success", name))) return false;
        }
        return true;
      },
      timeout);
  if (!ok) ADD_FAILURE() << "probes did not report in time; log:\n" << exporter.log();
  return metrics;
}

// A TCP listener on 127.0.0.1 that never accepts: the kernel completes the handshake, the
// request is sent, and no answer ever comes.
class SilentServer {
 public:
  SilentServer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd_, 64) != 0) {
      throw std::runtime_error("SilentServer: bind/listen failed");
    }
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentServer() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// `openssl x509 -enddate -noout` → "notAfter=Nov 23 12:00:00 2027 GMT"; returns the text after '='.
std::string opensslEndDate(const std::string& certPath) {
  std::string out;
  EXPECT_EQ(run("openssl x509 -enddate -noout -in " + certPath, &out), 0) << out;
  const auto eq = out.find('=');
  std::string value = eq == std::string::npos ? out : out.substr(eq + 1);
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  return value;
}

// Parsed independently of the exporter's parser: strptime + timegm.
double toUnix(const std::string& gmtText) {
  std::tm tm{};
  const char* end = strptime(gmtText.c_str(), "%b %d %H:%M:%S %Y GMT", &tm);
  EXPECT_NE(end, nullptr) << "unparsable date '" << gmtText << "'";
  return static_cast<double>(timegm(&tm));
}

// nginx serving HTTPS with a fresh self-signed certificate for 127.0.0.1.
class TlsNginx {
 public:
  TlsNginx()
      : nginx_(R"(
server {
  listen 127.0.0.1:@PORT@ ssl;
  ssl_certificate     @DIR@/cert.pem;
  ssl_certificate_key @DIR@/key.pem;
  location = /health { return 200 'ok'; }
  location = /broken { return 503 'down'; }
}
)",
               false) {
    std::string out;
    const int rc = run("openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=127.0.0.1 "
                       "-addext subjectAltName=IP:127.0.0.1 -keyout " +
                           nginx_.file("key.pem") + " -out " + nginx_.file("cert.pem"),
                       &out);
    if (rc != 0) throw std::runtime_error("openssl req failed: " + out);
    nginx_.start();
  }
  std::string cert() const { return nginx_.file("cert.pem"); }
  std::string url(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(nginx_.port()) + path;
  }

 private:
  TempNginx nginx_;
};

}  // namespace

TEST(HttpProbe, Status200IsSuccess) {
  TempNginx nginx(plainServer());
  ExporterProcess exporter("http_probes:\n" + probe("web", nginx.url("/health")));
  auto m = waitForProbes(exporter, {"web"});
  EXPECT_EQ(m[series("apphealth_probe_success", "web")], 1);
  EXPECT_EQ(m[series("apphealth_probe_http_status_code", "web")], 200);
  EXPECT_GE(m[series("apphealth_probe_duration_seconds_count", "web")], 1);
  EXPECT_TRUE(m.count("apphealth_probe_duration_seconds_bucket{probe=\"web\",le=\"2\"}")) << "2 s bucket";
  EXPECT_FALSE(m.count(series("apphealth_probe_ssl_earliest_cert_expiry_timestamp_seconds", "web")));
  EXPECT_EQ(m["apphealth_collector_up{collector=\"http_probe\",target=\"web\"}"], 1);
}

TEST(HttpProbe, Status500IsFailureButCollectorIsUp) {
  TempNginx nginx(plainServer());
  ExporterProcess exporter("http_probes:\n" + probe("broken", nginx.url("/broken")));
  auto m = waitForProbes(exporter, {"broken"});
  EXPECT_EQ(m[series("apphealth_probe_success", "broken")], 0);
  EXPECT_EQ(m[series("apphealth_probe_http_status_code", "broken")], 500);
  // The collector ran the probe: it is up, and no backoff slows the probe down.
  EXPECT_EQ(m["apphealth_collector_up{collector=\"http_probe\",target=\"broken\"}"], 1);
  EXPECT_EQ(m["apphealth_collector_failures_total{collector=\"http_probe\",target=\"broken\"}"], 0);
  EXPECT_NE(exporter.log().find("http probe broken: failed"), std::string::npos) << exporter.log();
  EXPECT_NE(exporter.log().find("status 500 is not in valid_status_codes 2xx"), std::string::npos) << exporter.log();
}

TEST(HttpProbe, ValidStatusCodes) {
  TempNginx nginx(plainServer());
  const std::string codes = "    valid_status_codes: [200, 204]\n";
  ExporterProcess exporter("http_probes:\n" + probe("empty", nginx.url("/empty"), codes) +
                           probe("created", nginx.url("/created"), codes) +
                           probe("created_2xx", nginx.url("/created")) +
                           probe("expect500", nginx.url("/broken"), "    valid_status_codes: [500]\n"));
  auto m = waitForProbes(exporter, {"empty", "created", "created_2xx", "expect500"});
  EXPECT_EQ(m[series("apphealth_probe_success", "empty")], 1);
  EXPECT_EQ(m[series("apphealth_probe_http_status_code", "empty")], 204);
  EXPECT_EQ(m[series("apphealth_probe_success", "created")], 0);
  EXPECT_EQ(m[series("apphealth_probe_http_status_code", "created")], 201);
  EXPECT_EQ(m[series("apphealth_probe_success", "created_2xx")], 1);
  EXPECT_EQ(m[series("apphealth_probe_success", "expect500")], 1);
  EXPECT_NE(exporter.log().find("status 201 is not in valid_status_codes [200, 204]"), std::string::npos)
      << exporter.log();
}

TEST(HttpProbe, SlowEndpointTimesOut) {
  SilentServer silent;
  const std::string url = "http://127.0.0.1:" + std::to_string(silent.port()) + "/health";
  ExporterProcess exporter("http_probes:\n" + probe("slow", url, "", "1s", "300ms"));
  auto m = waitForProbes(exporter, {"slow"});
  EXPECT_EQ(m[series("apphealth_probe_success", "slow")], 0);
  EXPECT_EQ(m[series("apphealth_probe_http_status_code", "slow")], 0);
  const double count = m[series("apphealth_probe_duration_seconds_count", "slow")];
  ASSERT_GE(count, 1);
  const double mean = m[series("apphealth_probe_duration_seconds_sum", "slow")] / count;
  EXPECT_GE(mean, 0.29);  // it waited for the timeout...
  EXPECT_LT(mean, 0.8);   // ...and not much longer
  EXPECT_NE(exporter.log().find("timed out"), std::string::npos) << exporter.log();
  EXPECT_NE(exporter.log().find("(timeout 300ms)"), std::string::npos) << exporter.log();
}

TEST(HttpProbe, RefusedPortFailsFast) {
  const std::string url = "http://127.0.0.1:" + std::to_string(freePort()) + "/health";
  ExporterProcess exporter("http_probes:\n" + probe("refused", url, "", "1s", "800ms"));
  auto m = waitForProbes(exporter, {"refused"});
  EXPECT_EQ(m[series("apphealth_probe_success", "refused")], 0);
  EXPECT_EQ(m[series("apphealth_probe_http_status_code", "refused")], 0);
  const double count = m[series("apphealth_probe_duration_seconds_count", "refused")];
  ASSERT_GE(count, 1);
  EXPECT_LT(m[series("apphealth_probe_duration_seconds_sum", "refused")] / count, 0.4);  // well under 800ms
  EXPECT_NE(exporter.log().find("Failed to connect to 127.0.0.1"), std::string::npos) << exporter.log();
}

TEST(HttpProbe, BodyRegexMatchAndMismatch) {
  TempNginx nginx(plainServer());
  ExporterProcess exporter("http_probes:\n" +
                           probe("match", nginx.url("/health"), "    body_regex: '\"status\":\\s*\"ok\"'\n") +
                           probe("mismatch", nginx.url("/health"), "    body_regex: '\"db\":\\s*\"down\"'\n"));
  auto m = waitForProbes(exporter, {"match", "mismatch"});
  EXPECT_EQ(m[series("apphealth_probe_success", "match")], 1);
  EXPECT_EQ(m[series("apphealth_probe_success", "mismatch")], 0);
  EXPECT_EQ(m[series("apphealth_probe_http_status_code", "mismatch")], 200);
  EXPECT_NE(exporter.log().find("http probe mismatch: failed"), std::string::npos) << exporter.log();
  EXPECT_NE(exporter.log().find("does not match body_regex"), std::string::npos) << exporter.log();
  EXPECT_EQ(exporter.log().find("http probe match: failed"), std::string::npos) << exporter.log();
}

TEST(HttpProbe, RedirectsAreFollowedOnlyWhenAsked) {
  TempNginx nginx(plainServer());
  ExporterProcess exporter("http_probes:\n" + probe("stay", nginx.url("/old")) +
                           probe("follow", nginx.url("/old"), "    follow_redirects: true\n"));
  auto m = waitForProbes(exporter, {"stay", "follow"});
  EXPECT_EQ(m[series("apphealth_probe_success", "stay")], 0);
  EXPECT_EQ(m[series("apphealth_probe_http_status_code", "stay")], 302);
  EXPECT_EQ(m[series("apphealth_probe_success", "follow")], 1);
  EXPECT_EQ(m[series("apphealth_probe_http_status_code", "follow")], 200);
  EXPECT_NE(exporter.log().find("redirects are not followed unless follow_redirects: true"), std::string::npos);
}

TEST(HttpProbe, HeadersAndMethods) {
  TempNginx nginx(plainServer());
  ExporterProcess exporter(
      "http_probes:\n" + probe("with_token", nginx.url("/token"), "    headers:\n      X-Probe-Token: s3cret\n") +
      probe("without_token", nginx.url("/token")) +
      probe("post", nginx.url("/post"), "    method: POST\n    body: 'ping'\n    body_regex: '^posted$'\n") +
      probe("get_on_post", nginx.url("/post")) + probe("head", nginx.url("/health"), "    method: HEAD\n"));
  auto m = waitForProbes(exporter, {"with_token", "without_token", "post", "get_on_post", "head"});
  EXPECT_EQ(m[series("apphealth_probe_success", "with_token")], 1);
  EXPECT_EQ(m[series("apphealth_probe_http_status_code", "without_token")], 403);
  EXPECT_EQ(m[series("apphealth_probe_success", "post")], 1);
  EXPECT_EQ(m[series("apphealth_probe_http_status_code", "get_on_post")], 405);
  EXPECT_EQ(m[series("apphealth_probe_success", "head")], 1);
  EXPECT_EQ(m[series("apphealth_probe_http_status_code", "head")], 200);
  EXPECT_EQ(exporter.log().find("s3cret"), std::string::npos) << "header values stay out of the log";
}

TEST(HttpProbe, BasicAuthPasswordFromFile) {
  TempNginx nginx(plainServer(), false);
  nginx.write("htpasswd", "monitor:{PLAIN}pr0be-pass\n");
  nginx.write("private.txt", "private ok\n");
  nginx.start();
  TempDir secrets;
  secrets.write("probe.pass", "pr0be-pass\n");
  ExporterProcess exporter("http_probes:\n" +
                           probe("auth", nginx.url("/private"),
                                 "    username: monitor\n    password_file: " + secrets.file("probe.pass") + "\n") +
                           probe("no_auth", nginx.url("/private")));
  auto m = waitForProbes(exporter, {"auth", "no_auth"});
  EXPECT_EQ(m[series("apphealth_probe_success", "auth")], 1);
  EXPECT_EQ(m[series("apphealth_probe_http_status_code", "no_auth")], 401);
  EXPECT_EQ(exporter.log().find("pr0be-pass"), std::string::npos);
}

// libcurl 7.88 with OpenSSL prints "Expire date" exactly as `openssl x509 -enddate` does
// (both use ASN1_TIME_print): check the raw text, then the parser on it.
TEST(HttpProbe, CertInfoExpireDateFormat) {
  TlsNginx tls;
  apphealth::CurlEasy curl;
  curl.set(CURLOPT_URL, tls.url("/health").c_str());
  curl.set(CURLOPT_CERTINFO, 1L);
  curl.set(CURLOPT_CAINFO, tls.cert().c_str());
  curl.set(CURLOPT_PROXY, "");
  curl.set(CURLOPT_TIMEOUT_MS, 5000L);
  curl.set(CURLOPT_NOBODY, 1L);
  ASSERT_EQ(curl.perform({}), CURLE_OK);
  const auto chain = curl.certInfo();
  ASSERT_EQ(chain.size(), 1u);
  std::string expire;
  for (const auto& line : chain[0]) {
    if (line.rfind("Expire date:", 0) == 0) expire = line.substr(std::string("Expire date:").size());
  }
  const std::string expected = opensslEndDate(tls.cert());
  EXPECT_EQ(expire, expected);
  EXPECT_EQ(expected.substr(expected.size() - 4), " GMT");
  const auto parsed = apphealth::parseCertExpireDate(expire);
  ASSERT_TRUE(parsed.has_value()) << expire;
  EXPECT_EQ(*parsed, toUnix(expected));
  // 30 days from now, give or take the test's own duration.
  EXPECT_NEAR(*parsed - static_cast<double>(std::time(nullptr)), 30 * 86400, 120);
}

TEST(HttpProbe, HttpsWithSelfSignedCertificate) {
  TlsNginx tls;
  const double expiry = toUnix(opensslEndDate(tls.cert()));
  ASSERT_GT(expiry, 0);
  ExporterProcess exporter("http_probes:\n" + probe("with_ca", tls.url("/health"), "    ca_file: " + tls.cert() + "\n") +
                           probe("without_ca", tls.url("/health")) +
                           probe("insecure", tls.url("/health"), "    insecure_skip_verify: true\n") +
                           probe("tls_503", tls.url("/broken"), "    ca_file: " + tls.cert() + "\n"));
  auto m = waitForProbes(exporter, {"with_ca", "without_ca", "insecure", "tls_503"});
  const std::string expiryMetric = "apphealth_probe_ssl_earliest_cert_expiry_timestamp_seconds";

  EXPECT_EQ(m[series("apphealth_probe_success", "with_ca")], 1);
  EXPECT_EQ(m[series("apphealth_probe_http_status_code", "with_ca")], 200);
  ASSERT_TRUE(m.count(series(expiryMetric, "with_ca"))) << exporter.get("/metrics").body;
  EXPECT_EQ(m[series(expiryMetric, "with_ca")], expiry);

  EXPECT_EQ(m[series("apphealth_probe_success", "without_ca")], 0);
  EXPECT_EQ(m[series("apphealth_probe_http_status_code", "without_ca")], 0);
  EXPECT_FALSE(m.count(series(expiryMetric, "without_ca")));  // the handshake never completed
  EXPECT_NE(exporter.log().find("http probe without_ca: failed"), std::string::npos) << exporter.log();
  EXPECT_NE(exporter.log().find("SSL certificate problem: self-signed certificate"), std::string::npos)
      << exporter.log();

  EXPECT_EQ(m[series("apphealth_probe_success", "insecure")], 1);
  ASSERT_TRUE(m.count(series(expiryMetric, "insecure")));
  EXPECT_EQ(m[series(expiryMetric, "insecure")], expiry);

  // A bad status over TLS still reports the certificate: "site down" and "cert expiring" are
  // separate alerts.
  EXPECT_EQ(m[series("apphealth_probe_success", "tls_503")], 0);
  EXPECT_EQ(m[series("apphealth_probe_http_status_code", "tls_503")], 503);
  EXPECT_EQ(m[series(expiryMetric, "tls_503")], expiry);
}

TEST(HttpProbe, ShutdownDoesNotWaitForAHungProbe) {
  SilentServer silent;
  const std::string url = "http://127.0.0.1:" + std::to_string(silent.port()) + "/";
  ExporterProcess exporter("http_probes:\n" + probe("hung", url, "", "30s", "20s"));
  std::this_thread::sleep_for(500ms);  // the probe is now waiting for an answer
  const auto started = std::chrono::steady_clock::now();
  exporter.signal(SIGTERM);
  const auto code = exporter.waitExit(5s);
  ASSERT_TRUE(code.has_value()) << exporter.log();
  EXPECT_EQ(*code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
}
