#pragma once
// The exporter binary as a child process behind a web config (--web.config.file): TLS, basic
// auth, headers. ExporterProcess polls plain-HTTP /-/ready to know it is up, which a TLS or
// password-protected listener refuses; this one waits for the startup log line instead.

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "TestSupport.h"

namespace apphealth::test {

class SecureExporter {
 public:
  // Writes `configYaml` and `webConfigYaml` (when not empty) into its own directory (files
  // they name, certificates for instance, can be given as absolute paths) and starts the
  // exporter on a free port with --web.config.file pointing at the web config.
  SecureExporter(const std::string& configYaml, const std::string& webConfigYaml,
                 const std::vector<std::string>& extraArgs = {});
  // SIGTERM; a test failure unless the exporter exits 0 (under ASan: also no leak).
  ~SecureExporter();
  SecureExporter(const SecureExporter&) = delete;
  SecureExporter& operator=(const SecureExporter&) = delete;

  int port() const { return port_; }
  std::string httpsUrl(const std::string& path) const;
  std::string httpUrl(const std::string& path) const;
  const std::string& webConfigPath() const { return webConfigPath_; }
  const std::string& configPath() const { return configPath_; }
  std::string dir() const { return dir_.path(); }
  void writeWebConfig(const std::string& yaml) const;
  void signal(int sig) const;
  std::string log() const;
  pid_t pid() const { return pid_; }

 private:
  TempDir dir_;
  std::string configPath_, webConfigPath_;
  int port_;
  pid_t pid_ = -1;
};

// Runs the exporter binary with `args` to completion; returns its exit status and output.
int runExporter(const std::vector<std::string>& args, std::string& output, std::chrono::seconds timeout = std::chrono::seconds(30));

}  // namespace apphealth::test
