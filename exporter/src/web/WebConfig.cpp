#include "web/WebConfig.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

#include "web/PasswordHash.h"

namespace apphealth {

namespace {

std::optional<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return text.str();
}

// exporter-toolkit's table (web/handler.go, extraHTTPHeaders): the headers a web config may
// set, and the values allowed where the header is an enumeration.
const std::map<std::string, std::vector<std::string>>& allowedHeaders() {
  static const std::map<std::string, std::vector<std::string>> headers = {
      {"Strict-Transport-Security", {}},
      {"X-Content-Type-Options", {"nosniff"}},
      {"X-Frame-Options", {"deny", "sameorigin"}},
      {"X-XSS-Protection", {}},
      {"Content-Security-Policy", {}},
  };
  return headers;
}

std::optional<TlsVersion> parseVersion(const std::string& text) {
  if (text == "TLS10") return TlsVersion::Tls10;
  if (text == "TLS11") return TlsVersion::Tls11;
  if (text == "TLS12") return TlsVersion::Tls12;
  if (text == "TLS13") return TlsVersion::Tls13;
  return std::nullopt;
}

std::optional<ClientAuth> parseClientAuth(const std::string& text) {
  if (text.empty() || text == "NoClientCert") return ClientAuth::None;
  if (text == "RequestClientCert") return ClientAuth::Request;
  // "RequireClientCert" is exporter-toolkit's older name, kept there for compatibility.
  if (text == "RequireAnyClientCert" || text == "RequireClientCert") return ClientAuth::RequireAny;
  if (text == "VerifyClientCertIfGiven") return ClientAuth::VerifyIfGiven;
  if (text == "RequireAndVerifyClientCert") return ClientAuth::RequireAndVerify;
  return std::nullopt;
}

class Parser {
 public:
  Parser(YamlReader& reader, std::string directory, WebConfigUse use)
      : reader_(reader), directory_(std::move(directory)), use_(use) {}

  WebConfig parse(const YAML::Node& root) {
    WebConfig config;
    if (!root.IsDefined() || root.IsNull()) return config;  // an empty file: no TLS, no auth
    YamlReader::Map top(reader_, root, "the web config");
    if (!top.valid()) return config;
    if (auto tls = top.node("tls_server_config"); tls.IsDefined() && !tls.IsNull()) parseTls(tls, config);
    if (auto http = top.node("http_server_config"); http.IsDefined() && !http.IsNull()) parseHttp(http, config);
    if (auto users = top.node("basic_auth_users"); users.IsDefined() && !users.IsNull()) parseUsers(users, config);
    if (auto limit = top.node("rate_limit"); limit.IsDefined()) {
      reader_.error(limit, "rate_limit is not supported by apphealth_exporter; remove it");
    }
    return config;
  }

 private:
  // A path as exporter-toolkit resolves it: relative to the web config's directory.
  std::string resolve(const std::string& path) const {
    if (path.empty() || path[0] == '/') return path;
    return (std::filesystem::path(directory_) / path).string();
  }

  // The content of `inlineKey` or of the file `fileKey` names (not both); nullopt if neither.
  std::optional<std::string> pem(YamlReader::Map& map, const std::string& inlineKey, const std::string& fileKey,
                                 WebConfig& config) {
    std::string text, file;
    const bool hasInline = map.getString(inlineKey, text);
    const bool hasFile = map.getString(fileKey, file);
    if (hasInline && hasFile) {
      reader_.error(map.node(fileKey), "'" + inlineKey + "' and '" + fileKey + "' exclude each other");
      return std::nullopt;
    }
    if (hasInline) return text;
    if (!hasFile) return std::nullopt;
    const std::string path = resolve(file);
    auto content = readFile(path);
    if (!content) {
      reader_.error(map.node(fileKey), "cannot read " + fileKey + " " + path);
      failed_ = true;
      return std::nullopt;
    }
    config.tlsFiles.push_back(path);
    return content;
  }

