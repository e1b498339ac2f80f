#pragma once
// What a TLS listener needs for its handshakes, loaded with GnuTLS (the TLS library Debian's
// libmicrohttpd is built with): the certificate chain and its private key, the client
// certificate policy with its CA trust list, and the protocol versions. Immutable once made;
// listeners hold it through a shared_ptr, so a connection keeps the credentials it started
// with while a newer set serves new connections.

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <memory>
#include <string>
#include <vector>

namespace apphealth {

// exporter-toolkit's client_auth_type values, with Go's crypto/tls meaning.
enum class ClientAuth {
  None,              // NoClientCert: no certificate asked for
  Request,           // RequestClientCert: asked for, not required, not verified
  RequireAny,        // RequireAnyClientCert: required, not verified
  VerifyIfGiven,     // VerifyClientCertIfGiven: not required, verified when sent
  RequireAndVerify,  // RequireAndVerifyClientCert: required and verified
};

enum class TlsVersion { Tls10, Tls11, Tls12, Tls13 };

struct TlsSettings {
  std::string certPem;      // the server certificate, then any intermediates
  std::string keyPem;       // a secret: never logged
  std::string clientCaPem;  // CAs that sign client certificates
  ClientAuth clientAuth = ClientAuth::None;
  TlsVersion minVersion = TlsVersion::Tls12;
  TlsVersion maxVersion = TlsVersion::Tls13;
  bool preferServerCipherSuites = true;
  std::vector<std::string> clientAllowedSans;  // when set, a client certificate must carry one
};

class TlsCredentials {
 public:
  // Loads and cross-checks everything (the key matches the certificate, the CA file holds
  // certificates). Throws std::runtime_error with a reason that never quotes the key.
  static std::shared_ptr<const TlsCredentials> create(const TlsSettings& settings);
  ~TlsCredentials();
  TlsCredentials(const TlsCredentials&) = delete;
  TlsCredentials& operator=(const TlsCredentials&) = delete;

  // Prepares a server session before its handshake: versions, whether a client certificate
  // is asked for or required.
  void configure(gnutls_session_t session) const;
  // The chain and key to answer a handshake with (valid as long as this object lives).
  gnutls_pcert_st* chain() const { return const_cast<gnutls_pcert_st*>(chain_.data()); }
  unsigned chainLength() const { return static_cast<unsigned>(chain_.size()); }
  gnutls_privkey_t key() const { return key_; }
  // Whether configure() installs a peer check (client_auth_type verifies, or allowed SANs).
  bool checksPeer() const;
  // Called during the handshake once the client's certificates are in: "" to go on, or why
  // the client is refused (the handshake then fails with a bad_certificate alert).
  std::string checkPeer(gnutls_session_t session) const;

 private:
  TlsCredentials() = default;
  std::vector<gnutls_pcert_st> chain_;
  gnutls_privkey_t key_ = nullptr;
  gnutls_x509_trust_list_t trust_ = nullptr;
  gnutls_priority_t priority_ = nullptr;
  ClientAuth clientAuth_ = ClientAuth::None;
  std::vector<std::string> allowedSans_;
};

}  // namespace apphealth
