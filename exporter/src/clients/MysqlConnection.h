#pragma once
// RAII wrapper around a MySQL/MariaDB connection (Debian's libmariadb, MariaDB Connector/C)
// that never blocks longer than a deadline: connect and query use Connector/C's non-blocking
// API (mysql_real_connect_start/_cont, mysql_real_query_start/_cont, ...) and poll(), so a
// hung server (SIGSTOP, a lock, a black-holed network) costs at most the timeout, and a stop
// request ends the wait at once. The mirror of PgConnection.

#include <mysql.h>

#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "clients/DbClient.h"
#include "util/Duration.h"

namespace apphealth {

class MysqlError : public DbError {
 public:
  using DbError::DbError;
};

// We gave up waiting (deadline or stop request): says nothing about the server's answer, and
// retrying on another connection would only wait again.
class MysqlTimeout : public MysqlError {
 public:
  using MysqlError::MysqlError;
};

// How the connection uses TLS, as the mysql client's --ssl-mode.
enum class MysqlSslMode {
  Disabled,        // never
  Preferred,       // when the server offers it, unverified (or verified against ssl_ca if given)
  Required,        // always, unverified: a server without TLS is an error
  VerifyCa,        // always, the certificate chain checked against ssl_ca
  VerifyIdentity,  // always, chain (ssl_ca or the system's CAs) and host name checked
};

struct MysqlConnectParams {
  std::string host = "127.0.0.1";  // TCP unless `socket` is set
  int port = 3306;
  std::string socket;              // Unix socket path
  std::string user;
  std::string database;            // may be empty
  std::optional<std::string> password;
  MysqlSslMode ssl_mode = MysqlSslMode::Preferred;
  std::string ssl_ca;              // PEM file; empty: none (verify_identity: the system's CAs)
  // Session settings, sent in one SET right after connecting:
  Duration statement_timeout{0};  // see setStatementTimeout(); 0 leaves the server's
  bool read_only = false;          // transactions are read-only
  bool utc = false;                // time_zone '+00:00' (DATETIME columns read as UTC)
};

// A whole result set as text (nullopt: SQL NULL), like SqlRows.
struct MysqlResult {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  const std::string& value(std::size_t row, std::size_t column) const;  // "" for NULL
};

class MysqlConnection {
 public:
  MysqlConnection() = default;
  MysqlConnection(MysqlConnection&&) = default;
  MysqlConnection& operator=(MysqlConnection&&) = default;

  // Throws MysqlError (with the server's or the library's message, which never contains the
  // password) or MysqlTimeout.
  void connect(const MysqlConnectParams& params, Deadline deadline, std::stop_token stop);
  bool connected() const { return conn_ != nullptr; }
  void close() { conn_.reset(); }
  bool mariadb() const { return mariadb_; }
  bool tls() const { return conn_ && mysql_get_ssl_cipher(conn_.get()) != nullptr; }

  // Runs one statement and reads its whole result (empty for statements without one).
  // Throws MysqlTimeout when the deadline passes or stop is requested, and MysqlError when
  // the statement fails. On a timeout or a lost connection the connection is closed (a
  // statement we gave up on would otherwise keep its server thread busy); after an ordinary
  // SQL error (syntax, a server-side timeout, a read-only violation) it stays open.
  MysqlResult query(const std::string& sql, Deadline deadline, std::stop_token stop);

  // Server-side limit on each statement's run time, so the server ends a statement stuck on
  // a lock before we give up on it: MariaDB's max_statement_time, MySQL's
  // max_execution_time (which applies to SELECT only). Sent only when it changes; 0 = none.
  void setStatementTimeout(Duration timeout, Deadline deadline, std::stop_token stop);

 private:
  struct Closer {
    void operator()(MYSQL* mysql) const;
  };
  // Runs a _start/_cont pair to completion: `status` is what _start returned, `cont` calls
  // the matching _cont with the ready events. Throws MysqlTimeout (connection closed).
  template <class Cont>
  void drive(int status, Cont cont, Deadline deadline, const std::stop_token& stop, const char* what);
  [[noreturn]] void fail(const char* what);  // throws the current error; closes if the link broke
  std::string statementTimeoutSetting(Duration timeout) const;

  std::unique_ptr<MYSQL, Closer> conn_;
  bool mariadb_ = false;
  Duration statementTimeout_{0};
};

}  // namespace apphealth
