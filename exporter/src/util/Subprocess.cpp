#include "util/Subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace apphealth {

std::string SubprocessResult::describe() const {
  std::string what;
  if (!started) return output;
  if (timedOut) what = "timed out";
  else if (stopped) what = "stopped";
  else if (signal != 0) what = "killed by signal " + std::to_string(signal);
  else what = "exit status " + std::to_string(exitCode);
  // The last non-empty line is where tools put the reason.
  std::string text = output;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (auto nl = text.rfind('\n'); nl != std::string::npos) text = text.substr(nl + 1);
  if (text.size() > 300) text = text.substr(0, 300) + "...";
  return text.empty() ? what : what + ": " + text;
}

SubprocessResult runSubprocess(const std::vector<std::string>& argv, std::chrono::steady_clock::time_point deadline,
                               const std::stop_token& stop, std::size_t maxOutput) {
  SubprocessResult result;
  if (argv.empty()) {
    result.output = "no program given";
    return result;
  }
  // Everything the child needs is prepared before fork(): after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    result.output = std::string("pipe: ") + std::strerror(errno);
    return result;
  }
  // A pipe to report exec failure (closed on a successful exec).
  int err[2];
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    result.output = std::string("pipe: ") + std::strerror(errno);
    return result;
  }
  const pid_t pid = fork();
  if (pid < 0) {
    result.output = std::string("fork: ") + std::strerror(errno);
    for (int fd : {out[0], out[1], err[0], err[1]}) close(fd);
    return result;
  }
  if (pid == 0) {
    setpgid(0, 0);
    setpriority(PRIO_PROCESS, 0, 10);  // checks must not take CPU from the application
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    execvp(args[0], args.data());
    const int e = errno;
    (void)!write(err[1], &e, sizeof e);
    _exit(127);
  }
  setpgid(pid, pid);  // also from the parent: no window in which a kill misses the group
  close(out[1]);
  close(err[1]);
  int execErrno = 0;
  if (read(err[0], &execErrno, sizeof execErrno) == static_cast<ssize_t>(sizeof execErrno)) {
    close(err[0]);
    close(out[0]);
    waitpid(pid, nullptr, 0);
    result.output = "cannot run " + argv[0] + ": " + std::strerror(execErrno);
    return result;
  }
  close(err[0]);
  result.started = true;

  char buffer[8192];
  bool open = true;
  while (open) {
    if (stop.stop_requested()) result.stopped = true;
    if (std::chrono::steady_clock::now() >= deadline) result.timedOut = true;
    if (result.stopped || result.timedOut) break;
    pollfd p{out[0], POLLIN, 0};
    const int ready = poll(&p, 1, 200);  // short, so a stop request is seen quickly
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    const ssize_t n = read(out[0], buffer, sizeof buffer);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      open = false;
      break;
    }
    result.output.append(buffer, static_cast<std::size_t>(n));
    if (result.output.size() > 2 * maxOutput) result.output.erase(0, result.output.size() - maxOutput);
  }
  close(out[0]);
  int status = 0;
  // Output closed: the child should be exiting; it still gets no more time than the deadline.
  while (!result.stopped && !result.timedOut) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) break;
    if (stop.stop_requested()) result.stopped = true;
    else if (std::chrono::steady_clock::now() >= deadline) result.timedOut = true;
    else usleep(20000);
  }
  if (result.stopped || result.timedOut) {
    kill(-pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (result.output.size() > maxOutput) result.output.erase(0, result.output.size() - maxOutput);
  if (WIFEXITED(status)) result.exitCode = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

}  // namespace apphealth
