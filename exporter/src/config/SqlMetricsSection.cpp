// The `sql_metrics:` list under a postgres or mysql target.

#include "config/SqlMetricsSection.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace apphealth {

namespace {

// Built-in families (histograms also own NAME_bucket/_sum/_count). A SQL metric may not take
// one of these names, nor a name under a prefix the exporter reserves for its own families.
const std::set<std::string> kBuiltinNames = {
    "apphealth_backup_files", "apphealth_backup_last_size_bytes", "apphealth_backup_last_timestamp_seconds",
    "apphealth_backup_previous_size_bytes", "apphealth_backup_verified", "apphealth_build_info",
    "apphealth_client_errors_total", "apphealth_db_connect_duration_seconds", "apphealth_db_connections",
    "apphealth_db_max_connections", "apphealth_db_oldest_transaction_age_seconds",
    "apphealth_db_probe_duration_seconds", "apphealth_db_up", "apphealth_http_request_duration_seconds",
    "apphealth_http_requests_total", "apphealth_ingest_rejected_total", "apphealth_ingest_requests_total",
    "apphealth_log_lines_total", "apphealth_probe_duration_seconds", "apphealth_probe_http_status_code",
    "apphealth_probe_ssl_earliest_cert_expiry_timestamp_seconds", "apphealth_probe_success",
    "apphealth_queue_jobs", "apphealth_queue_oldest_job_age_seconds", "apphealth_queue_pattern_keys",
    "apphealth_queue_pattern_truncated", "apphealth_queue_stream_group_lag", "apphealth_queue_stream_group_pending",
    "apphealth_redis_probe_duration_seconds", "apphealth_redis_up", "apphealth_db_wal_archive_mode",
    "apphealth_db_wal_archived_total", "apphealth_db_wal_archive_failures_total",
    "apphealth_db_wal_last_archived_timestamp_seconds", "apphealth_db_wal_last_archive_failure_timestamp_seconds",
    "apphealth_db_wal_unarchived_bytes", "apphealth_db_replication_lag_seconds", "apphealth_db_replication_lag_bytes"};
const char* const kReservedPrefixes[] = {"apphealth_backup_", "apphealth_collector_", "apphealth_config_", "apphealth_sql_",
                                         "apphealth_threshold_", "apphealth_web_vitals_"};

bool startsWith(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }
bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool isMetricName(const std::string& name) {
  if (name.empty() || name.size() > 200) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const unsigned char c = name[i];
    if (!(std::isalpha(c) || c == '_' || (i > 0 && std::isdigit(c)))) return false;
  }
  return true;
}

bool isLabelName(const std::string& name) { return isMetricName(name) && !startsWith(name, "__"); }

// A table name: identifier or schema.identifier, letters, digits, '_', '$'; quoted when used.
bool isTableName(const std::string& name) {
  if (name.empty() || name.size() > 127) return false;
  bool start = true;
  for (char ch : name) {
    const unsigned char c = ch;
    if (c == '.') {
      if (start) return false;
      start = true;
      continue;
    }
    if (!(std::isalpha(c) || c == '_' || (!start && (std::isdigit(c) || c == '$')))) return false;
    start = false;
  }
  return !start;
}

bool isColumnName(const std::string& name) { return isTableName(name) && name.find('.') == std::string::npos; }

std::string trimQuery(std::string q) {
  auto isTrail = [](char c) { return std::isspace(static_cast<unsigned char>(c)) || c == ';'; };
  while (!q.empty() && isTrail(q.back())) q.pop_back();
  std::size_t start = 0;
  while (start < q.size() && std::isspace(static_cast<unsigned char>(q[start]))) ++start;
  return q.substr(start);
}

void readTable(LoadContext& ctx, YamlReader::Map& map, const std::string& key, std::string& out, bool allowEmpty) {
  if (!map.getString(key, out)) return;
  if (out.empty() && allowEmpty) return;
  if (!isTableName(out)) {
    ctx.reader().error(map.node(key), "'" + key + "' must be a table name (letters, digits, '_', optionally schema.table), got '" + out + "'");
  }
}

