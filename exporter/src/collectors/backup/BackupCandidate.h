#pragma once
// One backup as the collector sees it, wherever it lives: a file, a directory (pg_dump -Fd,
// pg_basebackup, mongodump) or a group of objects in S3 under one name.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace apphealth {

using SteadyDeadline = std::chrono::steady_clock::time_point;

struct BackupCandidate {
  std::string name;  // file or directory name (S3: first key segment after the prefix)
  std::string path;  // local path; empty for S3
  bool directory = false;
  double time = 0;   // Unix seconds: from the name (name_time_format) or the newest mtime
  double mtime = 0;  // newest modification of the file, or of anything inside the directory
  std::uint64_t size = 0;  // bytes: the file, or the sum of the regular files inside
  std::uint64_t files = 1;  // regular files it consists of
};

// What one listing found.
struct BackupListing {
  std::vector<BackupCandidate> backups;
  std::string problem;       // non-empty: the listing failed (the collector is down)
  bool locationMissing = false;  // the directory or bucket does not exist: no backups at all
};

}  // namespace apphealth
