#include "TestSupport.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace apphealth::test {

namespace fs = std::filesystem;

namespace {

constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";

bool isRoot() { return geteuid() == 0; }

// PostgreSQL refuses to run as root: run its tools as the postgres user when we are root.
std::string asPostgres(const std::string& command) {
  return isRoot() ? "runuser -u postgres -- " + command : command;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<pid_t> childrenOf(pid_t parent) {
  std::vector<pid_t> pids;
  std::string out;
  run("pgrep -P " + std::to_string(parent), &out);
  std::istringstream lines(out);
  pid_t pid;
  while (lines >> pid) pids.push_back(pid);
  return pids;
}

}  // namespace

bool isZombie(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto close = line.rfind(')');  // the command name may contain spaces
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

pid_t spawnWithLog(std::vector<std::string> args, const std::string& logPath) {
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // A test killed by ctest's timeout runs no destructor: take the child down with it.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    if (FILE* log = std::fopen(logPath.c_str(), "w")) {
      dup2(fileno(log), 1);
      dup2(fileno(log), 2);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

TempDir::TempDir(const std::string& prefix) {
  std::string pattern = "/tmp/" + prefix + "-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
  chmod(path_.c_str(), 0755);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void TempDir::write(const std::string& name, const std::string& content) const {
  std::ofstream out(file(name), std::ios::binary);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + file(name));
}

int freePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("bind failed");
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

int connectLoopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool waitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return condition();
}

int run(const std::string& command, std::string* output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  std::string text;
  while (std::size_t n = fread(buffer, 1, sizeof buffer, pipe)) text.append(buffer, n);
  const int status = pclose(pipe);
  if (output) *output = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// ---------------------------------------------------------------- PostgreSQL

TempPostgres::TempPostgres() : dir_("apphealth-pg"), port_(freePort()) {
  if (isRoot()) {
    const passwd* pw = getpwnam("postgres");
    if (pw == nullptr) throw std::runtime_error("no postgres user: install the postgresql package");
    if (chown(dir_.path().c_str(), pw->pw_uid, pw->pw_gid) != 0) throw std::runtime_error("chown failed");
  }
  std::string out;
  // --no-sync: a throwaway cluster needs no fsync of its files (seconds on a loaded machine).
  if (run(asPostgres(std::string(kPgBin) + "/initdb --no-sync -D " + dir_.path() + "/data -U postgres --auth=trust"), &out) != 0) {
    throw std::runtime_error("initdb failed: " + out);
  }
  start();
}

TempPostgres::~TempPostgres() {
  resume();
  if (running_) run(asPostgres(std::string(kPgBin) + "/pg_ctl -D " + dir_.path() + "/data -m immediate -w stop"));
}

std::string TempPostgres::dsn(const std::string& user) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=postgres user=" + user;
}

void TempPostgres::start() {
  std::string out;
  const std::string options = "-p " + std::to_string(port_) + " -k " + dir_.path() +
                              " -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50";
  if (run(asPostgres(std::string(kPgBin) + "/pg_ctl -D " + dir_.path() + "/data -l " + dir_.path() +
                     "/pg.log -w -o \"" + options + "\" start"),
          &out) != 0) {
    throw std::runtime_error("pg_ctl start failed: " + out + readFile(dir_.path() + "/pg.log"));
  }
  running_ = true;
}

void TempPostgres::stop() {
  resume();
  run(asPostgres(std::string(kPgBin) + "/pg_ctl -D " + dir_.path() + "/data -m fast -w stop"));
  running_ = false;
}

std::vector<pid_t> TempPostgres::serverPids() const {
  std::ifstream pidFile(dir_.path() + "/data/postmaster.pid");
  pid_t postmaster = 0;
  if (!(pidFile >> postmaster)) return {};
  auto pids = childrenOf(postmaster);
  pids.insert(pids.begin(), postmaster);
  return pids;
}

void TempPostgres::pause() {
  for (pid_t pid : serverPids()) kill(pid, SIGSTOP);
}

void TempPostgres::resume() {
  for (pid_t pid : serverPids()) kill(pid, SIGCONT);
}

std::string TempPostgres::query(const std::string& sql) const {
  const std::string conninfo = dsn() + " connect_timeout=5";
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string error = PQerrorMessage(conn);
    PQfinish(conn);
    throw std::runtime_error("psql connect: " + error);
  }
  PGresult* result = PQexec(conn, sql.c_str());
  const auto status = PQresultStatus(result);
  std::string value;
  if (status == PGRES_TUPLES_OK && PQntuples(result) > 0) value = PQgetvalue(result, 0, 0);
  std::string error = PQresultErrorMessage(result);
  PQclear(result);
  PQfinish(conn);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) throw std::runtime_error("SQL failed: " + error);
  return value;
}

