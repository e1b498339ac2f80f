#include "ingest/ErrorReportLog.h"

#include <sys/stat.h>

#include <cctype>
#include <chrono>
#include <ctime>

#include "util/JsonEscape.h"

namespace apphealth::ingest {

namespace {

constexpr std::size_t kMaxMessage = 1024;

bool isEmailChar(unsigned char c) { return std::isalnum(c) || c == '.' || c == '_' || c == '-' || c == '+' || c == '%'; }

void appendJsonString(std::string& out, const std::string& value) {
  out += '"';
  appendJsonEscaped(out, value);
  out += '"';
}

}  // namespace

std::string sanitizeMessage(const std::string& input) {
  std::string message = input.substr(0, kMaxMessage);
  std::string out;
  out.reserve(message.size());
  for (std::size_t i = 0; i < message.size();) {
    const unsigned char c = static_cast<unsigned char>(message[i]);
    if (std::isdigit(c)) {
      std::size_t j = i;
      while (j < message.size() && (std::isdigit(static_cast<unsigned char>(message[j])) || message[j] == ' ' || message[j] == '-')) ++j;
      std::size_t digits = 0;
      for (std::size_t k = i; k < j; ++k) digits += std::isdigit(static_cast<unsigned char>(message[k])) ? 1 : 0;
      if (digits >= 6) {
        out += "[number]";
        // keep a separator that followed the run
        while (j > i && (message[j - 1] == ' ' || message[j - 1] == '-')) --j;
        i = j;
        continue;
      }
      out.append(message, i, j - i);
      i = j;
      continue;
    }
    if (c == '@') {
      // Mask the local part already copied and the domain that follows.
      std::size_t start = out.size();
      while (start > 0 && isEmailChar(static_cast<unsigned char>(out[start - 1]))) --start;
      std::size_t end = i + 1;
      while (end < message.size() && isEmailChar(static_cast<unsigned char>(message[end]))) ++end;
      const bool looksLikeEmail = start < out.size() && message.substr(i + 1, end - i - 1).find('.') != std::string::npos;
      if (looksLikeEmail) {
        out.resize(start);
        out += "[email]";
        i = end;
        continue;
      }
    }
    out += static_cast<char>(c);
    ++i;
  }
  return out;
}

ErrorReportLog::ErrorReportLog(std::string path, std::size_t maxBytes, int keep)
    : path_(std::move(path)), maxBytes_(maxBytes), keep_(keep) {}

bool ErrorReportLog::openLocked() {
  if (file_) return true;
  file_.reset(std::fopen(path_.c_str(), "a"));
  if (!file_) return false;
  struct stat st {};
  size_ = ::stat(path_.c_str(), &st) == 0 ? static_cast<std::size_t>(st.st_size) : 0;
  return true;
}

void ErrorReportLog::rotateLocked() {
  file_.reset();
  for (int i = keep_ - 1; i >= 1; --i) {
    std::rename((path_ + "." + std::to_string(i)).c_str(), (path_ + "." + std::to_string(i + 1)).c_str());
  }
  std::rename(path_.c_str(), (path_ + ".1").c_str());
  size_ = 0;
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
  appendJsonString(line, report.component.substr(0, 128));
  line += ",\"message\":";
  appendJsonString(line, sanitizeMessage(report.message));
  line += "}\n";

  std::lock_guard lock(mutex_);
  if (size_ + line.size() > maxBytes_ && size_ > 0) rotateLocked();
  if (!openLocked()) return false;
  if (std::fwrite(line.data(), 1, line.size(), file_.get()) != line.size() || std::fflush(file_.get()) != 0) {
    file_.reset();
    return false;
  }
  size_ += line.size();
  return true;
}

}  // namespace apphealth::ingest
