#include "http/ListenAddress.h"

#include <arpa/inet.h>

#include <stdexcept>

namespace apphealth {

ListenAddress parseListenAddress(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("listen address '" + text + "' needs a port, e.g. :10045");
  std::string host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535) {
    throw std::invalid_argument("listen address '" + text + "' has an invalid port");
  }
  if (host.find('[') != std::string::npos || host.find(':') != std::string::npos) {
    throw std::invalid_argument("listen address '" + text + "': IPv6 addresses are not supported");
  }
  if (host == "localhost") host = "127.0.0.1";
  if (host == "0.0.0.0") host.clear();
  in_addr addr{};
  if (!host.empty() && inet_pton(AF_INET, host.c_str(), &addr) != 1) {
    throw std::invalid_argument("listen address '" + text + "': the host must be an IPv4 address, localhost or empty");
  }
  return {host, static_cast<int>(std::stoul(port))};
}

std::string toCivetListeningPort(const std::string& listenAddress) {
  const auto address = parseListenAddress(listenAddress);
  return address.host.empty() ? std::to_string(address.port) : address.host + ":" + std::to_string(address.port);
}

}  // namespace apphealth
