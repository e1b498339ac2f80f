// The S3 client without a server: SigV4 pinned on AWS's published example, query encoding,
// and the parsing of listings, errors and non-S3 answers.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "clients/S3Client.h"

using namespace apphealth;
using namespace std::chrono_literals;

namespace {

// A one-shot HTTP server on 127.0.0.1 that keeps the request head it got and answers 200.
class CaptureServer {
 public:
  CaptureServer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(fd_, 1);
    thread_ = std::thread([this] {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      while (request_.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        request_.append(buf, static_cast<std::size_t>(n));
      }
      const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      (void)!send(c, answer.data(), answer.size(), 0);
      close(c);
    });
  }
  ~CaptureServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }
  std::string request() {
    if (thread_.joinable()) thread_.join();
    return request_;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::string request_;
  std::thread thread_;
};

}  // namespace

// AWS's Signature Version 4 example for S3 "GET Bucket (List Objects)": access key
// AKIAIOSFODNN7EXAMPLE, 2013-05-24T00:00:00Z, GET /?max-keys=2&prefix=J on examplebucket.
// The query is given out of order: the client must sort it (libcurl 7.88 signs it as sent).
TEST(S3SigV4, MatchesAwsPublishedListObjectsExample) {
  CaptureServer server;
  S3Client::Options o;
  o.endpoint = "http://s3.amazonaws.com";
  o.bucket = "examplebucket";
  o.region = "us-east-1";
  o.accessKeyId = "AKIAIOSFODNN7EXAMPLE";
  o.secretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  o.fixedTime = 1369353600;  // 20130524T000000Z
  o.connectTo = {"examplebucket.s3.amazonaws.com:80:127.0.0.1:" + std::to_string(server.port())};
  S3Client client(o);
  const auto response = client.get("/", {{"prefix", "J"}, {"max-keys", "2"}}, std::chrono::steady_clock::now() + 10s, {});
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
            "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
  const std::string request = server.request();
  EXPECT_NE(request.find("GET /?max-keys=2&prefix=J HTTP/1.1\r\n"), std::string::npos) << request;
  EXPECT_NE(request.find("Host: examplebucket.s3.amazonaws.com\r\n"), std::string::npos) << request;
}

TEST(S3SigV4, SecretNeverInTheRequest) {
  CaptureServer server;
  S3Client::Options o;
  o.endpoint = "http://127.0.0.1:" + std::to_string(server.port());
  o.bucket = "backups";
  o.pathStyle = true;
  o.accessKeyId = "AKID";
  o.secretAccessKey = "very-secret-value";
  S3Client client(o);
  client.get("/", {{"list-type", "2"}}, std::chrono::steady_clock::now() + 10s, {});
  const std::string request = server.request();
  EXPECT_NE(request.find("GET /backups?list-type=2 HTTP/1.1"), std::string::npos) << request;
  EXPECT_EQ(request.find("very-secret-value"), std::string::npos);
}

TEST(S3Client, UriEncodingFollowsSigV4) {
  EXPECT_EQ(S3Client::uriEncode("a b+c/d~e_f.g-h", false), "a%20b%2Bc%2Fd~e_f.g-h");
  EXPECT_EQ(S3Client::uriEncode("dir/x=y", true), "dir/x%3Dy");
  EXPECT_EQ(S3Client::uriEncode("\xc3\xa9", false), "%C3%A9");
}

TEST(S3Client, ParsesListObjectsV2Pages) {
  const auto page = S3Client::parseListObjectsV2(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
      "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name><Prefix>db/</Prefix>"
      "<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>"
      "<Contents><Key>db/full-1.sql.gz</Key><LastModified>2026-11-22T01:00:00.000Z</LastModified>"
      "<ETag>&quot;x&quot;</ETag><Size>1234</Size><StorageClass>STANDARD</StorageClass></Contents>"
      "<Contents><Key>db/dir/a.bson</Key><LastModified>2026-11-22T01:00:05.000Z</LastModified><Size>7</Size></Contents>"
      "<NextContinuationToken>tok/+=</NextContinuationToken></ListBucketResult>");
  ASSERT_EQ(page.objects.size(), 2u);
  EXPECT_EQ(page.objects[0].key, "db/full-1.sql.gz");
  EXPECT_EQ(page.objects[0].size, 1234u);
  EXPECT_EQ(page.objects[0].lastModified, 1795309200);
  EXPECT_EQ(page.objects[1].lastModified, 1795309205);
  EXPECT_TRUE(page.truncated);
  EXPECT_EQ(page.nextContinuationToken, "tok/+=");
}

TEST(S3Client, RejectsWhatIsNotAListing) {
  auto message = [](const std::string& body) {
    try {
      S3Client::parseListObjectsV2(body);
    } catch (const S3Error& e) {
      return std::string(e.what());
    }
    return std::string("parsed");
  };
  EXPECT_NE(message("<html><body>Welcome to nginx!</body></html>").find("not a ListBucketResult"), std::string::npos);
  EXPECT_NE(message("Service Unavailable").find("not XML"), std::string::npos);
  EXPECT_NE(message("").find("not XML"), std::string::npos);
  EXPECT_NE(message("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>").find("continuation"),
            std::string::npos);
  EXPECT_NE(message("<ListBucketResult><Contents><Key>k</Key><Size>x</Size><LastModified>2026-01-01T00:00:00Z</LastModified>"
                    "</Contents></ListBucketResult>")
                .find("non-numeric Size"),
            std::string::npos);
  // An entity bomb is not expanded (no DTD processing).
  EXPECT_EQ(message("<!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>"
                    "<ListBucketResult><Contents><Key>&b;</Key><Size>1</Size>"
                    "<LastModified>2026-01-01T00:00:00Z</LastModified></Contents></ListBucketResult>"),
            "parsed");
}

TEST(S3Client, DescribesS3ErrorsAndForeignBodies) {
  EXPECT_EQ(S3Client::describeError(404, "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code>"
                                         "<Message>The specified bucket does not exist</Message></Error>"),
            "S3 answered HTTP 404 NoSuchBucket: The specified bucket does not exist");
  EXPECT_EQ(S3Client::describeError(502, "<html>\x01 bad gateway</html>"),
            "S3 answered HTTP 502 with a non-S3 body: \"<html>  bad gateway</html>\"");
  EXPECT_EQ(S3Client::describeError(403, ""), "S3 answered HTTP 403 with an empty body");
}
