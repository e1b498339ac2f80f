#pragma once

#include <optional>
#include <stop_token>
#include <string>

namespace apphealth {

// Lower-case hex SHA-256 of a file, streamed in blocks (backups can be many GB).
// nullopt when the file cannot be read, or when `stop` is requested midway (shutdown must
// not wait for a multi-GB hash to finish).
std::optional<std::string> sha256File(const std::string& path, const std::stop_token& stop = {});

}  // namespace apphealth
