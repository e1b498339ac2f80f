#include "collectors/backup/Checksums.h"

#include <sys/stat.h>

#include <cctype>
#include <fstream>

#include "util/Sha256.h"

namespace apphealth {

namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

struct SumLine {
  std::string digest;
  std::string file;
};

// sha256sum lines: "<64 hex>  <name>" (text mode) or "<64 hex> *<name>" (binary mode).
std::optional<SumLine> parseSumLine(const std::string& raw) {
  std::string line = raw;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.size() < 66) {
    // A sidecar may hold the bare digest (echo "$(sha256sum f | cut -c1-64)" > f.sha256).
    if (line.size() != 64) return std::nullopt;
  }
  SumLine out{line.substr(0, 64), line.size() > 66 ? line.substr(66) : ""};
  for (auto& c : out.digest) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (line.size() > 64 && (line[64] != ' ' || (line[65] != ' ' && line[65] != '*'))) return std::nullopt;
  return out;
}

ChecksumOutcome hashAndCompare(const std::string& path, const std::string& expected, const std::string& shown,
                               const CheckContext& ctx) {
  const auto actual = sha256File(path, ctx.stop);
  if (ctx.stop.stop_requested()) return {ChecksumOutcome::Verdict::Stopped, "stopped"};
  if (!actual) return {ChecksumOutcome::Verdict::Mismatch, "cannot read " + shown};
  if (*actual != expected) return {ChecksumOutcome::Verdict::Mismatch, "checksum mismatch for " + shown};
  return {ChecksumOutcome::Verdict::Match, {}};
}

ChecksumOutcome verifyList(const std::string& dir, const std::string& name, const std::string& listPath,
                           const CheckContext& ctx) {
  std::ifstream in(listPath);
  std::string raw;
  int lines = 0;
  while (std::getline(in, raw)) {
    if (raw.empty()) continue;
    auto line = parseSumLine(raw);
    if (!line || line->file.empty() || line->file[0] == '/' || line->file.find("..") != std::string::npos) {
      return {ChecksumOutcome::Verdict::Mismatch, listPath + " line " + std::to_string(lines + 1) + " is not a sha256sum line"};
    }
    std::string rel = line->file;
    if (rel.rfind("./", 0) == 0) rel = rel.substr(2);
    if (rel.rfind(name + "/", 0) == 0) rel = rel.substr(name.size() + 1);  // sha256sum DIR/* from the parent
    if (!exists(dir + "/" + rel)) return {ChecksumOutcome::Verdict::Mismatch, rel + " is listed but missing"};
    auto one = hashAndCompare(dir + "/" + rel, line->digest, rel, ctx);
    if (one.verdict != ChecksumOutcome::Verdict::Match) return one;
    ++lines;
    if (std::chrono::steady_clock::now() > ctx.deadline) {
      return {ChecksumOutcome::Verdict::Unfinished, "check_timeout reached before the end"};
    }
  }
  if (lines == 0) return {ChecksumOutcome::Verdict::Mismatch, listPath + " lists no files"};
  return {ChecksumOutcome::Verdict::Match, std::to_string(lines) + " files match " + listPath};
}

}  // namespace

ChecksumOutcome verifyBackupChecksum(const BackupCandidate& backup, const CheckContext& ctx) {
  const std::string sidecar = backup.path + ".sha256";
  if (!backup.directory) {
    std::ifstream in(sidecar);
    std::string first;
    if (!in || !std::getline(in, first)) return {ChecksumOutcome::Verdict::NoManifest, "no readable " + backup.name + ".sha256"};
    auto line = parseSumLine(first);
    if (!line) return {ChecksumOutcome::Verdict::Mismatch, backup.name + ".sha256 is not in sha256sum format"};
    return hashAndCompare(backup.path, line->digest, backup.name, ctx);
  }
  if (exists(backup.path + "/backup_manifest")) {
    auto outcome = verifyBaseBackup(backup.path, ctx);
    switch (outcome.verdict) {
      case CheckOutcome::Verdict::Complete: return {ChecksumOutcome::Verdict::Match, outcome.detail};
      case CheckOutcome::Verdict::Stopped: return {ChecksumOutcome::Verdict::Stopped, outcome.detail};
      case CheckOutcome::Verdict::Incomplete: return {ChecksumOutcome::Verdict::Mismatch, outcome.detail};
      case CheckOutcome::Verdict::Unknown: return {ChecksumOutcome::Verdict::Unfinished, outcome.detail};
    }
  }
  if (exists(sidecar)) return verifyList(backup.path, backup.name, sidecar, ctx);
  if (exists(backup.path + "/SHA256SUMS")) return verifyList(backup.path, backup.name, backup.path + "/SHA256SUMS", ctx);
  return {ChecksumOutcome::Verdict::NoManifest, "no backup_manifest, " + backup.name + ".sha256 or SHA256SUMS"};
}

}  // namespace apphealth
