#include "clients/PgConnection.h"

#include <poll.h>

#include <algorithm>
#include <vector>

namespace apphealth {

namespace {

std::string trimmed(const char* message) {
  std::string text = message ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  // libpq messages can span lines ("connection to server ... failed: FATAL: ..."); one log line.
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

}  // namespace

bool PgConnection::waitSocket(bool forWrite, Deadline deadline, const std::stop_token& stop) const {
  const int fd = PQsocket(conn_.get());
  if (fd < 0) return false;
  // Poll in short slices so a stop request (shutdown, reload) is honoured quickly.
  constexpr auto kSlice = std::chrono::milliseconds(100);
  while (!stop.stop_requested()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    const auto wait = std::min<std::chrono::steady_clock::duration>(deadline - now, kSlice);
    pollfd pfd{fd, static_cast<short>(forWrite ? POLLOUT : POLLIN), 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count()));
    if (ready > 0) return true;
    if (ready < 0 && errno != EINTR) return false;
  }
  return false;
}

void PgConnection::fail(const std::string& what) {
  conn_.reset();
  throw PgError(what);
}

void PgConnection::waitOrFail(bool forWrite, Deadline deadline, const std::stop_token& stop, const char* what) {
  if (waitSocket(forWrite, deadline, stop)) return;
  const std::string message = std::string(what) + (stop.stop_requested() ? " interrupted by shutdown" : " timed out");
  if (stop.stop_requested() || std::chrono::steady_clock::now() >= deadline) {
    conn_.reset();
    throw PgTimeout(message);
  }
  fail(std::string(what) + " failed: cannot wait on the socket");
}

void PgConnection::connect(const PgConnectParams& params, Deadline deadline, std::stop_token stop) {
  conn_.reset();
  std::vector<const char*> keys = {"dbname", "application_name"};
  std::vector<const char*> values = {params.dsn.c_str(), params.application_name.c_str()};
  if (params.password) {
    keys.push_back("password");
    values.push_back(params.password->c_str());
  }
  std::string options;
  if (params.statement_timeout.count() > 0) {
    // The server cancels a stuck probe itself, so a query we abandon does not linger.
    options = "-c statement_timeout=" + std::to_string(params.statement_timeout.count());
    keys.push_back("options");
    values.push_back(options.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);

  // expand_dbname=1: the dsn may be a connection string or URI; later keys override it.
  conn_.reset(PQconnectStartParams(keys.data(), values.data(), 1));
  if (!conn_) throw PgError("out of memory starting a connection");
  if (PQstatus(conn_.get()) == CONNECTION_BAD) fail(trimmed(PQerrorMessage(conn_.get())));

  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  while (true) {
    if (state == PGRES_POLLING_OK) break;
    if (state == PGRES_POLLING_FAILED) fail(trimmed(PQerrorMessage(conn_.get())));
    waitOrFail(state == PGRES_POLLING_WRITING, deadline, stop, "connect");
    state = PQconnectPoll(conn_.get());
  }
  if (PQsetnonblocking(conn_.get(), 1) != 0) fail(trimmed(PQerrorMessage(conn_.get())));
}

PgResult PgConnection::query(const std::string& sql, Deadline deadline, std::stop_token stop) {
  if (!connected()) throw PgError("not connected");
  if (!PQsendQuery(conn_.get(), sql.c_str())) fail(trimmed(PQerrorMessage(conn_.get())));
  // Flush the query out; a full socket buffer reports 1.
  while (true) {
    const int flushed = PQflush(conn_.get());
    if (flushed == 0) break;
    if (flushed < 0) fail(trimmed(PQerrorMessage(conn_.get())));
    waitOrFail(true, deadline, stop, "query");
  }
  std::optional<PgResult> first;
  std::string error;
  while (true) {
    while (PQisBusy(conn_.get())) {
      waitOrFail(false, deadline, stop, "query");
      if (!PQconsumeInput(conn_.get())) fail(trimmed(PQerrorMessage(conn_.get())));
    }
    PGresult* raw = PQgetResult(conn_.get());
    if (raw == nullptr) break;
    PgResult result(raw);
    const auto status = PQresultStatus(raw);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      if (error.empty()) error = trimmed(PQresultErrorMessage(raw));
    } else if (!first) {
      first.emplace(std::move(result));
    }
  }
  if (!error.empty()) {
    // The connection itself is fine after a failed statement; keep it unless it broke.
    if (PQstatus(conn_.get()) != CONNECTION_OK) conn_.reset();
    throw PgError(error);
  }
  if (!first) throw PgError("query returned no result");
  return std::move(*first);
}

}  // namespace apphealth
