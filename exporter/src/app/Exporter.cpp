#include "app/Exporter.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "collectors/access_log/AccessLogCollector.h"
#include "collectors/backup/BackupCollector.h"
#include "collectors/http_probe/HttpProbeCollector.h"
#include "collectors/mysql/MysqlCollector.h"
#include "collectors/mysql/MysqlSqlMetricsCollector.h"
#include "collectors/postgres/PostgresCollector.h"
#include "collectors/postgres/PostgresSqlMetricsCollector.h"
#include "collectors/redis/RedisQueueCollector.h"
#include "metrics/Exposition.h"
#include "http/SameOrigin.h"
#include "status/StatusReport.h"
#include "util/Gzip.h"

namespace apphealth {

namespace {

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A 405 refusal unless the method is `allowed` ("GET" implies HEAD).
std::optional<HttpResponse> refuseMethod(const HttpRequest& request, const std::string& allowed) {
  const std::string method(request.method());
  if (allowed == "GET" && (method == "GET" || method == "HEAD")) return std::nullopt;
  if (method == allowed) return std::nullopt;
  const std::string allow = allowed == "GET" ? "GET, HEAD" : allowed;
  return errorResponse(405, "method " + method + " not allowed; use " + allow, {{"Allow", allow}});
}

// Settings the beacon listener is built with: changing them needs a restart.
bool sameBeaconListener(const IngestConfig& a, const IngestConfig& b) {
  return a.enabled == b.enabled && a.vitals_path == b.vitals_path && a.errors_path == b.errors_path &&
         a.listen_address == b.listen_address && a.shared_listener == b.shared_listener &&
         a.max_connections == b.max_connections && a.max_connections_per_client == b.max_connections_per_client &&
         a.request_timeout == b.request_timeout && a.web_config_file == b.web_config_file;
}

}  // namespace

Exporter::Exporter(std::string configFile, CivetWebOptions http, WebOptions web)
    : configFile_(std::move(configFile)), httpOptions_(std::move(http)), webOptions_(std::move(web)) {}

Exporter::~Exporter() { stop(); }

std::vector<std::unique_ptr<CollectorRunner>> Exporter::buildRunners(const Config& config) {
  std::vector<std::unique_ptr<CollectorRunner>> runners;
  for (const auto& t : config.postgres) {
    runners.push_back(std::make_unique<CollectorRunner>("postgres", t.name, t.interval,
                                                        std::make_unique<PostgresCollector>(t)));
    for (const auto& m : t.sql_metrics) {
      runners.push_back(std::make_unique<CollectorRunner>("sql", SqlMetricsSampler::runnerTarget(t.name, m), m.interval,
                                                          std::make_unique<PostgresSqlMetricsCollector>(t, m)));
    }
  }
  for (const auto& t : config.mysql) {
    runners.push_back(std::make_unique<CollectorRunner>("mysql", t.name, t.interval, std::make_unique<MysqlCollector>(t)));
    for (const auto& m : t.sql_metrics) {
      runners.push_back(std::make_unique<CollectorRunner>("sql", SqlMetricsSampler::runnerTarget(t.name, m), m.interval,
                                                          std::make_unique<MysqlSqlMetricsCollector>(t, m)));
    }
  }
  for (const auto& t : config.redis) {
    runners.push_back(std::make_unique<CollectorRunner>("redis", t.name, t.interval,
                                                        std::make_unique<RedisQueueCollector>(t)));
  }
  for (const auto& t : config.backups) {
    runners.push_back(std::make_unique<CollectorRunner>("backup", t.name, t.interval,
                                                        std::make_unique<BackupCollector>(t)));
  }
  for (const auto& t : config.access_logs) {
    runners.push_back(std::make_unique<CollectorRunner>("access_log", t.name, t.interval,
                                                        std::make_unique<AccessLogCollector>(t)));
  }
  for (const auto& t : config.http_probes) {
    runners.push_back(std::make_unique<CollectorRunner>("http_probe", t.name, t.interval,
                                                        std::make_unique<HttpProbeCollector>(t)));
  }
  return runners;
}

void Exporter::start() {
  auto loaded = loadConfigFile(configFile_);
  if (!loaded.config) {
    std::string message = "invalid configuration:";
    for (const auto& e : loaded.errors) message += "\n  " + e.format();
    throw std::runtime_error(message);
  }
  config_ = std::make_shared<const Config>(std::move(*loaded.config));
  // Web configs first: a broken one stops the start before anything runs.
  if (!webOptions_.configFile.empty()) {
    mainGuard_ = std::make_unique<WebGuard>(webOptions_.configFile, WebConfigUse::MainListener, "main listener");
  }
  if (config_->ingest.enabled && !config_->ingest.web_config_file.empty()) {
    beaconGuard_ = std::make_unique<WebGuard>(config_->ingest.web_config_file, WebConfigUse::BeaconListener,
                                              "beacon listener");
  }
  runners_ = buildRunners(*config_);
  for (auto& runner : runners_) runner->start();
  lastReloadSuccess_ = nowSeconds();

  const auto& ingestConfig = config_->ingest;
  if (ingestConfig.enabled) ingest_ = std::make_shared<ingest::IngestEndpoints>(ingestConfig);
  CivetWebOptions mainOptions = httpOptions_;
  if (ingest_ && ingestConfig.shared_listener) {
    // Every open connection holds a worker thread: beacons sharing the main listener get their
    // own share of workers on top of those kept for scrapes.
    mainOptions.threads += ingestConfig.max_connections;
    spdlog::warn("ingest.shared_listener: the beacon endpoints share {} with /metrics and /-/reload. Each open "
                 "connection holds one of its worker threads, so slow or flooding beacon clients can delay scrapes "
                 "past Prometheus' timeout, and whoever reaches the beacons reaches the admin endpoints too. For "
                 "beacons from the internet, use the default: their own listener (ingest.listen_address, :10046)",
                 httpOptions_.listenAddress);
  }
  startMainListener(mainOptions);
  if (ingest_ && !ingestConfig.shared_listener) {
    MicroHttpdOptions beacon;
    beacon.listenAddress = ingestConfig.listen_address;
    // Event loops: about two per core keep the cores busy while one loop waits on the disk
    // (ingest.error_log) or is descheduled on a shared machine.
    beacon.threads = static_cast<int>(std::clamp(2 * std::thread::hardware_concurrency(), 2u, 16u));
    beacon.maxConnections = ingestConfig.max_connections;
    beacon.maxConnectionsPerClient = ingestConfig.max_connections_per_client;
    beacon.requestTimeout = ingestConfig.request_timeout;
    // A trusted proxy in front carries many clients' connections: no per-client cap for it.
    beacon.unlimitedClient = [this](std::string_view address) {
      const auto endpoints = ingest();
      return endpoints && endpoints->isTrustedProxy(address);
    };
    if (beaconGuard_ && beaconGuard_->tlsAtStart()) beacon.tls = beaconGuard_->tls();
    beaconListener_ = std::make_unique<MicroHttpdListener>(std::move(beacon));
    if (beaconGuard_) beaconListener_->filter(beaconGuard_->filter());
    rlimit files{};
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < static_cast<rlim_t>(ingestConfig.max_connections) + 256) {
      spdlog::warn("ingest.max_connections is {} but this process may open only {} files; raise the limit "
                   "(systemd: LimitNOFILE=) or lower max_connections",
                   ingestConfig.max_connections, files.rlim_cur);
    }
  }
  installRoutes();
  ready_ = true;
  std::string protection = mainGuard_ ? (mainGuard_->tlsAtStart() ? " (TLS" : " (plain HTTP") : "";
  if (mainGuard_) {
    protection += mainGuard_->usersAtStart() > 0
                      ? ", basic auth for " + std::to_string(mainGuard_->usersAtStart()) + " users)"
                      : ", no basic auth)";
  }
  spdlog::info("apphealth_exporter {} listening on {}{} with {} collectors from {}{}{}", APPHEALTH_VERSION,
               httpOptions_.listenAddress, protection, runners_.size(), configFile_,
               beaconListener_ ? "; beacon ingest on " + ingestConfig.listen_address : std::string(),
               beaconGuard_ && beaconGuard_->tlsAtStart() ? " (TLS)" : "");
  if (!webOptions_.enableLifecycle) spdlog::info("POST /-/reload is disabled (--web.enable-lifecycle=false); SIGHUP reloads");
}

