#pragma once
// Watches one backup location (a local directory, or an off-site copy in S3-compatible
// storage): the newest finished backup's time and size, the one before it, how many there are
// and the oldest, whether the newest is still being written, and (local, opt-in) whether the
// newest finished one matches its checksums and is complete. Checks run here, on the
// collector's thread, once per backup (cached by path, size and mtime): never on a scrape.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>

#include "clients/S3Client.h"
#include "collectors/Sampler.h"
#include "collectors/backup/BackupCandidate.h"
#include "collectors/backup/Checksums.h"
#include "collectors/backup/Completeness.h"
#include "config/Config.h"

namespace apphealth {

class BackupCollector : public Sampler {
 public:
  explicit BackupCollector(BackupTarget target);
  SampleResult sample(SnapshotBuilder& out, std::stop_token stop) override;

  // Parses the backup time from a file name with a strptime format (UTC); nullopt if the
  // name does not match. Public for the unit tests.
  static std::optional<double> timeFromName(const std::string& name, const std::string& format);

  // How many times a backup was hashed / checked, for the tests that prove results are cached.
  std::size_t hashesComputed() const { return hashesComputed_; }
  std::size_t completenessChecks() const { return completenessChecks_; }

 private:
  // The sample itself; sets `newestTime` to the newest finished backup's time when there is one
  // and `writing` when the newest backup is still being written.
  SampleResult scan(SnapshotBuilder& out, const std::stop_token& stop, std::optional<double>& newestTime, bool& writing);
  BackupListing list(SteadyDeadline deadline, const std::stop_token& stop);
  // Both return nullopt when no value is to be published (pending, not checkable).
  std::optional<bool> verify(const BackupCandidate& backup, double now, const std::stop_token& stop, bool& stopped);
  std::optional<bool> complete(const BackupCandidate& backup, const std::stop_token& stop, bool& stopped);
  void offsite(SnapshotBuilder& out, const BackupListing& remote, double now, const std::stop_token& stop);
  void logOnce(std::string& last, const std::string& message, bool warn);

  BackupTarget target_;
  std::string helpSuffix_;
  using CacheKey = std::tuple<std::string, std::uint64_t, double>;
  std::map<CacheKey, ChecksumOutcome> checksums_;
  std::map<CacheKey, CheckOutcome> completeness_;
  std::size_t hashesComputed_ = 0;
  std::size_t completenessChecks_ = 0;
  std::string checksumLogged_;
  std::string completeLogged_;
};

}  // namespace apphealth
