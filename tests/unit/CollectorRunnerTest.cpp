#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "collectors/CollectorRunner.h"

using namespace apphealth;
using namespace std::chrono_literals;

namespace {

// Plays a fixed script of results, then repeats the last one; counts its samples.
class ScriptedSampler : public Sampler {
 public:
  ScriptedSampler(std::vector<SampleResult> script, std::atomic<int>& calls) : script_(std::move(script)), calls_(calls) {}
  SampleResult sample(SnapshotBuilder& out, std::stop_token) override {
    const int i = calls_++;
    out.gauge("apphealth_test_value", "test", {}, i);
    return script_[std::min<std::size_t>(static_cast<std::size_t>(i), script_.size() - 1)];
  }

 private:
  std::vector<SampleResult> script_;
  std::atomic<int>& calls_;
};

// Routes spdlog's default logger into a ring buffer for the duration of a test.
class CapturedLog {
 public:
  CapturedLog() : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(100)), previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>("captured", sink_);
    logger->set_level(spdlog::level::info);
    logger->set_pattern("%l %v");
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  std::vector<std::string> lines() const {
    auto lines = sink_->last_formatted();
    for (auto& line : lines) {
      while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    }
    return lines;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

// Waits (generously: the machine may be loaded) until the runner has published `samples`.
void waitForSamples(const std::atomic<int>& calls, int samples) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (calls.load() < samples && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  ASSERT_GE(calls.load(), samples);
}

}  // namespace

TEST(CollectorRunner, BackoffDoublesUpToItsCap) {
  EXPECT_EQ(CollectorRunner::backoff(1s, 1), 1s);
  EXPECT_EQ(CollectorRunner::backoff(1s, 2), 2s);
  EXPECT_EQ(CollectorRunner::backoff(1s, 3), 4s);
  EXPECT_EQ(CollectorRunner::backoff(1s, 10), 8s);     // 8 intervals
  EXPECT_EQ(CollectorRunner::backoff(15s, 10), 30s);   // 30 s cap
  EXPECT_EQ(CollectorRunner::backoff(60s, 5), 60s);    // never below one interval
}

TEST(CollectorRunner, HealthCarriesTheLastProblemAndCounts) {
  std::atomic<int> calls{0};
  CollectorRunner runner("postgres", "main", 1ms,
                         std::make_unique<ScriptedSampler>(
                             std::vector<SampleResult>{SampleResult::failure("connection refused"),
                                                       SampleResult::failure("connection refused"),
                                                       SampleResult::success("statistics query failed: denied")},
                             calls));
  const auto before = runner.health();
  EXPECT_FALSE(before.sampled);
  EXPECT_EQ(before.collector, "postgres");
  EXPECT_EQ(before.target, "main");
  EXPECT_EQ(before.lastSuccessTime, 0);

  runner.start();
  waitForSamples(calls, 4);  // the fourth sample has begun: three are published
  runner.stop();
  const auto h = runner.health();
  EXPECT_TRUE(h.sampled);
  EXPECT_TRUE(h.up);
  EXPECT_EQ(h.failuresTotal, 2);
  EXPECT_EQ(h.consecutiveFailures, 0);
  EXPECT_EQ(h.problem, "statistics query failed: denied");
  EXPECT_GT(h.lastSuccessTime, 0);
  EXPECT_GE(h.lastSampleTime, h.lastSuccessTime);
}

TEST(CollectorRunner, StillFailingTargetIsUpZeroWithItsReason) {
  std::atomic<int> calls{0};
  CollectorRunner runner("redis", "queues", 1ms,
                         std::make_unique<ScriptedSampler>(
                             std::vector<SampleResult>{SampleResult::success(), SampleResult::failure("timeout")}, calls));
  runner.start();
  waitForSamples(calls, 3);
  runner.stop();
  const auto h = runner.health();
  EXPECT_FALSE(h.up);
  EXPECT_GE(h.consecutiveFailures, 1);
  EXPECT_EQ(h.problem, "timeout");
  EXPECT_GT(h.lastSuccessTime, 0);  // the first sample succeeded
  const auto text = joinRendered({runner.snapshot().get()});
  EXPECT_NE(text.find("apphealth_collector_up{collector=\"redis\",target=\"queues\"} 0"), std::string::npos) << text;
}

TEST(CollectorRunner, LogsAFailureWhenItStartsOrChangesAndOnceOnRecovery) {
  CapturedLog log;
  std::atomic<int> calls{0};
  CollectorRunner runner(
      "backup", "nightly", 1ms,
      std::make_unique<ScriptedSampler>(
          std::vector<SampleResult>{SampleResult::failure("cannot read directory /b: Permission denied"),
                                    SampleResult::failure("cannot read directory /b: Permission denied"),
                                    SampleResult::failure("cannot read directory /b: Permission denied"),
                                    SampleResult::failure("error listing /b: Input/output error"),
                                    SampleResult::success(), SampleResult::success()},
          calls));
  runner.start();
  waitForSamples(calls, 7);
  runner.stop();
  const std::vector<std::string> expected = {
      "warning backup collector for nightly: cannot read directory /b: Permission denied",
      "warning backup collector for nightly: error listing /b: Input/output error",
      "info backup collector for nightly: recovered",
  };
  EXPECT_EQ(log.lines(), expected);
}