// Without TLS the main listener is CivetWeb, as it always was. With TLS it is libmicrohttpd:
// Debian 12's libcivetweb loads OpenSSL at run time by the names libssl.so and libcrypto.so,
// which only the -dev packages install, so CivetWeb's TLS would fail on a server without build
// tools; libmicrohttpd links GnuTLS (libgnutls30), which every Debian system has. A thread per
// connection keeps a slow reload from holding up a scrape, as CivetWeb's worker threads do.
void Exporter::startMainListener(const CivetWebOptions& options) {
  if (!mainGuard_ || !mainGuard_->tlsAtStart()) {
    server_ = std::make_unique<CivetWebListener>(options);
  } else {
    MicroHttpdOptions tls;
    tls.name = "main listener";
    tls.listenAddress = options.listenAddress;
    tls.threadPerConnection = true;
    tls.maxConnections = std::max(64, options.threads);
    tls.maxConnectionsPerClient = tls.maxConnections;
    tls.requestTimeout = std::chrono::milliseconds(options.requestTimeoutMs);
    tls.tls = mainGuard_->tls();
    auto listener = std::make_unique<MicroHttpdListener>(std::move(tls));
    mainTlsListener_ = listener.get();
    server_ = std::move(listener);
  }
  if (mainGuard_) server_->filter(mainGuard_->filter());
}

