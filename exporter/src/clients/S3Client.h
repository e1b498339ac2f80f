#pragma once
// A minimal S3 client for listing a bucket (ListObjectsV2): requests signed by libcurl's own
// AWS Signature V4 (CURLOPT_AWS_SIGV4), answers parsed with libxml2 (no network access, no
// entity expansion). Works with AWS S3 and the S3-compatible stores (Backblaze B2,
// Cloudflare R2, MinIO, Wasabi, ...). Every call is bounded by a deadline and a stop request;
// every failure is an S3Error with a message fit for a log line (never a credential).

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace apphealth {

class S3Error : public std::runtime_error {
 public:
  S3Error(std::string message, long status = 0, std::string code = {})
      : std::runtime_error(std::move(message)), status_(status), code_(std::move(code)) {}
  long status() const { return status_; }          // HTTP status, 0 when there was no answer
  const std::string& code() const { return code_; }  // S3 error code, e.g. NoSuchBucket
 private:
  long status_;
  std::string code_;
};

struct S3Object {
  std::string key;
  std::uint64_t size = 0;
  double lastModified = 0;  // Unix seconds
};

struct S3ListPage {
  std::vector<S3Object> objects;
  bool truncated = false;
  std::string nextContinuationToken;
};

struct S3Response {
  long status = 0;
  std::string body;
  std::string authorization;  // the Authorization header libcurl sent (for the SigV4 test)
};

class S3Client {
 public:
  struct Options {
    std::string endpoint;  // scheme://host[:port]
    std::string region = "us-east-1";
    std::string bucket;
    bool pathStyle = false;
    std::string accessKeyId;
    std::string secretAccessKey;
    std::string sessionToken;
    std::string caFile;
    std::size_t maxBodyBytes = 8 << 20;  // a page of 1,000 keys is about 300 KB
    // For tests only: fixes x-amz-date (Unix seconds), and reroutes connections
    // (CURLOPT_CONNECT_TO entries such as "examplebucket.s3.amazonaws.com:80:127.0.0.1:PORT").
    std::optional<long> fixedTime;
    std::vector<std::string> connectTo;
  };
  using Deadline = std::chrono::steady_clock::time_point;

  explicit S3Client(Options options);

  // One ListObjectsV2 page of at most `maxKeys` keys under `prefix`.
  S3ListPage listObjectsV2(const std::string& prefix, const std::string& continuationToken, int maxKeys,
                           Deadline deadline, std::stop_token stop) const;

  // A signed GET of `path` in the bucket (path "/" for the bucket itself) with query
  // parameters, sorted and encoded as SigV4 wants them. Throws S3Error on transport failures.
  S3Response get(const std::string& path, std::vector<std::pair<std::string, std::string>> query,
                 Deadline deadline, std::stop_token stop) const;

  // SigV4 URI encoding: everything but A-Z a-z 0-9 - _ . ~ as %XX (and '/' unless `keepSlash`).
  static std::string uriEncode(std::string_view text, bool keepSlash);
  // Parses a ListObjectsV2 answer body; throws S3Error when it is not one.
  static S3ListPage parseListObjectsV2(const std::string& xml);
  // "403 AccessDenied: <Message>" from an S3 error body, or a description of a non-XML body.
  static std::string describeError(long status, const std::string& body);

 private:
  Options options_;
};

}  // namespace apphealth
