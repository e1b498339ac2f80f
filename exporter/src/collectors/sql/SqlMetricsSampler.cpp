#include "collectors/sql/SqlMetricsSampler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>

#include "clients/DbClient.h"

namespace apphealth {

SqlMetricsSampler::SqlMetricsSampler(std::string dbTarget, SqlMetricSpec spec, SqlDialect dialect)
    : dbTarget_(std::move(dbTarget)),
      spec_(std::move(spec)),
      logName_(runnerTarget(dbTarget_, spec_)),
      sql_(buildSqlMetricQuery(spec_, dialect)),
      helpSuffix_(" Sampled every " + formatDuration(spec_.interval) + ".") {}

SampleResult SqlMetricsSampler::sample(SnapshotBuilder& out, std::stop_token stop) {
  try {
    SqlRows rows = fetch(stop);
    // The last column is the row count before the LIMIT (the same in every row).
    if (!rows.columns.empty()) {
      rows.columns.pop_back();
      if (!rows.rows.empty()) rows.total = std::atoll(rows.rows.front().back().value_or("0").c_str());
      for (auto& row : rows.rows) row.pop_back();
    }
    // exportCustomRows checks every row before it writes any: a failed query publishes nothing.
    if (spec_.kind == SqlMetricSpec::Kind::Custom) {
      exportCustomRows(spec_, dbTarget_, rows, out);
    } else {
      exportQueueRows(spec_, dbTarget_, rows, helpSuffix_, out);
    }
    const long long dropped = std::max<long long>(0, rows.total - static_cast<long long>(rows.rows.size()));
    out.gauge("apphealth_sql_rows_dropped",
              "Rows (or queue groups, for presets) beyond max_rows that the last sample dropped.",
              {{"target", logName_}}, static_cast<double>(dropped));
    if (dropped > 0) {
      auto note = fmt::format("the query returned {} rows, more than max_rows ({}): {} rows dropped", rows.total,
                              spec_.max_rows, dropped);
      spdlog::warn("sql metric {}: {}", logName_, note);
      return SampleResult::success(std::move(note));
    }
    return SampleResult::success();
  } catch (const SqlMetricError& e) {
    return SampleResult::failure(std::string(e.what()) + "; nothing exported for this query");
  } catch (const DbError& e) {
    return SampleResult::failure(std::string("query failed: ") + e.what());
  } catch (const std::runtime_error& e) {  // unreadable password file and the like
    return SampleResult::failure(e.what());
  }
}

}  // namespace apphealth
