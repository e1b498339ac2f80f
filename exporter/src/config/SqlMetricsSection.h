#pragma once
// The `sql_metrics:` list under one postgres target; called by PostgresSection.cpp after the
// target's interval and timeout are known (they are the entries' defaults).

#include "config/LoadContext.h"

namespace apphealth {

void parseSqlMetrics(LoadContext& ctx, YamlReader::Map& target, PostgresTarget& t);

// Whether `name` is taken by (or would clash with the series of) a built-in metric.
bool isBuiltinMetricName(const std::string& name);

}  // namespace apphealth
