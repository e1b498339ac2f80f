#include "collectors/redis/RedisQueueCollector.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <tuple>

#include "collectors/redis/BullMqReader.h"
#include "collectors/redis/CeleryReader.h"
#include "collectors/redis/LaravelReader.h"
#include "collectors/redis/RedisRounds.h"
#include "collectors/redis/RqReader.h"
#include "collectors/redis/SidekiqReader.h"

namespace apphealth {

namespace {

const prometheus::Histogram::BucketBoundaries kPingBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

using Preset = RedisQueueSpec::Preset;

std::unique_ptr<QueueReader> makeReader(Preset preset, const std::string& prefix, std::vector<std::string> queues,
                                        bool workers, int db) {
  switch (preset) {
    case Preset::Celery: return std::make_unique<CeleryReader>(prefix, std::move(queues), workers, db);
    case Preset::Rq: return std::make_unique<RqReader>(prefix, std::move(queues), workers);
    case Preset::Sidekiq: return std::make_unique<SidekiqReader>(prefix, std::move(queues), workers);
    case Preset::Laravel: return std::make_unique<LaravelReader>(prefix, std::move(queues));
    case Preset::BullMQ: return std::make_unique<BullMqReader>(prefix, std::move(queues), workers);
    case Preset::None: break;
  }
  return nullptr;
}

}  // namespace

RedisQueueCollector::RedisQueueCollector(RedisTarget target)
    : target_(std::move(target)),
      pingDuration_(kPingBuckets),
      helpSuffix_(" Sampled every " + formatDuration(target_.interval) + "."),
      problems_(target_.name) {
  endpoint_ = {target_.host, target_.port, target_.unix_socket};
  std::vector<std::size_t> explicitEntries;
  // (preset, prefix) -> queue names and whether any of its entries wants workers read.
  std::map<std::pair<Preset, std::string>, std::pair<std::vector<std::string>, bool>> merged;
  std::vector<std::pair<Preset, std::string>> order;
  for (std::size_t i = 0; i < target_.queues.size(); ++i) {
    const auto& spec = target_.queues[i];
    if (spec.preset == Preset::None) {
      explicitEntries.push_back(i);
      entryStates_.push_back({});
      continue;
    }
    entryStates_.push_back(makeReader(spec.preset, spec.prefix, spec.queue_names, spec.workers, target_.db)->fixedStates());
    auto [it, inserted] = merged.try_emplace({spec.preset, spec.prefix});
    if (inserted) order.push_back(it->first);
    it->second.first.insert(it->second.first.end(), spec.queue_names.begin(), spec.queue_names.end());
    it->second.second = it->second.second || spec.workers;
  }
  for (const auto& key : order) {
    auto& [queues, workers] = merged[key];
    readers_.push_back(makeReader(key.first, key.second, queues, workers, target_.db));
  }
  if (!explicitEntries.empty()) {
    auto reader = std::make_unique<ExplicitKeysReader>(target_, explicitEntries);
    for (std::size_t i = 0; i < target_.queues.size(); ++i) {
      if (target_.queues[i].preset == Preset::None && target_.queues[i].key.find('*') == std::string::npos) {
        entryStates_[i] = {{target_.queues[i].label, target_.queues[i].state}};
      }
    }
    explicit_ = reader.get();
    readers_.push_back(std::move(reader));
  }
}

std::map<std::pair<std::string, std::string>, double> RedisQueueCollector::writeStatic(SnapshotBuilder& out, bool up) {
  const Labels labels = {{"target", target_.name}};
  out.gauge("apphealth_redis_up", "Whether Redis answered PING (1) or not (0)." + helpSuffix_, labels, up ? 1 : 0);
  out.histogram("apphealth_redis_probe_duration_seconds", "Round trip of PING on an open connection." + helpSuffix_,
                labels, pingDuration_);
  // Thresholds are configuration, exported even while Redis is down so alerts keep their join.
  // Defaults where the layout has the state; an entry's `thresholds:` override them for the
  // (queue, state) pairs that entry reads (Sidekiq's `retry: 50` is for queue="sidekiq", not
  // for every queue name listed beside it).
  static const std::map<std::string, double> kDefaults = {{"waiting", kDefaultWaitingJobsThreshold},
                                                          {"failed", kDefaultFailedJobsThreshold},
                                                          {"retry", kDefaultFailedJobsThreshold},
                                                          {"dead", kDefaultFailedJobsThreshold}};
  std::map<std::pair<std::string, std::string>, double> thresholds;
  for (std::size_t i = 0; i < target_.queues.size(); ++i) {
    const auto& configured = target_.queues[i].thresholds;
    for (const auto& [queue, state] : entryStates_[i]) {
      if (auto t = configured.find(state); t != configured.end()) {
        thresholds[{queue, state}] = t->second;
      } else if (auto d = kDefaults.find(state); d != kDefaults.end()) {
        thresholds.try_emplace({queue, state}, d->second);
      }
    }
  }
  // Keys found by patterns in the last sample: the entry's state, with its threshold or default.
  if (explicit_ != nullptr) {
    for (const auto& found : explicit_->patternKeys()) {
      const auto& spec = target_.queues[found.entry];
      if (auto t = spec.thresholds.find(spec.state); t != spec.thresholds.end()) {
        thresholds.try_emplace({found.queue, spec.state}, t->second);
      } else if (auto d = kDefaults.find(spec.state); d != kDefaults.end()) {
        thresholds.try_emplace({found.queue, spec.state}, d->second);
      }
    }
  }
  for (const auto& [queueState, value] : thresholds) {
    out.gauge("apphealth_threshold_queue_jobs", "Configured job count above which a queue state needs attention.",
              {{"target", target_.name}, {"queue", queueState.first}, {"state", queueState.second}}, value);
  }
  return thresholds;
}

SampleResult RedisQueueCollector::sample(SnapshotBuilder& out, std::stop_token stop) {
  // A read blocked on a hung server returns at once when the exporter stops.
  std::stop_callback onStop(stop, [this] { connection_.interrupt(); });
  SampleResult result;
  problems_.beginSample();
  lastJobs_.clear();
  try {
    QueueSample sample;
    measure(out, sample);
    writeSample(out, sample);
    lastJobs_ = std::move(sample.jobs);
  } catch (const RedisError& e) {
    result = SampleResult::failure(endpoint_.describe() + ": " + e.what());
    connection_.close();
  } catch (const std::runtime_error& e) {  // an unreadable password file and the like
    result = SampleResult::failure(e.what());
    connection_.close();
  }
  const std::string problem = problems_.endSample();
  if (result.ok) result.problem = problem;
  for (const auto& [queueState, threshold] : writeStatic(out, result.ok)) {
    StatusCheck check{queueState.second + " jobs in " + queueState.first, kNoValue, threshold, "jobs"};
    if (auto jobs = lastJobs_.find(queueState); result.ok && jobs != lastJobs_.end()) check.value = jobs->second;
    check.failing = check.value > threshold;
    result.checks.push_back(std::move(check));
  }
  return result;
}

void RedisQueueCollector::measure(SnapshotBuilder& out, QueueSample& sample) {
  const bool reconnected = !connection_.connected();
  if (reconnected) {
    connection_.connect(endpoint_, target_.timeout, readSecret(target_.password), target_.db);
    spdlog::info("redis target {}: connected to {}", target_.name, endpoint_.describe());
  }
  const auto pingStart = std::chrono::steady_clock::now();
  auto pong = connection_.command({"PING"});
  if (pong->type == REDIS_REPLY_ERROR) throw RedisError(std::string("PING: ") + pong->str);
  pingDuration_.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - pingStart).count());

  if (explicit_ != nullptr) explicit_->expandPatterns(connection_, problems_, out, helpSuffix_);
  const double now = nowSeconds();
  // Blocking reads (Celery's workers answering) may use half the timeout.
  const double deadline = now + std::chrono::duration<double>(target_.timeout).count() / 2;
  ReadContext ctx{target_, now, deadline, sample, problems_, reconnected};
  RedisRounds rounds;
  const auto started = std::chrono::steady_clock::now();
  for (auto& reader : readers_) reader->start(rounds, ctx);
  rounds.run(connection_);
  for (auto& reader : readers_) reader->finish(ctx);
  spdlog::debug("redis target {}: {} commands in {} round trips, {:.1f} ms", target_.name, rounds.commandsSent(),
                rounds.roundsRun(),
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
}