void readColumn(LoadContext& ctx, YamlReader::Map& map, const std::string& key, std::string& out) {
  if (!map.getString(key, out)) return;
  if (!isColumnName(out)) {
    ctx.reader().error(map.node(key), "'" + key + "' must be a column name (letters, digits, '_'), got '" + out + "'");
  }
}

void parseCustom(LoadContext& ctx, YamlReader::Map& map, SqlMetricSpec& m, const std::string& kind) {
  auto& r = ctx.reader();
  if (map.getString("name", m.name, true)) {
    if (!isMetricName(m.name)) {
      r.error(map.node("name"), "name '" + m.name + "' is not a valid Prometheus metric name ([a-zA-Z_][a-zA-Z0-9_]*)");
    } else if (!startsWith(m.name, "apphealth_")) {
      r.error(map.node("name"), "name '" + m.name + "' must start with 'apphealth_'");
    } else if (isBuiltinMetricName(m.name)) {
      r.error(map.node("name"), "name '" + m.name + "' collides with a built-in apphealth metric; choose another name");
    }
  }
  map.getString("help", m.help, true);
  std::string type;
  if (map.getString("type", type, true)) {
    if (type == "counter") {
      m.counter = true;
      if (!m.name.empty() && !endsWith(m.name, "_total")) {
        r.error(map.node("name"), "counter name '" + m.name + "' must end in '_total'");
      }
    } else if (type != "gauge") {
      r.error(map.node("type"), "type must be 'gauge' or 'counter', got '" + type + "'");
    }
  }
  if (map.getString("query", m.query, true)) {
    m.query = trimQuery(m.query);
    if (m.query.empty()) r.error(map.node("query"), "'query' must not be empty");
  }
  if (map.getString("value", m.value, true) && m.value.empty()) r.error(map.node("value"), "'value' must name a column");
  map.getStringList("labels", m.labels);
  if (static_cast<int>(m.labels.size()) > kSqlMaxLabels) {
    r.error(map.node("labels"), "at most " + std::to_string(kSqlMaxLabels) + " label columns");
  }
  std::set<std::string> seen;
  for (const auto& label : m.labels) {
    if (!isLabelName(label)) {
      r.error(map.node("labels"), "label column '" + label + "' is not a valid Prometheus label name (and must not start with '__')");
    } else if (label == "target") {
      r.error(map.node("labels"), "label 'target' is reserved: every SQL metric carries target=\"<" + kind + " target>\"");
    } else if (label == m.value) {
      r.error(map.node("labels"), "column '" + label + "' cannot be both a label and the value");
    } else if (!seen.insert(label).second) {
      r.error(map.node("labels"), "label column '" + label + "' is listed twice");
    }
  }
  for (const char* key : {"queues", "jobs_table", "failed_jobs_table", "table", "created_at_column"}) {
    if (map.has(key)) r.error(map.node(key), std::string("'") + key + "' belongs to a preset; a custom metric has none");
  }
}

