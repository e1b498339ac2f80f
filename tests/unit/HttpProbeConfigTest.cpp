// The `http_probes:` section: defaults, every key, and positioned errors; and the parser for
// the certificate expiry text libcurl reports.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>

#include "ConfigErrors.h"
#include "collectors/http_probe/HttpProbeCollector.h"
#include "config/ConfigLoader.h"

using namespace apphealth;
using namespace std::chrono_literals;

namespace {

using apphealth::test::errorsOf;

// True when one error message equals `expected` exactly ("file:line:col: message").
::testing::AssertionResult hasError(const std::string& yaml, const std::string& expected) {
  const auto errors = errorsOf(yaml);
  if (std::find(errors.begin(), errors.end(), expected) != errors.end()) return ::testing::AssertionSuccess();
  std::string all;
  for (const auto& e : errors) all += "\n  " + e;
  return ::testing::AssertionFailure() << "expected '" << expected << "', got:" << (all.empty() ? " none" : all);
}

double utc(int year, int month, int day, int hour, int minute, int second) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return static_cast<double>(timegm(&tm));
}

}  // namespace

TEST(HttpProbeConfig, Defaults) {
  const auto result = loadConfigText("http_probes:\n  - name: web\n    url: http://127.0.0.1/health\n", "c.yml");
  ASSERT_TRUE(result.errors.empty()) << result.errors.front().format();
  ASSERT_EQ(result.config->http_probes.size(), 1u);
  const auto& p = result.config->http_probes[0];
  EXPECT_EQ(p.name, "web");
  EXPECT_EQ(p.url, "http://127.0.0.1/health");
  EXPECT_EQ(p.method, "GET");
  EXPECT_TRUE(p.body.empty());
  EXPECT_TRUE(p.valid_status_codes.empty());
  EXPECT_TRUE(p.body_regex.empty());
  EXPECT_TRUE(p.headers.empty());
  EXPECT_FALSE(p.follow_redirects);
  EXPECT_TRUE(p.ca_file.empty());
  EXPECT_FALSE(p.insecure_skip_verify);
  EXPECT_EQ(p.interval, 15s);
  EXPECT_EQ(p.timeout, 5s);
  // Default: any 2xx.
  EXPECT_TRUE(p.statusIsValid(200));
  EXPECT_TRUE(p.statusIsValid(204));
  EXPECT_TRUE(p.statusIsValid(299));
  EXPECT_FALSE(p.statusIsValid(199));
  EXPECT_FALSE(p.statusIsValid(301));
  EXPECT_FALSE(p.statusIsValid(500));
  EXPECT_FALSE(p.statusIsValid(0));
}

TEST(HttpProbeConfig, EveryKey) {
  const auto result = loadConfigText(R"(
http_probes:
  - name: api
    url: https://127.0.0.1:8443/healthz
    method: post
    body: '{"ping": true}'
    valid_status_codes: [200, 204]
    body_regex: '"status":\s*"ok"'
    headers:
      Host: api.example.com
      X-Probe: "1"
      X-Empty:
    follow_redirects: true
    ca_file: /etc/ssl/certs/ca-certificates.crt
    interval: 30s
    timeout: 2s
  - name: legacy
    url: https://10.0.0.1/
    insecure_skip_verify: true
    method: HEAD
)", "c.yml");
  ASSERT_TRUE(result.errors.empty()) << result.errors.front().format();
  const auto& p = result.config->http_probes.at(0);
  EXPECT_EQ(p.method, "POST");  // upper-cased
  EXPECT_EQ(p.body, "{\"ping\": true}");
  EXPECT_EQ(p.valid_status_codes, (std::vector<int>{200, 204}));
  EXPECT_TRUE(p.statusIsValid(204));
  EXPECT_FALSE(p.statusIsValid(201));
  EXPECT_EQ(p.body_regex, "\"status\":\\s*\"ok\"");
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"Host", "api.example.com"}, {"X-Probe", "1"}, {"X-Empty", ""}};
  EXPECT_EQ(p.headers, headers);  // config order kept
  EXPECT_TRUE(p.follow_redirects);
  EXPECT_EQ(p.ca_file, "/etc/ssl/certs/ca-certificates.crt");
  EXPECT_EQ(p.interval, 30s);
  EXPECT_EQ(p.timeout, 2s);
  const auto& q = result.config->http_probes.at(1);
  EXPECT_TRUE(q.insecure_skip_verify);
  EXPECT_EQ(q.method, "HEAD");
}

