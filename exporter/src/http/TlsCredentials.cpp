#include "http/TlsCredentials.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <stdexcept>

namespace apphealth {

namespace {

gnutls_datum_t datum(const std::string& text) {
  return {reinterpret_cast<unsigned char*>(const_cast<char*>(text.data())), static_cast<unsigned>(text.size())};
}

std::runtime_error failure(const std::string& what, int code) {
  return std::runtime_error(what + ": " + gnutls_strerror(code));
}

// SHA-256 key id of a public key: equal ids mean the key pair matches.
std::string keyId(gnutls_pubkey_t key) {
  std::array<unsigned char, 64> id{};
  std::size_t size = id.size();
  if (gnutls_pubkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, id.data(), &size) < 0) return {};
  return std::string(reinterpret_cast<const char*>(id.data()), size);
}

const char* versionName(TlsVersion v) {
  switch (v) {
    case TlsVersion::Tls10: return "VERS-TLS1.0";
    case TlsVersion::Tls11: return "VERS-TLS1.1";
    case TlsVersion::Tls12: return "VERS-TLS1.2";
    case TlsVersion::Tls13: return "VERS-TLS1.3";
  }
  return "";
}

struct Certificate {
  gnutls_x509_crt_t crt = nullptr;
  ~Certificate() {
    if (crt) gnutls_x509_crt_deinit(crt);
  }
};

// The leaf's subject alternative names as exporter-toolkit compares them: DNS names, e-mail
// addresses, IP addresses in text form, URIs.
std::vector<std::string> subjectAltNames(gnutls_x509_crt_t crt) {
  std::vector<std::string> names;
  for (unsigned i = 0; i < 1000; ++i) {
    std::array<char, 1024> buffer{};
    std::size_t size = buffer.size();
    const int type = gnutls_x509_crt_get_subject_alt_name(crt, i, buffer.data(), &size, nullptr);
    if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) break;
    if (type < 0) continue;  // too long or malformed: cannot match anything
    if (type == GNUTLS_SAN_IPADDRESS) {
      char text[INET6_ADDRSTRLEN] = "";
      if (size == 4) inet_ntop(AF_INET, buffer.data(), text, sizeof text);
      if (size == 16) inet_ntop(AF_INET6, buffer.data(), text, sizeof text);
      if (text[0] != '\0') names.emplace_back(text);
    } else if (type == GNUTLS_SAN_DNSNAME || type == GNUTLS_SAN_RFC822NAME || type == GNUTLS_SAN_URI) {
      names.emplace_back(buffer.data(), size);
    }
  }
  return names;
}

}  // namespace

std::shared_ptr<const TlsCredentials> TlsCredentials::create(const TlsSettings& s) {
  std::shared_ptr<TlsCredentials> c(new TlsCredentials());
  c->clientAuth_ = s.clientAuth;
  c->allowedSans_ = s.clientAllowedSans;

  // The chain: server certificate first, then intermediates, as a PEM file holds them.
  std::array<gnutls_pcert_st, 16> pcerts{};
  unsigned count = pcerts.size();
  const auto certData = datum(s.certPem);
  int rc = gnutls_pcert_list_import_x509_raw(pcerts.data(), &count, &certData, GNUTLS_X509_FMT_PEM,
                                             GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
  if (rc < 0) throw failure("cannot load the certificate", rc);
  if (count == 0) throw std::runtime_error("cannot load the certificate: no PEM certificate found");
  c->chain_.assign(pcerts.begin(), pcerts.begin() + count);

  rc = gnutls_privkey_init(&c->key_);
  if (rc < 0) throw failure("cannot load the private key", rc);
  const auto keyData = datum(s.keyPem);
  rc = gnutls_privkey_import_x509_raw(c->key_, &keyData, GNUTLS_X509_FMT_PEM, nullptr, 0);
  if (rc < 0) throw failure("cannot load the private key (PEM, unencrypted)", rc);
  gnutls_pubkey_t fromKey = nullptr;
  gnutls_pubkey_init(&fromKey);
  rc = gnutls_pubkey_import_privkey(fromKey, c->key_, 0, 0);
  const bool matches = rc >= 0 && keyId(fromKey) == keyId(c->chain_.front().pubkey) && !keyId(fromKey).empty();
  gnutls_pubkey_deinit(fromKey);
  if (!matches) throw std::runtime_error("the private key does not belong to the certificate");

  if (!s.clientCaPem.empty()) {
    rc = gnutls_x509_trust_list_init(&c->trust_, 0);
    if (rc < 0) throw failure("cannot load the client CA", rc);
    const auto caData = datum(s.clientCaPem);
    rc = gnutls_x509_trust_list_add_trust_mem(c->trust_, &caData, nullptr, GNUTLS_X509_FMT_PEM, 0, 0);
    if (rc < 0) throw failure("cannot load the client CA", rc);
    if (rc == 0) throw std::runtime_error("cannot load the client CA: no PEM certificate found");
  }

  // NORMAL is GnuTLS' default set, which honours the system's crypto policy; only the
  // versions are narrowed to [min_version, max_version].
  std::string priority = s.preferServerCipherSuites ? "NORMAL:%SERVER_PRECEDENCE:-VERS-ALL" : "NORMAL:-VERS-ALL";
  for (int v = static_cast<int>(s.minVersion); v <= static_cast<int>(s.maxVersion); ++v) {
    priority += std::string(":+") + versionName(static_cast<TlsVersion>(v));
  }
  const char* errorAt = nullptr;
  rc = gnutls_priority_init(&c->priority_, priority.c_str(), &errorAt);
  if (rc < 0) throw failure("cannot set the TLS versions (" + priority + ")", rc);
  return c;
}

TlsCredentials::~TlsCredentials() {
  for (auto& pcert : chain_) gnutls_pcert_deinit(&pcert);
  if (key_) gnutls_privkey_deinit(key_);
  if (trust_) gnutls_x509_trust_list_deinit(trust_, 1);
  if (priority_) gnutls_priority_deinit(priority_);
}

void TlsCredentials::configure(gnutls_session_t session) const {
  gnutls_priority_set(session, priority_);
  switch (clientAuth_) {
    case ClientAuth::None: gnutls_certificate_server_set_request(session, GNUTLS_CERT_IGNORE); break;
    // Required certificates are asked for, not required, from GnuTLS: checkPeer() refuses a
    // client without one itself, so the refusal is counted and logged with its reason.
    default: gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUEST); break;
  }
}

