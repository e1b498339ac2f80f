#pragma once
// Standard base64 (RFC 4648, with padding), as kombu encodes message bodies.

#include <optional>
#include <string>
#include <string_view>

namespace apphealth {

std::string base64Encode(std::string_view data);
// Decodes padded or unpadded base64; nullopt on any character outside the alphabet (line
// breaks included) or a length that no encoder produces.
std::optional<std::string> base64Decode(std::string_view text);

}  // namespace apphealth
