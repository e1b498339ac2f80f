#pragma once
// Watches one backup directory: the newest backup's time and size, how many there are, and
// (optionally) whether the newest one matches its sha256sum sidecar. Each backup is hashed
// once: the result is cached by path, size and mtime.

#include <map>
#include <optional>
#include <string>
#include <tuple>

#include "collectors/Sampler.h"
#include "config/Config.h"

namespace apphealth {

struct BackupFile {
  std::string path;
  std::string name;
  double time = 0;  // Unix seconds: mtime, or parsed from the name
  double mtime = 0;
  std::uint64_t size = 0;
};

class BackupCollector : public Sampler {
 public:
  explicit BackupCollector(BackupTarget target);
  SampleResult sample(SnapshotBuilder& out, std::stop_token stop) override;

  // Parses the backup time from a file name with a strptime format (UTC); nullopt if the
  // name does not match. Public for the unit tests.
  static std::optional<double> timeFromName(const std::string& name, const std::string& format);

  // How many times a file was hashed, for the test that proves results are cached.
  std::size_t hashesComputed() const { return hashesComputed_; }

 private:
  // The sample itself; sets `newestTime` to the newest backup's time when there is one.
  SampleResult scan(SnapshotBuilder& out, const std::stop_token& stop, std::optional<double>& newestTime);
  std::optional<bool> verify(const BackupFile& file, const std::stop_token& stop);

  BackupTarget target_;
  std::string helpSuffix_;
  using CacheKey = std::tuple<std::string, std::uint64_t, double>;
  std::map<CacheKey, bool> verified_;
  std::size_t hashesComputed_ = 0;
  std::string missingSidecarWarned_;
};

}  // namespace apphealth