std::optional<ReloadResult> Exporter::reload() {
  reloadRequested_ = true;
  auto result = runRequestedReloads();
  if (!result) spdlog::info("a reload is in progress; it runs once more when it ends");
  return result;
}

std::optional<ReloadResult> Exporter::tryReload() {
  std::unique_lock lock(reloadMutex_, std::try_to_lock);
  if (!lock.owns_lock()) return std::nullopt;
  auto result = reloadLocked();
  lock.unlock();
  runRequestedReloads();  // a SIGHUP that came in meanwhile
  return result;
}

// Runs reloads while any is requested and nobody else is running one; the one holding the lock
// sees requests made meanwhile (the outer loop closes the window between its last check and
// its unlock). Returns the last result, or nullopt when another thread is reloading.
std::optional<ReloadResult> Exporter::runRequestedReloads() {
  std::optional<ReloadResult> last;
  while (reloadRequested_) {
    std::unique_lock lock(reloadMutex_, std::try_to_lock);
    if (!lock.owns_lock()) return last;
    while (reloadRequested_.exchange(false)) last = reloadLocked();
  }
  return last;
}

ReloadResult Exporter::reloadLocked() {
  // A reload applies a changed web config at once, not at the next check a second later.
  if (mainGuard_) mainGuard_->refresh();
  if (beaconGuard_) beaconGuard_->refresh();
  auto loaded = loadConfigFile(configFile_);
  if (!loaded.config) {
    ReloadResult result;
    for (const auto& e : loaded.errors) result.message += e.format() + "\n";
    lastReloadOk_ = false;
    spdlog::error("reload failed, keeping the running configuration:\n{}", result.message);
    return result;
  }
  auto config = std::make_shared<const Config>(std::move(*loaded.config));
  const auto& oldIngest = config_->ingest;
  if (!sameBeaconListener(config->ingest, oldIngest)) {
    ReloadResult result;
    result.message = configFile_ +
                     ": enabling, disabling or moving the ingest endpoints (paths, listen_address, shared_listener, "
                     "max_connections, max_connections_per_client, request_timeout) needs a restart\n";
    lastReloadOk_ = false;
    spdlog::error("reload failed, keeping the running configuration: {}", result.message);
    return result;
  }
  // Unchanged ingest settings keep their endpoints, and with them the histograms' history.
  std::shared_ptr<ingest::IngestEndpoints> ingest = this->ingest();
  if (config->ingest.enabled && !(config->ingest == oldIngest)) {
    ingest = std::make_shared<ingest::IngestEndpoints>(config->ingest);
  }
  auto fresh = buildRunners(*config);
  for (auto& runner : fresh) runner->start();
  std::vector<std::unique_ptr<CollectorRunner>> old;
  {
    std::unique_lock lock(stateMutex_);
    old.swap(runners_);
    runners_ = std::move(fresh);
    config_ = config;
    ingest_ = ingest;
  }
  old.clear();  // stops the old sampling threads, outside the lock
  lastReloadOk_ = true;
  lastReloadSuccess_ = nowSeconds();
  spdlog::info("configuration reloaded from {}", configFile_);
  return {true, "configuration reloaded"};
}

