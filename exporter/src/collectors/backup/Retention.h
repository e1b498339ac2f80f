#pragma once
// What the kept set of backups satisfies of a retention policy: how many distinct days, ISO
// weeks and months hold a backup (the "7 daily, 4 weekly, 12 monthly" of a GFS rotation).

#include <vector>

#include "collectors/backup/BackupCandidate.h"

namespace apphealth {

struct RetentionSummary {
  int days = 0;    // distinct UTC days with at least one backup
  int weeks = 0;   // distinct ISO weeks (UTC)
  int months = 0;  // distinct UTC months
  double oldest = 0;  // Unix seconds of the oldest backup (0: none)
};

RetentionSummary summarizeRetention(const std::vector<BackupCandidate>& backups);

}  // namespace apphealth
