#include "collectors/CollectorRunner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace apphealth {

using namespace std::chrono_literals;

namespace {
double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

CollectorRunner::CollectorRunner(std::string collector, std::string target, Duration interval,
                                 std::unique_ptr<Sampler> sampler)
    : collector_(std::move(collector)),
      target_(std::move(target)),
      interval_(interval),
      sampler_(std::move(sampler)),
      snapshot_(std::make_shared<const RenderedFamilies>()) {
  health_.collector = collector_;
  health_.target = target_;
  health_.interval = interval_;
}

CollectorRunner::~CollectorRunner() { stop(); }

void CollectorRunner::start() {
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

void CollectorRunner::stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  wake_.notify_all();
  thread_.join();
}

std::shared_ptr<const RenderedFamilies> CollectorRunner::snapshot() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

CollectorHealth CollectorRunner::health() const {
  std::lock_guard lock(mutex_);
  return health_;
}

Duration CollectorRunner::backoff(Duration interval, int failures) {
  // Double the wait per consecutive failure, but never wait longer than 8 intervals or 30 s
  // (whichever is shorter, and at least one interval): a recovered target shows up again soon.
  const Duration cap = std::max(interval, std::min<Duration>(interval * 8, 30s));
  Duration delay = interval;
  for (int i = 1; i < failures && delay < cap; ++i) delay *= 2;
  return std::min(delay, cap);
}

// Failures are logged when they start or change, and once more when the target recovers:
// a target that stays down for a night writes one line, not one per sample.
void CollectorRunner::logChange(const SampleResult& result) {
  if (!result.ok) {
    if (result.problem != loggedFailure_) {
      spdlog::warn("{} collector for {}: {}", collector_, target_, result.problem);
    } else {
      spdlog::debug("{} collector for {}: still failing: {}", collector_, target_, result.problem);
    }
    loggedFailure_ = result.problem.empty() ? "failed" : result.problem;
  } else if (!loggedFailure_.empty()) {
    spdlog::info("{} collector for {}: recovered", collector_, target_);
    loggedFailure_.clear();
  }
}

void CollectorRunner::publish(SnapshotBuilder& builder, const SampleResult& result, double durationSeconds) {
  logChange(result);
  // Only the sampling thread writes health_, so it may read it here without the lock.
  CollectorHealth health = health_;
  health.sampled = true;
  health.up = result.ok;
  health.lastSampleTime = nowSeconds();
  if (result.ok) health.lastSuccessTime = health.lastSampleTime;
  if (!result.ok) health.failuresTotal += 1;
  health.consecutiveFailures = result.ok ? 0 : health.consecutiveFailures + 1;
  health.lastDurationSeconds = durationSeconds;
  health.problem = result.problem;
  health.checks = result.checks;

  const Labels labels = {{"collector", collector_}, {"target", target_}};
  builder.gauge("apphealth_collector_up", "Whether the collector's last sample of its target succeeded (1) or not (0).",
                labels, result.ok ? 1 : 0);
  builder.gauge("apphealth_collector_last_success_timestamp_seconds",
                "Unix time of the collector's last successful sample (0: none yet).", labels, health.lastSuccessTime);
  builder.gauge("apphealth_collector_duration_seconds", "How long the collector's last sample took.", labels,
                durationSeconds);
  builder.counter("apphealth_collector_failures_total", "Samples of the target that failed.", labels,
                  health.failuresTotal);
  auto families = std::make_shared<const RenderedFamilies>(renderFamilies(builder.take()));
  std::lock_guard lock(mutex_);
  snapshot_ = std::move(families);
  health_ = std::move(health);
}

void CollectorRunner::run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    SnapshotBuilder builder;
    const auto started = std::chrono::steady_clock::now();
    SampleResult result;
    try {
      result = sampler_->sample(builder, stop);
    } catch (const std::exception& e) {
      // A sampler bug must not take the exporter down; it shows up as up=0 and a log line.
      result = SampleResult::failure(std::string("unexpected error: ") + e.what());
      builder = SnapshotBuilder();
    }
    const auto took = std::chrono::steady_clock::now() - started;
    if (stop.stop_requested()) break;
    publish(builder, result, std::chrono::duration<double>(took).count());

    const Duration delay = result.ok ? interval_ : backoff(interval_, health_.consecutiveFailures);
    // Sample on a fixed cadence: subtract the time the sample took.
    const auto next = started + delay;
    std::unique_lock lock(mutex_);
    wake_.wait_until(lock, stop, next, [] { return false; });
  }
}

}  // namespace apphealth
