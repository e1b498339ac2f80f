#include "TempS3.h"

#include <signal.h>
#include <openssl/evp.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace apphealth::test {

namespace fs = std::filesystem;

namespace {

std::string s3rverDir() { return std::string(APPHEALTH_SOURCE_DIR) + "/tests/support/s3rver"; }

void npmCiOnce() {
  const std::string dir = s3rverDir();
  // ctest runs tests in parallel: one `npm ci` at a time, and only when needed.
  const std::string command =
      "cd '" + dir + "' && flock .npm-ci.lock sh -c '"
      "if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; "
      "then npm ci --no-audit --no-fund >/dev/null 2>&1; fi'";
  std::string out;
  if (run(command, &out) != 0) throw std::runtime_error("npm ci in tests/support/s3rver failed: " + out);
}

}  // namespace

TempS3::TempS3() : dir_("apphealth-s3"), port_(freePort()) {
  npmCiOnce();
  fs::create_directories(dir_.file("data"));
  // s3rver 3.7 builds ListObjectsV2 continuation tokens with a cipher OpenSSL 3 keeps only in
  // its legacy provider; without it every second page is a 500 on Node 17+.
  pid_ = spawnWithLog({"/usr/bin/env", "node", "--openssl-legacy-provider", s3rverDir() + "/node_modules/s3rver/bin/s3rver.js", "-d",
                       dir_.file("data"), "-a", "127.0.0.1", "-p", std::to_string(port_), "--no-vhost-buckets"},
                      dir_.file("s3rver.log"));
  const bool ready = waitFor(
      [&] {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          throw std::runtime_error("s3rver exited at start:\n" + log());
        }
        return httpRequest("GET", endpoint() + "/", {}, "", 1000).status != 0;
      },
      30s);
  if (!ready) throw std::runtime_error("s3rver not answering after 30 s:\n" + log());
  std::ofstream cfg(dir_.file("s3cfg"));
  cfg << "[default]\naccess_key = " << kAccessKey << "\nsecret_key = " << kSecretKey
      << "\nhost_base = 127.0.0.1:" << port_ << "\nhost_bucket = 127.0.0.1:" << port_
      << "\nuse_https = False\nsignature_v2 = False\nbucket_location = us-east-1\n";
}

TempS3::~TempS3() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
}

std::string TempS3::endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

int TempS3::s3cmd(const std::string& args, std::string* output) const {
  return run("s3cmd --config='" + dir_.file("s3cfg") + "' " + args + " 2>&1", output);
}

void TempS3::seedObjects(const std::string& bucket, const std::string& prefix, int count) const {
  const fs::path root = fs::path(dir_.file("data")) / bucket;
  for (int i = 0; i < count; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "%05d", i);
    const fs::path key = root / (prefix + name);
    fs::create_directories(key.parent_path());
    const std::string base = key.string();
    const std::string content = "object " + std::to_string(i) + "\n";
    std::ofstream(base + "._S3rver_object") << content;
    std::ofstream(base + "._S3rver_metadata.json") << "{\"content-type\": \"application/octet-stream\"}";
    // The ETag s3rver serves; written as its putObject does, so no listing has to compute it.
    unsigned char md5[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_Digest(content.data(), content.size(), md5, &length, EVP_md5(), nullptr);
    std::ofstream out(base + "._S3rver_object.md5");
    for (unsigned int b = 0; b < length; ++b) out << "0123456789abcdef"[md5[b] >> 4] << "0123456789abcdef"[md5[b] & 15];
  }
}

std::string TempS3::log() const {
  std::ifstream in(dir_.file("s3rver.log"));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace apphealth::test
