#pragma once
// The connection parameters of a mysql target, shared by its probe and its sql_metrics.

#include "clients/MysqlConnection.h"
#include "config/MysqlConfig.h"

namespace apphealth {

// Reads the password (per connect: a rotated file is picked up). Throws std::runtime_error
// when the secret cannot be read.
MysqlConnectParams mysqlConnectParams(const MysqlTarget& target);

}  // namespace apphealth
