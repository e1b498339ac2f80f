#pragma once
// "Was this backup changed after it was written?" A file against its FILE.sha256 sidecar; a
// directory against a manifest: pg_basebackup's backup_manifest (checked by pg_verifybackup),
// or a sha256sum-format list as DIR.sha256 beside it or SHA256SUMS inside it.

#include <string>

#include "collectors/backup/BackupCandidate.h"
#include "collectors/backup/Completeness.h"

namespace apphealth {

struct ChecksumOutcome {
  enum class Verdict { Match, Mismatch, NoManifest, Unfinished, Stopped };  // Unfinished: timeout, no tool
  Verdict verdict = Verdict::NoManifest;
  std::string detail;
};

ChecksumOutcome verifyBackupChecksum(const BackupCandidate& backup, const CheckContext& ctx);

}  // namespace apphealth