bool TlsCredentials::checksPeer() const {
  return clientAuth_ == ClientAuth::VerifyIfGiven || clientAuth_ == ClientAuth::RequireAny ||
         clientAuth_ == ClientAuth::RequireAndVerify || (clientAuth_ != ClientAuth::None && !allowedSans_.empty());
}

std::string TlsCredentials::checkPeer(gnutls_session_t session) const {
  unsigned count = 0;
  const gnutls_datum_t* raw = gnutls_certificate_get_peers(session, &count);
  if (raw == nullptr || count == 0) {
    if (clientAuth_ == ClientAuth::RequireAny || clientAuth_ == ClientAuth::RequireAndVerify) {
      return "no client certificate";
    }
    if (!allowedSans_.empty()) return "no client certificate, and client_allowed_sans needs one";
    return {};
  }
  std::vector<Certificate> certs(std::min(count, 16u));
  std::vector<gnutls_x509_crt_t> chain;
  for (std::size_t i = 0; i < certs.size(); ++i) {
    if (gnutls_x509_crt_init(&certs[i].crt) < 0 || gnutls_x509_crt_import(certs[i].crt, &raw[i], GNUTLS_X509_FMT_DER) < 0) {
      return "unreadable client certificate";
    }
    chain.push_back(certs[i].crt);
  }
  if (clientAuth_ == ClientAuth::VerifyIfGiven || clientAuth_ == ClientAuth::RequireAndVerify) {
    if (trust_ == nullptr) return "no client CA to verify the certificate against";
    // As Go's crypto/tls does for a server: the chain must lead to a client CA, and the leaf
    // must be allowed for client authentication (extended key usage, when it has one).
    gnutls_typed_vdata_st purpose{GNUTLS_DT_KEY_PURPOSE_OID,
                                  reinterpret_cast<unsigned char*>(const_cast<char*>(GNUTLS_KP_TLS_WWW_CLIENT)), 0};
    unsigned status = 0;
    const int rc = gnutls_x509_trust_list_verify_crt2(trust_, chain.data(), static_cast<unsigned>(chain.size()), &purpose,
                                                      1, 0, &status, nullptr);
    if (rc < 0) return std::string("cannot verify the client certificate: ") + gnutls_strerror(rc);
    if (status != 0) {
      gnutls_datum_t text{};
      std::string reason = "client certificate not trusted";
      if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) >= 0) {
        reason += std::string(": ") + reinterpret_cast<const char*>(text.data);
        gnutls_free(text.data);
      }
      return reason;
    }
  }
  if (!allowedSans_.empty()) {
    for (const auto& name : subjectAltNames(chain.front())) {
      if (std::find(allowedSans_.begin(), allowedSans_.end(), name) != allowedSans_.end()) return {};
    }
    return "the client certificate has none of client_allowed_sans";
  }
  return {};
}

}  // namespace apphealth
