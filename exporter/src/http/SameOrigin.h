#pragma once
// Guards a state-changing endpoint of the main listener (/-/reload) against what any web page a
// team member opens could make their browser send:
//   - a cross-origin request: an Origin that is not the Host's, "null" (sandboxed frames, file
//     pages), or Sec-Fetch-Site: cross-site / same-site;
//   - DNS rebinding: a hostile name resolved to this server's address, which makes the request
//     same-origin for the browser. The Host must name this server: an IP address, localhost,
//     or this machine's host name (with or without its domain).
// Clients that are not browsers (curl, config management) send neither Origin nor
// Sec-Fetch-*, and reach the endpoint by IP address, localhost or host name.

#include <optional>
#include <string>

#include "http/HttpMessage.h"

namespace apphealth {

// The reason to refuse (a 403 body), or nullopt.
std::optional<std::string> foreignRequestProblem(const HttpRequest& request);

}  // namespace apphealth
