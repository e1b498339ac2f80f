#pragma once
// Shared helpers for the integration tests: throwaway PostgreSQL and Redis servers on
// 127.0.0.1 in temporary directories, the exporter as a real child process, and a small HTTP
// client. Everything is torn down by destructors, also when an assertion fails.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace apphealth::test {

using namespace std::chrono_literals;

// A fresh directory under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "apphealth-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  void write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

int freePort();
// A TCP connection to 127.0.0.1:port: the socket, or -1 when connect() fails. The caller closes it.
int connectLoopback(int port);
// Starts `args` (argv[0] is the program's path) with stdout and stderr in `logPath`; the child
// gets SIGTERM if the test process dies first.
pid_t spawnWithLog(std::vector<std::string> args, const std::string& logPath);
// Polls `condition` every 50 ms until it holds or `timeout` passes.
bool waitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);
// Runs a shell command, returns its exit status; output goes to `output` when given.
int run(const std::string& command, std::string* output = nullptr);

class TempPostgres {
 public:
  TempPostgres();  // initdb + start
  ~TempPostgres();
  int port() const { return port_; }
  std::string dsn(const std::string& user = "postgres") const;
  void start();
  void stop();     // fast shutdown
  void pause();    // SIGSTOP the postmaster and all backends: a hung server
  void resume();   // SIGCONT
  // Runs SQL as the superuser, returns the first column of the first row ("" if none).
  std::string query(const std::string& sql) const;
  // Replaces data/pg_hba.conf and reloads the server configuration (asynchronous on the
  // server side: new connections see it a moment later).
  void writeHba(const std::string& content) const;

 private:
  std::vector<pid_t> serverPids() const;
  TempDir dir_;
  int port_;
  bool running_ = false;
};

class TempRedis {
 public:
  TempRedis();
  ~TempRedis();
  int port() const { return port_; }
  void start();
  void stop();
  void pause();
  void resume();
  // Runs one command (arguments binary-safe); returns the reply as text ("" for nil).
  std::string command(const std::vector<std::string>& args) const;

 private:
  pid_t pid() const;
  TempDir dir_;
  int port_;
  bool running_ = false;
};

struct HttpResult {
  long status = 0;  // 0: no connection
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  double seconds = 0;
};

HttpResult httpRequest(const std::string& method, const std::string& url,
                       const std::vector<std::string>& headers = {}, const std::string& body = "",
                       long timeoutMs = 5000, bool decodeGzip = false);

// Parses the text exposition into "name{labels}" -> value, exactly as the lines print.
std::map<std::string, double> parseMetrics(const std::string& text);

// The exporter binary as a child process with its own config file and port.
class ExporterProcess {
 public:
  explicit ExporterProcess(const std::string& configYaml, const std::vector<std::string>& extraArgs = {});
  ~ExporterProcess();
  int port() const { return port_; }
  std::string url(const std::string& path) const;
  HttpResult get(const std::string& path, const std::vector<std::string>& headers = {}) const;
  std::map<std::string, double> metrics() const;
  // Value of one series, or nullopt if absent.
  std::optional<double> metric(const std::string& series) const;
  void rewriteConfig(const std::string& configYaml) const;
  void signal(int sig) const;
  // Waits for the process to exit; returns its exit status, or nullopt on timeout.
  std::optional<int> waitExit(std::chrono::milliseconds timeout);
  std::string log() const;
  const std::string& configPath() const { return configPath_; }
  pid_t pid() const { return pid_; }

 private:
  TempDir dir_;
  std::string configPath_;
  int port_;
  pid_t pid_ = -1;
};

// Path of the binary under test, set by CMake.
std::string exporterBinary();

}  // namespace apphealth::test

// ---------------------------------------------------------------- nginx
namespace apphealth::test {

// A throwaway nginx from Debian, in the foreground as our child (master + one worker), with
// everything (config, pid, error log, temp paths) in its own TempDir. `httpBlock` is pasted
// into `http { }`: one or more server blocks, listening on 127.0.0.1 only. In it, `@PORT@`
// becomes port() (a free port picked by the constructor) and `@DIR@` becomes dir(). Files the
// config refers to (certificates, a document root) can be written with file()/write() before
// start() by passing `startNow = false`. Ready (sockets bound) when start() returns; stopped
// (SIGTERM, waited for) by stop() and the destructor.
class TempNginx {
 public:
  // `workerConnections`: nginx's per-worker connection cap (attack tests hold thousands).
  explicit TempNginx(std::string httpBlock, bool startNow = true, int workerConnections = 1024);
  ~TempNginx();
  TempNginx(const TempNginx&) = delete;
  TempNginx& operator=(const TempNginx&) = delete;

  int port() const { return port_; }
  const std::string& dir() const { return dir_.path(); }
  std::string file(const std::string& name) const { return dir_.file(name); }
  void write(const std::string& name, const std::string& content) const { dir_.write(name, content); }
  std::string url(const std::string& path = "/") const;  // http://127.0.0.1:PORT/path
  std::string errorLog() const;

  void start();
  void stop();
  void reopenLogs() const;  // SIGUSR1: reopen log files (after a rename rotation)
  pid_t pid() const { return pid_; }

 private:
  TempDir dir_;
  int port_;
  std::string httpBlock_;
  int workerConnections_;
  pid_t pid_ = -1;
};

}  // namespace apphealth::test
