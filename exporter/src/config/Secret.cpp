#include "config/Secret.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace apphealth {

std::optional<std::string> readSecret(const SecretSource& source) {
  if (!source.file.empty()) {
    std::ifstream in(source.file, std::ios::binary);
    if (!in) {
      throw std::runtime_error("cannot read password_file " + source.file + ": " +
                               std::strerror(errno));
    }
    std::ostringstream buffer;
    buffer << in.rdbuf();
    std::string value = buffer.str();
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
    return value;
  }
  if (!source.env.empty()) {
    const char* value = std::getenv(source.env.c_str());
    if (value == nullptr) {
      throw std::runtime_error("environment variable " + source.env + " is not set");
    }
    return std::string(value);
  }
  return std::nullopt;
}

}  // namespace apphealth
