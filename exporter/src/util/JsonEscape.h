#pragma once
// JSON string escaping for text from outside (log messages, browser error reports), shared by
// the JSON log format and the client-error log.

#include <cstdio>
#include <string_view>

namespace apphealth {

// Appends `text` escaped for use inside a JSON string (quotes not included). `Buffer` is a
// std::string or spdlog's memory buffer: anything with append(string_view) and push_back(char).
template <typename Buffer>
void appendJsonEscaped(Buffer& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '"': out.append(std::string_view("\\\"")); break;
      case '\\': out.append(std::string_view("\\\\")); break;
      case '\n': out.append(std::string_view("\\n")); break;
      case '\r': out.append(std::string_view("\\r")); break;
      case '\t': out.append(std::string_view("\\t")); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out.append(std::string_view(buffer));
        } else {
          out.push_back(c);
        }
    }
  }
}

}  // namespace apphealth
