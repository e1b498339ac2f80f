// --web.config.file (exporter-toolkit's format) through the real exporter binary: TLS with a
// certificate the test makes (openssl), real TLS clients (libcurl; Prometheus itself), client
// certificates, basic auth with htpasswd's bcrypt hashes, headers, broken files reported with
// file:line:col, and changes taking effect without a restart.

#include <gtest/gtest.h>

#include <signal.h>

#include <fstream>
#include <sstream>

#include "SecureExporter.h"
#include "TempPrometheus.h"
#include "TestCertificates.h"
#include "TestSupport.h"
#include "TlsClient.h"

using namespace apphealth::test;

namespace {

const std::string kNoCollectors = "{}\n";

std::string tlsSection(const TestCertificates::Issued& server, const std::string& extra = "") {
  return "tls_server_config:\n  cert_file: " + server.cert + "\n  key_file: " + server.key + "\n" + extra;
}

std::string fileContent(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Everything the exporter tells the outside: its log, /metrics and the status page.
void expectNoSecretIn(const std::string& where, const std::string& text, const std::vector<std::string>& secrets) {
  for (const auto& secret : secrets) EXPECT_EQ(text.find(secret), std::string::npos) << where << " leaks a secret";
}

}  // namespace

TEST(WebConfig, TlsAndBasicAuthOnTheMainListener) {
  TestCertificates ca;
  const auto server = ca.server();
  const std::string hash = htpasswdHash("alice", "correct horse");
  SecureExporter e(kNoCollectors, tlsSection(server) +
                                      "basic_auth_users:\n  alice: " + hash + "\n"
                                      "http_server_config:\n  headers:\n"
                                      "    X-Frame-Options: deny\n"
                                      "    Strict-Transport-Security: max-age=31536000\n"
                                      "    Content-Security-Policy: default-src 'self'\n");

  TlsRequest good{.url = e.httpsUrl("/metrics"), .caFile = ca.caCert(), .user = "alice", .password = "correct horse"};
  for (const std::string version : {"1.2", "1.3"}) {
    good.tlsMax = version;
    const auto r = tlsRequest(good);
    ASSERT_EQ(r.curlCode, 0) << "TLS " << version << ": " << r.curlError << "\n" << e.log();
    EXPECT_EQ(r.status, 200) << version;
    EXPECT_NE(r.body.find("apphealth_build_info"), std::string::npos);
    EXPECT_EQ(r.header("x-frame-options"), "deny");
    EXPECT_EQ(r.header("strict-transport-security"), "max-age=31536000");
  }

  // No password, a wrong one, an unknown user: 401 with a Basic challenge, never the metrics.
  for (const auto& [user, password] : std::vector<std::pair<std::string, std::string>>{
           {"", ""}, {"alice", "wrong"}, {"alice", ""}, {"mallory", "correct horse"}}) {
    TlsRequest bad{.url = e.httpsUrl("/metrics"), .caFile = ca.caCert(), .user = user, .password = password};
    const auto r = tlsRequest(bad);
    ASSERT_EQ(r.curlCode, 0) << r.curlError;
    EXPECT_EQ(r.status, 401) << "user '" << user << "'";
    EXPECT_EQ(r.header("www-authenticate").rfind("Basic realm=", 0), 0u) << r.header("www-authenticate");
    EXPECT_EQ(r.body.find("apphealth_"), std::string::npos);
    EXPECT_EQ(r.header("x-frame-options"), "deny");  // headers on refusals too
  }
  // Paths without a route: 401 before 404, so nothing about the listener is told to strangers.
  EXPECT_EQ(tlsRequest({.url = e.httpsUrl("/nope"), .caFile = ca.caCert()}).status, 401);
  EXPECT_EQ(tlsRequest({.url = e.httpsUrl("/nope"), .caFile = ca.caCert(), .user = "alice", .password = "correct horse"}).status,
            404);
  // The status page keeps its own, stricter Content-Security-Policy (the handler's header wins,
  // as in exporter-toolkit), and gets the others.
  const auto page = tlsRequest({.url = e.httpsUrl("/"), .caFile = ca.caCert(), .user = "alice", .password = "correct horse"});
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.header("content-security-policy").rfind("default-src 'none'", 0), 0u);
  EXPECT_EQ(page.header("x-frame-options"), "deny");

