#include "collectors/backup/Completeness.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "util/Subprocess.h"

namespace apphealth {

namespace {

constexpr std::size_t kBlock = 1 << 20;
constexpr std::size_t kTrailerWindow = 4096;

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string stripCompression(const std::string& name) {
  for (const char* ext : {".gz", ".zst"}) {
    if (endsWith(name, ext)) return name.substr(0, name.size() - std::strlen(ext));
  }
  return name;
}

bool exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

bool interrupted(const CheckContext& ctx, std::string& problem) {
  if (ctx.stop.stop_requested()) {
    problem = "stopped";
    return true;
  }
  if (std::chrono::steady_clock::now() > ctx.deadline) {
    problem = "check_timeout reached before the end";
    return true;
  }
  return false;
}

using FilePtr = std::unique_ptr<FILE, decltype(&std::fclose)>;

std::string readGzip(FILE* file, const CheckContext& ctx, const std::function<bool(const char*, std::size_t)>& sink) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 16) != Z_OK) return "zlib init failed";
  std::unique_ptr<z_stream, decltype(&inflateEnd)> guard(&z, &inflateEnd);
  std::vector<unsigned char> in(kBlock), out(kBlock);
  bool inMember = false;  // inside a gzip member whose end we have not seen yet
  bool anyMember = false;
  std::string problem;
  for (;;) {
    if (interrupted(ctx, problem)) return problem;
    const std::size_t n = std::fread(in.data(), 1, in.size(), file);
    if (n == 0) break;
    z.next_in = in.data();
    z.avail_in = static_cast<uInt>(n);
    while (z.avail_in > 0) {
      if (!inMember) {
        // A new member (gzip allows several, e.g. `cat a.gz b.gz`).
        if (inflateReset(&z) != Z_OK) return "zlib reset failed";
        inMember = true;
        anyMember = true;
      }
      z.next_out = out.data();
      z.avail_out = static_cast<uInt>(out.size());
      const int rc = inflate(&z, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
        return std::string("corrupt gzip data: ") + (z.msg ? z.msg : "inflate error");
      }
      const std::size_t produced = out.size() - z.avail_out;
      if (produced > 0 && !sink(reinterpret_cast<const char*>(out.data()), produced)) return "content check failed";
      if (rc == Z_STREAM_END) inMember = false;
      if (rc == Z_BUF_ERROR && produced == 0) break;  // needs more input
    }
  }
  if (std::ferror(file)) return std::string("read error: ") + std::strerror(errno);
  if (!anyMember) return "empty file";
  if (inMember) return "gzip stream ends early (truncated: the writer did not finish)";
  return {};
}

std::string readZstd(FILE* file, const CheckContext& ctx, const std::function<bool(const char*, std::size_t)>& sink) {
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> dctx(ZSTD_createDCtx(), &ZSTD_freeDCtx);
  if (!dctx) return "zstd init failed";
  std::vector<char> in(ZSTD_DStreamInSize()), out(ZSTD_DStreamOutSize());
  std::size_t last = 0;  // 0 once a frame is complete and fully flushed
  bool any = false;
  std::string problem;
  for (;;) {
    if (interrupted(ctx, problem)) return problem;
    const std::size_t n = std::fread(in.data(), 1, in.size(), file);
    if (n == 0) break;
    any = true;
    ZSTD_inBuffer input{in.data(), n, 0};
    // Drain: a full output buffer may hide more decoded data of this input.
    for (bool full = true; input.pos < input.size || full;) {
      ZSTD_outBuffer output{out.data(), out.size(), 0};
      last = ZSTD_decompressStream(dctx.get(), &output, &input);
      if (ZSTD_isError(last)) return std::string("corrupt zstd data: ") + ZSTD_getErrorName(last);
      if (output.pos > 0 && !sink(out.data(), output.pos)) return "content check failed";
      full = output.pos == output.size;
    }
  }
  if (std::ferror(file)) return std::string("read error: ") + std::strerror(errno);
  if (!any) return "empty file";
  if (last != 0) return "zstd stream ends early (truncated: the writer did not finish)";
  return {};
}

