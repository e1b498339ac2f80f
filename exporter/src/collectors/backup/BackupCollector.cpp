#include "collectors/backup/BackupCollector.h"

#include <fnmatch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <vector>

#include "util/Sha256.h"

namespace apphealth {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSidecarSuffix = ".sha256";
constexpr std::size_t kMaxCachedHashes = 64;

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The first field of a sha256sum line: "<64 hex>  <name>" (or "<hex> *<name>" in binary mode).
std::optional<std::string> readSidecar(const std::string& path) {
  std::ifstream in(path);
  std::string digest;
  if (!(in >> digest) || digest.size() != 64) return std::nullopt;
  for (auto& c : digest) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return digest;
}

double toUnixSeconds(fs::file_time_type t) {
  const auto system = std::chrono::file_clock::to_sys(t);
  return std::chrono::duration<double>(system.time_since_epoch()).count();
}

}  // namespace

BackupCollector::BackupCollector(BackupTarget target)
    : target_(std::move(target)), helpSuffix_(" Sampled every " + formatDuration(target_.interval) + ".") {}

std::optional<double> BackupCollector::timeFromName(const std::string& name, const std::string& format) {
  std::tm tm{};
  const char* rest = strptime(name.c_str(), format.c_str(), &tm);
  if (rest == nullptr) return std::nullopt;
  return static_cast<double>(timegm(&tm));
}

// nullopt when interrupted by a stop request.
std::optional<bool> BackupCollector::verify(const BackupFile& file, const std::stop_token& stop) {
  const CacheKey key{file.path, file.size, file.mtime};
  if (auto it = verified_.find(key); it != verified_.end()) return it->second;
  const auto expected = readSidecar(file.path + kSidecarSuffix);
  if (!expected) {
    // Not cached: the sidecar is often written just after the backup itself. Said once per
    // file, not on every sample.
    if (missingSidecarWarned_ != file.path) {
      spdlog::warn("backup {}: no readable checksum file {}{}", target_.name, file.name, kSidecarSuffix);
      missingSidecarWarned_ = file.path;
    }
    return false;
  }
  const auto actual = sha256File(file.path, stop);
  if (stop.stop_requested()) return std::nullopt;
  ++hashesComputed_;
  const bool ok = actual && *actual == *expected;
  if (!ok) spdlog::error("backup {}: checksum mismatch for {}", target_.name, file.name);
  if (verified_.size() >= kMaxCachedHashes) verified_.clear();
  verified_[key] = ok;
  return ok;
}

SampleResult BackupCollector::sample(SnapshotBuilder& out, std::stop_token stop) {
  std::optional<double> newestTime;
  SampleResult result = scan(out, stop, newestTime);
  // No backup at all counts as over the age threshold, as the "backup missing" alert sees it.
  StatusCheck age{"age of the newest backup", kNoValue, toSeconds(target_.max_age), "s"};
  if (result.ok) {
    const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    if (newestTime) age.value = now - *newestTime;
    age.failing = !newestTime || age.value > age.threshold;
  }
  result.checks.push_back(std::move(age));
  return result;
}

SampleResult BackupCollector::scan(SnapshotBuilder& out, const std::stop_token& stop,
                                   std::optional<double>& newestTime) {
  const Labels labels = {{"backup", target_.name}};
  out.gauge("apphealth_threshold_backup_max_age_seconds", "Configured age above which the newest backup is too old.",
            labels, toSeconds(target_.max_age));

  std::vector<BackupFile> files;
  std::error_code ec;
  fs::directory_iterator it(target_.directory, ec);
  if (ec) {
    // No directory means no backup: say so, so the "no backup" alert fires as well.
    out.gauge("apphealth_backup_files", "Backup files matching the glob." + helpSuffix_, labels, 0);
    return SampleResult::failure("cannot read directory " + target_.directory + ": " + ec.message());
  }
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const auto name = it->path().filename().string();
    if (endsWith(name, kSidecarSuffix) || fnmatch(target_.glob.c_str(), name.c_str(), FNM_PERIOD) != 0) continue;
    std::error_code fileEc;
    if (!it->is_regular_file(fileEc)) continue;
    BackupFile file;
    file.path = it->path().string();
    file.name = name;
    file.size = it->file_size(fileEc);
    file.mtime = toUnixSeconds(it->last_write_time(fileEc));
    if (fileEc) continue;  // deleted while we looked
    file.time = file.mtime;
    if (!target_.name_time_format.empty()) {
      auto parsed = timeFromName(name, target_.name_time_format);
      if (!parsed) {
        spdlog::debug("backup {}: {} does not match name_time_format, ignored", target_.name, name);
        continue;
      }
      file.time = *parsed;
    }
    files.push_back(std::move(file));
  }
  if (ec) return SampleResult::failure("error listing " + target_.directory + ": " + ec.message());

  out.gauge("apphealth_backup_files", "Backup files matching the glob." + helpSuffix_, labels,
            static_cast<double>(files.size()));
  if (files.empty()) return SampleResult::success();  // the directory is readable; "no backup" is for the alert to say

  std::sort(files.begin(), files.end(), [](const BackupFile& a, const BackupFile& b) {
    return a.time != b.time ? a.time > b.time : a.name > b.name;
  });
  const auto& newest = files.front();
  newestTime = newest.time;
  out.gauge("apphealth_backup_last_timestamp_seconds", "Time of the newest backup (Unix seconds)." + helpSuffix_, labels,
            newest.time);
  out.gauge("apphealth_backup_last_size_bytes", "Size of the newest backup." + helpSuffix_, labels,
            static_cast<double>(newest.size));
  if (files.size() > 1) {
    out.gauge("apphealth_backup_previous_size_bytes", "Size of the backup before the newest one." + helpSuffix_, labels,
              static_cast<double>(files[1].size));
  }
  if (target_.verify_checksum) {
    const auto verified = verify(newest, stop);
    if (!verified) return SampleResult::failure("stopped");  // this snapshot is never published
    out.gauge("apphealth_backup_verified",
              "Whether the newest backup matches its .sha256 file (1) or not, or has none (0)." + helpSuffix_, labels,
              *verified ? 1 : 0);
  }
  return SampleResult::success();
}

}  // namespace apphealth
