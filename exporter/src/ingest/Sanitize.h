#pragma once
// What the client error log keeps of free text from browsers: e-mail addresses and long digit
// runs (card, phone, account numbers) masked, then cut to a byte budget on a UTF-8 character
// boundary.

#include <cstddef>
#include <string>

namespace apphealth::ingest {

inline constexpr std::size_t kMaxLoggedMessage = 1024;
inline constexpr std::size_t kMaxLoggedComponent = 128;

std::string sanitizeText(const std::string& text, std::size_t maxBytes);
inline std::string sanitizeMessage(const std::string& message) { return sanitizeText(message, kMaxLoggedMessage); }

}  // namespace apphealth::ingest