TEST(HttpProbeConfig, UrlErrors) {
  EXPECT_TRUE(hasError("http_probes:\n  - name: a\n", "c.yml:2:5: an http probe needs 'url'"));
  EXPECT_TRUE(hasError("http_probes:\n  - name: a\n    url: ftp://127.0.0.1/x\n",
                       "c.yml:3:10: url must start with http:// or https://, got 'ftp://'"));
  EXPECT_TRUE(hasError("http_probes:\n  - name: a\n    url: 'http://exa mple.com/'\n",
                       "c.yml:3:10: url 'http://exa mple.com/' is not a valid URL"));
}

TEST(HttpProbeConfig, NameErrors) {
  EXPECT_TRUE(hasError("http_probes:\n  - url: http://127.0.0.1/\n", "c.yml:2:5: an http probe needs 'name'"));
  EXPECT_TRUE(hasError(R"(http_probes:
  - name: a
    url: http://127.0.0.1/
  - name: a
    url: http://127.0.0.1/
)",
                       "c.yml:4:11: duplicate http probe target name 'a'"));
}

TEST(HttpProbeConfig, MethodAndBodyErrors) {
  const std::string head = "http_probes:\n  - name: a\n    url: http://127.0.0.1/\n";
  EXPECT_TRUE(hasError(head + "    method: TRACE\n",
                       "c.yml:4:13: method must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"));
  EXPECT_TRUE(hasError(head + "    method: HEAD\n    body: x\n", "c.yml:5:11: a HEAD request cannot carry a body"));
  EXPECT_TRUE(hasError(head + "    method: HEAD\n    body_regex: ok\n",
                       "c.yml:5:17: body_regex needs a response body: not with method HEAD"));
}

TEST(HttpProbeConfig, StatusCodeErrors) {
  const std::string head = "http_probes:\n  - name: a\n    url: http://127.0.0.1/\n";
  EXPECT_TRUE(hasError(head + "    valid_status_codes: [200, 99, 2xx]\n",
                       "c.yml:4:31: 'valid_status_codes' entries must be status codes from 100 to 599, got '99'"));
  EXPECT_TRUE(hasError(head + "    valid_status_codes: [200, 99, 2xx]\n",
                       "c.yml:4:35: 'valid_status_codes' entries must be status codes from 100 to 599, got '2xx'"));
  EXPECT_TRUE(hasError(head + "    valid_status_codes: []\n",
                       "c.yml:4:25: 'valid_status_codes' must be a non-empty list of HTTP status codes such as [200, 204]"));
  EXPECT_TRUE(hasError(head + "    valid_status_codes: 200\n",
                       "c.yml:4:25: 'valid_status_codes' must be a non-empty list of HTTP status codes such as [200, 204]"));
}

