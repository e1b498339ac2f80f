#pragma once
// "Did this dump finish?" A checksum proves a file was not changed after it was written, not
// that the program writing it got to the end. Each check reads the backup to its end, so it
// runs on the collector's thread, once per backup (the caller caches by path, size, mtime),
// bounded by a deadline and a stop request; helper programs run niced with a timeout.
//
// By shape (detected, see README "Backup shapes"):
//   *.gz / *.zst           the compressed stream is intact to its end (every member/frame)
//   *.sql[.gz|.zst]        ... and ends with pg_dump's "dump complete" trailer
//   custom format (PGDMP)  `pg_restore --file=/dev/null` reads every entry and data block
//   pg_dump -Fd (toc.dat)  the same on the directory
//   pg_basebackup          `pg_verifybackup` against backup_manifest (tar: streams + manifest)
//   mongodump directory    every .bson[.gz] intact and whole BSON documents, with its metadata

#include <functional>
#include <stop_token>
#include <string>

#include "collectors/backup/BackupCandidate.h"

namespace apphealth {

struct CheckOutcome {
  enum class Verdict { Complete, Incomplete, Unknown, Stopped };
  Verdict verdict = Verdict::Unknown;
  std::string detail;  // why incomplete, which shape was checked, or why it cannot be checked
  static CheckOutcome complete(std::string d) { return {Verdict::Complete, std::move(d)}; }
  static CheckOutcome incomplete(std::string d) { return {Verdict::Incomplete, std::move(d)}; }
  static CheckOutcome unknown(std::string d) { return {Verdict::Unknown, std::move(d)}; }
  static CheckOutcome stopped() { return {Verdict::Stopped, "stopped"}; }
};

struct CheckContext {
  SteadyDeadline deadline;
  std::stop_token stop;
};

CheckOutcome checkBackupComplete(const BackupCandidate& backup, const CheckContext& ctx);

// Building blocks, public for the unit tests.
enum class Compression { None, Gzip, Zstd };
Compression compressionOf(const std::string& name);
// Streams the (decompressed) content of `path` into `sink`; returns a problem, or "" when the
// stream was intact to its end. `sink` returns false to stop early with its own problem set.
std::string readDecompressed(const std::string& path, Compression compression, const CheckContext& ctx,
                             const std::function<bool(const char*, std::size_t)>& sink);
// Whether the last bytes of a plain pg_dump / pg_dumpall script carry its completion trailer.
bool hasPgDumpTrailer(const std::string& tail);

// Runs pg_verifybackup on a pg_basebackup directory with a backup_manifest (checksums, sizes,
// and the WAL it needs). Shared by the completeness and the checksum check.
CheckOutcome verifyBaseBackup(const std::string& directory, const CheckContext& ctx);

}  // namespace apphealth
