#include "collectors/backup/LocalListing.h"

#include <dirent.h>
#include <fnmatch.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>

namespace apphealth {

namespace {

constexpr const char* kSidecarSuffix = ".sha256";

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

double mtimeOf(const struct stat& st) {
  return static_cast<double>(st.st_mtim.tv_sec) + static_cast<double>(st.st_mtim.tv_nsec) / 1e9;
}

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

}  // namespace

std::optional<double> backupTimeFromName(const std::string& name, const std::string& format) {
  std::tm tm{};
  const char* rest = strptime(name.c_str(), format.c_str(), &tm);
  if (rest == nullptr) return std::nullopt;
  return static_cast<double>(timegm(&tm));
}

bool matchesBackupGlob(const BackupTarget& target, const std::string& name) {
  return !endsWith(name, kSidecarSuffix) && fnmatch(target.glob.c_str(), name.c_str(), FNM_PERIOD) == 0;
}

// Depth-first, with an explicit stack: no recursion a hostile tree could exhaust. Symlinks are
// not followed (lstat), so a link loop or a link out of the backup cannot be walked.
std::string walkBackupDirectory(const std::string& root, int maxFiles, int maxDepth, SteadyDeadline deadline,
                                const std::stop_token& stop, BackupCandidate& into) {
  struct Pending {
    std::string path;
    int depth;
  };
  std::vector<Pending> stack{{root, 1}};
  into.size = 0;
  into.files = 0;
  struct stat rootStat {};
  if (lstat(root.c_str(), &rootStat) != 0) return "cannot stat " + root + ": " + std::strerror(errno);
  into.mtime = mtimeOf(rootStat);
  std::uint64_t entries = 0;
  while (!stack.empty()) {
    Pending dir = std::move(stack.back());
    stack.pop_back();
    DirPtr handle(opendir(dir.path.c_str()));
    if (!handle) return "cannot read " + dir.path + ": " + std::strerror(errno);
    while (dirent* entry = readdir(handle.get())) {
      const char* name = entry->d_name;
      if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
      if ((++entries & 255) == 0) {
        if (stop.stop_requested()) return "stopped";
        if (std::chrono::steady_clock::now() > deadline) return "walking " + root + " took longer than the timeout";
      }
      const std::string path = dir.path + "/" + name;
      struct stat st {};
      if (lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) continue;  // removed while we looked
        return "cannot stat " + path + ": " + std::strerror(errno);
      }
      into.mtime = std::max(into.mtime, mtimeOf(st));
      if (S_ISDIR(st.st_mode)) {
        if (dir.depth >= maxDepth) {
          return root + " is deeper than max_depth (" + std::to_string(maxDepth) + ")";
        }
        stack.push_back({path, dir.depth + 1});
      } else if (S_ISREG(st.st_mode)) {
        if (++into.files > static_cast<std::uint64_t>(maxFiles)) {
          return root + " holds more than max_files (" + std::to_string(maxFiles) + ") files";
        }
        into.size += static_cast<std::uint64_t>(st.st_size);
      }
    }
  }
  return {};
}

BackupListing listLocalBackups(const BackupTarget& target, SteadyDeadline deadline, const std::stop_token& stop) {
  BackupListing out;
  DirPtr handle(opendir(target.directory.c_str()));
  if (!handle) {
    out.problem = "cannot read directory " + target.directory + ": " + std::strerror(errno);
    out.locationMissing = true;  // unmounted or deleted: as good as no backup
    return out;
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* entry = readdir(handle.get())) {
    std::string name = entry->d_name;
    if (name == "." || name == ".." || !matchesBackupGlob(target, name)) continue;
    names.push_back(std::move(name));
    if (names.size() > static_cast<std::size_t>(target.max_files)) {
      out.problem = target.directory + " holds more than max_files (" + std::to_string(target.max_files) +
                    ") entries matching the glob";
      return out;
    }
  }
  if (errno != 0) {
    out.problem = "error listing " + target.directory + ": " + std::strerror(errno);
    return out;
  }
  for (const auto& name : names) {
    if (stop.stop_requested()) {
      out.problem = "stopped";
      return out;
    }
    BackupCandidate c;
    c.name = name;
    c.path = target.directory + "/" + name;
    struct stat st {};
    if (stat(c.path.c_str(), &st) != 0) continue;  // deleted while we looked, or a dangling link
    if (S_ISREG(st.st_mode)) {
      c.size = static_cast<std::uint64_t>(st.st_size);
      c.mtime = mtimeOf(st);
    } else if (S_ISDIR(st.st_mode)) {
      c.directory = true;
      if (auto problem = walkBackupDirectory(c.path, target.max_files, target.max_depth, deadline, stop, c);
          !problem.empty()) {
        out.problem = problem;
        return out;
      }
    } else {
      continue;  // sockets, fifos, devices are no backups
    }
    c.time = c.mtime;
    if (!target.name_time_format.empty()) {
      auto parsed = backupTimeFromName(name, target.name_time_format);
      if (!parsed) {
        spdlog::debug("backup {}: {} does not match name_time_format, ignored", target.name, name);
        continue;
      }
      c.time = *parsed;
    }
    out.backups.push_back(std::move(c));
  }
  return out;
}

}  // namespace apphealth