  // Plain HTTP to the TLS port: refused with the reason, as Go's servers do; nothing served.
  const auto plain = httpRequest("GET", e.httpUrl("/metrics"));
  EXPECT_EQ(plain.status, 400);
  EXPECT_EQ(plain.body, "Client sent an HTTP request to an HTTPS server.\n");
  // A client that does not trust the exporter's CA refuses the server (the certificate is the
  // one the test made, checked for real).
  TestCertificates otherCa;
  const auto untrusted = tlsRequest({.url = e.httpsUrl("/metrics"), .caFile = otherCa.caCert(), .user = "alice",
                                     .password = "correct horse"});
  EXPECT_NE(untrusted.curlCode, 0);
  // Still serving after all of it.
  good.tlsMax.clear();
  EXPECT_EQ(tlsRequest(good).status, 200);

  const auto metrics = tlsRequest(good).body;
  const auto status = tlsRequest({.url = e.httpsUrl("/api/v1/status"), .caFile = ca.caCert(), .user = "alice",
                                  .password = "correct horse"}).body;
  const std::vector<std::string> secrets = {hash, hash.substr(7), "correct horse",
                                            fileContent(server.key).substr(30, 40)};
  expectNoSecretIn("the log", e.log(), secrets);
  expectNoSecretIn("/metrics", metrics, secrets);
  expectNoSecretIn("the status API", status, secrets);
  expectNoSecretIn("the status page", page.body, secrets);
  EXPECT_NE(e.log().find("(TLS, basic auth for 1 users)"), std::string::npos) << e.log();
}

TEST(WebConfig, BasicAuthAndHeadersWithoutTls) {
  const std::string hash = htpasswdHash("prometheus", "s3cret");
  SecureExporter e(kNoCollectors, "basic_auth_users:\n  prometheus: " + hash +
                                      "\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n");
  const auto none = httpRequest("GET", e.httpUrl("/metrics"));
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.headers.at("www-authenticate").rfind("Basic", 0), 0u);
  EXPECT_EQ(none.headers.at("x-content-type-options"), "nosniff");
  EXPECT_EQ(httpRequest("GET", e.httpUrl("/metrics"), {"Authorization: Basic cHJvbWV0aGV1czp3cm9uZw=="}).status,
            401);  // prometheus:wrong
  const auto ok = httpRequest("GET", e.httpUrl("/metrics"), {"Authorization: Basic cHJvbWV0aGV1czpzM2NyZXQ="});
  EXPECT_EQ(ok.status, 200);  // prometheus:s3cret
  EXPECT_EQ(ok.headers.at("x-content-type-options"), "nosniff");
  EXPECT_EQ(ok.body.find("apphealth_web_connections_refused_total"), std::string::npos);  // only with TLS
  const auto missing = httpRequest("GET", e.httpUrl("/nope"), {"Authorization: Basic cHJvbWV0aGV1czpzM2NyZXQ="});
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.headers.at("x-content-type-options"), "nosniff");
  // A malformed header is a missing one.
  EXPECT_EQ(httpRequest("GET", e.httpUrl("/metrics"), {"Authorization: Basic !!!"}).status, 401);
  EXPECT_EQ(httpRequest("GET", e.httpUrl("/metrics"), {"Authorization: Bearer cHJvbWV0aGV1czpzM2NyZXQ="}).status, 401);

  // A broken file fails closed: 500 for everyone (as exporter-toolkit), until it is fixed.
  e.writeWebConfig("basic_auth_users:\n  prometheus: [\n");
  EXPECT_TRUE(waitFor(
      [&] { return httpRequest("GET", e.httpUrl("/metrics"), {"Authorization: Basic cHJvbWV0aGV1czpzM2NyZXQ="}).status == 500; },
      10s));
  EXPECT_EQ(httpRequest("GET", e.httpUrl("/metrics")).status, 500);
  e.writeWebConfig("basic_auth_users:\n  prometheus: " + hash + "\n");
  EXPECT_TRUE(waitFor(
      [&] { return httpRequest("GET", e.httpUrl("/metrics"), {"Authorization: Basic cHJvbWV0aGV1czpzM2NyZXQ="}).status == 200; },
      10s));
}

