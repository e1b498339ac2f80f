#pragma once
// The pieces every framework's reader shares: what one sample found (QueueSample), problems
// worth one log line (ProblemLog), and the QueueReader interface the collector drives.

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "collectors/redis/ReadScript.h"
#include "collectors/redis/RedisRounds.h"
#include "config/Config.h"

namespace apphealth {

// Everything one sample of one Redis target found, before it becomes metrics.
struct QueueSample {
  struct StreamGroup {
    std::string queue;
    std::string group;
    std::optional<double> pending;
    std::optional<double> lag;
  };

  std::map<std::pair<std::string, std::string>, double> jobs;  // (queue, state) -> jobs
  std::map<std::string, double> ages;                          // queue -> oldest waiting job, s
  std::map<std::string, double> workers;                       // queue -> live workers
  std::map<std::string, double> busyWorkers;                   // queue -> of which executing a job
  std::map<std::string, double> processed;                     // queue -> counter
  std::map<std::string, double> failed;                        // queue -> counter
  std::vector<StreamGroup> streamGroups;

  void addJobs(const std::string& queue, const std::string& state, double n) { jobs[{queue, state}] += n; }
  // The older of what is known: several keys or candidates may hold a queue's oldest job.
  void addAge(const std::string& queue, double seconds) {
    auto [it, inserted] = ages.try_emplace(queue, seconds);
    if (!inserted) it->second = std::max(it->second, seconds);
  }
};

// Problems found in data (a key of the wrong type, a payload that is not JSON, a registry too
// large to read): each is logged as a warning when it first appears, at debug level while it
// lasts, and may be said again once it has been gone for a sample. The first one of a sample
// is also the sample's partial problem for the status page.
class ProblemLog {
 public:
  explicit ProblemLog(std::string target) : target_(std::move(target)) {}
  // `key` identifies the problem (say, "wrongtype:queue:emails"); `message` is the log text.
  void report(const std::string& key, const std::string& message);
  // Debug-level detail that is no problem of the data (a framework version that records no time).
  void note(const std::string& key, const std::string& message);
  void beginSample();
  // Forgets problems not reported this sample; returns the first problem of this sample.
  std::string endSample();

 private:
  std::string target_;
  std::set<std::string> active_;   // reported in the previous sample
  std::set<std::string> current_;  // reported in this sample
  std::string first_;
};

// What a reader needs while a sample runs. Lives as long as the sample.
struct ReadContext {
  const RedisTarget& target;
  double now;                      // Unix seconds when the sample started
  double deadline;                 // Unix seconds by which blocking reads must be done
  QueueSample& out;
  ProblemLog& problems;
  bool reconnected = false;        // the connection was (re)opened for this sample
};

// Reads the queues of one framework (one preset and key prefix) of a Redis target.
class QueueReader {
 public:
  virtual ~QueueReader() = default;
  // Queues this sample's first commands; their handlers queue what depends on them.
  virtual void start(RedisRounds& rounds, ReadContext& ctx) = 0;
  // Called after the last round: combines what the handlers collected.
  virtual void finish(ReadContext& ctx) { (void)ctx; }
  // The (queue, state) pairs this reader exports (each sample starts them at 0, so a drained
  // queue stays on the graphs): where the default thresholds apply.
  virtual std::vector<std::pair<std::string, std::string>> fixedStates() const = 0;

  // Queues per script call: a script blocks Redis while it runs (about 1 ms per 100 queues
  // of the slowest layout here; see the README), so a large configuration is read in several
  // calls of one round trip, with other clients served between them.
  static constexpr std::size_t kQueuesPerScript = 100;

 protected:
  // Call first in start(): this sample's context, and no count targets from the last one. A
  // new connection may be allowed what the last one was refused (scripts).
  void beginSample(ReadContext& ctx) {
    ctx_ = &ctx;
    countTargets_.clear();
    if (ctx.reconnected) scriptsRefused_ = false;
  }
  // The per-queue reads of `queues`: `script` over batches of kQueuesPerScript queues (ARGV:
  // `leading`, then the batch's names), each queue's `stride` reply elements given to
  // `take(index, elements)`. Where the server refuses scripts (ACL without @scripting, Redis
  // before 7), `commands(index)` queues the pipelined commands that read the same for that
  // queue, this sample and every later one on this connection; the refusal is logged once.
  void readQueues(RedisRounds& rounds, const ReadScript& script, const std::vector<std::string>& queues,
                  const std::vector<std::string>& leading, std::size_t stride,
                  std::function<void(std::size_t, redisReply* const*)> take, std::function<void(std::size_t)> commands,
                  const char* framework);
  // The handler of countInto for a reply read another way (a script's element): adds the
  // integer to (queue, state), reports an error naming `key`.
  void takeCount(const redisReply& r, const std::string& queue, const char* state, const char* framework,
                 const std::string& key);
  // A length read (LLEN, ZCARD, ZCOUNT, ...) whose integer reply adds to (queue, state) of
  // this sample; an error reply is reported naming the key. `queue` must outlive the sample
  // (a reader's own queue names). The (queue, state) starts at 0: a missing key is an empty
  // queue, still exported. Kept small: thousands of these go out per sample.
  void countInto(RedisRounds& rounds, RedisCommand command, const std::string& queue, const char* state,
                 const char* framework);
  ReadContext* ctx_ = nullptr;

 private:
  struct CountTarget {
    const std::string* queue;
    const char* state;
    const char* framework;
  };
  std::vector<CountTarget> countTargets_;
  bool scriptsRefused_ = false;
};

}  // namespace apphealth
