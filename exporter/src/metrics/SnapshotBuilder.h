#pragma once
// Builds the metric families one collector publishes after a sample. A snapshot is rebuilt
// from scratch every time, so a queue or state that disappears stops being exported instead
// of going stale; histograms keep their state in prometheus::Histogram objects the collector
// owns and are copied in here.

#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace apphealth {

using Labels = std::vector<std::pair<std::string, std::string>>;
using Families = std::vector<prometheus::MetricFamily>;

class SnapshotBuilder {
 public:
  void gauge(const std::string& name, const std::string& help, const Labels& labels, double value);
  void counter(const std::string& name, const std::string& help, const Labels& labels, double value);
  // The same for labels built for the call: moved in, not copied (thousands of queue series).
  void gauge(const std::string& name, const std::string& help, Labels&& labels, double value);
  void counter(const std::string& name, const std::string& help, Labels&& labels, double value);
  void histogram(const std::string& name, const std::string& help, const Labels& labels,
                 const prometheus::Histogram& histogram);
  // Room for `count` more series of a family about to be filled (thousands of queue series):
  // one allocation instead of a vector regrown, and its elements moved, a dozen times.
  void reserve(const std::string& name, const std::string& help, prometheus::MetricType type, std::size_t count);
  Families take();

 private:
  prometheus::ClientMetric& add(const std::string& name, const std::string& help,
                                prometheus::MetricType type, const Labels& labels);
  prometheus::ClientMetric& add(const std::string& name, const std::string& help,
                                prometheus::MetricType type, Labels&& labels);
  prometheus::MetricFamily& familyOf(const std::string& name, const std::string& help, prometheus::MetricType type);
  prometheus::ClientMetric& metricOf(const std::string& name, const std::string& help, prometheus::MetricType type);
  Families families_;
  std::map<std::string, std::size_t> index_;
};

}  // namespace apphealth
