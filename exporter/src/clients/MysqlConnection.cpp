#include "clients/MysqlConnection.h"

#include <errmsg.h>
#include <fcntl.h>
#include <mysqld_error.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <mutex>

namespace apphealth {

namespace {

// mysql_library_init is not thread-safe, and mysql_init calls it when nobody did: every
// collector thread goes through here first.
void initLibrary() {
  static std::once_flag once;
  std::call_once(once, [] { mysql_library_init(0, nullptr, nullptr); });
}

// Errors after which the connection is gone: the client library's own (CR_*: the link broke
// or never worked), and the server's "you are being disconnected".
bool connectionLost(unsigned int code) {
  return (code >= CR_MIN_ERROR && code <= CR_MAX_ERROR) || code == ER_CONNECTION_KILLED ||
         code == ER_SERVER_SHUTDOWN || code == 4031 /* MySQL 8: ER_CLIENT_INTERACTION_TIMEOUT */;
}

// "ERROR 1045 (28000): Access denied ...", as the mysql client prints it.
std::string describeError(MYSQL* mysql) {
  const unsigned int code = mysql_errno(mysql);
  std::string text = "ERROR " + std::to_string(code);
  const char* state = mysql_sqlstate(mysql);
  if (state != nullptr && *state != '\0' && std::string(state) != "HY000") text += std::string(" (") + state + ")";
  return text + ": " + mysql_error(mysql);
}

// Connector/C's non-blocking API reads and writes plain connections with MSG_DONTWAIT, but
// TLS ones through SSL_read/SSL_write on the socket as it is, and it leaves the socket in
// blocking mode after connecting: a TLS read from a hung server would then block the
// collector's thread past its deadline (seen with Debian 12's libmariadb 3.3.20). So the
// socket is put in non-blocking mode before every step; SSL then reports WANT_READ/WRITE,
// which the library turns into a wait that drive() does with poll().
void makeNonBlocking(MYSQL* mysql) {
  const my_socket fd = mysql_get_socket(mysql);
  if (fd < 0) return;
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0 && !(flags & O_NONBLOCK)) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int waitEvents(int status) {
  short events = 0;
  if (status & MYSQL_WAIT_READ) events |= POLLIN;
  if (status & MYSQL_WAIT_WRITE) events |= POLLOUT;
  if (status & MYSQL_WAIT_EXCEPT) events |= POLLPRI;
  return events;
}

}  // namespace

const std::string& MysqlResult::value(std::size_t row, std::size_t column) const {
  static const std::string empty;
  const auto& cell = rows.at(row).at(column);
  return cell ? *cell : empty;
}

void MysqlConnection::Closer::operator()(MYSQL* mysql) const {
  // An abandoned connection may still be in the middle of an operation with a server that
  // does not answer: shut the socket down first so that mysql_close's COM_QUIT fails at once
  // instead of waiting, and the server sees the disconnect.
  const my_socket fd = mysql_get_socket(mysql);
  if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
  mysql_close(mysql);
}

template <class Cont>
void MysqlConnection::drive(int status, Cont cont, Deadline deadline, const std::stop_token& stop, const char* what) {
  // Poll in short slices so a stop request (shutdown, reload) is honoured quickly.
  constexpr auto kSlice = std::chrono::milliseconds(100);
  while (status != 0) {
    const my_socket fd = mysql_get_socket(conn_.get());
    const auto libraryTimeout = (status & MYSQL_WAIT_TIMEOUT)
                                    ? std::chrono::steady_clock::now() +
                                          std::chrono::milliseconds(mysql_get_timeout_value_ms(conn_.get()))
                                    : Deadline::max();
    int ready = 0;
    while (ready == 0) {
      const auto now = std::chrono::steady_clock::now();
      if (stop.stop_requested() || now >= deadline) {
        conn_.reset();
        throw MysqlTimeout(std::string(what) + (stop.stop_requested() ? " interrupted by shutdown" : " timed out"));
      }
      if (now >= libraryTimeout) {
        ready = MYSQL_WAIT_TIMEOUT;
        break;
      }
      const auto until = std::min({deadline, libraryTimeout, now + kSlice});
      pollfd pfd{fd, static_cast<short>(waitEvents(status)), 0};
      const int n = ::poll(&pfd, fd >= 0 ? 1 : 0,
                           static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(until - now).count()));
      if (n < 0 && errno != EINTR) {
        conn_.reset();
        throw MysqlError(std::string(what) + " failed: cannot wait on the socket");
      }
      if (n > 0) {
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) ready |= MYSQL_WAIT_READ;
        if (pfd.revents & (POLLOUT | POLLHUP | POLLERR)) ready |= MYSQL_WAIT_WRITE;
        if (pfd.revents & POLLPRI) ready |= MYSQL_WAIT_EXCEPT;
        // Hang-up or error: hand it to the library, which reads the failure.
        if (ready == 0) ready = status & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE);
      }
    }
    makeNonBlocking(conn_.get());
    status = cont(ready);
  }
}

