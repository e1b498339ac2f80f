#include "web/WebGuard.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <strings.h>
#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include <array>
#include <stdexcept>

#include "web/PasswordHash.h"

namespace apphealth {

namespace {

std::int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

constexpr std::int64_t kCheckEveryNs = 1'000'000'000;
constexpr std::size_t kAuthCacheSize = 100;  // exporter-toolkit's

// A bcrypt hash of a random password nobody knows: unknown users cost as much as known ones,
// so response times do not tell which user names exist.
const std::string kUnknownUserHash = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

// What identifies a file's content without reading it: a replaced file (rename, as cert
// renewal tools do) changes the inode, an edit the size or times.
std::string stamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "missing";
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ":" +
         std::to_string(st.st_ctim.tv_sec) + "." + std::to_string(st.st_ctim.tv_nsec);
}

std::string sha256(const std::string& text) {
  std::array<unsigned char, 32> digest{};
  gnutls_hash_fast(GNUTLS_DIG_SHA256, text.data(), text.size(), digest.data());
  return std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
}

// "Basic <base64 of user:password>" (RFC 7617); false for anything else.
bool parseBasic(std::string_view header, std::string& user, std::string& password) {
  constexpr std::string_view scheme = "basic";
  if (header.size() <= scheme.size() || strncasecmp(header.data(), scheme.data(), scheme.size()) != 0 ||
      header[scheme.size()] != ' ') {
    return false;
  }
  header.remove_prefix(scheme.size());
  while (!header.empty() && header.front() == ' ') header.remove_prefix(1);
  while (!header.empty() && header.back() == ' ') header.remove_suffix(1);
  if (header.empty() || header.size() > 4096) return false;
  const std::string encoded(header);
  gnutls_datum_t in{reinterpret_cast<unsigned char*>(const_cast<char*>(encoded.data())), static_cast<unsigned>(encoded.size())};
  gnutls_datum_t out{};
  if (gnutls_base64_decode2(&in, &out) < 0) return false;
  std::string decoded(reinterpret_cast<const char*>(out.data), out.size);
  gnutls_memset(out.data, 0, out.size);
  gnutls_free(out.data);
  const auto colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  user = decoded.substr(0, colon);
  password = decoded.substr(colon + 1);
  return true;
}

bool hasHeader(const HttpResponse& response, const std::string& name) {
  for (const auto& [existing, value] : response.headers) {
    if (strcasecmp(existing.c_str(), name.c_str()) == 0) return true;
  }
  return false;
}

}  // namespace

WebGuard::WebGuard(std::string path, WebConfigUse use, std::string listenerName)
    : path_(std::move(path)), use_(use), name_(std::move(listenerName)) {
  auto loaded = loadWebConfigFile(path_, use_);
  if (!loaded.config) {
    std::string message = "invalid web config for the " + name_ + ":";
    for (const auto& e : loaded.errors) message += "\n  " + e.format();
    throw std::runtime_error(message);
  }
  tlsAtStart_ = loaded.config->tls.has_value();
  usersAtStart_ = loaded.config->users.size();
  snapshot_.store(load());
  nextCheckNs_ = nowNs() + kCheckEveryNs;
}

std::shared_ptr<const WebGuard::Snapshot> WebGuard::load() const {
  auto snapshot = std::make_shared<Snapshot>();
  // Stamps first: a change made while reading is seen at the next check.
  snapshot->watched = {path_};
  auto loaded = loadWebConfigFile(path_, use_);
  if (loaded.config) {
    for (const auto& file : loaded.config->tlsFiles) snapshot->watched.push_back(file);
  } else if (const auto previous = snapshot_.load()) {
    snapshot->watched = previous->watched;  // keep watching the files the last good one named
  }
  for (const auto& file : snapshot->watched) snapshot->stamps.push_back(stamp(file));
  if (!loaded.config) {
    std::string message;
    for (const auto& e : loaded.errors) message += "\n  " + e.format();
    spdlog::error("{}: the web config is invalid; requests get 500 and TLS connections are refused until it is "
                  "fixed:{}", name_, message);
    return snapshot;
  }
  // Re-read for a new snapshot: the stamps above belong to these contents or older ones.
  auto config = std::make_shared<WebConfig>(std::move(*loaded.config));
  if (config->tls && tlsAtStart_) {
    try {
      snapshot->credentials = TlsCredentials::create(*config->tls);
    } catch (const std::exception& e) {  // a file changed between the check and now
      spdlog::error("{}: {}", name_, e.what());
      return snapshot;
    }
  } else if (config->tls && !tlsAtStart_) {
    spdlog::warn("{}: the web config now sets tls_server_config; the listener serves plain HTTP until a restart",
                 name_);
  } else if (!config->tls && tlsAtStart_) {
    spdlog::error("{}: the web config no longer sets tls_server_config; TLS connections are refused until it does "
                  "again or the exporter restarts", name_);
    return snapshot;
  }
  snapshot->config = std::move(config);
  return snapshot;
}

