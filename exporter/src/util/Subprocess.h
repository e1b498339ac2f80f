#pragma once
// Runs a helper program (pg_restore, pg_verifybackup) off the scrape path: no shell, its own
// process group, niced, stdin from /dev/null, stdout and stderr merged and kept only up to a
// cap, killed (the whole group) at the deadline or on a stop request.

#include <chrono>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

namespace apphealth {

struct SubprocessResult {
  bool started = false;   // false: could not be run at all (see output)
  bool timedOut = false;  // killed at the deadline
  bool stopped = false;   // killed on a stop request
  int exitCode = -1;      // exit status when it exited; -1 when killed by a signal
  int signal = 0;
  std::string output;     // stdout+stderr, the last `maxOutput` bytes
  bool ok() const { return started && !timedOut && !stopped && exitCode == 0; }
  std::string describe() const;  // "exit status 1: <last line of output>" and the like
};

SubprocessResult runSubprocess(const std::vector<std::string>& argv, std::chrono::steady_clock::time_point deadline,
                               const std::stop_token& stop, std::size_t maxOutput = 16384);

}  // namespace apphealth
