#pragma once
// bcrypt password hashes, checked by libxcrypt (Debian's libcrypt1, the crypt(3) of glibc
// systems), which handles the $2y$ hashes htpasswd makes as well as $2b$ and $2a$.

#include <optional>
#include <string>

namespace apphealth {

// Why `hash` is not a usable bcrypt hash (e.g. "is not a bcrypt hash ($2y$...)"), or nullopt.
// The reason never quotes the hash.
std::optional<std::string> bcryptHashProblem(const std::string& hash);

// Whether `password` hashes to `hash`. Costs what the hash's cost factor says (about 50 ms at
// cost 10): callers cache results and keep it off hot paths.
bool bcryptMatches(const std::string& password, const std::string& hash);

}  // namespace apphealth
