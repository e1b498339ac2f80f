#pragma once
// Listen addresses as the command line and the config file take them ("host:port" or ":port").

#include <string>

namespace apphealth {

// "127.0.0.1:9100" -> as is; ":9100" -> "9100" (all interfaces, CivetWeb's syntax).
// Throws std::invalid_argument on a malformed address.
std::string toCivetListeningPort(const std::string& listenAddress);

}  // namespace apphealth