TEST(WebConfig, ClientCertificatesRequiredAndVerified) {
  TestCertificates ca;
  const auto server = ca.server();
  const auto client = ca.client("prometheus", {"DNS:prometheus.example"});
  const auto other = ca.client("someone-else", {"DNS:other.example"});
  const auto rogue = ca.selfSigned("rogue");
  SecureExporter e(kNoCollectors, tlsSection(server, "  client_auth_type: RequireAndVerifyClientCert\n"
                                                     "  client_ca_file: " + ca.caCert() + "\n"
                                                     "  client_allowed_sans: [prometheus.example]\n"));
  for (const std::string version : {"1.2", "1.3"}) {
    const auto ok = tlsRequest({.url = e.httpsUrl("/metrics"), .caFile = ca.caCert(), .certFile = client.cert,
                                .keyFile = client.key, .tlsMax = version});
    EXPECT_EQ(ok.status, 200) << "TLS " << version << ": " << ok.curlError;
    // Without a certificate, with one no trusted CA signed, with one of the CA but another
    // name: no response at all (the handshake fails; TLS 1.3 clients see it at their first read).
    const auto none = tlsRequest({.url = e.httpsUrl("/metrics"), .caFile = ca.caCert(), .tlsMax = version});
    EXPECT_EQ(none.status, 0) << version;
    EXPECT_NE(none.curlCode, 0) << version;
    const auto untrusted = tlsRequest({.url = e.httpsUrl("/metrics"), .caFile = ca.caCert(), .certFile = rogue.cert,
                                       .keyFile = rogue.key, .tlsMax = version});
    EXPECT_EQ(untrusted.status, 0) << version;
    const auto wrongName = tlsRequest({.url = e.httpsUrl("/metrics"), .caFile = ca.caCert(), .certFile = other.cert,
                                       .keyFile = other.key, .tlsMax = version});
    EXPECT_EQ(wrongName.status, 0) << version;
  }
  EXPECT_TRUE(waitFor([&] { return e.log().find("TLS client refused: no client certificate") != std::string::npos; }, 5s))
      << e.log();
  EXPECT_NE(e.log().find("TLS client refused: client certificate not trusted"), std::string::npos);
  EXPECT_NE(e.log().find("TLS client refused: the client certificate has none of client_allowed_sans"), std::string::npos);
  // Each of the 6 refused handshakes counted once, the accepted ones not at all.
  const auto scrape = tlsRequest({.url = e.httpsUrl("/metrics"), .caFile = ca.caCert(), .certFile = client.cert,
                                  .keyFile = client.key});
  ASSERT_EQ(scrape.status, 200) << scrape.curlError;
  EXPECT_EQ(parseMetrics(scrape.body)["apphealth_web_connections_refused_total{reason=\"tls\"}"], 6) << scrape.body;
}

TEST(WebConfig, PrometheusScrapesWithTlsAndBasicAuth) {
  TestCertificates ca;
  const auto server = ca.server();
  const auto client = ca.client("prometheus");
  TempDir secrets("apphealth-prom-secrets");
  secrets.write("password", "scrape-me\n");
  secrets.write("wrong", "not-it\n");
  SecureExporter e(kNoCollectors, tlsSection(server, "  client_auth_type: RequireAndVerifyClientCert\n"
                                                     "  client_ca_file: " + ca.caCert() + "\n") +
                                      "basic_auth_users:\n  prometheus: " + htpasswdHash("prometheus", "scrape-me") + "\n");
  const std::string target = "127.0.0.1:" + std::to_string(e.port());
  auto job = [&](const std::string& name, const std::string& passwordFile) {
    return "  - job_name: " + name + "\n"
           "    scheme: https\n"
           "    tls_config:\n"
           "      ca_file: " + ca.caCert() + "\n"
           "      cert_file: " + client.cert + "\n"
           "      key_file: " + client.key + "\n"
           "      server_name: localhost\n"
           "    basic_auth:\n"
           "      username: prometheus\n"
           "      password_file: " + passwordFile + "\n"
           "    static_configs:\n"
           "      - targets: ['" + target + "']\n";
  };
  TempPrometheus prometheus(job("apphealth", secrets.file("password")) + job("wrong_password", secrets.file("wrong")));
  // up is 1 once a scrape succeeded, and the exporter's own series came through TLS and auth.
  const bool scraped = waitFor(
      [&] {
        return prometheus.value("up{job=\"apphealth\"}") == 1.0 &&
               prometheus.value("apphealth_build_info{job=\"apphealth\"}") == 1.0;
      },
      60s);
  EXPECT_TRUE(scraped) << prometheus.targets() << "\n" << e.log();
  // The same scrape with a wrong password: the target is down, with the exporter's 401.
  EXPECT_TRUE(waitFor([&] { return prometheus.value("up{job=\"wrong_password\"}") == 0.0; }, 60s)) << prometheus.targets();
  EXPECT_NE(prometheus.targets().find("401"), std::string::npos) << prometheus.targets();
}

