#include "collectors/redis/QueueReader.h"

#include <spdlog/spdlog.h>

namespace apphealth {

void ProblemLog::report(const std::string& key, const std::string& message) {
  if (first_.empty()) first_ = message;
  if (!current_.insert(key).second) return;  // once per sample is enough
  if (active_.count(key)) {
    spdlog::debug("redis target {}: {}", target_, message);
  } else {
    spdlog::warn("redis target {}: {}", target_, message);
  }
}

void ProblemLog::note(const std::string& key, const std::string& message) {
  if (!current_.insert(key).second) return;
  if (active_.count(key)) return;
  spdlog::info("redis target {}: {}", target_, message);
}

void ProblemLog::beginSample() {
  current_.clear();
  first_.clear();
}

std::string ProblemLog::endSample() {
  active_ = std::move(current_);
  current_.clear();
  return std::move(first_);
}

}  // namespace apphealth
