#pragma once
// Appends client error reports, sanitized, to a JSON Lines file with size-based rotation
// (FILE -> FILE.1 -> ... -> FILE.N). Sanitizing: no IP address is ever written, the message
// is cut to 1 KiB, and e-mail addresses and long digit runs (card, phone, account numbers)
// are masked.

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "ingest/BeaconParser.h"

namespace apphealth::ingest {

std::string sanitizeMessage(const std::string& message);

class ErrorReportLog {
 public:
  ErrorReportLog(std::string path, std::size_t maxBytes, int keep);
  // Returns false (and the caller counts it) when the file cannot be written.
  bool append(const ClientErrorReport& report, const std::string& route);

 private:
  bool openLocked();
  void rotateLocked();

  const std::string path_;
  const std::size_t maxBytes_;
  const int keep_;
  std::mutex mutex_;
  std::unique_ptr<FILE, int (*)(FILE*)> file_{nullptr, &std::fclose};
  std::size_t size_ = 0;
};

}  // namespace apphealth::ingest
