#pragma once
// Appends client error reports, sanitized, to a JSON Lines file with size-based rotation
// (FILE -> FILE.1 -> ... -> FILE.N). Sanitizing: no IP address is ever written, and every
// free-text field (message, component) has e-mail addresses and long digit runs (card, phone,
// account numbers) masked and is cut, on a UTF-8 character boundary, to a byte budget.
//
// Only whole lines are ever left in the file: a write that fails part-way (a full disk) is
// rolled back with ftruncate, and a torn last line left by a crash is cut off when the file is
// opened. A report that cannot be written is counted (failures()) and warned about at most
// once a minute. Rotation only renames files, so it works on a full disk too.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include "ingest/BeaconParser.h"
#include "ingest/Sanitize.h"

namespace apphealth::ingest {

class ErrorReportLog {
 public:
  ErrorReportLog(std::string path, std::size_t maxBytes, int keep);
  ~ErrorReportLog();
  ErrorReportLog(const ErrorReportLog&) = delete;
  ErrorReportLog& operator=(const ErrorReportLog&) = delete;

  // Returns false when the report could not be written (it is then counted and warned about).
  bool append(const ClientErrorReport& report, const std::string& route);
  std::uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }

 private:
  bool openLocked();
  void closeLocked();
  void rotateLocked();
  bool writeLocked(const std::string& line, int& error);
  void failedLocked(int error);

  const std::string path_;
  const std::size_t maxBytes_;
  const int keep_;
  std::mutex mutex_;
  int fd_ = -1;
  std::size_t size_ = 0;  // of the open file: always at a line boundary
  std::atomic<std::uint64_t> failures_{0};
  std::uint64_t unreported_ = 0;  // failures since the last warning
  std::chrono::steady_clock::time_point lastWarning_{};
  bool failing_ = false;
};

}  // namespace apphealth::ingest