std::shared_ptr<const WebGuard::Snapshot> WebGuard::current() {
  const std::int64_t now = nowNs();
  if (now < nextCheckNs_.load(std::memory_order_relaxed)) return snapshot_.load();
  std::unique_lock lock(reloadMutex_, std::try_to_lock);
  if (!lock.owns_lock()) return snapshot_.load();  // another thread is checking
  nextCheckNs_ = now + kCheckEveryNs;
  auto snapshot = snapshot_.load();
  bool changed = false;
  for (std::size_t i = 0; i < snapshot->watched.size() && !changed; ++i) changed = stamp(snapshot->watched[i]) != snapshot->stamps[i];
  if (!changed) return snapshot;
  snapshot = load();
  if (snapshot->config) spdlog::info("{}: web config {} reloaded", name_, path_);
  snapshot_.store(snapshot);
  return snapshot;
}

void WebGuard::refresh() {
  nextCheckNs_ = 0;
  current();
}

RequestFilter WebGuard::filter() {
  RequestFilter filter;
  filter.admit = [this](const HttpRequest& request) { return admit(request); };
  filter.decorate = [this](HttpResponse& response) {
    const auto snapshot = current();
    if (!snapshot->config) return;
    // As in exporter-toolkit, where the handler's own header wins over the configured one.
    for (const auto& [name, value] : snapshot->config->headers) {
      if (!hasHeader(response, name)) response.headers.emplace_back(name, value);
    }
  };
  return filter;
}

std::function<std::shared_ptr<const TlsCredentials>()> WebGuard::tls() {
  return [this] { return current()->credentials; };
}

std::optional<HttpResponse> WebGuard::admit(const HttpRequest& request) {
  const auto snapshot = current();
  if (!snapshot->config) return errorResponse(500, "the exporter's web config is invalid; see its log");
  const auto& config = *snapshot->config;
  if (config.users.empty()) return std::nullopt;
  std::string user, password;
  if (const auto header = request.header("Authorization"); header && parseBasic(*header, user, password)) {
    const bool ok = passwordMatches(config, user, password);
    explicit_bzero(password.data(), password.size());
    if (ok) return std::nullopt;
  }
  return errorResponse(401, "unauthorized: this exporter needs basic authentication",
                       {{"WWW-Authenticate", "Basic realm=\"apphealth\", charset=\"UTF-8\""}});
}

bool WebGuard::passwordMatches(const WebConfig& config, const std::string& user, const std::string& password) {
  const auto it = config.users.find(user);
  const bool known = it != config.users.end();
  const std::string& hash = known ? it->second : kUnknownUserHash;
  const std::string key = sha256(user + '\0' + hash + '\0' + password);
  {
    std::lock_guard lock(authMutex_);
    if (const auto cached = authCache_.find(key); cached != authCache_.end()) return known && cached->second;
  }
  bool matches = false;
  {
    std::lock_guard lock(bcryptMutex_);
    matches = bcryptMatches(password, hash);
  }
  std::lock_guard lock(authMutex_);
  if (authCache_.size() >= kAuthCacheSize) authCache_.erase(authCache_.begin());
  authCache_[key] = matches;
  return known && matches;
}

}  // namespace apphealth
