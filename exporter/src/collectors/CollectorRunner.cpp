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
      snapshot_(std::make_shared<const RenderedFamilies>()) {}

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

Duration CollectorRunner::backoff(Duration interval, int failures) {
  // Double the wait per consecutive failure, but never wait longer than 8 intervals or 30 s
  // (whichever is shorter, and at least one interval): a recovered target shows up again soon.
  const Duration cap = std::max(interval, std::min<Duration>(interval * 8, 30s));
  Duration delay = interval;
  for (int i = 1; i < failures && delay < cap; ++i) delay *= 2;
  return std::min(delay, cap);
}

void CollectorRunner::publish(SnapshotBuilder& builder, bool ok, double durationSeconds) {
  const Labels labels = {{"collector", collector_}, {"target", target_}};
  if (ok) lastSuccess_ = nowSeconds();
  if (!ok) failures_total_ += 1;
  builder.gauge("apphealth_collector_up", "Whether the collector's last sample of its target succeeded (1) or not (0).",
                labels, ok ? 1 : 0);
  builder.gauge("apphealth_collector_last_success_timestamp_seconds",
                "Unix time of the collector's last successful sample (0: none yet).", labels, lastSuccess_);
  builder.gauge("apphealth_collector_duration_seconds", "How long the collector's last sample took.", labels,
                durationSeconds);
  builder.counter("apphealth_collector_failures_total", "Samples of the target that failed.", labels,
                  failures_total_);
  auto families = std::make_shared<const RenderedFamilies>(renderFamilies(builder.take()));
  std::lock_guard lock(mutex_);
  snapshot_ = std::move(families);
}

void CollectorRunner::run(std::stop_token stop) {
  int consecutiveFailures = 0;
  while (!stop.stop_requested()) {
    SnapshotBuilder builder;
    const auto started = std::chrono::steady_clock::now();
    bool ok = false;
    try {
      ok = sampler_->sample(builder, stop);
    } catch (const std::exception& e) {
      // A sampler bug must not take the exporter down; it shows up as up=0 and a log line.
      spdlog::error("{} collector for {}: unexpected error: {}", collector_, target_, e.what());
      builder = SnapshotBuilder();
    }
    const auto took = std::chrono::steady_clock::now() - started;
    if (stop.stop_requested()) break;
    publish(builder, ok, std::chrono::duration<double>(took).count());

    consecutiveFailures = ok ? 0 : consecutiveFailures + 1;
    const Duration delay = ok ? interval_ : backoff(interval_, consecutiveFailures);
    // Sample on a fixed cadence: subtract the time the sample took.
    const auto next = started + delay;
    std::unique_lock lock(mutex_);
    wake_.wait_until(lock, stop, next, [] { return false; });
  }
}

}  // namespace apphealth