  void parseTls(const YAML::Node& node, WebConfig& config) {
    YamlReader::Map map(reader_, node, "tls_server_config");
    if (!map.valid()) return;
    TlsSettings tls;
    const auto cert = pem(map, "cert", "cert_file", config);
    const auto key = pem(map, "key", "key_file", config);
    const auto ca = pem(map, "client_ca", "client_ca_file", config);
    std::string clientAuth;
    if (map.getString("client_auth_type", clientAuth)) {
      if (auto parsed = parseClientAuth(clientAuth)) {
        tls.clientAuth = *parsed;
      } else {
        reader_.error(map.node("client_auth_type"),
                      "client_auth_type must be NoClientCert, RequestClientCert, RequireAnyClientCert, "
                      "VerifyClientCertIfGiven or RequireAndVerifyClientCert, got '" + clientAuth + "'");
      }
    }
    for (auto [key, out] : {std::pair{"min_version", &tls.minVersion}, std::pair{"max_version", &tls.maxVersion}}) {
      std::string text;
      if (!map.getString(key, text)) continue;
      if (auto version = parseVersion(text)) {
        *out = *version;
      } else {
        reader_.error(map.node(key), std::string(key) + " must be TLS10, TLS11, TLS12 or TLS13, got '" + text + "'");
      }
    }
    if (tls.minVersion > tls.maxVersion) reader_.error(map.node("min_version"), "min_version is above max_version");
    map.getBool("prefer_server_cipher_suites", tls.preferServerCipherSuites);
    map.getStringList("client_allowed_sans", tls.clientAllowedSans);
    for (const char* unsupported : {"cipher_suites", "curve_preferences"}) {
      if (map.has(unsupported)) {
        reader_.error(map.node(unsupported), std::string(unsupported) +
                                                 " is not supported by apphealth_exporter (GnuTLS and the system's "
                                                 "crypto policy choose them); remove it");
      }
    }
    map.finish();

    // As exporter-toolkit: any TLS key switches TLS on, and then both cert and key are needed.
    const bool anySet = cert || key || ca || !clientAuth.empty() || failed_;
    if (!anySet) return;
    if (!cert && !failed_) reader_.error(node, "tls_server_config needs cert_file (or cert)");
    if (!key && !failed_) reader_.error(node, "tls_server_config needs key_file (or key)");
    if (ca && tls.clientAuth == ClientAuth::None) {
      reader_.error(map.node(map.has("client_ca_file") ? "client_ca_file" : "client_ca"),
                    "a client CA is set but client_auth_type does not ask for client certificates (use "
                    "RequireAndVerifyClientCert)");
    }
    if (!ca && (tls.clientAuth == ClientAuth::VerifyIfGiven || tls.clientAuth == ClientAuth::RequireAndVerify)) {
      reader_.error(map.node("client_auth_type"), "client_auth_type " + clientAuth + " needs client_ca_file (or client_ca)");
    }
    if (!tls.clientAllowedSans.empty() && tls.clientAuth == ClientAuth::None) {
      reader_.error(map.node("client_allowed_sans"), "client_allowed_sans needs a client_auth_type that asks for client certificates");
    }
    if (!cert || !key) return;
    tls.certPem = *cert;
    tls.keyPem = *key;
    if (ca) tls.clientCaPem = *ca;
    try {
      TlsCredentials::create(tls);
    } catch (const std::exception& e) {
      reader_.error(node, e.what());
      return;
    }
    config.tls = std::move(tls);
  }

  void parseHttp(const YAML::Node& node, WebConfig& config) {
    YamlReader::Map map(reader_, node, "http_server_config");
    if (!map.valid()) return;
    bool http2 = true;
    map.getBool("http2", http2);  // apphealth serves HTTP/1.1 either way
    auto headers = map.node("headers");
    if (!headers.IsDefined() || headers.IsNull()) return;
    if (!headers.IsMap()) {
      reader_.error(headers, "headers must be a mapping of header names to values");
      return;
    }
    for (const auto& entry : headers) {
      const std::string name = entry.first.Scalar();
      const auto allowed = allowedHeaders().find(name);
      if (allowed == allowedHeaders().end()) {
        reader_.error(entry.first, "HTTP header '" + name +
                                       "' cannot be configured (allowed: Content-Security-Policy, "
                                       "Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, "
                                       "X-XSS-Protection)");
        continue;
      }
      if (!entry.second.IsScalar()) {
        reader_.error(entry.second, "the value of " + name + " must be a string");
        continue;
      }
      const std::string value = entry.second.Scalar();
      const auto& values = allowed->second;
      if (!values.empty() && std::find(values.begin(), values.end(), value) == values.end()) {
        std::string expected;
        for (const auto& v : values) expected += (expected.empty() ? "" : ", ") + v;
        reader_.error(entry.second, "invalid value for " + name + ": expected one of " + expected + ", got '" + value + "'");
        continue;
      }
      if (std::any_of(value.begin(), value.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
        reader_.error(entry.second, "the value of " + name + " contains a control character");
        continue;
      }
      if (!value.empty()) config.headers.emplace_back(name, value);  // "unset if blank"
    }
  }

  void parseUsers(const YAML::Node& node, WebConfig& config) {
    if (use_ == WebConfigUse::BeaconListener) {
      reader_.error(node, "basic_auth_users cannot protect the beacon listener: browsers post beacons without "
                          "credentials (use it in --web.config.file, for /metrics)");
      return;
    }
    if (!node.IsMap()) {
      reader_.error(node, "basic_auth_users must be a mapping of user names to bcrypt hashes");
      return;
    }
    for (const auto& entry : node) {
      const std::string user = entry.first.Scalar();
      if (user.find(':') != std::string::npos) {
        reader_.error(entry.first, "user name '" + user + "' contains ':', which basic authentication cannot carry");
        continue;
      }
      if (!entry.second.IsScalar()) {
        reader_.error(entry.second, "the password of '" + user + "' must be a bcrypt hash");
        continue;
      }
      const std::string hash = entry.second.Scalar();
      if (auto problem = bcryptHashProblem(hash)) {  // the message never quotes the hash
        reader_.error(entry.second, "the password of '" + user + "' " + *problem);
        continue;
      }
      if (!config.users.emplace(user, hash).second) reader_.error(entry.first, "duplicate user '" + user + "'");
    }
  }

  YamlReader& reader_;
  std::string directory_;
  WebConfigUse use_;
  bool failed_ = false;  // a file could not be read (its error is reported already)
};

}  // namespace

WebConfigLoadResult loadWebConfigFile(const std::string& path, WebConfigUse use) {
  WebConfigLoadResult result;
  const auto text = readFile(path);
  if (!text) {
    result.errors.push_back({path, 0, 0, "cannot read the web config file"});
    return result;
  }
  YAML::Node root;
  try {
    root = YAML::Load(*text);
  } catch (const YAML::ParserException& e) {
    result.errors.push_back({path, e.mark.line + 1, e.mark.column + 1, e.msg});
    return result;
  }
  YamlReader reader(path, result.errors);
  Parser parser(reader, std::filesystem::path(path).parent_path().string(), use);
  WebConfig config = parser.parse(root);
  std::stable_sort(result.errors.begin(), result.errors.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

}  // namespace apphealth