// Keeps the last kTrailerWindow bytes of a stream.
struct Tail {
  std::string bytes;
  bool operator()(const char* data, std::size_t n) {
    bytes.append(data, n);
    if (bytes.size() > 2 * kTrailerWindow) bytes.erase(0, bytes.size() - kTrailerWindow);
    return true;
  }
};

// A .bson stream is a sequence of documents: int32 little-endian total length (>= 5,
// including itself), the body, a final 0x00. A truncated file ends inside a document.
class BsonWalker {
 public:
  bool operator()(const char* data, std::size_t n) {
    for (std::size_t i = 0; i < n;) {
      if (headerHave_ < 4) {
        header_[headerHave_++] = static_cast<unsigned char>(data[i++]);
        if (headerHave_ == 4) {
          const std::uint32_t len = header_[0] | (header_[1] << 8) | (header_[2] << 16) |
                                    (static_cast<std::uint32_t>(header_[3]) << 24);
          if (len < 5 || len > 64u * 1024 * 1024) {  // MongoDB caps documents at 16 MiB
            problem_ = "invalid BSON document length " + std::to_string(len) + " at byte " + std::to_string(offset_);
            return false;
          }
          remaining_ = len - 4;
        }
        continue;
      }
      const std::size_t take = std::min<std::size_t>(remaining_, n - i);
      remaining_ -= take;
      i += take;
      if (remaining_ == 0) {
        if (data[i - 1] != 0) {
          problem_ = "BSON document at byte " + std::to_string(offset_) + " does not end with 0x00";
          return false;
        }
        offset_ += (header_[0] | (header_[1] << 8) | (header_[2] << 16) | (static_cast<std::uint32_t>(header_[3]) << 24));
        headerHave_ = 0;
        ++documents_;
      }
    }
    return true;
  }
  std::string finish() const {
    if (!problem_.empty()) return problem_;
    if (headerHave_ != 0) return "ends inside a BSON document after " + std::to_string(documents_) + " documents";
    return {};
  }
  std::uint64_t documents() const { return documents_; }

 private:
  unsigned char header_[4]{};
  int headerHave_ = 0;
  std::uint32_t remaining_ = 0;
  std::uint64_t offset_ = 0;
  std::uint64_t documents_ = 0;
  std::string problem_;
};

std::vector<std::string> listDir(const std::string& path) {
  std::vector<std::string> names;
  struct Closer {
    void operator()(DIR* dir) const { closedir(dir); }
  };
  std::unique_ptr<DIR, Closer> d(opendir(path.c_str()));
  if (!d) return names;
  while (dirent* e = readdir(d.get())) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
  }
  return names;
}