TEST(WebConfig, BrokenFilesAreReportedWithFileLineAndColumn) {
  TestCertificates ca;
  const auto server = ca.server();
  const auto other = ca.server("other");
  TempDir dir("apphealth-webcfg");
  dir.write("config.yml", kNoCollectors);
  struct Case {
    std::string yaml;
    std::string expected;  // after "web.yml:"
  };
  const std::vector<Case> cases = {
      {"tls_server_config:\n  cert_file: " + server.cert + "\n  key_file: " + server.key + "\n  clientauth: x\n",
       "4:3: unknown key 'clientauth' in tls_server_config"},
      {"tls_server_config:\n  cert_file: " + server.cert + "\n  key_file: " + server.key +
           "\n  client_auth_type: RequireAndVerify\n",
       "4:21: client_auth_type must be NoClientCert, RequestClientCert"},
      {"tls_server_config:\n  cert_file: " + server.cert + "\n  key_file: " + other.key + "\n",
       "2:3: the private key does not belong to the certificate"},
      {"tls_server_config:\n  cert_file: " + server.cert + "\n", "2:3: tls_server_config needs key_file (or key)"},
      {"tls_server_config:\n  cert_file: /nonexistent/cert.pem\n  key_file: " + server.key + "\n",
       "2:14: cannot read cert_file /nonexistent/cert.pem"},
      {"tls_server_config:\n  cert_file: " + server.cert + "\n  key_file: " + server.key + "\n  client_ca_file: " +
           ca.caCert() + "\n",
       "4:19: a client CA is set but client_auth_type does not ask for client certificates"},
      {"tls_server_config:\n  cert_file: " + server.cert + "\n  key_file: " + server.key + "\n  min_version: TLS14\n",
       "4:16: min_version must be TLS10, TLS11, TLS12 or TLS13"},
      {"basic_auth_users:\n  alice: plaintext\n", "2:10: the password of 'alice' is not a bcrypt hash"},
      {"http_server_config:\n  headers:\n    Server: apphealth\n", "3:5: HTTP header 'Server' cannot be configured"},
      {"http_server_config:\n  headers:\n    X-Frame-Options: allow\n", "3:22: invalid value for X-Frame-Options"},
      {"tls_server_config:\n  cert_file: [a\n", "3:1: "},  // YAML syntax error
  };
  for (const auto& c : cases) {
    dir.write("web.yml", c.yaml);
    const std::string expected = dir.file("web.yml") + ":" + c.expected;
    std::string output;
    // At startup: a clear error, exit 1, nothing listening.
    const int port = freePort();
    EXPECT_EQ(runExporter({"--config.file=" + dir.file("config.yml"), "--web.config.file=" + dir.file("web.yml"),
                           "--web.listen-address=127.0.0.1:" + std::to_string(port)},
                          output),
              1)
        << c.yaml;
    EXPECT_NE(output.find(expected), std::string::npos) << "expected " << expected << " in:\n" << output;
    // And with --check-config.
    EXPECT_EQ(runExporter({"--config.file=" + dir.file("config.yml"), "--web.config.file=" + dir.file("web.yml"),
                           "--check-config"},
                          output),
              1);
    EXPECT_NE(output.find(expected), std::string::npos) << "expected " << expected << " in:\n" << output;
    // Never the key or a hash in the message.
    EXPECT_EQ(output.find("PRIVATE KEY"), std::string::npos) << output;
  }
  // A good file passes --check-config and says what it found.
  dir.write("web.yml", tlsSection(server) + "basic_auth_users:\n  a: " + htpasswdHash("a", "b") + "\n");
  std::string output;
  EXPECT_EQ(runExporter({"--config.file=" + dir.file("config.yml"), "--web.config.file=" + dir.file("web.yml"),
                         "--check-config"},
                        output),
            0)
      << output;
  EXPECT_NE(output.find("web config is valid (TLS, 1 basic auth users, 0 headers)"), std::string::npos) << output;
}

