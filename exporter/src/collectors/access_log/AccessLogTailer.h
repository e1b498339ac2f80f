#pragma once
// Follows one log file the way `tail -F` does, without ever counting a line twice or losing
// one the file still holds:
//
// - Starts at the end of the file (after its last complete line) or at its beginning; a file
//   missing at start is read from its beginning once it appears.
// - Rename-and-create rotation (logrotate's default, `mv` + SIGUSR1): when the path names a
//   new file, the old one stays open and is read to its end; it is kept and drained for a
//   while, because web-server workers reopen their logs one by one and go on appending to the
//   old file meanwhile. It is closed after `rotate_wait` without growth.
// - copytruncate: a file shorter than the read position, or whose bytes just before the read
//   position changed (truncated and already written past that point again), is read again
//   from 0. (Lines appended between our last read and the truncation are gone with the old
//   content: copytruncate's own window, as logrotate's documentation says.)
// - A partial last line is buffered until its newline arrives; a line longer than
//   max_line_bytes is dropped and counted as oversized.
// Reads are bounded per poll, so one huge backlog is worked off over several samples.

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace apphealth {

class AccessLogTailer {
 public:
  struct Options {
    std::string path;
    bool start_at_beginning = false;
    std::size_t chunk_bytes = 1 << 20;
    std::size_t max_line_bytes = 64 * 1024;
    std::chrono::milliseconds rotate_wait{5000};
  };
  enum class Status { Ok, Missing, Error };
  using LineHandler = std::function<void(std::string_view line)>;

  explicit AccessLogTailer(Options options);
  ~AccessLogTailer();
  AccessLogTailer(const AccessLogTailer&) = delete;
  AccessLogTailer& operator=(const AccessLogTailer&) = delete;

  // Reads up to `budget` new bytes and calls `onLine` for each complete, non-empty line (no
  // newline, no trailing '\r'). Missing: the path does not exist and no file is open (not an
  // error). Error: `error` says why (permission denied, read failure).
  Status poll(std::size_t budget, const LineHandler& onLine, std::string& error,
              const std::stop_token& stop = {});

  // Counters for logs, metrics and tests.
  std::uint64_t rotations() const { return rotations_; }
  std::uint64_t truncations() const { return truncations_; }
  std::uint64_t oversizedLines() const { return oversized_; }
  std::uint64_t bytesRead() const { return bytesRead_; }
  bool following() const { return current_ != nullptr; }
  std::size_t openFiles() const { return (current_ ? 1 : 0) + retired_.size(); }

 private:
  struct File;
  enum class Drain { Eof, Budget, Error };
  Drain drain(File& file, std::size_t& budget, const LineHandler& onLine, std::string& error,
              const std::stop_token& stop);
  bool checkTruncated(File& file);
  void emit(File& file, const char* data, std::size_t size, const LineHandler& onLine);
  std::unique_ptr<File> open(bool atEnd, std::string& error, bool& missing);

  Options options_;
  std::unique_ptr<File> current_;
  std::vector<std::unique_ptr<File>> retired_;  // rotated away, still drained
  std::vector<char> buffer_;
  bool firstOpen_ = true;  // the first attempt decides whether start_at applies
  std::uint64_t rotations_ = 0, truncations_ = 0, oversized_ = 0, bytesRead_ = 0;
};

}  // namespace apphealth