bool isDir(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string readMagic(const std::string& path, std::size_t n) {
  FilePtr f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return {};
  std::string out(n, '\0');
  out.resize(std::fread(out.data(), 1, n, f.get()));
  return out;
}

// Debian's postgresql-common puts pg_restore on PATH but not pg_verifybackup: look in the
// newest /usr/lib/postgresql/<version>/bin too.
std::string pgTool(const std::string& name) {
  for (int version = 30; version >= 10; --version) {
    const std::string path = "/usr/lib/postgresql/" + std::to_string(version) + "/bin/" + name;
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return name;  // from PATH
}

CheckOutcome pgRestoreReadAll(const std::string& path, const CheckContext& ctx) {
  // `pg_restore --list` passes a pg_dump killed halfway (its table of contents is written
  // first, tested); writing the whole restore script to /dev/null reads every data block.
  auto r = runSubprocess({pgTool("pg_restore"), "--file=/dev/null", path}, ctx.deadline, ctx.stop);
  if (r.stopped) return CheckOutcome::stopped();
  if (!r.started) return CheckOutcome::unknown(r.describe() + " (install postgresql-client)");
  if (r.timedOut) return CheckOutcome::unknown("pg_restore did not finish within check_timeout");
  if (!r.ok()) return CheckOutcome::incomplete("pg_restore cannot read it: " + r.describe());
  return CheckOutcome::complete("pg_restore read every entry");
}

CheckOutcome checkFile(const std::string& path, const std::string& name, const CheckContext& ctx) {
  const Compression compression = compressionOf(name);
  const std::string inner = stripCompression(name);
  const bool sql = endsWith(inner, ".sql");
  if (compression == Compression::None) {
    const std::string magic = readMagic(path, 5);
    if (magic == "PGDMP") return pgRestoreReadAll(path, ctx);
    if (!sql && magic.rfind("--", 0) != 0) return CheckOutcome::unknown("no completeness check for this file type");
  }
  Tail tail;
  auto problem = readDecompressed(path, compression, ctx, [&](const char* d, std::size_t n) { return tail(d, n); });
  if (problem == "stopped") return CheckOutcome::stopped();
  if (problem == "check_timeout reached before the end") return CheckOutcome::unknown(problem);
  if (!problem.empty()) return CheckOutcome::incomplete(problem);
  if (sql || (compression == Compression::None)) {
    if (!hasPgDumpTrailer(tail.bytes)) {
      return CheckOutcome::incomplete("no \"PostgreSQL database dump complete\" trailer at the end (pg_dump did not finish)");
    }
    return CheckOutcome::complete(compression == Compression::None ? "plain dump trailer" : "stream intact, dump trailer");
  }
  return CheckOutcome::complete(compression == Compression::Gzip ? "gzip stream intact" : "zstd stream intact");
}

CheckOutcome checkMongodump(const std::string& root, const CheckContext& ctx) {
  // mongodump --out=DIR writes DIR/<db>/<collection>.bson[.gz] with <collection>.metadata.json[.gz]
  // beside it, DIR/oplog.bson with --oplog, and (tools 100.12+) DIR/prelude.json[.gz] last.
  std::uint64_t collections = 0;
  std::vector<std::string> dirs{root};
  for (const auto& db : listDir(root)) {
    if (isDir(root + "/" + db)) dirs.push_back(root + "/" + db);
  }
  for (const auto& dir : dirs) {
    const auto names = listDir(dir);
    for (const auto& name : names) {
      const std::string base = stripCompression(name);
      if (!endsWith(base, ".bson")) continue;
      const std::string path = dir + "/" + name;
      BsonWalker walker;
      auto problem = readDecompressed(path, compressionOf(name), ctx, [&](const char* d, std::size_t n) { return walker(d, n); });
      if (problem == "stopped") return CheckOutcome::stopped();
      if (problem == "check_timeout reached before the end") return CheckOutcome::unknown(problem);
      if (problem == "content check failed" || problem.empty()) problem = walker.finish();
      if (!problem.empty()) return CheckOutcome::incomplete(path.substr(root.size() + 1) + ": " + problem);
      const std::string stem = base.substr(0, base.size() - 5);
      const bool needsMetadata = dir != root && stem.rfind("system.", 0) != 0;
      if (needsMetadata && !exists(dir + "/" + stem + ".metadata.json") && !exists(dir + "/" + stem + ".metadata.json.gz")) {
        return CheckOutcome::incomplete(path.substr(root.size() + 1) + " has no " + stem + ".metadata.json[.gz]");
      }
      ++collections;
    }
  }
  if (collections == 0) return CheckOutcome::incomplete("no .bson files");
  return CheckOutcome::complete("mongodump: " + std::to_string(collections) + " collections intact");
}

}  // namespace

Compression compressionOf(const std::string& name) {
  if (endsWith(name, ".gz")) return Compression::Gzip;
  if (endsWith(name, ".zst")) return Compression::Zstd;
  return Compression::None;
}

std::string readDecompressed(const std::string& path, Compression compression, const CheckContext& ctx,
                             const std::function<bool(const char*, std::size_t)>& sink) {
  FilePtr file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) return "cannot open: " + std::string(std::strerror(errno));
  if (compression == Compression::Gzip) return readGzip(file.get(), ctx, sink);
  if (compression == Compression::Zstd) return readZstd(file.get(), ctx, sink);
  std::vector<char> buffer(kBlock);
  std::string problem;
  for (;;) {
    if (interrupted(ctx, problem)) return problem;
    const std::size_t n = std::fread(buffer.data(), 1, buffer.size(), file.get());
    if (n == 0) break;
    if (!sink(buffer.data(), n)) return "content check failed";
  }
  if (std::ferror(file.get())) return std::string("read error: ") + std::strerror(errno);
  return {};
}

