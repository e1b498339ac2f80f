#include "app/CommandLine.h"

namespace apphealth {

std::string usage() {
  return R"(usage: apphealth_exporter --config.file=FILE [flags]

Samples PostgreSQL, MySQL/MariaDB, Redis job queues and backups in the background and
serves the results as Prometheus metrics.

Flags:
  --config.file=FILE            YAML configuration (see exporter/apphealth.example.yml)
  --web.listen-address=ADDR     host:port or :port to listen on (default :10045)
  --web.config.file=FILE        exporter-toolkit web config for that listener: TLS
                                (tls_server_config), basic auth (basic_auth_users, bcrypt),
                                response headers (http_server_config.headers)
  --[no-]web.enable-lifecycle   allow POST /-/reload (default on; SIGHUP works either way)
  --log.level=LEVEL             debug, info, warn or error (default info)
  --log.format=FORMAT           text or json (default text)
  --check-config                validate the configuration, print each problem as
                                file:line:col: message, exit 1 if there is any
  --version                     print the version and exit
  --help                        print this help and exit

Signals: SIGHUP (or POST /-/reload) re-reads the configuration and keeps the running one
if the new file is invalid; SIGTERM/SIGINT shut down.
)";
}

CommandLineResult parseCommandLine(const std::vector<std::string>& args) {
  CommandLine options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    std::optional<std::string> value;
    if (const auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    auto takeValue = [&]() -> std::optional<std::string> {
      if (value) return value;
      if (i + 1 < args.size()) return args[++i];
      return std::nullopt;
    };
    std::string* target = nullptr;
    if (arg == "--config.file") target = &options.configFile;
    else if (arg == "--web.listen-address") target = &options.listenAddress;
    else if (arg == "--web.config.file") target = &options.webConfigFile;
    else if (arg == "--log.level") target = &options.logLevel;
    else if (arg == "--log.format") target = &options.logFormat;

    if (target != nullptr) {
      auto v = takeValue();
      if (!v || v->empty()) return {std::nullopt, arg + " needs a value"};
      *target = *v;
    } else if (arg == "--web.enable-lifecycle" || (arg == "--no-web.enable-lifecycle" && !value)) {
      // kingpin's boolean forms, as Prometheus' own flags take them.
      const std::string v = value.value_or("true");
      if (v != "true" && v != "false") return {std::nullopt, arg + " takes true or false, got '" + v + "'"};
      options.enableLifecycle = (v == "true") == (arg == "--web.enable-lifecycle");
    } else if (arg == "--check-config" && !value) {
      options.checkConfig = true;
    } else if (arg == "--version" && !value) {
      options.version = true;
    } else if ((arg == "--help" || arg == "-h") && !value) {
      options.help = true;
    } else {
      return {std::nullopt, "unknown flag " + args[i] + " (see --help)"};
    }
  }
  if (!options.help && !options.version && options.configFile.empty()) {
    return {std::nullopt, "--config.file is required (see --help)"};
  }
  return {options, {}};
}

}  // namespace apphealth
