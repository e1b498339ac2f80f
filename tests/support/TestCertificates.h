#pragma once
// A certificate authority made by the test with the openssl command-line tool, in its own
// temporary directory: a CA, and server and client certificates it signs (or self-signed ones
// nobody trusts), as PEM files.

#include <string>
#include <vector>

#include "TestSupport.h"

namespace apphealth::test {

class TestCertificates {
 public:
  TestCertificates();  // makes the CA (P-256, valid for two days)
  TestCertificates(const TestCertificates&) = delete;
  TestCertificates& operator=(const TestCertificates&) = delete;

  struct Issued {
    std::string cert;  // PEM file
    std::string key;   // PEM file (unencrypted)
  };
  // A server certificate for localhost and 127.0.0.1 (extendedKeyUsage serverAuth).
  Issued server(const std::string& name = "server");
  // A client certificate (extendedKeyUsage clientAuth) with these subject alternative names,
  // e.g. {"DNS:prometheus.example"}.
  Issued client(const std::string& name, const std::vector<std::string>& sans = {});
  // A self-signed certificate: signed by no CA the exporter trusts.
  Issued selfSigned(const std::string& name);

  const std::string& caCert() const { return caCert_; }
  std::string dir() const { return dir_.path(); }

 private:
  Issued issue(const std::string& name, const std::string& subject, const std::string& extensions);
  TempDir dir_;
  std::string caCert_, caKey_;
};

// A bcrypt hash of `password` made by Apache's htpasswd (apache2-utils), the tool
// exporter-toolkit's documentation names: "$2y$<cost>$...".
std::string htpasswdHash(const std::string& user, const std::string& password, int cost = 10);

}  // namespace apphealth::test
