#pragma once
// Cutting UTF-8 text to a byte budget without splitting a character.

#include <cstddef>
#include <string_view>

namespace apphealth {

// The longest prefix of `text` of at most `maxBytes` bytes that ends on a character boundary:
// a cut never lands on a continuation byte (10xxxxxx), so a multi-byte character is either
// kept whole or dropped.
inline std::string_view utf8Prefix(std::string_view text, std::size_t maxBytes) {
  if (text.size() <= maxBytes) return text;
  std::size_t end = maxBytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

}  // namespace apphealth
