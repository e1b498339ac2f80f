#pragma once
// What the database clients (PgConnection, MysqlConnection) share: the deadline every call
// takes, and the base of their errors, so code common to the PostgreSQL and MySQL collectors
// (collectors/sql/) can tell a failed statement from its own checks.

#include <chrono>
#include <stdexcept>

namespace apphealth {

using Deadline = std::chrono::steady_clock::time_point;

// A connect or a statement failed, or we gave up waiting. The message is the client
// library's (or ours) and never contains a password.
class DbError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace apphealth
