// The listener-independent HTTP pieces: request framing, the same-origin guard of /-/reload,
// listen addresses, UTF-8 cuts.

#include <gtest/gtest.h>

#include <strings.h>
#include <unistd.h>

#include <map>

#include "http/Framing.h"
#include "http/ListenAddress.h"
#include "http/SameOrigin.h"
#include "util/Utf8.h"

using namespace apphealth;

namespace {

class FakeRequest : public HttpRequest {
 public:
  explicit FakeRequest(std::vector<std::pair<std::string, std::string>> headers, std::string method = "POST")
      : headers_(std::move(headers)), method_(std::move(method)) {}
  std::string_view method() const override { return method_; }
  std::string_view path() const override { return "/"; }
  std::string_view remoteAddress() const override { return "127.0.0.1"; }
  std::optional<std::string_view> header(std::string_view name) const override {
    for (const auto& [n, v] : headers_) {
      if (strcasecmp(n.c_str(), std::string(name).c_str()) == 0) return std::string_view(v);
    }
    return std::nullopt;
  }
  int headerCount(std::string_view name) const override {
    int count = 0;
    for (const auto& h : headers_) count += strcasecmp(h.first.c_str(), std::string(name).c_str()) == 0;
    return count;
  }
  long long contentLength() const override {
    const auto value = header("Content-Length");
    return value ? std::stoll(std::string(*value)) : -1;
  }
  std::string_view body() const override { return {}; }

 private:
  std::vector<std::pair<std::string, std::string>> headers_;
  std::string method_;
};

std::optional<int> framingStatus(std::vector<std::pair<std::string, std::string>> headers) {
  const auto problem = framingProblem(FakeRequest(std::move(headers)));
  if (!problem) return std::nullopt;
  EXPECT_TRUE(problem->close);
  return problem->status;
}

}  // namespace

TEST(Framing, SmugglingShapesAndUnknownLengthsAreRefused) {
  EXPECT_EQ(framingStatus({{"Content-Length", "10"}}), std::nullopt);
  EXPECT_EQ(framingStatus({}), std::nullopt);
  EXPECT_EQ(framingStatus({{"Content-Length", "10"}, {"content-length", "5"}}), 400);
  EXPECT_EQ(framingStatus({{"Content-Length", "10"}, {"Content-Length", "10"}}), 400);
  EXPECT_EQ(framingStatus({{"Content-Length", "10"}, {"Transfer-Encoding", "chunked"}}), 400);
  EXPECT_EQ(framingStatus({{"Transfer-Encoding", "chunked"}}), 411);
  EXPECT_EQ(framingStatus({{"Transfer-Encoding", "gzip, chunked"}}), 411);
  using Headers = std::vector<std::pair<std::string, std::string>>;
  EXPECT_TRUE(announcesBody(FakeRequest(Headers{{"Content-Length", "1"}})));
  EXPECT_FALSE(announcesBody(FakeRequest(Headers{{"Content-Length", "0"}})));
  EXPECT_TRUE(announcesBody(FakeRequest(Headers{{"Transfer-Encoding", "chunked"}})));
}

TEST(SameOrigin, CrossOriginAndForeignHostsAreRefused) {
  auto problem = [](std::vector<std::pair<std::string, std::string>> headers) {
    return foreignRequestProblem(FakeRequest(std::move(headers)));
  };
  // Not a browser: curl and config management tools, by address or name of this machine.
  EXPECT_EQ(problem({{"Host", "127.0.0.1:10045"}}), std::nullopt);
  EXPECT_EQ(problem({{"Host", "localhost:10045"}}), std::nullopt);
  EXPECT_EQ(problem({{"Host", "[::1]:10045"}}), std::nullopt);
  EXPECT_EQ(problem({{"Host", "10.1.2.3"}}), std::nullopt);
  char name[256] = "";
  ASSERT_EQ(gethostname(name, sizeof name - 1), 0);
  EXPECT_EQ(problem({{"Host", std::string(name) + ":10045"}}), std::nullopt);
  // A browser on a page of this server.
  EXPECT_EQ(problem({{"Host", "127.0.0.1:10045"}, {"Origin", "http://127.0.0.1:10045"}, {"Sec-Fetch-Site", "same-origin"}}),
            std::nullopt);
  EXPECT_EQ(problem({{"Host", "localhost"}, {"Origin", "http://localhost:80"}}), std::nullopt);

  EXPECT_NE(problem({{"Host", "127.0.0.1:10045"}, {"Origin", "https://evil.example"}}), std::nullopt);
  EXPECT_NE(problem({{"Host", "127.0.0.1:10045"}, {"Origin", "http://127.0.0.1:8080"}}), std::nullopt);
  EXPECT_NE(problem({{"Host", "127.0.0.1:10045"}, {"Origin", "null"}}), std::nullopt);
  EXPECT_NE(problem({{"Host", "127.0.0.1:10045"}, {"Sec-Fetch-Site", "cross-site"}}), std::nullopt);
  EXPECT_NE(problem({{"Host", "127.0.0.1:10045"}, {"Sec-Fetch-Site", "same-site"}}), std::nullopt);
  // DNS rebinding: same-origin for the browser, but the name is not this server's.
  const auto rebinding = problem({{"Host", "evil.example:10045"}, {"Origin", "http://evil.example:10045"}});
  ASSERT_NE(rebinding, std::nullopt);
  EXPECT_NE(rebinding->find("does not name this server"), std::string::npos) << *rebinding;
  EXPECT_NE(problem({}), std::nullopt);
}

TEST(ListenAddress, ParsesWhatTheFlagsAndConfigTake) {
  EXPECT_EQ(parseListenAddress(":10046").host, "");
  EXPECT_EQ(parseListenAddress(":10046").port, 10046);
  EXPECT_EQ(parseListenAddress("0.0.0.0:1").host, "");
  EXPECT_EQ(parseListenAddress("localhost:1").host, "127.0.0.1");
  EXPECT_EQ(parseListenAddress("10.0.0.7:80").host, "10.0.0.7");
  EXPECT_EQ(toCivetListeningPort(":10045"), "10045");
  EXPECT_EQ(toCivetListeningPort("127.0.0.1:10045"), "127.0.0.1:10045");
  for (const char* bad : {"10045", ":", ":65536", ":12a", "[::1]:10045", "beacons.example:80", "1.2.3:80"}) {
    EXPECT_THROW(parseListenAddress(bad), std::invalid_argument) << bad;
  }
}

TEST(Utf8, PrefixNeverSplitsACharacter) {
  EXPECT_EQ(utf8Prefix("abc", 5), "abc");
  EXPECT_EQ(utf8Prefix("ab\xC3\xA9", 3), "ab");
  EXPECT_EQ(utf8Prefix("ab\xC3\xA9", 4), "ab\xC3\xA9");
  EXPECT_EQ(utf8Prefix("\xF0\x9F\x98\x80x", 3), "");
  EXPECT_EQ(utf8Prefix("\xF0\x9F\x98\x80x", 4), "\xF0\x9F\x98\x80");
}