void Exporter::stop() {
  ready_ = false;
  // No more requests; both listeners close in parallel to keep shutdown short.
  std::thread beaconCloser([this] { beaconListener_.reset(); });
  server_.reset();
  beaconCloser.join();
  std::vector<std::unique_ptr<CollectorRunner>> old;
  {
    std::unique_lock lock(stateMutex_);
    old.swap(runners_);
  }
  // Ask every runner to stop before waiting on any, so the shutdown costs one wait, not N.
  std::vector<std::thread> stoppers;
  for (auto& runner : old) stoppers.emplace_back([&runner] { runner->stop(); });
  for (auto& t : stoppers) t.join();
}

std::string Exporter::renderMetrics() const {
  // Hold the snapshots (not the lock) while joining: a reload may swap runners meanwhile.
  std::vector<std::shared_ptr<const RenderedFamilies>> snapshots;
  {
    std::shared_lock lock(stateMutex_);
    snapshots.reserve(runners_.size() + 1);
    for (const auto& runner : runners_) snapshots.push_back(runner->snapshot());
  }
  SnapshotBuilder self;
  self.gauge("apphealth_build_info", "Build of the exporter; the value is always 1.",
             {{"version", APPHEALTH_VERSION}, {"compiler", __VERSION__}}, 1);
  self.gauge("apphealth_config_last_reload_successful", "Whether the last configuration reload succeeded.", {},
             lastReloadOk_ ? 1 : 0);
  self.gauge("apphealth_config_last_reload_success_timestamp_seconds",
             "Unix time of the last successful configuration load.", {}, lastReloadSuccess_.load());
  if (auto endpoints = ingest()) endpoints->collect(self);
  if (beaconListener_) ingest::collectListenerStats(self, beaconListener_->stats());
  if (const auto* main = mainTlsListener_.load()) {
    self.counter("apphealth_web_connections_refused_total",
                 "Connections the main listener refused at the TLS handshake: a client certificate refused by "
                 "--web.config.file's client_auth_type, client_ca_file or client_allowed_sans, or any while that "
                 "file is broken (tls). Only with TLS.",
                 {{"reason", "tls"}}, static_cast<double>(main->stats().refusedTls));
  }
  snapshots.push_back(std::make_shared<const RenderedFamilies>(renderFamilies(self.take())));
  std::vector<const RenderedFamilies*> parts;
  for (const auto& s : snapshots) parts.push_back(s.get());
  return joinRendered(parts);
}

std::shared_ptr<ingest::IngestEndpoints> Exporter::ingest() const {
  std::shared_lock lock(stateMutex_);
  return ingest_;
}

