#include "collectors/access_log/AccessLogTailer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace apphealth {

namespace {
// Bytes before the read position remembered to notice a file truncated and rewritten past
// that position between two polls. Access-log lines can be nearly identical (same client,
// path and second), so a few dozen lines' worth, not just the last one: one 4 KiB pread per
// poll.
constexpr std::size_t kFingerprintBytes = 4096;
constexpr std::size_t kMaxRetired = 8;  // a rotation storm must not pile up descriptors
// One complete line to the handler, without a CRLF's CR; empty lines are skipped.
void deliver(std::string_view line, const AccessLogTailer::LineHandler& onLine) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (!line.empty()) onLine(line);
}

}  // namespace

struct AccessLogTailer::File {
  int fd = -1;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t offset = 0;
  std::string pending;     // an incomplete last line
  bool discarding = false;  // inside an oversized line: skip to its newline
  char fingerprint[kFingerprintBytes] = {};
  std::size_t fingerprintSize = 0;
  std::chrono::steady_clock::time_point lastGrowth = std::chrono::steady_clock::now();
  ~File() {
    if (fd >= 0) ::close(fd);
  }
};

AccessLogTailer::AccessLogTailer(Options options) : options_(std::move(options)), buffer_(options_.chunk_bytes) {}

AccessLogTailer::~AccessLogTailer() = default;

std::unique_ptr<AccessLogTailer::File> AccessLogTailer::open(bool atEnd, std::string& error, bool& missing) {
  missing = false;
  const int fd = ::open(options_.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) {
      missing = true;
    } else {
      error = "cannot open " + options_.path + ": " + std::strerror(errno);
    }
    return nullptr;
  }
  auto file = std::make_unique<File>();
  file->fd = fd;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    error = options_.path + " is not a regular file";
    return nullptr;
  }
  file->dev = st.st_dev;
  file->ino = st.st_ino;
  if (atEnd && st.st_size > 0) {
    // Start after the last complete line: a line being written right now counts.
    off_t pos = st.st_size;
    char block[4096];
    bool found = false;
    while (pos > 0 && !found && st.st_size - pos < off_t(1 << 20)) {
      const auto n = static_cast<std::size_t>(std::min<off_t>(pos, sizeof block));
      const ssize_t got = ::pread(fd, block, n, pos - static_cast<off_t>(n));
      if (got != static_cast<ssize_t>(n)) break;
      for (std::size_t i = n; i-- > 0;) {
        if (block[i] == '\n') {
          pos = pos - static_cast<off_t>(n) + static_cast<off_t>(i) + 1;
          found = true;
          break;
        }
      }
      if (!found) pos -= static_cast<off_t>(n);
    }
    file->offset = found ? pos : st.st_size;
    const auto fp = static_cast<std::size_t>(std::min<off_t>(file->offset, kFingerprintBytes));
    if (::pread(fd, file->fingerprint, fp, file->offset - static_cast<off_t>(fp)) == static_cast<ssize_t>(fp)) {
      file->fingerprintSize = fp;
    }
  }
  return file;
}

bool AccessLogTailer::checkTruncated(File& file) {
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) return false;
  bool truncated = st.st_size < file.offset;
  if (!truncated && file.fingerprintSize > 0) {
    char now[kFingerprintBytes];
    const auto n = file.fingerprintSize;
    const ssize_t got = ::pread(file.fd, now, n, file.offset - static_cast<off_t>(n));
    truncated = got != static_cast<ssize_t>(n) || std::memcmp(now, file.fingerprint, n) != 0;
  }
  if (!truncated) return false;
  ++truncations_;
  file.offset = 0;
  file.pending.clear();
  file.discarding = false;
  file.fingerprintSize = 0;
  return true;
}

void AccessLogTailer::emit(File& file, const char* data, std::size_t size, const LineHandler& onLine) {
  const char* p = data;
  const char* end = data + size;
  while (p < end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    if (nl == nullptr) {
      // Incomplete: keep it for the next read, unless it is absurdly long.
      if (!file.discarding) {
        file.pending.append(p, static_cast<std::size_t>(end - p));
        if (file.pending.size() > options_.max_line_bytes) {
          file.pending.clear();
          file.discarding = true;
          ++oversized_;
        }
      }
      return;
    }
    if (file.discarding) {
      file.discarding = false;
    } else if (!file.pending.empty()) {
      file.pending.append(p, static_cast<std::size_t>(nl - p));
      if (file.pending.size() > options_.max_line_bytes) {
        ++oversized_;
      } else {
        deliver(file.pending, onLine);
      }
      file.pending.clear();
    } else if (static_cast<std::size_t>(nl - p) > options_.max_line_bytes) {
      ++oversized_;
    } else {
      deliver(std::string_view(p, static_cast<std::size_t>(nl - p)), onLine);
    }
    p = nl + 1;
  }
}

