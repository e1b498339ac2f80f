#include "ingest/ErrorReportLog.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "util/JsonEscape.h"

namespace apphealth::ingest {

namespace {

constexpr auto kWarningInterval = std::chrono::minutes(1);

void appendJsonString(std::string& out, std::string_view value) {
  out += '"';
  appendJsonEscaped(out, value);
  out += '"';
}

}  // namespace

ErrorReportLog::ErrorReportLog(std::string path, std::size_t maxBytes, int keep)
    : path_(std::move(path)), maxBytes_(maxBytes), keep_(keep) {}

ErrorReportLog::~ErrorReportLog() { closeLocked(); }

void ErrorReportLog::closeLocked() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

// Opens for appending and cuts off a torn last line (a crash in the middle of a write) so the
// next line does not get glued to it.
bool ErrorReportLog::openLocked() {
  if (fd_ >= 0) return true;
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) return false;
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    closeLocked();
    return false;
  }
  off_t end = st.st_size;
  if (end > 0) {
    const int reader = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    char buffer[4096];
    while (reader >= 0 && end > 0) {
      const off_t from = end > static_cast<off_t>(sizeof buffer) ? end - static_cast<off_t>(sizeof buffer) : 0;
      const ssize_t n = ::pread(reader, buffer, static_cast<std::size_t>(end - from), from);
      if (n != end - from) break;
      const void* newline = memrchr(buffer, '\n', static_cast<std::size_t>(n));
      if (newline != nullptr) {
        end = from + (static_cast<const char*>(newline) - buffer) + 1;
        break;
      }
      end = from;
    }
    if (reader >= 0) ::close(reader);
    if (end != st.st_size && ::ftruncate(fd_, end) == 0) {
      spdlog::warn("ingest: cut a torn last line ({} bytes) off the error log {}", st.st_size - end, path_);
    } else {
      end = st.st_size;
    }
  }
  size_ = static_cast<std::size_t>(end);
  return true;
}

void ErrorReportLog::rotateLocked() {
  closeLocked();
  for (int i = keep_ - 1; i >= 1; --i) {
    std::rename((path_ + "." + std::to_string(i)).c_str(), (path_ + "." + std::to_string(i + 1)).c_str());
  }
  std::rename(path_.c_str(), (path_ + ".1").c_str());
  size_ = 0;
}

// One line, whole or not at all.
bool ErrorReportLog::writeLocked(const std::string& line, int& error) {
  std::size_t written = 0;
  while (written < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + written, line.size() - written);
    if (n > 0) {
      written += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    error = n < 0 ? errno : EIO;
    if (written > 0 && ::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
      // Could not roll back: reopen later, which cuts the torn line off then.
      closeLocked();
    }
    return false;
  }
  size_ += line.size();
  return true;
}

void ErrorReportLog::failedLocked(int error) {
  failures_.fetch_add(1, std::memory_order_relaxed);
  ++unreported_;
  const auto now = std::chrono::steady_clock::now();
  if (failing_ && now - lastWarning_ < kWarningInterval) return;
  spdlog::warn("ingest: cannot write the error log {}: {}; {} client error report(s) lost since the last warning "
               "(counted in apphealth_ingest_error_log_write_failures_total; next warning in a minute at the earliest)",
               path_, std::strerror(error), unreported_);
  unreported_ = 0;
  lastWarning_ = now;
  failing_ = true;
}

bool ErrorReportLog::append(const ClientErrorReport& report, const std::string& route) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char timestamp[32];
  std::strftime(timestamp, sizeof timestamp, "%Y-%m-%dT%H:%M:%SZ", &tm);

  std::string line = "{\"ts\":\"";
  line += timestamp;
  line += "\",\"level\":";
  appendJsonString(line, report.level);
  line += ",\"severity\":";
  appendJsonString(line, report.severity);
  line += ",\"route\":";
  appendJsonString(line, route);
  line += ",\"component\":";
  appendJsonString(line, sanitizeText(report.component, kMaxLoggedComponent));
  line += ",\"message\":";
  appendJsonString(line, sanitizeMessage(report.message));
  line += "}\n";

  std::lock_guard lock(mutex_);
  if (size_ + line.size() > maxBytes_ && size_ > 0) rotateLocked();
  int error = 0;
  if (!openLocked()) {
    failedLocked(errno);
    return false;
  }
  if (!writeLocked(line, error)) {
    failedLocked(error);
    return false;
  }
  if (failing_) {
    spdlog::info("ingest: writing the error log {} again; {} report(s) lost in all so far", path_, failures());
    failing_ = false;
    unreported_ = 0;
  }
  return true;
}

}  // namespace apphealth::ingest
