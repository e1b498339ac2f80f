#include "ingest/Sanitize.h"

#include <cctype>

#include "util/Utf8.h"

namespace apphealth::ingest {

namespace {

bool isEmailChar(unsigned char c) { return std::isalnum(c) || c == '.' || c == '_' || c == '-' || c == '+' || c == '%'; }

// Masks e-mail addresses and runs of 6+ digits (spaces and dashes allowed between them).
std::string mask(const std::string& message) {
  std::string out;
  out.reserve(message.size());
  for (std::size_t i = 0; i < message.size();) {
    const unsigned char c = static_cast<unsigned char>(message[i]);
    if (std::isdigit(c)) {
      std::size_t j = i;
      while (j < message.size() && (std::isdigit(static_cast<unsigned char>(message[j])) || message[j] == ' ' || message[j] == '-')) ++j;
      std::size_t digits = 0;
      for (std::size_t k = i; k < j; ++k) digits += std::isdigit(static_cast<unsigned char>(message[k])) ? 1 : 0;
      if (digits >= 6) {
        out += "[number]";
        // keep a separator that followed the run
        while (j > i && (message[j - 1] == ' ' || message[j - 1] == '-')) --j;
        i = j;
        continue;
      }
      out.append(message, i, j - i);
      i = j;
      continue;
    }
    if (c == '@') {
      // Mask the local part already copied and the domain that follows.
      std::size_t start = out.size();
      while (start > 0 && isEmailChar(static_cast<unsigned char>(out[start - 1]))) --start;
      std::size_t end = i + 1;
      while (end < message.size() && isEmailChar(static_cast<unsigned char>(message[end]))) ++end;
      const bool looksLikeEmail = start < out.size() && message.substr(i + 1, end - i - 1).find('.') != std::string::npos;
      if (looksLikeEmail) {
        out.resize(start);
        out += "[email]";
        i = end;
        continue;
      }
    }
    out += static_cast<char>(c);
    ++i;
  }
  return out;
}

}  // namespace

// Masked before the cut, so a cut cannot leave the unmasked start of a number or address behind.
std::string sanitizeText(const std::string& text, std::size_t maxBytes) {
  return std::string(utf8Prefix(mask(text), maxBytes));
}

}  // namespace apphealth::ingest
