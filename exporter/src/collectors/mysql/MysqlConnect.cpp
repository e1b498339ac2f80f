#include "collectors/mysql/MysqlConnect.h"

namespace apphealth {

namespace {

MysqlSslMode sslMode(const std::string& name) {
  if (name == "disabled") return MysqlSslMode::Disabled;
  if (name == "required") return MysqlSslMode::Required;
  if (name == "verify_ca") return MysqlSslMode::VerifyCa;
  if (name == "verify_identity") return MysqlSslMode::VerifyIdentity;
  return MysqlSslMode::Preferred;  // the loader accepts nothing else
}

}  // namespace

MysqlConnectParams mysqlConnectParams(const MysqlTarget& target) {
  MysqlConnectParams params;
  params.host = target.host;
  params.port = target.port;
  params.socket = target.socket;
  params.user = target.user;
  params.database = target.database;
  params.password = readSecret(target.password);
  params.ssl_mode = sslMode(target.ssl_mode);
  params.ssl_ca = target.ssl_ca;
  return params;
}

}  // namespace apphealth
