#include "collectors/sql/SqlMetricRows.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>

namespace apphealth {

namespace {

std::optional<double> parseNumber(const std::string& text) {
  if (text.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return std::nullopt;
  // Out of double's range: PostgreSQL's numeric can exceed it; strtod gives +-HUGE_VAL.
  if (errno == ERANGE && std::isinf(v)) return std::nullopt;
  return v;
}

int columnIndex(const SqlRows& rows, const std::string& name) {
  for (std::size_t i = 0; i < rows.columns.size(); ++i) {
    if (rows.columns[i] == name) return static_cast<int>(i);
  }
  return -1;
}

std::string columnList(const SqlRows& rows) {
  std::string out;
  for (const auto& c : rows.columns) out += (out.empty() ? "" : ", ") + c;
  return out.empty() ? "none" : out;
}

std::string describe(const Labels& labels) {
  std::string out = "{";
  for (const auto& [k, v] : labels) out += (out.size() > 1 ? "," : "") + k + "=\"" + v + "\"";
  return out + "}";
}

double number(const std::optional<std::string>& cell) {
  if (!cell) return 0;
  return parseNumber(*cell).value_or(0);
}

}  // namespace

std::string truncateLabelValue(const std::string& value) {
  if (value.size() <= kSqlLabelValueMaxBytes) return value;
  std::size_t cut = kSqlLabelValueMaxBytes;
  // Back up over UTF-8 continuation bytes so no character is split.
  while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xC0) == 0x80) --cut;
  return value.substr(0, cut);
}

void exportCustomRows(const SqlMetricSpec& spec, const std::string& dbTarget, const SqlRows& rows,
                      SnapshotBuilder& out) {
  const int valueColumn = columnIndex(rows, spec.value);
  if (valueColumn < 0) {
    throw SqlMetricError("value column '" + spec.value + "' is not in the result (columns: " + columnList(rows) + ")");
  }
  std::vector<int> labelColumns;
  for (const auto& label : spec.labels) {
    const int c = columnIndex(rows, label);
    if (c < 0) throw SqlMetricError("label column '" + label + "' is not in the result (columns: " + columnList(rows) + ")");
    labelColumns.push_back(c);
  }
  std::vector<std::pair<Labels, double>> samples;
  std::set<Labels> seen;
  for (std::size_t r = 0; r < rows.rows.size(); ++r) {
    const auto& row = rows.rows[r];
    Labels labels = {{"target", dbTarget}};
    for (std::size_t i = 0; i < labelColumns.size(); ++i) {
      const auto& cell = row[static_cast<std::size_t>(labelColumns[i])];
      labels.emplace_back(spec.labels[i], cell ? truncateLabelValue(*cell) : "");
    }
    const auto& cell = row[static_cast<std::size_t>(valueColumn)];
    if (!cell) {
      throw SqlMetricError("value column '" + spec.value + "' is NULL in row " + std::to_string(r + 1) + " " +
                           describe(labels) + " (use coalesce() if NULL means 0)");
    }
    const auto value = parseNumber(*cell);
    if (!value) {
      throw SqlMetricError("value column '" + spec.value + "' is not numeric in row " + std::to_string(r + 1) + " " +
                           describe(labels) + ": '" + truncateLabelValue(*cell) + "'");
    }
    if (!seen.insert(labels).second) {
      throw SqlMetricError("duplicate label set " + describe(labels) + " in row " + std::to_string(r + 1) +
                           " (label values are cut to " + std::to_string(kSqlLabelValueMaxBytes) +
                           " bytes; GROUP BY the label columns)");
    }
    samples.emplace_back(std::move(labels), *value);
  }
  for (const auto& [labels, value] : samples) {
    if (spec.counter) {
      out.counter(spec.name, spec.help, labels, value);
    } else {
      out.gauge(spec.name, spec.help, labels, value);
    }
  }
}

void exportQueueRows(const SqlMetricSpec& spec, const std::string& dbTarget, const SqlRows& rows,
                     const std::string& helpSuffix, SnapshotBuilder& out) {
  std::map<std::pair<std::string, std::string>, double> jobs;
  std::map<std::string, double> ages;
  // Laravel with jobs_table: "": only failed jobs are in the database (the queue is in Redis).
  const bool failedOnly = spec.kind == SqlMetricSpec::Kind::Laravel && spec.jobs_table.empty();
  auto seed = [&](const std::string& queue) {
    if (failedOnly) {
      jobs.try_emplace({queue, "failed"}, 0);
      return;
    }
    if (spec.kind == SqlMetricSpec::Kind::Laravel) {
      for (const char* state : {"waiting", "delayed", "active", "failed"}) jobs.try_emplace({queue, state}, 0);
    } else {
      jobs.try_emplace({queue, "waiting"}, 0);
    }
    ages.try_emplace(queue, 0);
  };
  for (const auto& queue : spec.queues) seed(queue);
  // A table without queue_column is one queue: it stays exported (at 0) when it empties.
  if (spec.kind == SqlMetricSpec::Kind::Table && spec.queue_column.empty()) seed(spec.queue);
  for (const auto& row : rows.rows) {
    if (spec.kind == SqlMetricSpec::Kind::Laravel) {
      // queue, waiting, delayed, active, failed, oldest waiting age
      const std::string queue = truncateLabelValue(row[0].value_or(""));
      seed(queue);
      jobs[{queue, "failed"}] += number(row[4]);
      if (failedOnly) continue;
      jobs[{queue, "waiting"}] += number(row[1]);
      jobs[{queue, "delayed"}] += number(row[2]);
      jobs[{queue, "active"}] += number(row[3]);
      ages[queue] = std::max(ages[queue], number(row[5]));
    } else {
      // queue, state, count, oldest age
      const std::string queue = spec.queue_column.empty() ? spec.queue : truncateLabelValue(row[0].value_or(""));
      std::string state = spec.state_column.empty() ? "waiting" : truncateLabelValue(row[1].value_or(""));
      const bool waiting = spec.state_column.empty() || state == spec.waiting_state;
      if (waiting) state = "waiting";
      seed(queue);
      jobs[{queue, state}] += number(row[2]);
      if (waiting) ages[queue] = std::max(ages[queue], number(row[3]));
    }
  }
  for (const auto& [queueState, count] : jobs) {
    out.gauge("apphealth_queue_jobs", "Jobs in a queue by state." + helpSuffix,
              {{"target", dbTarget}, {"queue", queueState.first}, {"state", queueState.second}}, count);
  }
  for (const auto& [queue, age] : ages) {
    out.gauge("apphealth_queue_oldest_job_age_seconds", "Age of the oldest waiting job (0: queue empty)." + helpSuffix,
              {{"target", dbTarget}, {"queue", queue}}, age);
  }
}

}  // namespace apphealth