AccessLogTailer::Drain AccessLogTailer::drain(File& file, std::size_t& budget, const LineHandler& onLine,
                                              std::string& error, const std::stop_token& stop) {
  checkTruncated(file);
  while (budget > 0) {
    if (stop.stop_requested()) return Drain::Budget;
    const std::size_t want = std::min(budget, buffer_.size());
    const ssize_t got = ::pread(file.fd, buffer_.data(), want, file.offset);
    if (got < 0) {
      if (errno == EINTR) continue;
      error = "cannot read " + options_.path + ": " + std::strerror(errno);
      return Drain::Error;
    }
    if (got == 0) return Drain::Eof;
    const auto n = static_cast<std::size_t>(got);
    file.offset += got;
    budget -= n;
    bytesRead_ += n;
    file.lastGrowth = std::chrono::steady_clock::now();
    // Fingerprint: the last bytes before the new offset (from this read and the previous one).
    if (n >= kFingerprintBytes) {
      std::memcpy(file.fingerprint, buffer_.data() + n - kFingerprintBytes, kFingerprintBytes);
      file.fingerprintSize = kFingerprintBytes;
    } else {
      const std::size_t keep = std::min(file.fingerprintSize, kFingerprintBytes - n);
      std::memmove(file.fingerprint, file.fingerprint + file.fingerprintSize - keep, keep);
      std::memcpy(file.fingerprint + keep, buffer_.data(), n);
      file.fingerprintSize = keep + n;
    }
    emit(file, buffer_.data(), n, onLine);
    if (n < want) return Drain::Eof;
  }
  return Drain::Budget;
}

AccessLogTailer::Status AccessLogTailer::poll(std::size_t budget, const LineHandler& onLine, std::string& error,
                                              const std::stop_token& stop) {
  error.clear();
  const auto now = std::chrono::steady_clock::now();

  // Rotated-away files first: their lines are the older ones.
  for (auto it = retired_.begin(); it != retired_.end();) {
    auto& file = **it;
    const auto result = drain(file, budget, onLine, error, stop);
    if (result == Drain::Error) return Status::Error;
    const bool quiet = now - file.lastGrowth >= options_.rotate_wait;
    if (result == Drain::Eof && (quiet || retired_.size() > kMaxRetired)) {
      // It will not grow again: a final line without a newline is a line after all.
      if (!file.pending.empty() && !file.discarding) deliver(file.pending, onLine);
      it = retired_.erase(it);
    } else {
      ++it;
    }
  }
  if (budget == 0) return Status::Ok;

  if (!current_) {
    bool missing = false;
    const bool atEnd = firstOpen_ && !options_.start_at_beginning;
    current_ = open(atEnd, error, missing);
    if (!current_) {
      // Only an existing file at the very first attempt is skipped to its end: a file that
      // shows up later is new, all of it.
      if (missing) firstOpen_ = false;
      if (missing) return retired_.empty() ? Status::Missing : Status::Ok;
      return Status::Error;
    }
    firstOpen_ = false;
  }

  // At most a couple of switches per poll; a path that keeps changing waits for the next.
  for (int hop = 0; hop < 4; ++hop) {
    const auto result = drain(*current_, budget, onLine, error, stop);
    if (result == Drain::Error) return Status::Error;
    if (result == Drain::Budget) return Status::Ok;
    // At the end of the file we follow: is the path still this file?
    struct stat st {};
    if (::stat(options_.path.c_str(), &st) != 0) return Status::Ok;  // moved away, no new one yet
    if (st.st_dev == current_->dev && st.st_ino == current_->ino) return Status::Ok;
    bool missing = false;
    auto next = open(false, error, missing);
    if (!next) return missing ? Status::Ok : Status::Error;
    ++rotations_;
    current_->lastGrowth = now;  // the rotate_wait grace starts now
    retired_.push_back(std::move(current_));
    current_ = std::move(next);
  }
  return Status::Ok;
}

}  // namespace apphealth
