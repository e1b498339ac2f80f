#pragma once
// Runs a Sampler on its own thread at a fixed interval, backing off after failures, and keeps
// the latest snapshot for /metrics. A scrape only copies that snapshot: it never waits on
// the database, Redis or the disk behind the sampler.

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "collectors/Sampler.h"
#include "metrics/Exposition.h"
#include "util/Duration.h"

namespace apphealth {

// A collector's own view of its health, for the status page and /api/v1/status.
struct CollectorHealth {
  std::string collector;
  std::string target;
  Duration interval{};
  bool sampled = false;              // a sample has been published since start or reload
  bool up = false;                   // the last published sample succeeded
  double lastSampleTime = 0;         // Unix seconds of the last published sample (0: none yet)
  double lastSuccessTime = 0;        // Unix seconds of the last successful sample (0: none yet)
  double lastDurationSeconds = 0;
  double failuresTotal = 0;
  int consecutiveFailures = 0;
  std::string problem;  // the last sample's failure reason or partial problem; empty when none
  std::vector<StatusCheck> checks;  // the last sample's thresholds and values
};

class CollectorRunner {
 public:
  CollectorRunner(std::string collector, std::string target, Duration interval,
                  std::unique_ptr<Sampler> sampler);
  ~CollectorRunner();
  CollectorRunner(const CollectorRunner&) = delete;
  CollectorRunner& operator=(const CollectorRunner&) = delete;

  void start();
  void stop();  // returns once the sampling thread has ended

  // The latest snapshot, already in text form.
  std::shared_ptr<const RenderedFamilies> snapshot() const;
  CollectorHealth health() const;
  const std::string& collector() const { return collector_; }
  const std::string& target() const { return target_; }

  // Delay before the next sample after `failures` consecutive failed samples.
  static Duration backoff(Duration interval, int failures);

 private:
  void run(std::stop_token stop);
  void publish(SnapshotBuilder& builder, const SampleResult& result, double durationSeconds);
  void logChange(const SampleResult& result);

  const std::string collector_;
  const std::string target_;
  const Duration interval_;
  std::unique_ptr<Sampler> sampler_;

  mutable std::mutex mutex_;
  std::condition_variable_any wake_;
  std::shared_ptr<const RenderedFamilies> snapshot_;
  CollectorHealth health_;
  std::string loggedFailure_;  // the failure last logged; empty while the target is fine
  std::jthread thread_;
};

}  // namespace apphealth