TEST(WebConfig, ChangesApplyWithoutRestartAndABrokenFileFailsClosed) {
  TestCertificates ca;
  const auto server = ca.server();
  SecureExporter e(kNoCollectors, tlsSection(server) + "basic_auth_users:\n  alice: " + htpasswdHash("alice", "one") + "\n");
  auto as = [&](const std::string& user, const std::string& password) {
    return tlsRequest({.url = e.httpsUrl("/metrics"), .caFile = ca.caCert(), .user = user, .password = password});
  };
  ASSERT_EQ(as("alice", "one").status, 200);

  // A user replaced: the next requests see it (the file is checked at most once a second).
  e.writeWebConfig(tlsSection(server) + "basic_auth_users:\n  bob: " + htpasswdHash("bob", "two") + "\n");
  EXPECT_TRUE(waitFor([&] { return as("bob", "two").status == 200; }, 10s)) << e.log();
  EXPECT_EQ(as("alice", "one").status, 401);

  // A broken file: TLS connections are refused (as exporter-toolkit's handshakes fail) and the
  // log says where.
  e.writeWebConfig(tlsSection(server) + "basic_auth_users:\n  bob: not-a-hash\n");
  EXPECT_TRUE(waitFor([&] { return as("bob", "two").curlCode != 0; }, 10s));
  EXPECT_NE(e.log().find(e.webConfigPath() + ":5:8: the password of 'bob' is not a bcrypt hash"), std::string::npos)
      << e.log();
  EXPECT_EQ(as("bob", "two").status, 0);

  // Fixed, with a certificate from another CA (a renewal): new connections get the new one.
  TestCertificates renewedCa;
  const auto renewed = renewedCa.server();
  e.writeWebConfig(tlsSection(renewed) + "basic_auth_users:\n  bob: " + htpasswdHash("bob", "two") + "\n");
  EXPECT_TRUE(waitFor(
      [&] {
        return tlsRequest({.url = e.httpsUrl("/metrics"), .caFile = renewedCa.caCert(), .user = "bob", .password = "two"})
                   .status == 200;
      },
      10s))
      << e.log();
  EXPECT_NE(as("bob", "two").curlCode, 0);  // the old CA no longer vouches for the server
  // The connections refused while the file was broken were counted (a client that does not
  // trust the new certificate is the client's refusal, not the listener's).
  const auto scrape = tlsRequest({.url = e.httpsUrl("/metrics"), .caFile = renewedCa.caCert(), .user = "bob", .password = "two"});
  ASSERT_EQ(scrape.status, 200);
  EXPECT_GE(parseMetrics(scrape.body)["apphealth_web_connections_refused_total{reason=\"tls\"}"], 1) << scrape.body;

  // SIGHUP re-reads at once (no second's wait) and a reload leaves the web config working.
  e.writeWebConfig(tlsSection(renewed) + "basic_auth_users:\n  carol: " + htpasswdHash("carol", "three") + "\n");
  e.signal(SIGHUP);
  EXPECT_TRUE(waitFor(
      [&] {
        return tlsRequest({.url = e.httpsUrl("/metrics"), .caFile = renewedCa.caCert(), .user = "carol",
                           .password = "three"})
                   .status == 200;
      },
      10s));
}

