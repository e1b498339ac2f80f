#pragma once
// RAII wrapper around a libpq connection that never blocks longer than a deadline: connect
// and query use libpq's non-blocking API and poll(), so a hung server (SIGSTOP, a lock, a
// black-holed network) costs at most the timeout, and a stop request ends the wait at once.

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>

#include "clients/DbClient.h"
#include "util/Duration.h"

namespace apphealth {

class PgError : public DbError {
 public:
  using DbError::DbError;
};

// We gave up waiting (deadline or stop request): says nothing about the server's answer, and
// retrying on another connection would only wait again.
class PgTimeout : public PgError {
 public:
  using PgError::PgError;
};

class PgResult {
 public:
  explicit PgResult(PGresult* result) : result_(result, &PQclear) {}
  int rows() const { return PQntuples(result_.get()); }
  int columns() const { return PQnfields(result_.get()); }
  bool isNull(int row, int column) const { return PQgetisnull(result_.get(), row, column) != 0; }
  std::string value(int row, int column) const { return PQgetvalue(result_.get(), row, column); }
  std::string columnName(int column) const { return PQfname(result_.get(), column); }

 private:
  std::unique_ptr<PGresult, decltype(&PQclear)> result_;
};

struct PgConnectParams {
  std::string dsn;
  std::optional<std::string> password;
  std::string application_name = "apphealth_exporter";
  Duration statement_timeout{0};  // server-side; 0 leaves the server default
};

class PgConnection {
 public:
  PgConnection() = default;
  PgConnection(PgConnection&&) = default;
  PgConnection& operator=(PgConnection&&) = default;

  // Throws PgError (with libpq's message, which never contains the password).
  void connect(const PgConnectParams& params, Deadline deadline, std::stop_token stop);
  bool connected() const { return conn_ && PQstatus(conn_.get()) == CONNECTION_OK; }
  void close() { conn_.reset(); }

  // Runs one statement. Throws PgTimeout when the deadline passes or stop is requested, and
  // PgError when the statement fails. On a timeout or a broken connection the connection is
  // closed (a query we gave up on would otherwise keep its backend busy); after an ordinary
  // SQL error it stays open.
  PgResult query(const std::string& sql, Deadline deadline, std::stop_token stop);

 private:
  struct Finisher {
    void operator()(PGconn* conn) const { PQfinish(conn); }
  };
  // Waits until the socket is readable/writable; false on deadline or stop.
  bool waitSocket(bool forWrite, Deadline deadline, const std::stop_token& stop) const;
  [[noreturn]] void fail(const std::string& what);
  // Waits like waitSocket; on failure closes the connection and throws PgTimeout (deadline,
  // stop) or PgError (the socket itself failed).
  void waitOrFail(bool forWrite, Deadline deadline, const std::stop_token& stop, const char* what);

  std::unique_ptr<PGconn, Finisher> conn_;
};

}  // namespace apphealth
