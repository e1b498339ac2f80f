#pragma once
// Listen addresses as the command line and the config file take them ("host:port" or ":port").

#include <string>

namespace apphealth {

struct ListenAddress {
  std::string host;  // an IPv4 address; empty for all interfaces
  int port = 0;
};

// "127.0.0.1:10045" -> {"127.0.0.1", 10045}; ":10045" and "0.0.0.0:10045" -> {"", 10045};
// "localhost:10045" -> {"127.0.0.1", 10045}. Throws std::invalid_argument with the reason
// on anything else (a missing or invalid port, a host name, an IPv6 address).
ListenAddress parseListenAddress(const std::string& text);

// The same address in CivetWeb's syntax: "127.0.0.1:10045", or "10045" for all interfaces.
std::string toCivetListeningPort(const std::string& listenAddress);

}  // namespace apphealth
