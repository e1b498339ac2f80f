// The web config parser (exporter-toolkit's format) and the bcrypt check, without a listener.
// TLS files, real clients and htpasswd's hashes at run time are in integration/WebConfigTest.cpp.

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "app/CommandLine.h"
#include "web/PasswordHash.h"
#include "web/WebConfig.h"

using namespace apphealth;

namespace {

// htpasswd -nbBC 4 u pw (apache2-utils), kept here so the unit tests need no tool.
const std::string kHash = "$2y$04$zm/HKWQJ3lGqiAaWE21sJeAd3./jx2dcVpP4QHZuPUv7TjhxYiv8u";

class WebConfigFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("apphealth-webcfg-unit-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::vector<std::string> errors(const std::string& yaml, WebConfigUse use = WebConfigUse::MainListener) {
    const auto path = (dir_ / "web.yml").string();
    std::ofstream(path) << yaml;
    std::vector<std::string> out;
    for (const auto& e : loadWebConfigFile(path, use).errors) out.push_back(e.format().substr(path.size() + 1));
    return out;
  }
  WebConfig load(const std::string& yaml) {
    const auto path = (dir_ / "web.yml").string();
    std::ofstream(path) << yaml;
    auto result = loadWebConfigFile(path, WebConfigUse::MainListener);
    EXPECT_TRUE(result.errors.empty()) << result.errors.front().format();
    return result.config.value_or(WebConfig{});
  }
  std::filesystem::path dir_;
};

}  // namespace

TEST(PasswordHash, BcryptFromHtpasswdMatchesOnlyItsPassword) {
  EXPECT_FALSE(bcryptHashProblem(kHash));
  EXPECT_TRUE(bcryptMatches("pw", kHash));
  EXPECT_FALSE(bcryptMatches("pw ", kHash));
  EXPECT_FALSE(bcryptMatches("", kHash));
  EXPECT_FALSE(bcryptMatches(std::string("pw\0x", 4), kHash));
  // $2b$ is the same algorithm under OpenBSD's name.
  EXPECT_TRUE(bcryptMatches("pw", "$2b$" + kHash.substr(4)));
}

TEST(PasswordHash, RefusesWhatIsNotBcrypt) {
  EXPECT_TRUE(bcryptHashProblem("pw"));
  EXPECT_TRUE(bcryptHashProblem("$1$abcdefgh$0123456789012345678901"));  // MD5-crypt
  EXPECT_TRUE(bcryptHashProblem(kHash.substr(0, 59)));
  EXPECT_TRUE(bcryptHashProblem("$2y$99$" + kHash.substr(7)));  // cost out of range
  EXPECT_FALSE(bcryptMatches("pw", "pw"));
  EXPECT_EQ(bcryptHashProblem("pw")->find(kHash.substr(7)), std::string::npos);
}

TEST_F(WebConfigFile, EmptyFileMeansNothingToDo) {
  const auto c = load("");
  EXPECT_FALSE(c.tls);
  EXPECT_TRUE(c.users.empty());
  EXPECT_TRUE(c.headers.empty());
}

TEST_F(WebConfigFile, UsersAndHeaders) {
  const auto c = load("basic_auth_users:\n  u: " + kHash +
                      "\nhttp_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: sameorigin\n"
                      "    X-XSS-Protection: \"\"\n");
  EXPECT_EQ(c.users.at("u"), kHash);
  ASSERT_EQ(c.headers.size(), 1u);  // blank values are unset, as exporter-toolkit documents
  EXPECT_EQ(c.headers[0], (std::pair<std::string, std::string>{"X-Frame-Options", "sameorigin"}));
}

TEST_F(WebConfigFile, EveryProblemWithItsLineAndColumn) {
  EXPECT_EQ(errors("tls_server_config:\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n  curve_preferences: [X25519]\n"),
            (std::vector<std::string>{
                "2:18: cipher_suites is not supported by apphealth_exporter (GnuTLS and the system's crypto policy "
                "choose them); remove it",
                "3:22: curve_preferences is not supported by apphealth_exporter (GnuTLS and the system's crypto "
                "policy choose them); remove it"}));
  EXPECT_EQ(errors("rate_limit:\n  interval: 1s\n  burst: 2\n"),
            (std::vector<std::string>{"2:3: rate_limit is not supported by apphealth_exporter; remove it"}));
  EXPECT_EQ(errors("basic_auth_user:\n  u: x\n"), (std::vector<std::string>{"1:1: unknown key 'basic_auth_user' in the web config"}));
  EXPECT_EQ(errors("basic_auth_users:\n  \"a:b\": " + kHash + "\n"),
            (std::vector<std::string>{"2:3: user name 'a:b' contains ':', which basic authentication cannot carry"}));
  EXPECT_EQ(errors("tls_server_config:\n  cert: x\n  cert_file: y\n  key: z\n"),
            (std::vector<std::string>{"2:3: tls_server_config needs cert_file (or cert)",
                                      "3:14: 'cert' and 'cert_file' exclude each other"}));
  EXPECT_EQ(errors("tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n  cert: x\n  key: y\n  "
                   "min_version: TLS13\n  max_version: TLS12\n"),
            (std::vector<std::string>{"2:3: cannot load the certificate: No certificate was found.",
                                      "2:21: client_auth_type RequireAndVerifyClientCert needs client_ca_file (or client_ca)",
                                      "5:16: min_version is above max_version"}));
  // The beacon listener's file: no basic auth (browsers cannot send it).
  EXPECT_EQ(errors("basic_auth_users:\n  u: " + kHash + "\n", WebConfigUse::BeaconListener).size(), 1u);
}

TEST(CommandLine, WebFlags) {
  auto r = parseCommandLine({"--config.file=a.yml", "--web.config.file", "web.yml"});
  ASSERT_TRUE(r.options) << r.error;
  EXPECT_EQ(r.options->webConfigFile, "web.yml");
  EXPECT_TRUE(r.options->enableLifecycle);  // as before the flag existed
  EXPECT_FALSE(parseCommandLine({"--config.file=a", "--web.enable-lifecycle=false"}).options->enableLifecycle);
  EXPECT_FALSE(parseCommandLine({"--config.file=a", "--no-web.enable-lifecycle"}).options->enableLifecycle);
  EXPECT_TRUE(parseCommandLine({"--config.file=a", "--web.enable-lifecycle"}).options->enableLifecycle);
  EXPECT_EQ(parseCommandLine({"--config.file=a", "--web.enable-lifecycle=no"}).error,
            "--web.enable-lifecycle takes true or false, got 'no'");
}
