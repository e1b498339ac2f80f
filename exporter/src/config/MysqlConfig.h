#pragma once
// A `mysql:` target (issue 11): a MySQL or MariaDB server probed like a postgres target, with
// the same apphealth_db_* series and the same `sql_metrics:`. Filled in by MysqlSection.cpp.

#include <string>
#include <vector>

#include "config/Secret.h"
#include "config/SqlMetricsConfig.h"
#include "util/Duration.h"

namespace apphealth {

struct MysqlTarget {
  std::string name;
  std::string host = "127.0.0.1";  // TCP, unless `socket` is set
  int port = 3306;
  std::string socket;              // Unix socket path
  std::string user;
  std::string database;            // optional; sql_metrics may need it for unqualified tables
  SecretSource password;
  std::string ssl_mode = "preferred";  // disabled, preferred, required, verify_ca, verify_identity
  std::string ssl_ca;                  // PEM bundle for verify_ca / verify_identity
  std::string probe_query = "SELECT 1";
  Duration interval = std::chrono::seconds(15);
  Duration timeout = std::chrono::seconds(5);
  double probe_latency_threshold_seconds = 1.0;
  // Users whose transactions apphealth_db_oldest_transaction_age_seconds leaves out: a backup
  // user running mysqldump --single-transaction holds one transaction for the whole dump.
  // MySQL has no application_name (PostgreSQL targets exclude pg_dump by it): the dump's user
  // is what identifies it. None by default.
  std::vector<std::string> oldest_transaction_exclude_users;
  std::vector<SqlMetricSpec> sql_metrics;  // each runs as its own collector "sql"
};

}  // namespace apphealth
