#pragma once

#include <string>
#include <string_view>

namespace apphealth {

// gzip (RFC 1952) encoding of `data`, for Content-Encoding: gzip.
std::string gzipCompress(std::string_view data);

// Whether an Accept-Encoding header value allows gzip (and does not refuse it with q=0).
bool acceptsGzip(std::string_view acceptEncoding);

}  // namespace apphealth
