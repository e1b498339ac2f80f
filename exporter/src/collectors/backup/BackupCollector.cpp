#include "collectors/backup/BackupCollector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "collectors/backup/LocalListing.h"
#include "collectors/backup/Retention.h"
#include "collectors/backup/S3Listing.h"

namespace apphealth {

namespace {

constexpr std::size_t kMaxCached = 64;

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

template <typename Map>
void bound(Map& cache) {
  if (cache.size() >= kMaxCached) cache.clear();
}

}  // namespace

BackupCollector::BackupCollector(BackupTarget target)
    : target_(std::move(target)), helpSuffix_(" Sampled every " + formatDuration(target_.interval) + ".") {}

std::optional<double> BackupCollector::timeFromName(const std::string& name, const std::string& format) {
  return backupTimeFromName(name, format);
}

void BackupCollector::logOnce(std::string& last, const std::string& message, bool warn) {
  if (message == last) return;
  last = message;
  if (message.empty()) return;
  if (warn) spdlog::warn("backup {}: {}", target_.name, message);
  else spdlog::info("backup {}: {}", target_.name, message);
}

BackupListing BackupCollector::list(SteadyDeadline deadline, const std::stop_token& stop) {
  if (!target_.s3) return listLocalBackups(target_, deadline, stop);
  S3Client::Options options;
  try {
    options = s3ClientOptions(*target_.s3);  // per sample: rotated credential files are picked up
  } catch (const std::exception& e) {
    BackupListing out;
    out.problem = e.what();
    return out;
  }
  S3Client client(std::move(options));
  return listS3Backups(target_, client, deadline, stop);
}

std::optional<bool> BackupCollector::verify(const BackupCandidate& backup, double now, const std::stop_token& stop,
                                            bool& stopped) {
  const CacheKey key{backup.path, backup.size, backup.mtime};
  auto it = checksums_.find(key);
  if (it == checksums_.end()) {
    CheckContext ctx{std::chrono::steady_clock::now() + target_.check_timeout, stop};
    ChecksumOutcome outcome = verifyBackupChecksum(backup, ctx);
    if (outcome.verdict == ChecksumOutcome::Verdict::Stopped) {
      stopped = true;
      return std::nullopt;
    }
    if (outcome.verdict != ChecksumOutcome::Verdict::NoManifest) {
      ++hashesComputed_;
      bound(checksums_);
      it = checksums_.emplace(key, std::move(outcome)).first;
    } else {
      // Not cached: the sidecar is often written just after the backup itself.
      const double settledAt = backup.mtime + toSeconds(target_.settle_time);
      if (now < settledAt + toSeconds(target_.checksum_grace)) return std::nullopt;  // still within the grace period
      logOnce(checksumLogged_, backup.name + ": " + outcome.detail, true);
      return false;
    }
  }
  const auto& outcome = it->second;
  switch (outcome.verdict) {
    case ChecksumOutcome::Verdict::Match:
      logOnce(checksumLogged_, "", false);
      return true;
    case ChecksumOutcome::Verdict::Mismatch:
      logOnce(checksumLogged_, backup.name + ": " + outcome.detail, true);
      return false;
    default:
      logOnce(checksumLogged_, backup.name + ": checksum not verified: " + outcome.detail, true);
      return std::nullopt;
  }
}

std::optional<bool> BackupCollector::complete(const BackupCandidate& backup, const std::stop_token& stop,
                                              bool& stopped) {
  const CacheKey key{backup.path, backup.size, backup.mtime};
  auto it = completeness_.find(key);
  if (it == completeness_.end()) {
    CheckContext ctx{std::chrono::steady_clock::now() + target_.check_timeout, stop};
    CheckOutcome outcome = checkBackupComplete(backup, ctx);
    if (outcome.verdict == CheckOutcome::Verdict::Stopped) {
      stopped = true;
      return std::nullopt;
    }
    ++completenessChecks_;
    bound(completeness_);
    it = completeness_.emplace(key, std::move(outcome)).first;
  }
  const auto& outcome = it->second;
  switch (outcome.verdict) {
    case CheckOutcome::Verdict::Complete:
      logOnce(completeLogged_, "", false);
      spdlog::debug("backup {}: {} is complete ({})", target_.name, backup.name, outcome.detail);
      return true;
    case CheckOutcome::Verdict::Incomplete:
      logOnce(completeLogged_, backup.name + " is incomplete: " + outcome.detail, true);
      return false;
    default:
      logOnce(completeLogged_, backup.name + ": completeness not checked: " + outcome.detail, false);
      return std::nullopt;
  }
}

void BackupCollector::offsite(SnapshotBuilder& out, const BackupListing& remote, double now, const std::stop_token& stop) {
  const Labels labels = {{"backup", target_.name}};
  const BackupTarget& local = *target_.offsite_local;
  out.gauge("apphealth_threshold_backup_offsite_delay_seconds",
            "Configured time the off-site copy of a new local backup may take to appear.", labels,
            toSeconds(target_.offsite_delay));
  // The local directory is listed here again (cheap: a directory walk, no hashing) so that this
  // collector needs no state from the local backup's collector.
  auto listing = listLocalBackups(local, std::chrono::steady_clock::now() + target_.timeout, stop);
  if (!listing.problem.empty()) {
    spdlog::debug("backup {}: cannot list the local backup {}: {}", target_.name, local.name, listing.problem);
    return;
  }
  const BackupCandidate* newest = nullptr;
  for (const auto& c : listing.backups) {
    if (now - c.mtime < toSeconds(local.settle_time)) continue;  // still being written: not expected off-site yet
    if (!newest || c.time > newest->time || (c.time == newest->time && c.name > newest->name)) newest = &c;
  }
  if (!newest) return;
  bool match = false;
  for (const auto& r : remote.backups) match = match || (r.name == newest->name && r.size == newest->size);
  out.gauge("apphealth_backup_offsite_match",
            "Whether the newest finished local backup has an off-site copy of the same name and size (1) or not (0)." +
                helpSuffix_,
            labels, match ? 1 : 0);
  out.gauge("apphealth_backup_offsite_source_timestamp_seconds",
            "Last modification of the newest finished local backup the off-site copy is compared with." + helpSuffix_,
            labels, newest->mtime);
}

SampleResult BackupCollector::sample(SnapshotBuilder& out, std::stop_token stop) {
  std::optional<double> newestTime;
  bool writing = false;
  SampleResult result = scan(out, stop, newestTime, writing);
  // No backup at all counts as over the age threshold, as the "backup missing" alert sees it;
  // a backup being written holds it off, as it holds off the "backup too old" alert.
  StatusCheck age{"age of the newest backup", kNoValue, toSeconds(target_.max_age), "s"};
  if (result.ok) {
    if (newestTime) age.value = nowSeconds() - *newestTime;
    age.failing = (!newestTime || age.value > age.threshold) && !writing;
  }
  result.checks.push_back(std::move(age));
  return result;
}

SampleResult BackupCollector::scan(SnapshotBuilder& out, const std::stop_token& stop, std::optional<double>& newestTime,
                                   bool& writing) {
  const Labels labels = {{"backup", target_.name}};
  out.gauge("apphealth_threshold_backup_max_age_seconds", "Configured age above which the newest backup is too old.",
            labels, toSeconds(target_.max_age));
  const auto& r = target_.retention;
  auto periodThreshold = [&](const char* period, int value) {
    if (value > 0) {
      out.gauge("apphealth_threshold_backup_retention_periods",
                "Configured retention: distinct periods (day, ISO week, month) that must hold a backup.",
                {{"backup", target_.name}, {"period", period}}, value);
    }
  };
  periodThreshold("daily", r.keep_daily);
  periodThreshold("weekly", r.keep_weekly);
  periodThreshold("monthly", r.keep_monthly);
  if (r.min_count > 0) {
    out.gauge("apphealth_threshold_backup_min_count", "Configured retention: backups that must be kept at least.",
              labels, r.min_count);
  }
  if (r.max_count > 0) {
    out.gauge("apphealth_threshold_backup_max_count", "Configured retention: backups kept at most (cleanup works).",
              labels, r.max_count);
  }
  if (r.max_age.count() > 0) {
    out.gauge("apphealth_threshold_backup_retention_max_age_seconds",
              "Configured retention: age the oldest backup may reach before the cleanup deletes it.", labels,
              toSeconds(r.max_age));
  }

  const auto deadline = std::chrono::steady_clock::now() + target_.timeout;
  BackupListing listing = list(deadline, stop);
  if (stop.stop_requested()) return SampleResult::failure("stopped");
  const std::string filesHelp = "Backups (files or directories; S3: objects or key groups) matching the glob." + helpSuffix_;
  if (!listing.problem.empty()) {
    // No directory or bucket means no backup: say so, so the "no backup" alert fires as well.
    // Other failures (credentials, timeouts, caps) only take the collector down.
    if (listing.locationMissing) out.gauge("apphealth_backup_files", filesHelp, labels, 0);
    return SampleResult::failure(listing.problem);
  }
  auto& all = listing.backups;
  out.gauge("apphealth_backup_files", filesHelp, labels, static_cast<double>(all.size()));
  const double now = nowSeconds();
  std::sort(all.begin(), all.end(), [](const BackupCandidate& a, const BackupCandidate& b) {
    return a.time != b.time ? a.time > b.time : a.name > b.name;
  });
  const double settle = toSeconds(target_.settle_time);
  auto inProgress = [&](const BackupCandidate& c) { return settle > 0 && now - c.mtime < settle; };
  writing = !all.empty() && inProgress(all.front());
  out.gauge("apphealth_backup_in_progress",
            "Whether the newest backup was modified within settle_time, i.e. is still being written (1) or not (0)." +
                helpSuffix_,
            labels, writing ? 1 : 0);
  if (target_.s3 && target_.offsite_local) offsite(out, listing, now, stop);
  if (all.empty()) return SampleResult::success();  // the location is readable; "no backup" is for the alert to say

  const RetentionSummary kept = summarizeRetention(all);
  out.gauge("apphealth_backup_oldest_timestamp_seconds", "Time of the oldest backup (Unix seconds)." + helpSuffix_,
            labels, kept.oldest);
  auto periods = [&](const char* period, int threshold, int value) {
    if (threshold > 0) {
      out.gauge("apphealth_backup_retention_periods",
                "Distinct periods (UTC day, ISO week, month) that hold at least one backup." + helpSuffix_,
                {{"backup", target_.name}, {"period", period}}, value);
    }
  };
  periods("daily", r.keep_daily, kept.days);
  periods("weekly", r.keep_weekly, kept.weeks);
  periods("monthly", r.keep_monthly, kept.months);

  // A backup still being written is not the newest backup yet: the newest finished one keeps
  // driving time, size and the checks, so a slow nightly dump written in place trips nothing.
  std::vector<const BackupCandidate*> settled;
  for (const auto& c : all) {
    if (!inProgress(c)) settled.push_back(&c);
  }
  if (settled.empty()) return SampleResult::success();
  const BackupCandidate& newest = *settled.front();
  newestTime = newest.time;
  out.gauge("apphealth_backup_last_timestamp_seconds",
            "Time of the newest finished backup (Unix seconds)." + helpSuffix_, labels, newest.time);
  out.gauge("apphealth_backup_last_size_bytes", "Size of the newest finished backup." + helpSuffix_, labels,
            static_cast<double>(newest.size));
  if (settled.size() > 1) {
    out.gauge("apphealth_backup_previous_size_bytes", "Size of the finished backup before the newest one." + helpSuffix_,
              labels, static_cast<double>(settled[1]->size));
  }
  bool stopped = false;
  if (target_.verify_checksum) {
    const auto verified = verify(newest, now, stop, stopped);
    if (stopped) return SampleResult::failure("stopped");  // this snapshot is never published
    if (verified) {
      out.gauge("apphealth_backup_verified",
                "Whether the newest finished backup matches its checksums (1) or not, or has none after checksum_grace (0)." +
                    helpSuffix_,
                labels, *verified ? 1 : 0);
    }
  }
  if (target_.check_complete) {
    const auto done = complete(newest, stop, stopped);
    if (stopped) return SampleResult::failure("stopped");
    if (done) {
      out.gauge("apphealth_backup_complete",
                "Whether the newest finished backup passed its completeness check (1) or not (0); reason in the log." +
                    helpSuffix_,
                labels, *done ? 1 : 0);
    }
  }
  return SampleResult::success();
}

}  // namespace apphealth