void RedisQueueCollector::writeSample(SnapshotBuilder& out, const QueueSample& sample) {
  // Thousands of series per sample with many queues: each help text is made once.
  const std::string jobsHelp = "Jobs in a queue by state." + helpSuffix_;
  const std::string ageHelp = "Age of the oldest waiting job (0: queue empty)." + helpSuffix_;
  const std::string workersHelp = "Live workers that take jobs from the queue." + helpSuffix_;
  const std::string busyHelp = "Live workers of the queue that are executing a job." + helpSuffix_;
  const auto queueLabels = [&](const std::string& queue) { return Labels{{"target", target_.name}, {"queue", queue}}; };
  using prometheus::MetricType;
  out.reserve("apphealth_queue_jobs", jobsHelp, MetricType::Gauge, sample.jobs.size());
  out.reserve("apphealth_queue_oldest_job_age_seconds", ageHelp, MetricType::Gauge, sample.ages.size());
  out.reserve("apphealth_queue_workers", workersHelp, MetricType::Gauge, sample.workers.size());
  out.reserve("apphealth_queue_workers_busy", busyHelp, MetricType::Gauge, sample.busyWorkers.size());
  for (const auto& [queueState, count] : sample.jobs) {
    out.gauge("apphealth_queue_jobs", jobsHelp,
              {{"target", target_.name}, {"queue", queueState.first}, {"state", queueState.second}}, count);
  }
  for (const auto& [queue, age] : sample.ages) out.gauge("apphealth_queue_oldest_job_age_seconds", ageHelp, queueLabels(queue), age);
  for (const auto& [queue, n] : sample.workers) out.gauge("apphealth_queue_workers", workersHelp, queueLabels(queue), n);
  for (const auto& [queue, n] : sample.busyWorkers) out.gauge("apphealth_queue_workers_busy", busyHelp, queueLabels(queue), n);
  for (const auto& [queue, n] : sample.processed) {
    out.counter("apphealth_queue_jobs_processed_total",
                "Jobs the queue's workers finished, succeeded or failed, as the framework counts them.", queueLabels(queue), n);
  }
  for (const auto& [queue, n] : sample.failed) {
    out.counter("apphealth_queue_jobs_failed_total", "Jobs the queue's workers finished with a failure, as the framework counts them.",
                queueLabels(queue), n);
  }
  for (const auto& g : sample.streamGroups) {
    const Labels labels = {{"target", target_.name}, {"queue", g.queue}, {"group", g.group}};
    if (g.pending) {
      out.gauge("apphealth_queue_stream_group_pending",
                "Entries delivered to a stream consumer group but not acknowledged." + helpSuffix_, labels, *g.pending);
    }
    if (g.lag) {
      out.gauge("apphealth_queue_stream_group_lag", "Entries in the stream not yet delivered to the consumer group." + helpSuffix_,
                labels, *g.lag);
    }
  }
}

}  // namespace apphealth