void Exporter::installRoutes() {
  if (ingest_) {
    const auto& c = ingest_->config();
    HttpListener& listener = beaconListener_ ? static_cast<HttpListener&>(*beaconListener_) : *server_;
    // Each request takes the endpoints in effect when it arrives (a reload may swap them).
    // Open: browsers post beacons without credentials, also where they share the main listener.
    listener.route(c.vitals_path, {[this](const HttpRequest& r) { return ingest()->vitals(r); },
                                   [this](const HttpRequest& r) { return ingest()->head(ingest::Endpoint::Vitals, r); },
                                   true});
    listener.route(c.errors_path, {[this](const HttpRequest& r) { return ingest()->errors(r); },
                                   [this](const HttpRequest& r) { return ingest()->head(ingest::Endpoint::Errors, r); },
                                   true});
  }
  server_->route("/metrics", {[this](const HttpRequest& r) { return handleMetrics(r); }, {}});
  server_->route("/-/healthy", {[](const HttpRequest& r) {
                                  if (auto refusal = refuseMethod(r, "GET")) return *refusal;
                                  return HttpResponse{200, "text/plain; charset=utf-8", "Healthy\n", {}};
                                }, {}});
  server_->route("/-/ready", {[this](const HttpRequest& r) {
                                if (auto refusal = refuseMethod(r, "GET")) return *refusal;
                                if (!ready_) return errorResponse(503, "not ready");
                                return HttpResponse{200, "text/plain; charset=utf-8", "Ready\n", {}};
                              }, {}});
  server_->route("/-/reload", {[this](const HttpRequest& r) { return handleReload(r); }, {}});
  server_->route("/", {[this](const HttpRequest& r) {
                         if (auto refusal = refuseMethod(r, "GET")) return *refusal;
                         // Nothing on the page may run or load anything, whatever a target's error text holds.
                         return HttpResponse{200, "text/html; charset=utf-8", renderStatusPage(statusInputs()),
                                             {{"Content-Security-Policy",
                                               "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
                                               "form-action 'none'; frame-ancestors 'none'"},
                                              {"X-Content-Type-Options", "nosniff"},
                                              {"Cache-Control", "no-store"}}};
                       }, {}});
  server_->route("/api/v1/status", {[this](const HttpRequest& r) {
                                      if (auto refusal = refuseMethod(r, "GET")) return *refusal;
                                      const auto inputs = statusInputs();
                                      // Uptime checkers that only look at the status code see "unhealthy" as 503.
                                      const int code = evaluate(inputs).status == OverallStatus::Unhealthy ? 503 : 200;
                                      return HttpResponse{code, "application/json", renderStatusJson(inputs),
                                                          {{"Cache-Control", "no-store"},
                                                           {"X-Content-Type-Options", "nosniff"}}};
                                    }, {}});
}

HttpResponse Exporter::handleMetrics(const HttpRequest& request) const {
  if (auto refusal = refuseMethod(request, "GET")) return *refusal;
  HttpResponse response;
  response.contentType = kTextContentType;
  response.body = renderMetrics();
  if (const auto acceptEncoding = request.header("Accept-Encoding"); acceptEncoding && acceptsGzip(std::string(*acceptEncoding))) {
    response.body = gzipCompress(response.body);
    response.headers.emplace_back("Content-Encoding", "gzip");
  }
  response.headers.emplace_back("Vary", "Accept-Encoding");
  return response;
}

// A reload runs on the request's worker thread, one at a time; a second request is answered
// at once instead of queueing behind the first and holding another worker (the scrapes' own).
HttpResponse Exporter::handleReload(const HttpRequest& request) {
  if (!webOptions_.enableLifecycle) {
    return errorResponse(403, "the lifecycle API is disabled (--web.enable-lifecycle=false); send SIGHUP to reload");
  }
  if (auto refusal = refuseMethod(request, "POST")) return *refusal;
  if (auto problem = foreignRequestProblem(request)) return errorResponse(403, *problem);
  const auto result = tryReload();
  if (!result) return errorResponse(409, "reload in progress; try again once it has finished");
  if (result->ok) return HttpResponse{200, "text/plain; charset=utf-8", result->message + "\n", {}};
  return errorResponse(500, "reload failed, running configuration kept:\n" + result->message);
}

StatusInputs Exporter::statusInputs() const {
  StatusInputs in;
  std::shared_ptr<const Config> config;
  {
    std::shared_lock lock(stateMutex_);
    config = config_;
    in.collectors.reserve(runners_.size());
    for (const auto& runner : runners_) in.collectors.push_back(runner->health());
  }
  in.now = nowSeconds();
  in.configFile = config->source_file;
  in.lastReloadOk = lastReloadOk_;
  if (const auto& ingest = config->ingest; ingest.enabled) {
    in.ingest = "POST " + ingest.vitals_path + " and " + ingest.errors_path +
                (ingest.shared_listener ? std::string(" on this listener")
                                               : " on its own listener, " + ingest.listen_address);
  }
  return in;
}

}  // namespace apphealth