bool hasPgDumpTrailer(const std::string& tail) {
  // pg_dump ends with "-- PostgreSQL database dump complete"; pg_dumpall with "...cluster dump
  // complete". Since 15.14/17.6 an "\unrestrict <key>" line follows, so search the tail.
  const std::string window = tail.size() > kTrailerWindow ? tail.substr(tail.size() - kTrailerWindow) : tail;
  return window.find("-- PostgreSQL database dump complete") != std::string::npos ||
         window.find("-- PostgreSQL database cluster dump complete") != std::string::npos;
}

CheckOutcome verifyBaseBackup(const std::string& directory, const CheckContext& ctx) {
  std::vector<std::string> argv{pgTool("pg_verifybackup"), "--quiet"};
  // With -X none the WAL is elsewhere (an archive): check the files only.
  const auto wal = listDir(directory + "/pg_wal");
  bool hasWal = false;
  for (const auto& n : wal) hasWal = hasWal || n.size() == 24;
  if (!hasWal) argv.push_back("--no-parse-wal");
  argv.push_back(directory);
  auto r = runSubprocess(argv, ctx.deadline, ctx.stop);
  if (r.stopped) return CheckOutcome::stopped();
  if (!r.started) return CheckOutcome::unknown(r.describe() + " (install postgresql-client)");
  if (r.timedOut) return CheckOutcome::unknown("pg_verifybackup did not finish within check_timeout");
  if (!r.ok()) return CheckOutcome::incomplete("pg_verifybackup: " + r.describe());
  return CheckOutcome::complete(hasWal ? "pg_verifybackup: files and WAL match backup_manifest"
                                       : "pg_verifybackup: files match backup_manifest");
}

CheckOutcome checkBackupComplete(const BackupCandidate& backup, const CheckContext& ctx) {
  if (!backup.directory) return checkFile(backup.path, backup.name, ctx);
  const std::string& dir = backup.path;
  if (exists(dir + "/toc.dat")) return pgRestoreReadAll(dir, ctx);  // pg_dump -Fd
  const auto names = listDir(dir);
  bool tar = false;
  for (const auto& n : names) tar = tar || n.rfind("base.tar", 0) == 0;
  if (tar) {
    // pg_basebackup -Ft: every tar stream intact, and the manifest it writes last.
    for (const auto& n : names) {
      if (compressionOf(n) == Compression::None) continue;
      auto problem = readDecompressed(dir + "/" + n, compressionOf(n), ctx, [](const char*, std::size_t) { return true; });
      if (problem == "stopped") return CheckOutcome::stopped();
      if (problem == "check_timeout reached before the end") return CheckOutcome::unknown(problem);
      if (!problem.empty()) return CheckOutcome::incomplete(n + ": " + problem);
    }
    if (!exists(dir + "/backup_manifest")) return CheckOutcome::incomplete("pg_basebackup (tar) without its backup_manifest");
    return CheckOutcome::complete("pg_basebackup tar streams intact, manifest present");
  }
  if (exists(dir + "/backup_manifest")) return verifyBaseBackup(dir, ctx);
  if (exists(dir + "/backup_label")) {
    if (!exists(dir + "/global/pg_control")) return CheckOutcome::incomplete("base backup without global/pg_control");
    return CheckOutcome::complete("base backup (no manifest): backup_label and pg_control present");
  }
  bool bson = false;
  for (const auto& n : names) {
    if (endsWith(stripCompression(n), ".bson")) bson = true;
    if (!bson && isDir(dir + "/" + n)) {
      for (const auto& inner : listDir(dir + "/" + n)) bson = bson || endsWith(stripCompression(inner), ".bson");
    }
  }
  if (bson) return checkMongodump(dir, ctx);
  return CheckOutcome::unknown("no completeness check for this directory layout");
}

}  // namespace apphealth
