#pragma once
// Lists the backups in one local directory: every entry whose name matches the glob, files
// and directories alike. A directory backup is walked (bounded by file count, depth and a
// deadline) for its size and its newest modification time.

#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "collectors/backup/BackupCandidate.h"
#include "config/Config.h"

namespace apphealth {

// Unix seconds from a strptime format matched against the start of `name` (UTC); nullopt if
// the name does not match.
std::optional<double> backupTimeFromName(const std::string& name, const std::string& format);

// Whether `name` is a backup of `target` by its glob (sidecars `*.sha256` never are).
bool matchesBackupGlob(const BackupTarget& target, const std::string& name);

BackupListing listLocalBackups(const BackupTarget& target, SteadyDeadline deadline, const std::stop_token& stop);

// Walks one directory backup; fills size, files and mtime. Returns a problem, or "".
std::string walkBackupDirectory(const std::string& path, int maxFiles, int maxDepth, SteadyDeadline deadline,
                                const std::stop_token& stop, BackupCandidate& into);

}  // namespace apphealth
