#include "SecureExporter.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace apphealth::test {

SecureExporter::SecureExporter(const std::string& configYaml, const std::string& webConfigYaml,
                               const std::vector<std::string>& extraArgs)
    : dir_("apphealth-secure"), configPath_(dir_.file("config.yml")), webConfigPath_(dir_.file("web.yml")),
      port_(freePort()) {
  dir_.write("config.yml", configYaml);
  std::vector<std::string> args = {exporterBinary(), "--config.file=" + configPath_,
                                   "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=debug"};
  if (!webConfigYaml.empty()) {
    dir_.write("web.yml", webConfigYaml);
    args.push_back("--web.config.file=" + webConfigPath_);
  }
  args.insert(args.end(), extraArgs.begin(), extraArgs.end());
  pid_ = spawnWithLog(args, dir_.file("exporter.log"));
  const bool up = waitFor(
      [&] {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          throw std::runtime_error("exporter exited at start:\n" + log());
        }
        return log().find("listening on") != std::string::npos;
      },
      std::chrono::seconds(20));
  if (!up) throw std::runtime_error("exporter not listening after 20 s:\n" + log());
}

SecureExporter::~SecureExporter() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  int status = 0;
  const bool exited = waitFor([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, std::chrono::seconds(10));
  if (!exited) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    ADD_FAILURE() << "the exporter did not stop within 10 s of SIGTERM:\n" << log();
    return;
  }
  // A clean stop exits 0; under the sanitizers a leak or undefined behaviour makes it fail.
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    ADD_FAILURE() << "the exporter stopped with status " << status << ":\n" << log();
  }
}

std::string SecureExporter::httpsUrl(const std::string& path) const {
  return "https://localhost:" + std::to_string(port_) + path;
}

std::string SecureExporter::httpUrl(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void SecureExporter::writeWebConfig(const std::string& yaml) const {
  // Written beside and renamed over, as editors and configuration tools do: never half a file.
  dir_.write("web.yml.new", yaml);
  if (std::rename(dir_.file("web.yml.new").c_str(), webConfigPath_.c_str()) != 0) {
    throw std::runtime_error("cannot replace " + webConfigPath_);
  }
}

void SecureExporter::signal(int sig) const { kill(pid_, sig); }

std::string SecureExporter::log() const {
  std::ifstream in(dir_.file("exporter.log"));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int runExporter(const std::vector<std::string>& args, std::string& output, std::chrono::seconds timeout) {
  TempDir dir("apphealth-run");
  std::vector<std::string> argv = {exporterBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t pid = spawnWithLog(argv, dir.file("out.log"));
  int status = 0;
  const bool exited = waitFor([&] { return waitpid(pid, &status, WNOHANG) == pid; }, timeout);
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  std::ifstream in(dir.file("out.log"));
  std::ostringstream s;
  s << in.rdbuf();
  output = s.str();
  if (!exited) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace apphealth::test