void TempPostgres::writeHba(const std::string& content) const {
  // Overwriting keeps the file's owner (postgres) and mode; the server reads it on reload.
  std::ofstream out(dir_.path() + "/data/pg_hba.conf", std::ios::trunc);
  out << content;
  out.close();
  if (!out) throw std::runtime_error("cannot write pg_hba.conf");
  query("SELECT pg_reload_conf()");
}

// ---------------------------------------------------------------- Redis

TempRedis::TempRedis() : dir_("apphealth-redis"), port_(freePort()) { start(); }

TempRedis::~TempRedis() {
  if (running_) stop();
}

pid_t TempRedis::pid() const {
  std::ifstream in(dir_.file("redis.pid"));
  pid_t pid = 0;
  in >> pid;
  return pid;
}

void TempRedis::start() {
  std::string out;
  const std::string cmd = "redis-server --bind 127.0.0.1 --port " + std::to_string(port_) +
                          " --daemonize yes --pidfile " + dir_.file("redis.pid") + " --dir " + dir_.path() +
                          " --logfile " + dir_.file("redis.log") + " --save '' --appendonly no";
  if (run(cmd, &out) != 0) throw std::runtime_error("redis-server failed: " + out);
  if (!waitFor([&] { return command({"PING"}) == "PONG"; }, 5s)) throw std::runtime_error("redis did not start");
  running_ = true;
}

void TempRedis::stop() {
  resume();
  const pid_t p = pid();
  if (p > 0) {
    kill(p, SIGTERM);
    // The daemonized server is reaped by init, sometimes late: a zombie has exited too.
    waitFor([&] { return kill(p, 0) != 0 || isZombie(p); }, 5s);
  }
  std::remove(dir_.file("redis.pid").c_str());
  running_ = false;
}

void TempRedis::pause() { kill(pid(), SIGSTOP); }
void TempRedis::resume() {
  if (pid() > 0) kill(pid(), SIGCONT);
}

std::string TempRedis::command(const std::vector<std::string>& args) const {
  timeval tv{2, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
  if (c == nullptr || c->err) {
    if (c) redisFree(c);
    return "";
  }
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* reply = static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  std::string value;
  if (reply != nullptr) {
    if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS || reply->type == REDIS_REPLY_ERROR) {
      value.assign(reply->str, reply->len);
    } else if (reply->type == REDIS_REPLY_INTEGER) {
      value = std::to_string(reply->integer);
    }
    freeReplyObject(reply);
  }
  redisFree(c);
  return value;
}

// ---------------------------------------------------------------- HTTP

namespace {

size_t appendBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

size_t appendHeader(char* data, size_t size, size_t count, void* user) {
  std::string line(data, size * count);
  const auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    (*static_cast<std::map<std::string, std::string>*>(user))[name] = value;
  }
  return size * count;
}

}  // namespace

HttpResult httpRequest(const std::string& method, const std::string& url, const std::vector<std::string>& headers,
                       const std::string& body, long timeoutMs, bool decodeGzip) {
  HttpResult result;
  CURL* curl = curl_easy_init();
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "HEAD") curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  if (!body.empty() || method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeoutMs);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  if (decodeGzip) curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "gzip");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, appendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &result.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, appendHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &result.headers);
  const auto started = std::chrono::steady_clock::now();
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  return result;
}

std::map<std::string, double> parseMetrics(const std::string& text) {
  std::map<std::string, double> values;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    // The value follows the last space outside the label block.
    const auto closing = line.rfind('}');
    const auto space = line.find(' ', closing == std::string::npos ? 0 : closing);
    if (space == std::string::npos) continue;
    values[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return values;
}

// ---------------------------------------------------------------- exporter process

std::string exporterBinary() {
  if (const char* env = std::getenv("APPHEALTH_EXPORTER")) return env;
  return APPHEALTH_EXPORTER_BIN;
}

ExporterProcess::ExporterProcess(const std::string& configYaml, const std::vector<std::string>& extraArgs)
    : dir_("apphealth-exporter"), configPath_(dir_.file("config.yml")), port_(freePort()) {
  dir_.write("config.yml", configYaml);
  std::vector<std::string> args = {exporterBinary(), "--config.file=" + configPath_,
                                   "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=debug"};
  args.insert(args.end(), extraArgs.begin(), extraArgs.end());
  const std::string logPath = dir_.file("exporter.log");
  pid_ = spawnWithLog(args, logPath);
  const bool ready = waitFor(
      [&] {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          throw std::runtime_error("exporter exited at start:\n" + log());
        }
        return get("/-/ready").status == 200;
      },
      10s);
  if (!ready) throw std::runtime_error("exporter not ready after 10 s:\n" + log());
}