void parsePreset(LoadContext& ctx, YamlReader::Map& map, SqlMetricSpec& m, const std::string& preset) {
  auto& r = ctx.reader();
  m.name = preset;
  if (map.getString("name", m.name) && !isColumnName(m.name)) {
    r.error(map.node("name"), "name '" + m.name + "' must be letters, digits and '_'");
  }
  map.getStringList("queues", m.queues);
  for (auto& q : m.queues) {
    if (q.empty() || q.size() > kSqlLabelValueMaxBytes) r.error(map.node("queues"), "queue names must be 1-128 characters");
  }
  if (m.kind == SqlMetricSpec::Kind::Laravel) {
    readTable(ctx, map, "jobs_table", m.jobs_table, true);
    readTable(ctx, map, "failed_jobs_table", m.failed_jobs_table, true);
    // jobs_table: "" is an app whose queue lives elsewhere (Redis) and keeps only failed_jobs.
    if (m.jobs_table.empty() && m.failed_jobs_table.empty()) {
      r.error(map.node("jobs_table"), "'jobs_table' and 'failed_jobs_table' are both empty: the preset would read nothing");
    }
  } else {
    if (map.getString("table", m.table, true) && !isTableName(m.table)) {
      r.error(map.node("table"), "'table' must be a table name (letters, digits, '_', optionally schema.table), got '" + m.table + "'");
    }
    readColumn(ctx, map, "created_at_column", m.created_at_column);
    map.getBool("created_at_unix", m.created_at_unix);
    readColumn(ctx, map, "queue_column", m.queue_column);
    m.queue = m.name;
    if (map.getString("queue", m.queue)) {
      if (!m.queue_column.empty()) r.error(map.node("queue"), "set either 'queue' or 'queue_column', not both");
      if (m.queue.empty() || m.queue.size() > kSqlLabelValueMaxBytes) r.error(map.node("queue"), "'queue' must be 1-128 characters");
    }
    readColumn(ctx, map, "state_column", m.state_column);
    if (map.getString("waiting_state", m.waiting_state) && m.state_column.empty()) {
      r.error(map.node("waiting_state"), "'waiting_state' needs 'state_column'");
    }
    if (map.getString("where", m.where)) m.where = trimQuery(m.where);
  }
  for (const char* key : {"help", "type", "query", "labels", "value"}) {
    if (map.has(key)) r.error(map.node(key), std::string("'") + key + "' is for custom metrics; preset '" + preset + "' has none");
  }
}

}  // namespace

bool isBuiltinMetricName(const std::string& name) {
  for (const char* prefix : kReservedPrefixes) {
    if (startsWith(name, prefix)) return true;
  }
  if (kBuiltinNames.count(name)) return true;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    if (endsWith(name, suffix) && kBuiltinNames.count(name.substr(0, name.size() - std::string(suffix).size()))) return true;
  }
  return false;
}

void parseSqlMetrics(LoadContext& ctx, YamlReader::Map& target, const SqlMetricsOwner& owner,
                     std::vector<SqlMetricSpec>& out) {
  auto list = target.node("sql_metrics");
  std::set<std::string> names;
  int count = 0;
  ctx.reader().forEach(list, "'sql_metrics'", [&](const YAML::Node& node) {
    if (++count == kSqlMaxEntriesPerTarget + 1) {
      ctx.reader().error(node, "at most " + std::to_string(kSqlMaxEntriesPerTarget) +
                                   " sql_metrics per " + owner.kind + " target (each keeps a connection open)");
    }
    YamlReader::Map map(ctx.reader(), node, "a sql_metrics entry");
    if (!map.valid()) return;
    SqlMetricSpec m;
    std::string preset;
    if (map.getString("preset", preset)) {
      if (preset == "laravel") {
        m.kind = SqlMetricSpec::Kind::Laravel;
      } else if (preset == "table") {
        m.kind = SqlMetricSpec::Kind::Table;
      } else {
        ctx.reader().error(map.node("preset"), "unknown preset '" + preset + "' (known: laravel, table)");
        return;
      }
      parsePreset(ctx, map, m, preset);
    } else {
      parseCustom(ctx, map, m, owner.kind);
    }
    m.interval = owner.interval;
    m.timeout = owner.timeout;
    ctx.intervalAndTimeout(map, m.interval, m.timeout);
    map.getInt("max_rows", m.max_rows, 1, kSqlMaxMaxRows);
    if (!m.name.empty() && !names.insert(m.name).second) {
      ctx.reader().error(map.has("name") ? map.node("name") : node,
                         "duplicate sql_metrics name '" + m.name + "' in " + owner.kind + " target '" + owner.name + "'");
    }
    out.push_back(std::move(m));
  });
}

}  // namespace apphealth
