#pragma once
// The `sql_metrics:` list under one postgres or mysql target; called by PostgresSection.cpp and
// MysqlSection.cpp after the target's name, interval and timeout are known (the interval and
// timeout are the entries' defaults).

#include "config/LoadContext.h"

namespace apphealth {

// The database target a `sql_metrics:` list belongs to.
struct SqlMetricsOwner {
  std::string kind;  // "postgres" or "mysql", for messages
  std::string name;
  Duration interval;
  Duration timeout;
};

void parseSqlMetrics(LoadContext& ctx, YamlReader::Map& target, const SqlMetricsOwner& owner,
                     std::vector<SqlMetricSpec>& out);

// Whether `name` is taken by (or would clash with the series of) a built-in metric.
bool isBuiltinMetricName(const std::string& name);

}  // namespace apphealth
