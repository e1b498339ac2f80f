#pragma once
// A throwaway MariaDB server (Debian's mariadb-server) for the integration tests: data
// directory on tmpfs when there is one, 127.0.0.1 on a free port plus a Unix socket, TLS with a
// certificate signed by a test CA, root without a password over the socket. The server runs
// in the foreground as our child (it dies with the test process) and is stopped by the
// destructor. mariadb-install-db takes seconds, so a test binary shares one server between
// its tests (sharedMariaDb()); each test works in its own database with its own users.

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

struct st_mysql;

namespace apphealth::test {

class TempMariaDb {
 public:
  TempMariaDb();  // mariadb-install-db, test CA and server certificate, start
  ~TempMariaDb();
  TempMariaDb(const TempMariaDb&) = delete;
  TempMariaDb& operator=(const TempMariaDb&) = delete;

  int port() const { return port_; }
  const std::string& socket() const { return socket_; }
  std::string caFile() const;       // the CA that signed the server's certificate (PEM)
  std::string otherCaFile() const;  // a CA that did not
  std::string errorLog() const;

  void start();   // waits until root can connect
  void stop();    // SIGTERM, waits for the exit
  void pause();   // SIGSTOP: connections are accepted by the kernel and never answered
  void resume();  // SIGCONT
  pid_t pid() const { return pid_; }

  // Runs SQL as root over the socket; returns the first column of the first row ("" if none,
  // or NULL). Throws std::runtime_error with the server's message.
  std::string query(const std::string& sql) const;
  // Every row of the result, NULL as "NULL".
  std::vector<std::vector<std::string>> rows(const std::string& sql) const;

  // A database and a user (TCP from 127.0.0.1, password `password`) with all rights on it and
  // PROCESS, the monitoring privilege; both dropped first if they exist.
  void createDatabaseAndUser(const std::string& database, const std::string& user, const std::string& password) const;
  // Server threads of `user` (SHOW PROCESSLIST rows).
  int connectionsOf(const std::string& user) const;

 private:
  std::string dir_;
  std::string socket_;
  int port_;
  pid_t pid_ = -1;
  bool paused_ = false;
};

// The server shared by every test of this binary, started on first use.
TempMariaDb& sharedMariaDb();

// A client connection a test keeps open: to hold a lock or a transaction, or to be counted.
// Blocking libmariadb calls with 10 s read/write timeouts.
class MariaSession {
 public:
  // Over the socket as root.
  explicit MariaSession(const TempMariaDb& db);
  // Over TCP as `user`.
  MariaSession(const TempMariaDb& db, const std::string& user, const std::string& password,
               const std::string& database = "");
  ~MariaSession();
  MariaSession(const MariaSession&) = delete;
  MariaSession& operator=(const MariaSession&) = delete;

  // Runs SQL; returns the first column of the first row ("" if none). Throws on error.
  std::string exec(const std::string& sql);
  unsigned long id() const;  // the server's thread id

 private:
  st_mysql* mysql_ = nullptr;
};

}  // namespace apphealth::test
