#include "TestCertificates.h"

#include <stdexcept>

namespace apphealth::test {

namespace {

void mustRun(const std::string& command) {
  std::string output;
  if (run(command + " 2>&1", &output) != 0) throw std::runtime_error(command + " failed:\n" + output);
}

const std::string kKeyOptions = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";

}  // namespace

TestCertificates::TestCertificates() : dir_("apphealth-ca") {
  caCert_ = dir_.file("ca.crt");
  caKey_ = dir_.file("ca.key");
  mustRun("openssl req -x509 " + kKeyOptions + " -keyout " + caKey_ + " -out " + caCert_ +
          " -days 2 -subj '/CN=apphealth test CA' -addext basicConstraints=critical,CA:TRUE"
          " -addext keyUsage=critical,keyCertSign,cRLSign");
}

TestCertificates::Issued TestCertificates::issue(const std::string& name, const std::string& subject,
                                                 const std::string& extensions) {
  Issued out{dir_.file(name + ".crt"), dir_.file(name + ".key")};
  dir_.write(name + ".ext", extensions);
  mustRun("openssl req " + kKeyOptions + " -keyout " + out.key + " -out " + dir_.file(name + ".csr") + " -subj '" +
          subject + "'");
  mustRun("openssl x509 -req -in " + dir_.file(name + ".csr") + " -CA " + caCert_ + " -CAkey " + caKey_ +
          " -CAcreateserial -days 2 -out " + out.cert + " -extfile " + dir_.file(name + ".ext"));
  return out;
}

TestCertificates::Issued TestCertificates::server(const std::string& name) {
  return issue(name, "/CN=localhost",
               "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
}

TestCertificates::Issued TestCertificates::client(const std::string& name, const std::vector<std::string>& sans) {
  std::string extensions = "extendedKeyUsage=clientAuth\n";
  if (!sans.empty()) {
    extensions += "subjectAltName=";
    for (std::size_t i = 0; i < sans.size(); ++i) extensions += (i ? "," : "") + sans[i];
    extensions += "\n";
  }
  return issue(name, "/CN=" + name, extensions);
}

TestCertificates::Issued TestCertificates::selfSigned(const std::string& name) {
  Issued out{dir_.file(name + ".crt"), dir_.file(name + ".key")};
  mustRun("openssl req -x509 " + kKeyOptions + " -keyout " + out.key + " -out " + out.cert + " -days 2 -subj '/CN=" +
          name + "' -addext extendedKeyUsage=clientAuth,serverAuth -addext subjectAltName=DNS:localhost,IP:127.0.0.1");
  return out;
}

std::string htpasswdHash(const std::string& user, const std::string& password, int cost) {
  std::string output;
  if (run("htpasswd -nbBC " + std::to_string(cost) + " '" + user + "' '" + password + "'", &output) != 0) {
    throw std::runtime_error("htpasswd failed (is apache2-utils installed?): " + output);
  }
  const auto colon = output.find(':');
  const auto end = output.find('\n');
  if (colon == std::string::npos) throw std::runtime_error("unexpected htpasswd output: " + output);
  return output.substr(colon + 1, end == std::string::npos ? std::string::npos : end - colon - 1);
}

}  // namespace apphealth::test
