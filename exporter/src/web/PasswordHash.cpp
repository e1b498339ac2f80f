#include "web/PasswordHash.h"

#include <crypt.h>

#include <cctype>
#include <cstring>
#include <memory>

namespace apphealth {

namespace {

// "$2y$" + two-digit cost (4 to 31) + "$" + 53 characters of bcrypt's base64 (salt, digest).
bool isBcrypt(const std::string& hash) {
  if (hash.size() != 60 || hash.compare(0, 2, "$2") != 0 || (hash[2] != 'a' && hash[2] != 'b' && hash[2] != 'y') ||
      hash[3] != '$' || hash[6] != '$' || !std::isdigit(static_cast<unsigned char>(hash[4])) ||
      !std::isdigit(static_cast<unsigned char>(hash[5]))) {
    return false;
  }
  const int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
  return cost >= 4 && cost <= 31 && hash.find_first_not_of("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 7) == std::string::npos;
}

}  // namespace

std::optional<std::string> bcryptHashProblem(const std::string& hash) {
  if (!isBcrypt(hash)) return "is not a bcrypt hash ($2y$ or $2b$, 60 characters; make one with htpasswd -nBC 10 \"\")";
  switch (crypt_checksalt(hash.c_str())) {
    case CRYPT_SALT_OK:
    case CRYPT_SALT_METHOD_LEGACY:
    case CRYPT_SALT_TOO_CHEAP:  // accepted, as exporter-toolkit does; the cost is the user's choice
      return std::nullopt;
    case CRYPT_SALT_METHOD_DISABLED:
      return "is a bcrypt hash, but this system's libcrypt has bcrypt disabled";
    default:
      return "is not a valid bcrypt hash (bad cost or encoding)";
  }
}

bool bcryptMatches(const std::string& password, const std::string& hash) {
  if (!isBcrypt(hash) || password.find('\0') != std::string::npos) return false;
  // crypt_rn: thread-safe, and returns null (never a failure token that could compare equal).
  auto data = std::make_unique<crypt_data>();
  const char* out = crypt_rn(password.c_str(), hash.c_str(), data.get(), sizeof(crypt_data));
  bool equal = false;
  if (out != nullptr && std::strlen(out) == hash.size()) {
    unsigned char diff = 0;  // constant time over the hash
    for (std::size_t i = 0; i < hash.size(); ++i) diff |= static_cast<unsigned char>(out[i] ^ hash[i]);
    equal = diff == 0;
  }
  // The output and the scratch space hold derived secrets.
  explicit_bzero(data.get(), sizeof(crypt_data));
  return equal;
}

}  // namespace apphealth