TEST(HttpProbeConfig, RegexError) {
  const auto errors = errorsOf("http_probes:\n  - name: a\n    url: http://127.0.0.1/\n    body_regex: '(ok'\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("c.yml:4:17: body_regex is not a valid ECMAScript regex: ", 0), 0u) << errors[0];
}

TEST(HttpProbeConfig, HeaderErrors) {
  const std::string head = "http_probes:\n  - name: a\n    url: http://127.0.0.1/\n";
  EXPECT_TRUE(hasError(head + "    headers: [a, b]\n", "c.yml:4:14: 'headers' must be a mapping of header names to values"));
  EXPECT_TRUE(hasError(head + "    headers:\n      'Bad Name': x\n",
                       "c.yml:5:7: header name 'Bad Name' is not a valid HTTP field name"));
  EXPECT_TRUE(hasError(head + "    headers:\n      X-A: 1\n      x-a: 2\n",
                       "c.yml:6:7: duplicate header 'x-a' (names are case-insensitive)"));
  EXPECT_TRUE(hasError(head + "    headers:\n      X-A: [1, 2]\n", "c.yml:5:12: the value of header 'X-A' must be a string"));
  EXPECT_TRUE(hasError(head + "    headers:\n      X-A: \"a\\r\\nX-Injected: 1\"\n",
                       "c.yml:5:12: the value of header 'X-A' must not contain line breaks"));
}

TEST(HttpProbeConfig, TlsErrors) {
  const std::string head = "http_probes:\n  - name: a\n    url: https://127.0.0.1/\n";
  EXPECT_TRUE(hasError(head + "    ca_file: /nonexistent/ca.pem\n",
                       "c.yml:4:14: ca_file '/nonexistent/ca.pem' cannot be read"));
  EXPECT_TRUE(hasError(head + "    insecure_skip_verify: true\n    ca_file: /etc/hostname\n",
                       "c.yml:5:14: set either ca_file or insecure_skip_verify, not both"));
  EXPECT_TRUE(hasError(head + "    insecure_skip_verify: maybe\n", "c.yml:4:27: 'insecure_skip_verify' must be true or false"));
  EXPECT_TRUE(hasError(head + "    follow_redirects: 2\n", "c.yml:4:23: 'follow_redirects' must be true or false"));
}

TEST(HttpProbeConfig, IntervalTimeoutAndUnknownKeys) {
  const std::string head = "http_probes:\n  - name: a\n    url: http://127.0.0.1/\n";
  EXPECT_TRUE(hasError(head + "    interval: 1s\n    timeout: 2s\n", "c.yml:5:14: timeout (2s) must not exceed interval (1s)"));
  EXPECT_TRUE(hasError(head + "    timout: 2s\n", "c.yml:4:5: unknown key 'timout' in an http probe"));
  EXPECT_TRUE(hasError("http_probes:\n  name: a\n", "c.yml:2:3: 'http_probes' must be a list"));
}

TEST(HttpProbeConfig, BasicAuthComesFromASecret) {
  setenv("APPHEALTH_TEST_PROBE_PASSWORD", "pw", 1);
  const auto result = loadConfigText(R"(http_probes:
  - name: a
    url: http://127.0.0.1/
    username: monitor
    password_env: APPHEALTH_TEST_PROBE_PASSWORD
)", "c.yml");
  ASSERT_TRUE(result.errors.empty()) << result.errors.front().format();
  EXPECT_EQ(result.config->http_probes[0].username, "monitor");
  EXPECT_EQ(result.config->http_probes[0].password.env, "APPHEALTH_TEST_PROBE_PASSWORD");

  const std::string head = "http_probes:\n  - name: a\n";
  EXPECT_TRUE(hasError(head + "    url: http://monitor:pw@127.0.0.1/\n",
                       "c.yml:3:10: the url must not contain a password: use username with password_file or password_env"));
  EXPECT_TRUE(hasError(head + "    url: http://127.0.0.1/\n    username: monitor\n    password: pw\n",
                       "c.yml:5:15: inline passwords are not accepted: use password_file or password_env"));
  EXPECT_TRUE(hasError(head + "    url: http://127.0.0.1/\n    password_env: APPHEALTH_TEST_PROBE_PASSWORD\n",
                       "c.yml:4:19: a password needs a username (HTTP basic auth)"));
}

TEST(CertExpireDate, OpenSslFormats) {
  // What libcurl 7.88 + OpenSSL 3 put in CURLINFO_CERTINFO's "Expire date" (ASN1_TIME_print).
  EXPECT_EQ(parseCertExpireDate("Nov 23 12:00:00 2027 GMT"), utc(2027, 11, 23, 12, 0, 0));
  EXPECT_EQ(parseCertExpireDate("Feb  3 07:08:09 2030 GMT"), utc(2030, 2, 3, 7, 8, 9));  // day padded
  EXPECT_EQ(parseCertExpireDate("Dec 31 23:59:59 9999 GMT"), utc(9999, 12, 31, 23, 59, 59));
  EXPECT_EQ(parseCertExpireDate("Jan  1 00:00:00 1970 GMT"), 0.0);
  EXPECT_EQ(parseCertExpireDate(" Nov 23 12:00:00 2027 GMT\n"), utc(2027, 11, 23, 12, 0, 0));
  EXPECT_EQ(parseCertExpireDate("Nov 23 12:00:00 2027"), utc(2027, 11, 23, 12, 0, 0));
  EXPECT_DOUBLE_EQ(*parseCertExpireDate("Nov 23 12:00:00.5 2027 GMT"), utc(2027, 11, 23, 12, 0, 0) + 0.5);
}

TEST(CertExpireDate, Rejects) {
  for (const char* bad : {"", "GMT", "2027-11-23 12:00:00", "Foo 23 12:00:00 2027 GMT", "Nov 32 12:00:00 2027 GMT",
                          "Nov 23 25:00:00 2027 GMT", "Nov 23 12:00 2027 GMT", "Nov 23 12:00:00 2027 UTC",
                          "Nov 23 12:00:00 GMT"}) {
    EXPECT_FALSE(parseCertExpireDate(bad).has_value()) << bad;
  }
}