ExporterProcess::~ExporterProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    if (!waitExit(5s)) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
}

std::string ExporterProcess::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

HttpResult ExporterProcess::get(const std::string& path, const std::vector<std::string>& headers) const {
  return httpRequest("GET", url(path), headers);
}

std::map<std::string, double> ExporterProcess::metrics() const { return parseMetrics(get("/metrics").body); }

std::optional<double> ExporterProcess::metric(const std::string& series) const {
  auto all = metrics();
  auto it = all.find(series);
  if (it == all.end()) return std::nullopt;
  return it->second;
}

void ExporterProcess::rewriteConfig(const std::string& configYaml) const { dir_.write("config.yml", configYaml); }

void ExporterProcess::signal(int sig) const { kill(pid_, sig); }

std::optional<int> ExporterProcess::waitExit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  std::optional<int> code;
  waitFor(
      [&] {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
          return true;
        }
        return false;
      },
      timeout);
  if (code) pid_ = -1;
  return code;
}

std::string ExporterProcess::log() const { return readFile(dir_.file("exporter.log")); }

}  // namespace apphealth::test

// ---------------------------------------------------------------- nginx

namespace apphealth::test {

namespace {

void replaceAll(std::string& text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

}  // namespace

TempNginx::TempNginx(std::string httpBlock, bool startNow, int workerConnections)
    : dir_("apphealth-nginx"), port_(freePort()), httpBlock_(std::move(httpBlock)), workerConnections_(workerConnections) {
  if (startNow) start();
}

TempNginx::~TempNginx() { stop(); }

std::string TempNginx::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

std::string TempNginx::errorLog() const { return readFile(dir_.file("error.log")) + readFile(dir_.file("nginx.out")); }

void TempNginx::start() {
  if (pid_ > 0) return;
  std::string block = httpBlock_;
  replaceAll(block, "@PORT@", std::to_string(port_));
  replaceAll(block, "@DIR@", dir_.path());
  const std::string& d = dir_.path();
  std::string conf = "worker_processes 1;\n"
                     "daemon off;\n"
                     "master_process on;\n"
                     "pid " + d + "/nginx.pid;\n"
                     "error_log " + d + "/error.log info;\n"
                     "worker_rlimit_nofile " + std::to_string(2 * workerConnections_ + 64) + ";\n"
                     "events { worker_connections " + std::to_string(workerConnections_) + "; }\n"
                     "http {\n"
                     "  access_log off;\n"
                     "  client_body_temp_path " + d + "/client_body;\n"
                     "  proxy_temp_path " + d + "/proxy;\n"
                     "  fastcgi_temp_path " + d + "/fastcgi;\n"
                     "  uwsgi_temp_path " + d + "/uwsgi;\n"
                     "  scgi_temp_path " + d + "/scgi;\n"
                     "  default_type text/plain;\n" +
                     block + "\n}\n";
  dir_.write("nginx.conf", conf);
  std::remove(dir_.file("nginx.pid").c_str());

  const std::string out = dir_.file("nginx.out");
  std::vector<std::string> args = {"/usr/sbin/nginx", "-p", d + "/", "-c", d + "/nginx.conf", "-e", d + "/error.log"};
  pid_ = spawnWithLog(args, out);
  // nginx writes its pid file after binding every listening socket.
  const bool ready = waitFor(
      [&] {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          throw std::runtime_error("nginx exited at start:\n" + errorLog() + "\nconfig:\n" + conf);
        }
        return fs::exists(dir_.file("nginx.pid"));
      },
      10s);
  if (!ready) {
    stop();
    throw std::runtime_error("nginx not ready after 10 s:\n" + errorLog());
  }
}

void TempNginx::stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  const bool exited = waitFor([&] { return waitpid(pid_, nullptr, WNOHANG) == pid_; }, 5s);
  if (!exited) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_ = -1;
}

void TempNginx::reopenLogs() const {
  if (pid_ > 0) kill(pid_, SIGUSR1);
}

}  // namespace apphealth::test
