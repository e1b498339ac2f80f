#pragma once
// The exporter's configuration after validation: plain values, defaults applied.
// Parsing and error reporting live in ConfigLoader; this header has no YAML in it.

#include <map>
#include <memory>
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
  double wal_rpo_threshold_seconds = 900;  // WAL archiving: the recovery point objective
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

// What a backups[] entry's retention policy promises; 0 turns a rule off. Each rule becomes a
// threshold series, and the collector exports what the kept set satisfies.
struct BackupRetention {
  int keep_daily = 0;    // distinct days that hold a backup
  int keep_weekly = 0;   // distinct ISO weeks
  int keep_monthly = 0;  // distinct months
  int min_count = 0;     // backups at least
  int max_count = 0;     // backups at most (the cleanup runs)
  Duration max_age{0};   // the oldest backup at most this old (the cleanup runs)
  bool any() const {
    return keep_daily || keep_weekly || keep_monthly || min_count || max_count || max_age.count();
  }
};

// An off-site copy in S3-compatible object storage, listed with ListObjectsV2.
struct S3Location {
  std::string endpoint;  // scheme://host[:port], e.g. https://s3.eu-central-1.amazonaws.com
  std::string region = "us-east-1";
  std::string bucket;
  std::string prefix;       // only keys under it; backups are named relative to it
  bool path_style = false;  // https://host/bucket/key instead of https://bucket.host/key
  SecretSource access_key_id;
  SecretSource secret_access_key;
  SecretSource session_token;  // optional, temporary credentials
  std::string ca_file;
  int max_objects = 100000;  // listing cap: more objects is an error, not a silent cut
  int max_keys = 1000;       // keys per ListObjectsV2 page (S3's max-keys; 1,000 is its maximum)
};

struct BackupTarget {
  std::string name;
  std::string directory;  // a local backup, or...
  std::optional<S3Location> s3;  // ...an off-site one (exactly one of them)
  std::string glob = "*";
  // Empty: the file's mtime is the backup time. Otherwise a strptime format matched against
  // the start of the file name, in UTC, e.g. "full-backup-%Y%m%d-%H%M%S".
  std::string name_time_format;
  bool verify_checksum = false;  // against FILE.sha256 in sha256sum format, or a manifest
  bool check_complete = false;   // gzip/zstd/pg_dump/pg_restore/mongodump completeness
  Duration max_age = 26h;
  Duration interval = 60s;
  Duration timeout = 30s;        // one listing: directory walk or S3 pages
  Duration check_timeout = 10min;  // one checksum or completeness check of one backup
  Duration settle_time = 5min;     // modified more recently than this: still being written
  Duration checksum_grace = 30min;  // after settling, how long a missing sidecar is not yet a failure
  int max_files = 100000;  // files walked per directory backup
  int max_depth = 16;      // directory levels walked per directory backup
  BackupRetention retention;
  // S3 entries: the local backups[] entry this one is the off-site copy of, and how long after
  // the local backup settled its copy may take to appear.
  std::string offsite_of;
  Duration offsite_delay = 2h;
  std::shared_ptr<const BackupTarget> offsite_local;  // resolved from offsite_of by the loader
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
