#pragma once
// Request framing that every route with a body insists on, whichever library parsed the
// request: exactly one Content-Length and no Transfer-Encoding. Two lengths, or a length next
// to Transfer-Encoding, are the request-smuggling shapes (RFC 9112 section 6.3): a proxy in front
// may frame the body differently than this server. Bodies of unknown length (chunked) are
// refused too: browsers send beacons with a Content-Length, and a known length lets a route
// refuse an oversized body before reading it. Every refusal closes the connection.

#include <optional>

#include "http/HttpMessage.h"

namespace apphealth {

std::optional<HttpResponse> framingProblem(const HttpRequest& request);

// Whether the request announces a body: answering it without reading the body must close the
// connection, or the unread bytes would be taken for the next request.
bool announcesBody(const HttpRequest& request);

}  // namespace apphealth