void MysqlConnection::fail(const char* what) {
  const unsigned int code = mysql_errno(conn_.get());
  std::string message = describeError(conn_.get());
  if (code == 0) message = std::string(what) + " failed";
  if (connectionLost(code)) conn_.reset();
  throw MysqlError(message);
}

void MysqlConnection::connect(const MysqlConnectParams& params, Deadline deadline, std::stop_token stop) {
  initLibrary();
  conn_.reset();
  mariadb_ = false;
  statementTimeout_ = Duration(0);
  MYSQL* mysql = mysql_init(nullptr);
  if (mysql == nullptr) throw MysqlError("out of memory starting a connection");
  conn_.reset(mysql);

  bool ok = mysql_options(mysql, MYSQL_OPT_NONBLOCK, nullptr) == 0;
  ok = ok && mysql_options(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4") == 0;
  // What is configured is what is used: a socket when one is given, TCP otherwise (the
  // library would take "localhost" as its default socket).
  const unsigned int protocol = params.socket.empty() ? MYSQL_PROTOCOL_TCP : MYSQL_PROTOCOL_SOCKET;
  ok = ok && mysql_options(mysql, MYSQL_OPT_PROTOCOL, &protocol) == 0;
  ok = ok && mysql_optionsv(mysql, MYSQL_OPT_CONNECT_ATTR_ADD, "program_name", "apphealth_exporter") == 0;
  if (params.ssl_mode != MysqlSslMode::Disabled) {
    const my_bool enable = 1;
    ok = ok && mysql_options(mysql, MYSQL_OPT_SSL_ENFORCE, &enable) == 0;
    if (!params.ssl_ca.empty()) ok = ok && mysql_options(mysql, MYSQL_OPT_SSL_CA, params.ssl_ca.c_str()) == 0;
    if (params.ssl_mode == MysqlSslMode::VerifyIdentity) {
      ok = ok && mysql_options(mysql, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &enable) == 0;
    }
  }
  if (!ok) {
    conn_.reset();
    throw MysqlError("cannot set the connection options");
  }

  MYSQL* result = nullptr;
  const char* password = params.password ? params.password->c_str() : nullptr;
  const char* database = params.database.empty() ? nullptr : params.database.c_str();
  const char* host = params.socket.empty() ? params.host.c_str() : nullptr;
  const char* socket = params.socket.empty() ? nullptr : params.socket.c_str();
  int status = mysql_real_connect_start(&result, mysql, host, params.user.c_str(), password, database,
                                        static_cast<unsigned int>(params.port), socket, 0);
  drive(status, [&](int ready) { return mysql_real_connect_cont(&result, conn_.get(), ready); }, deadline, stop,
        "connect");
  if (result == nullptr) {
    std::string message = describeError(conn_.get());
    conn_.reset();
    throw MysqlError(message);
  }
  const bool tls = mysql_get_ssl_cipher(conn_.get()) != nullptr;
  if (!tls && params.ssl_mode != MysqlSslMode::Disabled && params.ssl_mode != MysqlSslMode::Preferred) {
    conn_.reset();
    throw MysqlError("the server does not offer TLS, which ssl_mode requires");
  }
  mariadb_ = mariadb_connection(conn_.get()) != 0;

  // One round trip for every session setting (a connect already costs several).
  std::vector<std::string> settings;
  if (params.statement_timeout.count() > 0) settings.push_back(statementTimeoutSetting(params.statement_timeout));
  if (params.utc) settings.emplace_back("time_zone = '+00:00'");
  // MariaDB (before 11.1) calls it tx_read_only, MySQL 8 transaction_read_only.
  if (params.read_only) settings.emplace_back(mariadb_ ? "tx_read_only = 1" : "transaction_read_only = 1");
  if (!settings.empty()) {
    std::string sql = "SET SESSION ";
    for (std::size_t i = 0; i < settings.size(); ++i) sql += (i ? ", " : "") + settings[i];
    query(sql, deadline, stop);
    statementTimeout_ = params.statement_timeout;
  }
}

std::string MysqlConnection::statementTimeoutSetting(Duration timeout) const {
  const long ms = static_cast<long>(timeout.count());
  if (!mariadb_) return "max_execution_time = " + std::to_string(ms);
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%ld.%03ld", ms / 1000, ms % 1000);
  return std::string("max_statement_time = ") + seconds;
}

void MysqlConnection::setStatementTimeout(Duration timeout, Deadline deadline, std::stop_token stop) {
  if (!connected()) throw MysqlError("not connected");
  if (timeout == statementTimeout_) return;
  query("SET SESSION " + statementTimeoutSetting(timeout), deadline, stop);
  statementTimeout_ = timeout;
}

MysqlResult MysqlConnection::query(const std::string& sql, Deadline deadline, std::stop_token stop) {
  if (!connected()) throw MysqlError("not connected");
  int error = 0;
  makeNonBlocking(conn_.get());
  int status = mysql_real_query_start(&error, conn_.get(), sql.data(), static_cast<unsigned long>(sql.size()));
  drive(status, [&](int ready) { return mysql_real_query_cont(&error, conn_.get(), ready); }, deadline, stop,
        "query");
  if (error != 0) fail("query");

  MysqlResult out;
  bool first = true;
  while (true) {
    MYSQL_RES* raw = nullptr;
    makeNonBlocking(conn_.get());
    status = mysql_store_result_start(&raw, conn_.get());
    drive(status, [&](int ready) { return mysql_store_result_cont(&raw, conn_.get(), ready); }, deadline, stop,
          "query");
    std::unique_ptr<MYSQL_RES, decltype(&mysql_free_result)> res(raw, &mysql_free_result);
    if (!res && mysql_field_count(conn_.get()) != 0) fail("reading the result");
    // Only the first result set is kept (a CALL may send more; they are read and dropped).
    if (res && first) {
      const unsigned int columns = mysql_num_fields(res.get());
      const MYSQL_FIELD* fields = mysql_fetch_fields(res.get());
      for (unsigned int c = 0; c < columns; ++c) out.columns.emplace_back(fields[c].name);
      // A stored result is in memory: fetching rows does no I/O.
      while (MYSQL_ROW row = mysql_fetch_row(res.get())) {
        const unsigned long* lengths = mysql_fetch_lengths(res.get());
        auto& cells = out.rows.emplace_back();
        cells.reserve(columns);
        for (unsigned int c = 0; c < columns; ++c) {
          if (row[c] == nullptr) cells.emplace_back(std::nullopt);
          else cells.emplace_back(std::string(row[c], lengths[c]));
        }
      }
    }
    if (res) first = false;
    if (!mysql_more_results(conn_.get())) break;
    int next = 0;
    makeNonBlocking(conn_.get());
    status = mysql_next_result_start(&next, conn_.get());
    drive(status, [&](int ready) { return mysql_next_result_cont(&next, conn_.get(), ready); }, deadline, stop,
          "query");
    if (next > 0) fail("query");
    if (next < 0) break;
  }
  return out;
}

}  // namespace apphealth
