#include "http/Framing.h"

namespace apphealth {

std::optional<HttpResponse> framingProblem(const HttpRequest& request) {
  if (request.headerCount("Content-Length") > 1) {
    return errorResponse(400, "more than one Content-Length header", {}, true);
  }
  if (request.header("Transfer-Encoding")) {
    if (request.header("Content-Length")) {
      return errorResponse(400, "Content-Length together with Transfer-Encoding", {}, true);
    }
    return errorResponse(411, "a Content-Length is required (Transfer-Encoding bodies are not accepted)", {}, true);
  }
  return std::nullopt;
}

bool announcesBody(const HttpRequest& request) {
  return request.contentLength() > 0 || request.header("Transfer-Encoding").has_value();
}

}  // namespace apphealth
