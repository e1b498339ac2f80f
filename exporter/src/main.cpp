// apphealth_exporter: entry point. Parses flags, validates or runs, and turns signals into
// reload and shutdown.

#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>

#include "app/CommandLine.h"
#include "app/Exporter.h"
#include "app/Logging.h"
#include "config/ConfigLoader.h"
#include "web/WebConfig.h"

using namespace apphealth;

namespace {

int checkConfig(const std::string& file, const std::string& webConfigFile) {
  const auto result = loadConfigFile(file);
  for (const auto& error : result.errors) std::cerr << error.format() << "\n";
  std::optional<WebConfigLoadResult> web;
  if (!webConfigFile.empty()) {
    web = loadWebConfigFile(webConfigFile, WebConfigUse::MainListener);
    for (const auto& error : web->errors) std::cerr << error.format() << "\n";
  }
  if (!result.errors.empty() || (web && !web->errors.empty())) return 1;
  const auto& c = *result.config;
  std::cout << file << ": configuration is valid (" << c.postgres.size() << " postgres, " << c.mysql.size()
            << " mysql, " << c.redis.size() << " redis, " << c.backups.size() << " backup, " << c.access_logs.size() << " access log, "
            << c.http_probes.size() << " http probe targets; ingest " << (c.ingest.enabled ? "on" : "off")
            << (c.ingest.enabled && !c.ingest.web_config_file.empty() ? ", web config " + c.ingest.web_config_file : "")
            << ")\n";
  if (web) {
    const auto& w = *web->config;
    std::cout << webConfigFile << ": web config is valid (" << (w.tls ? "TLS" : "no TLS") << ", "
              << w.users.size() << " basic auth users, " << w.headers.size() << " headers)\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const auto parsed = parseCommandLine(std::vector<std::string>(argv + 1, argv + argc));
  if (!parsed.options) {
    std::cerr << "apphealth_exporter: " << parsed.error << "\n";
    return 2;
  }
  const auto& options = *parsed.options;
  if (options.help) {
    std::cout << usage();
    return 0;
  }
  if (options.version) {
    std::cout << "apphealth_exporter " << APPHEALTH_VERSION << "\n";
    return 0;
  }
  if (!setupLogging(options.logLevel, options.logFormat)) {
    std::cerr << "apphealth_exporter: --log.level must be debug|info|warn|error and --log.format text|json\n";
    return 2;
  }
  if (options.checkConfig) return checkConfig(options.configFile, options.webConfigFile);

  // glibc gives every thread its own malloc arena; with a dozen HTTP and collector threads
  // that doubled the resident size for no speed we could measure. Two arenas suffice.
  mallopt(M_ARENA_MAX, 2);
  // A fixed mmap threshold: blocks from 256 KiB up (a large beacon body and its parse) are
  // mapped and given back to the system when freed. glibc would otherwise raise the threshold
  // after the first such block and serve the next ones from the heap, which keeps them.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);

  // Every open beacon connection is a descriptor: allow as many as the hard limit does (as Go
  // programs, Debian's other exporters among them, do at start).
  if (rlimit files{}; getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }

  // Block the signals before any thread exists, so every thread inherits the mask and the
  // main thread alone receives them with sigwait: no async-signal-safety pitfalls.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A client that hangs up mid-response must not kill the process.
  signal(SIGPIPE, SIG_IGN);

  CivetWebOptions http;
  http.listenAddress = options.listenAddress;
  WebOptions web;
  web.configFile = options.webConfigFile;
  web.enableLifecycle = options.enableLifecycle;
  Exporter exporter(options.configFile, http, web);
  try {
    exporter.start();
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }

  while (true) {
    int signal = 0;
    if (sigwait(&signals, &signal) != 0) continue;
    if (signal == SIGHUP) {
      spdlog::info("SIGHUP: reloading {}", options.configFile);
      exporter.reload();
      continue;
    }
    spdlog::info("{}: shutting down", signal == SIGTERM ? "SIGTERM" : "SIGINT");
    break;
  }
  exporter.stop();
  spdlog::info("stopped");
  return 0;
}
