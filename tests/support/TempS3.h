#pragma once
// A throwaway S3-compatible server for the off-site backup tests: npm's s3rver (pinned in
// tests/support/s3rver/package.json + lock; `npm ci` runs here once, under a lock, when
// node_modules is missing or older than the lock file), on 127.0.0.1 on a free port, storing
// into its own TempDir. Objects go in through Debian's s3cmd, a real S3 client.

#include <sys/types.h>

#include <string>

#include "TestSupport.h"

namespace apphealth::test {

class TempS3 {
 public:
  // s3rver's fixed credentials.
  static constexpr const char* kAccessKey = "S3RVER";
  static constexpr const char* kSecretKey = "S3RVER";

  TempS3();  // starts s3rver and waits until it answers
  ~TempS3();
  TempS3(const TempS3&) = delete;
  TempS3& operator=(const TempS3&) = delete;

  int port() const { return port_; }
  std::string endpoint() const;  // http://127.0.0.1:PORT
  // Runs s3cmd against this server (path-style, no TLS, s3rver's credentials); returns its
  // exit status and puts stdout+stderr into `output` when given.
  int s3cmd(const std::string& args, std::string* output = nullptr) const;
  // Writes `count` small objects "<prefix>NNNNN" straight into s3rver's storage layout (its
  // FilesystemStore: KEY._S3rver_object, its metadata and its md5, as s3rver's putObject does):
  // uploading thousands of objects one PUT at a time through a client takes minutes; the
  // server still produces every listing page. For tests of listing, not of a client.
  void seedObjects(const std::string& bucket, const std::string& prefix, int count) const;
  std::string log() const;

 private:
  TempDir dir_;
  int port_;
  pid_t pid_ = -1;
};

}  // namespace apphealth::test