TEST(WebConfig, BeaconListenerWithItsOwnTlsAndNoBasicAuth) {
  TestCertificates ca;
  const auto server = ca.server();
  TempDir dir("apphealth-beacon-tls");
  dir.write("beacon-web.yml", tlsSection(server) + "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n");
  const int beaconPort = freePort();
  const std::string config = "ingest:\n  listen_address: \"127.0.0.1:" + std::to_string(beaconPort) +
                             "\"\n  web_config_file: " + dir.file("beacon-web.yml") + "\n  rate_per_second: 1000\n";
  // The main listener asks for a password; the beacon listener must not.
  SecureExporter e(config, "basic_auth_users:\n  prometheus: " + htpasswdHash("prometheus", "pw") + "\n");
  const std::string beacon = "https://localhost:" + std::to_string(beaconPort);
  const auto posted = tlsRequest({.method = "POST", .url = beacon + "/ingest/vitals", .caFile = ca.caCert(),
                                  .headers = {"Content-Type: text/plain;charset=UTF-8"},
                                  .body = R"({"name":"LCP","value":1200,"id":"v4-tls","page":"/"})"});
  EXPECT_EQ(posted.status, 204) << posted.curlError << "\n" << e.log();
  EXPECT_EQ(posted.header("www-authenticate"), "");
  EXPECT_EQ(posted.header("x-content-type-options"), "nosniff");
  // Nothing of the main listener is there: no /-/reload, no /metrics, no status page.
  for (const std::string path : {"/-/reload", "/metrics", "/"}) {
    const auto r = tlsRequest({.method = path == "/-/reload" ? "POST" : "GET", .url = beacon + path, .caFile = ca.caCert()});
    EXPECT_EQ(r.status, 404) << path;
  }
  EXPECT_EQ(httpRequest("POST", "http://127.0.0.1:" + std::to_string(beaconPort) + "/ingest/vitals").status, 400);
  // The main listener is plain HTTP here (its web config has no TLS) and counted the beacon.
  const auto metrics = httpRequest("GET", e.httpUrl("/metrics"), {"Authorization: Basic cHJvbWV0aGV1czpwdw=="});
  ASSERT_EQ(metrics.status, 200);
  EXPECT_EQ(parseMetrics(metrics.body)["apphealth_ingest_requests_total{endpoint=\"vitals\",code=\"204\"}"], 1);

  // A broken beacon web config: TLS connections are refused, and counted.
  dir.write("beacon-web.yml.new", tlsSection(server) + "  bogus: 1\n");
  std::rename(dir.file("beacon-web.yml.new").c_str(), dir.file("beacon-web.yml").c_str());
  EXPECT_TRUE(waitFor([&] { return tlsRequest({.url = beacon + "/ingest/vitals", .caFile = ca.caCert()}).curlCode != 0; }, 10s));
  const auto after = httpRequest("GET", e.httpUrl("/metrics"), {"Authorization: Basic cHJvbWV0aGV1czpwdw=="});
  EXPECT_GE(parseMetrics(after.body)["apphealth_ingest_connections_refused_total{reason=\"tls\"}"], 1) << after.body;
  EXPECT_NE(e.log().find(dir.file("beacon-web.yml") + ":4:3: unknown key 'bogus' in tls_server_config"), std::string::npos)
      << e.log();
}

TEST(WebConfig, BeaconWebConfigRefusesBasicAuth) {
  TempDir dir("apphealth-beacon-auth");
  dir.write("beacon-web.yml", "basic_auth_users:\n  u: " + htpasswdHash("u", "p") + "\n");
  dir.write("config.yml", "ingest:\n  web_config_file: beacon-web.yml\n");
  std::string output;
  EXPECT_EQ(runExporter({"--config.file=" + dir.file("config.yml"), "--check-config"}, output), 1);
  // Where the key is in the main config, then where the problem is in the web config.
  EXPECT_NE(output.find(dir.file("config.yml") + ":2:20: " + dir.file("beacon-web.yml") +
                        ":2:3: basic_auth_users cannot protect the beacon listener"),
            std::string::npos)
      << output;
}

TEST(WebConfig, LifecycleOffRefusesReloadButSighupStillReloads) {
  ExporterProcess e(kNoCollectors, {"--web.enable-lifecycle=false"});
  const auto refused = httpRequest("POST", e.url("/-/reload"));
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(refused.body, "the lifecycle API is disabled (--web.enable-lifecycle=false); send SIGHUP to reload\n");
  const auto before = e.metric("apphealth_config_last_reload_success_timestamp_seconds");
  ASSERT_TRUE(before);
  e.rewriteConfig("# edited\n{}\n");
  e.signal(SIGHUP);
  EXPECT_TRUE(waitFor([&] { return e.metric("apphealth_config_last_reload_success_timestamp_seconds") > before; }, 10s))
      << e.log();
  EXPECT_NE(e.log().find("configuration reloaded"), std::string::npos);
  // On by default: POST /-/reload works as it always has.
  ExporterProcess byDefault(kNoCollectors);
  EXPECT_EQ(httpRequest("POST", byDefault.url("/-/reload")).status, 200);
}
