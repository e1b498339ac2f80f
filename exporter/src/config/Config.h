#pragma once
// The exporter's configuration after validation: plain values, defaults applied.
// Parsing and error reporting live in ConfigLoader; this header has no YAML in it.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/AccessLogConfig.h"
#include "config/HttpProbeConfig.h"
#include "config/IngestConfig.h"
#include "config/MysqlConfig.h"
#include "config/Secret.h"
#include "config/SqlMetricsConfig.h"
#include "util/Duration.h"

namespace apphealth {

using namespace std::chrono_literals;

struct PostgresTarget {
  std::string name;
  std::string dsn;  // libpq connection string or URI, without the password
  SecretSource password;
  std::string probe_query = "SELECT 1";
  Duration interval = 15s;
  Duration timeout = 5s;
  double probe_latency_threshold_seconds = 1.0;
  // Sessions whose application_name is listed are left out of the oldest-transaction age:
  // a dump holds one transaction for as long as it runs, which is no sign of trouble.
  std::vector<std::string> oldest_transaction_exclude_applications = {"pg_dump", "pg_dumpall", "pg_basebackup"};
  std::vector<SqlMetricSpec> sql_metrics;  // each runs as its own collector "sql"
};

// One entry under a Redis target's `queues:`. Either a framework preset applied to a list of
// queue names, or an explicit key (possibly a `*` pattern expanded with SCAN).
struct RedisQueueSpec {
  enum class Preset { None, Celery, Rq, Sidekiq, Laravel, BullMQ };
  Preset preset = Preset::None;
  std::vector<std::string> queue_names;  // presets: the framework's queue names
  std::string prefix;                    // presets: key prefix (Laravel's, BullMQ's "bull")
  bool workers = true;                   // presets: read live workers (Celery: ask them)
  std::string key;                       // explicit: the key or pattern
  std::string label;                     // explicit: queue label (defaults to the key)
  std::string type;                      // explicit: list, zset, set, stream, or "" (TYPE)
  std::string state = "waiting";         // explicit: which state the key's length counts
  std::map<std::string, double> thresholds;  // state -> apphealth_threshold_queue_jobs
};

struct RedisTarget {
  std::string name;
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string unix_socket;  // when set, host/port are unused
  SecretSource password;
  int db = 0;
  Duration interval = 15s;
  Duration timeout = 2s;
  int max_keys_per_pattern = 100;
  std::vector<RedisQueueSpec> queues;
};

struct BackupTarget {
  std::string name;
  std::string directory;
  std::string glob = "*";
  // Empty: the file's mtime is the backup time. Otherwise a strptime format matched against
  // the start of the file name, in UTC, e.g. "full-backup-%Y%m%d-%H%M%S".
  std::string name_time_format;
  bool verify_checksum = false;  // against FILE.sha256 in sha256sum format
  Duration max_age = 26h;
  Duration interval = 60s;
};

struct Config {
  std::string source_file;  // for messages and the landing page
  std::vector<PostgresTarget> postgres;
  std::vector<MysqlTarget> mysql;
  std::vector<RedisTarget> redis;
  std::vector<BackupTarget> backups;
  std::vector<AccessLogTarget> access_logs;
  std::vector<HttpProbeTarget> http_probes;
  IngestConfig ingest;
};

// Defaults shared by the loader, the docs and the tests.
inline constexpr double kDefaultFailedJobsThreshold = 100;
inline constexpr double kDefaultWaitingJobsThreshold = 1000;

const char* presetName(RedisQueueSpec::Preset preset);

}  // namespace apphealth
