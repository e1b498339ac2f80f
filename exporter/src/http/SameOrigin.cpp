#include "http/SameOrigin.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

namespace apphealth {

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// "host:port", "[::1]:port" or "host" -> host (lower case, brackets removed) and port ("" if none).
void splitAuthority(std::string_view authority, std::string& host, std::string& port) {
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    host = lower(authority.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1));
    const auto rest = close == std::string_view::npos ? std::string_view() : authority.substr(close + 1);
    port = rest.size() > 1 && rest.front() == ':' ? std::string(rest.substr(1)) : "";
    return;
  }
  const auto colon = authority.rfind(':');
  host = lower(authority.substr(0, colon));
  port = colon == std::string_view::npos ? "" : std::string(authority.substr(colon + 1));
}

bool isIpAddress(const std::string& host) {
  in_addr v4{};
  in6_addr v6{};
  return inet_pton(AF_INET, host.c_str(), &v4) == 1 || inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

const std::string& machineName() {
  static const std::string name = [] {
    char buffer[256] = "";
    if (gethostname(buffer, sizeof buffer - 1) != 0) return std::string();
    return lower(buffer);
  }();
  return name;
}

bool namesThisServer(const std::string& host) {
  if (isIpAddress(host) || host == "localhost" || host.ends_with(".localhost")) return true;
  const std::string& machine = machineName();
  if (machine.empty()) return false;
  const auto shortName = [](const std::string& name) { return name.substr(0, name.find('.')); };
  return host == machine || host == shortName(machine) || shortName(host) == machine;
}

}  // namespace

std::optional<std::string> foreignRequestProblem(const HttpRequest& request) {
  const auto hostHeader = request.header("Host");
  if (!hostHeader || hostHeader->empty()) return "a Host header is required";
  std::string host, port;
  splitAuthority(*hostHeader, host, port);
  if (!namesThisServer(host)) {
    return "Host " + std::string(hostHeader->substr(0, 200)) +
           " does not name this server: use its IP address, localhost or its host name (refused as DNS rebinding "
           "protection; SIGHUP reloads too)";
  }
  if (const auto site = request.header("Sec-Fetch-Site"); site && *site != "same-origin" && *site != "none") {
    return "cross-origin request refused (Sec-Fetch-Site: " + std::string(site->substr(0, 40)) + ")";
  }
  if (const auto origin = request.header("Origin")) {
    const auto scheme = origin->find("://");
    std::string originHost, originPort;
    if (scheme != std::string_view::npos) splitAuthority(origin->substr(scheme + 3), originHost, originPort);
    const std::string defaultPort = lower(origin->substr(0, scheme == std::string_view::npos ? 0 : scheme)) == "https" ? "443" : "80";
    if (scheme == std::string_view::npos || originHost != host ||
        (originPort.empty() ? defaultPort : originPort) != (port.empty() ? defaultPort : port)) {
      return "cross-origin request refused: Origin " + std::string(origin->substr(0, 200)) + " is not this server (" +
             std::string(hostHeader->substr(0, 200)) + ")";
    }
  }
  return std::nullopt;
}

}  // namespace apphealth
