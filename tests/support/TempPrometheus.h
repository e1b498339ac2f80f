#pragma once
// A throwaway Prometheus server (Debian's prometheus binary) on 127.0.0.1, with its config and
// TSDB in its own temporary directory, for tests where Prometheus itself must scrape the
// exporter. Started by the constructor (ready when /-/ready answers), stopped by the destructor.

#include <sys/types.h>

#include <optional>
#include <string>

#include "TestSupport.h"

namespace apphealth::test {

class TempPrometheus {
 public:
  // `scrapeConfigs` is the YAML list under scrape_configs: (each item starting with "- ").
  // Other files it needs can be written first through a TempDir of the caller's.
  explicit TempPrometheus(const std::string& scrapeConfigs, const std::string& scrapeInterval = "1s");
  ~TempPrometheus();
  TempPrometheus(const TempPrometheus&) = delete;
  TempPrometheus& operator=(const TempPrometheus&) = delete;

  int port() const { return port_; }
  // The value of an instant query that returns one sample, or nullopt (no sample yet, error).
  std::optional<double> value(const std::string& expr) const;
  // /api/v1/targets as Prometheus returns it (for failure messages: lastError, health).
  std::string targets() const;
  std::string log() const;

 private:
  TempDir dir_;
  int port_;
  pid_t pid_ = -1;
};

}  // namespace apphealth::test
