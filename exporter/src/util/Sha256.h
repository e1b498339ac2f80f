#pragma once

#include <optional>
#include <string>

namespace apphealth {

// Lower-case hex SHA-256 of a file, streamed in blocks (backups can be many GB).
// nullopt when the file cannot be read.
std::optional<std::string> sha256File(const std::string& path);

}  // namespace apphealth
