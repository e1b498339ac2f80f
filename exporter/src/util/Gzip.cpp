#include "util/Gzip.h"

#include <zlib.h>

#include <cctype>
#include <stdexcept>

namespace apphealth {

std::string gzipCompress(std::string_view data) {
  z_stream stream{};
  // windowBits 15 + 16 selects the gzip wrapper; level 1: /metrics is latency-sensitive and
  // text compresses well even at the fastest level.
  if (deflateInit2(&stream, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2 failed");
  }
  std::string out;
  out.resize(deflateBound(&stream, data.size()));
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&stream, Z_FINISH);
  deflateEnd(&stream);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate failed");
  out.resize(stream.total_out);
  return out;
}

bool acceptsGzip(std::string_view header) {
  // Tokens separated by commas, each "coding[;q=value]".
  std::size_t pos = 0;
  while (pos <= header.size()) {
    auto end = header.find(',', pos);
    if (end == std::string_view::npos) end = header.size();
    std::string_view token = header.substr(pos, end - pos);
    pos = end + 1;
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.front()))) token.remove_prefix(1);
    const auto semicolon = token.find(';');
    std::string_view coding = token.substr(0, semicolon);
    while (!coding.empty() && std::isspace(static_cast<unsigned char>(coding.back()))) coding.remove_suffix(1);
    if (coding != "gzip" && coding != "*") continue;
    if (semicolon != std::string_view::npos) {
      std::string_view params = token.substr(semicolon + 1);
      const auto q = params.find("q=");
      if (q != std::string_view::npos) {
        std::string value(params.substr(q + 2));
        if (std::strtod(value.c_str(), nullptr) <= 0) return false;
      }
    }
    return true;
  }
  return false;
}

}  // namespace apphealth
