#include "TempMariaDb.h"

#include <mysql.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "TestSupport.h"

namespace apphealth::test {

namespace fs = std::filesystem;

namespace {

std::string readText(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// tmpfs when there is one: mariadb-install-db and InnoDB fsync a lot, and the tests do not
// need the data to survive a crash of the machine.
std::string makeDir() {
  std::error_code ec;
  const std::string base = fs::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  std::string pattern = base + "/apphealth-mariadb-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  chmod(pattern.c_str(), 0755);
  return pattern;
}

void chownToMysql(const std::string& path) {
  if (geteuid() != 0) return;
  const passwd* pw = getpwnam("mysql");
  if (pw == nullptr) throw std::runtime_error("no mysql user: install the mariadb-server package");
  if (chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0) throw std::runtime_error("chown " + path + " failed");
}

// Options for both mariadb-install-db and mariadbd (a smaller redo log: faster to create).
const char* kCommonOptions = " --innodb-log-file-size=4M --innodb-buffer-pool-size=32M";

std::string quoted(const std::string& s) { return "'" + s + "'"; }

// One blocking libmariadb connection; throws with the server's message.
MYSQL* open(const std::string& host, int port, const std::string& socket, const std::string& user,
            const std::string& password, const std::string& database) {
  static std::once_flag once;
  std::call_once(once, [] { mysql_library_init(0, nullptr, nullptr); });
  MYSQL* mysql = mysql_init(nullptr);
  const unsigned int connectTimeout = 5, ioTimeout = 10;
  mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &connectTimeout);
  mysql_options(mysql, MYSQL_OPT_READ_TIMEOUT, &ioTimeout);
  mysql_options(mysql, MYSQL_OPT_WRITE_TIMEOUT, &ioTimeout);
  const unsigned int protocol = socket.empty() ? MYSQL_PROTOCOL_TCP : MYSQL_PROTOCOL_SOCKET;
  mysql_options(mysql, MYSQL_OPT_PROTOCOL, &protocol);
  if (mysql_real_connect(mysql, socket.empty() ? host.c_str() : nullptr, user.c_str(), password.c_str(),
                         database.empty() ? nullptr : database.c_str(), static_cast<unsigned int>(port),
                         socket.empty() ? nullptr : socket.c_str(), CLIENT_MULTI_STATEMENTS) == nullptr) {
    std::string error = mysql_error(mysql);
    mysql_close(mysql);
    throw std::runtime_error("connect as " + user + ": " + error);
  }
  return mysql;
}

// Runs SQL (several statements allowed); returns every row of the last result set.
std::vector<std::vector<std::string>> execute(MYSQL* mysql, const std::string& sql) {
  if (mysql_real_query(mysql, sql.data(), static_cast<unsigned long>(sql.size())) != 0) {
    throw std::runtime_error("SQL failed: " + std::string(mysql_error(mysql)) + "\n  in: " + sql);
  }
  std::vector<std::vector<std::string>> rows;
  while (true) {
    if (MYSQL_RES* res = mysql_store_result(mysql)) {
      rows.clear();
      const unsigned int columns = mysql_num_fields(res);
      while (MYSQL_ROW row = mysql_fetch_row(res)) {
        auto& out = rows.emplace_back();
        for (unsigned int c = 0; c < columns; ++c) out.emplace_back(row[c] ? row[c] : "NULL");
      }
      mysql_free_result(res);
    } else if (mysql_field_count(mysql) != 0) {
      throw std::runtime_error("SQL failed: " + std::string(mysql_error(mysql)));
    }
    const int next = mysql_next_result(mysql);
    if (next > 0) throw std::runtime_error("SQL failed: " + std::string(mysql_error(mysql)) + "\n  in: " + sql);
    if (next < 0) break;
  }
  return rows;
}

}  // namespace

TempMariaDb::TempMariaDb() : dir_(makeDir()), socket_(dir_ + "/mysqld.sock"), port_(freePort()) {
  try {
    chownToMysql(dir_);
    std::string out;
    if (run("mariadb-install-db --no-defaults --datadir=" + dir_ + "/data --user=mysql "
            "--auth-root-authentication-method=normal --skip-test-db" + kCommonOptions, &out) != 0) {
      throw std::runtime_error("mariadb-install-db failed: " + out);
    }
    // A test CA, the server's certificate for 127.0.0.1 signed by it, and an unrelated CA.
    const std::string d = dir_ + "/";
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2";
    if (run("cd " + d + " && openssl req -x509" + ec + " -subj /CN=apphealth-test-ca -keyout ca.key -out ca.pem && "
            "openssl req -x509" + ec + " -subj /CN=apphealth-other-ca -keyout other-ca.key -out other-ca.pem && "
            "openssl req" + ec + " -subj /CN=127.0.0.1 -keyout server.key -out server.csr && "
            "printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && "
            "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext "
            "-out server.pem && chmod 644 server.key",
            &out) != 0) {
      throw std::runtime_error("openssl failed: " + out);
    }
    start();
  } catch (...) {
    std::error_code ec;
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    fs::remove_all(dir_, ec);
    throw;
  }
}

TempMariaDb::~TempMariaDb() {
  if (pid_ > 0) {
    resume();
    kill(pid_, SIGKILL);  // nothing to keep
    waitpid(pid_, nullptr, 0);
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string TempMariaDb::caFile() const { return dir_ + "/ca.pem"; }
std::string TempMariaDb::otherCaFile() const { return dir_ + "/other-ca.pem"; }
std::string TempMariaDb::errorLog() const { return readText(dir_ + "/error.log") + readText(dir_ + "/mariadbd.out"); }

void TempMariaDb::start() {
  if (pid_ > 0) return;
  const std::string d = dir_ + "/";
  std::vector<std::string> args = {"/usr/sbin/mariadbd", "--no-defaults", "--datadir=" + d + "data",
                                   "--socket=" + socket_, "--port=" + std::to_string(port_),
                                   "--bind-address=127.0.0.1", "--user=mysql", "--pid-file=" + d + "mariadbd.pid",
                                   "--log-error=" + d + "error.log", "--skip-name-resolve", "--max-connections=50",
                                   "--ssl-ca=" + d + "ca.pem", "--ssl-cert=" + d + "server.pem",
                                   "--ssl-key=" + d + "server.key", "--innodb-log-file-size=4M",
                                   "--innodb-buffer-pool-size=32M"};
  pid_ = spawnWithLog(args, d + "mariadbd.out");
  // Ready when root answers over the socket. Generous: a loaded machine starts it slowly.
  std::string lastError;
  const bool ready = waitFor(
      [&] {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          throw std::runtime_error("mariadbd exited at start:\n" + errorLog());
        }
        try {
          MYSQL* mysql = open("", 0, socket_, "root", "", "");
          mysql_close(mysql);
          return true;
        } catch (const std::exception& e) {
          lastError = e.what();
          return false;
        }
      },
      60s);
  if (!ready) throw std::runtime_error("mariadbd not ready after 60 s: " + lastError + "\n" + errorLog());
}

void TempMariaDb::stop() {
  if (pid_ <= 0) return;
  resume();
  kill(pid_, SIGTERM);
  if (!waitFor([&] { return waitpid(pid_, nullptr, WNOHANG) == pid_; }, 30s)) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_ = -1;
}

void TempMariaDb::pause() {
  if (pid_ > 0 && kill(pid_, SIGSTOP) == 0) paused_ = true;
}

void TempMariaDb::resume() {
  if (pid_ > 0 && paused_) kill(pid_, SIGCONT);
  paused_ = false;
}

std::vector<std::vector<std::string>> TempMariaDb::rows(const std::string& sql) const {
  MYSQL* mysql = open("", 0, socket_, "root", "", "");
  try {
    auto result = execute(mysql, sql);
    mysql_close(mysql);
    return result;
  } catch (...) {
    mysql_close(mysql);
    throw;
  }
}

std::string TempMariaDb::query(const std::string& sql) const {
  const auto result = rows(sql);
  if (result.empty() || result.front().empty() || result.front().front() == "NULL") return "";
  return result.front().front();
}

void TempMariaDb::createDatabaseAndUser(const std::string& database, const std::string& user,
                                       const std::string& password) const {
  query("DROP DATABASE IF EXISTS " + database + "; CREATE DATABASE " + database +
        " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci; DROP USER IF EXISTS " + quoted(user) +
        "@'127.0.0.1'; CREATE USER " + quoted(user) + "@'127.0.0.1' IDENTIFIED BY " + quoted(password) +
        "; GRANT ALL ON " + database + ".* TO " + quoted(user) + "@'127.0.0.1'; GRANT PROCESS ON *.* TO " +
        quoted(user) + "@'127.0.0.1'");
}

int TempMariaDb::connectionsOf(const std::string& user) const {
  return std::stoi(query("SELECT count(*) FROM information_schema.PROCESSLIST WHERE USER = " + quoted(user)));
}

TempMariaDb& sharedMariaDb() {
  // Destroyed at exit (static destructors); the server also dies with the process if a test
  // crashes (spawnWithLog's parent-death signal).
  static TempMariaDb server;
  return server;
}

MariaSession::MariaSession(const TempMariaDb& db) : mysql_(open("", 0, db.socket(), "root", "", "")) {}

MariaSession::MariaSession(const TempMariaDb& db, const std::string& user, const std::string& password,
                           const std::string& database)
    : mysql_(open("127.0.0.1", db.port(), "", user, password, database)) {}

MariaSession::~MariaSession() { mysql_close(mysql_); }

std::string MariaSession::exec(const std::string& sql) {
  const auto result = execute(mysql_, sql);
  if (result.empty() || result.front().empty() || result.front().front() == "NULL") return "";
  return result.front().front();
}

unsigned long MariaSession::id() const { return mysql_thread_id(mysql_); }

}  // namespace apphealth::test
