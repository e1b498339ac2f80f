// The `backups:` section: local directories (files or directories as backups) and off-site
// copies in S3-compatible storage, with retention, completeness and checksum options.

#include <algorithm>

#include "config/LoadContext.h"

namespace apphealth {

namespace {

void parseRetention(LoadContext& ctx, const YAML::Node& node, BackupRetention& r) {
  YamlReader::Map map(ctx.reader(), node, "a backup retention policy");
  if (!map.valid()) return;
  map.getInt("keep_daily", r.keep_daily, 0, 3660);
  map.getInt("keep_weekly", r.keep_weekly, 0, 520);
  map.getInt("keep_monthly", r.keep_monthly, 0, 1200);
  map.getInt("min_count", r.min_count, 0, 1000000);
  map.getInt("max_count", r.max_count, 0, 1000000);
  map.getDuration("max_age", r.max_age, 1h, 24h * 3660);
  if (r.max_count && r.min_count > r.max_count) {
    ctx.reader().error(map.node("max_count"), "max_count must not be below min_count");
  }
  if (!r.any()) ctx.reader().error(node, "a retention policy needs at least one of keep_daily, keep_weekly, "
                                         "keep_monthly, min_count, max_count, max_age");
}

void parseS3(LoadContext& ctx, const YAML::Node& node, S3Location& s3) {
  YamlReader::Map map(ctx.reader(), node, "an s3 location");
  if (!map.valid()) return;
  if (map.getString("endpoint", s3.endpoint, true)) {
    const bool http = s3.endpoint.rfind("http://", 0) == 0, https = s3.endpoint.rfind("https://", 0) == 0;
    const auto rest = s3.endpoint.substr(s3.endpoint.find("://") + 3);
    if ((!http && !https) || rest.empty() || rest.find('/') != std::string::npos || rest.find('@') != std::string::npos) {
      ctx.reader().error(map.node("endpoint"), "endpoint must be http(s)://host[:port] without a path or credentials");
    }
  }
  map.getString("region", s3.region);
  if (map.getString("bucket", s3.bucket, true)) {
    bool ok = s3.bucket.size() >= 3 && s3.bucket.size() <= 63;
    for (char c : s3.bucket) ok = ok && (std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.');
    if (!ok) ctx.reader().error(map.node("bucket"), "bucket must be 3-63 lower-case letters, digits, '-' or '.'");
  }
  map.getString("prefix", s3.prefix);
  map.getBool("path_style", s3.path_style);
  map.getString("ca_file", s3.ca_file);
  map.getInt("max_objects", s3.max_objects, 1, 10000000);
  map.getInt("max_keys", s3.max_keys, 1, 1000);
  // Credentials: files or environment variables only, like every other secret.
  auto secretPair = [&](const char* file, const char* env, SecretSource& out, bool required) {
    map.getString(file, out.file);
    map.getString(env, out.env);
    if (!out.file.empty() && !out.env.empty()) {
      ctx.reader().error(map.node(env), std::string("set either ") + file + " or " + env + ", not both");
    } else if (out.empty() && required) {
      ctx.reader().error(node, std::string("an s3 location needs ") + file + " or " + env);
    } else {
      try {
        readSecret(out);
      } catch (const std::exception& e) {
        ctx.reader().error(map.node(out.file.empty() ? env : file), e.what());
      }
    }
  };
  secretPair("access_key_id_file", "access_key_id_env", s3.access_key_id, true);
  secretPair("secret_access_key_file", "secret_access_key_env", s3.secret_access_key, true);
  secretPair("session_token_file", "session_token_env", s3.session_token, false);
  for (const char* inline_key : {"access_key_id", "secret_access_key", "session_token"}) {
    if (map.has(inline_key)) {
      ctx.reader().error(map.node(inline_key), std::string("inline ") + inline_key +
                                                   " is not accepted: use " + inline_key + "_file or " + inline_key + "_env");
    }
  }
}

}  // namespace

std::optional<BackupTarget> parseBackupTarget(LoadContext& ctx, const YAML::Node& node) {
  YamlReader::Map map(ctx.reader(), node, "a backup");
  if (!map.valid()) return std::nullopt;
  BackupTarget t;
  ctx.checkName(map, "backup", t.name);
  map.getString("directory", t.directory);
  if (auto s3 = map.node("s3"); s3.IsDefined() && !s3.IsNull()) {
    t.s3.emplace();
    parseS3(ctx, s3, *t.s3);
  }
  if (t.directory.empty() == !t.s3) {
    ctx.reader().error(node, "a backup needs exactly one of 'directory' (local) or 's3' (off-site)");
  }
  map.getString("glob", t.glob);
  map.getString("name_time_format", t.name_time_format);
  if (!t.name_time_format.empty() && t.name_time_format.find('%') == std::string::npos) {
    ctx.reader().error(map.node("name_time_format"), "name_time_format needs strptime fields such as %Y%m%d-%H%M%S");
  }
  map.getBool("verify_checksum", t.verify_checksum);
  map.getBool("check_complete", t.check_complete);
  if (t.s3 && (t.verify_checksum || t.check_complete)) {
    ctx.reader().error(map.node(t.verify_checksum ? "verify_checksum" : "check_complete"),
                       "checksums and completeness are checked on the local copy; an s3 backup compares sizes "
                       "with 'offsite_of'");
  }
  map.getDuration("max_age", t.max_age, 1s, 24h * 3650);
  map.getDuration("interval", t.interval, kMinInterval, kMaxInterval);
  if (map.getDuration("timeout", t.timeout, 100ms, 1h) && t.timeout > t.interval) {
    ctx.reader().error(map.node("timeout"), "timeout (" + formatDuration(t.timeout) + ") must not exceed interval (" +
                                                formatDuration(t.interval) + ")");
  }
  t.timeout = std::min(t.timeout, t.interval);  // default: 30s, or the interval when shorter
  map.getDuration("check_timeout", t.check_timeout, 1s, 24h);
  map.getDuration("settle_time", t.settle_time, Duration(0), 24h);
  map.getDuration("checksum_grace", t.checksum_grace, Duration(0), 7 * 24h);
  map.getInt("max_files", t.max_files, 1, 10000000);
  map.getInt("max_depth", t.max_depth, 1, 64);
  if (auto r = map.node("retention"); r.IsDefined() && !r.IsNull()) parseRetention(ctx, r, t.retention);
  map.getString("offsite_of", t.offsite_of);
  map.getDuration("offsite_delay", t.offsite_delay, 1min, 30 * 24h);
  if (!t.offsite_of.empty() && !t.s3) {
    ctx.reader().error(map.node("offsite_of"), "offsite_of belongs to an s3 backup: it names the local backup it copies");
  }
  return t;
}

void resolveBackupReferences(LoadContext& ctx, const YAML::Node& sequence, std::vector<BackupTarget>& backups) {
  if (!sequence.IsDefined() || !sequence.IsSequence()) return;
  for (auto& t : backups) {
    if (t.offsite_of.empty()) continue;
    YAML::Node at;
    for (const auto& n : sequence) {
      if (n.IsMap() && n["name"] && n["name"].Scalar() == t.name) at = n["offsite_of"];
    }
    const BackupTarget* local = nullptr;
    for (const auto& other : backups) {
      if (other.name == t.offsite_of) local = &other;
    }
    if (local == nullptr || local->directory.empty()) {
      ctx.reader().error(at, "offsite_of '" + t.offsite_of + "' is not the name of a local (directory) backup");
      continue;
    }
    auto copy = std::make_shared<BackupTarget>(*local);
    t.offsite_local = std::move(copy);
  }
}

}  // namespace apphealth
