#pragma once
// Command-line flags in the style of Prometheus' own exporters (--flag=value or --flag value).

#include <optional>
#include <string>
#include <vector>

namespace apphealth {

inline constexpr const char* kDefaultListenAddress = ":10045";

struct CommandLine {
  std::string configFile;
  std::string listenAddress = kDefaultListenAddress;
  std::string webConfigFile;    // exporter-toolkit web config: TLS, basic auth, headers
  bool enableLifecycle = true;  // POST /-/reload
  std::string logLevel = "info";
  std::string logFormat = "text";
  bool checkConfig = false;
  bool version = false;
  bool help = false;
};

struct CommandLineResult {
  std::optional<CommandLine> options;
  std::string error;  // set when options is empty
};

CommandLineResult parseCommandLine(const std::vector<std::string>& args);
std::string usage();

}  // namespace apphealth
