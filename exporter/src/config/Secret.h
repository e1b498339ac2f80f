#pragma once
// Where a secret comes from. The value itself is only read when a connection is made, so it
// never sits in the Config object, in a log line or on the landing page.

#include <optional>
#include <string>

namespace apphealth {

struct SecretSource {
  std::string file;      // password_file
  std::string env;       // password_env
  bool empty() const { return file.empty() && env.empty(); }
};

// Reads the secret; trailing newlines of a file are dropped. Throws std::runtime_error with
// a message that names the file or variable (never the value) when it cannot be read.
std::optional<std::string> readSecret(const SecretSource& source);

}  // namespace apphealth
