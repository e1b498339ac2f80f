#include "metrics/SnapshotBuilder.h"


namespace apphealth {

prometheus::MetricFamily& SnapshotBuilder::familyOf(const std::string& name, const std::string& help,
                                                    prometheus::MetricType type) {
  auto [it, inserted] = index_.try_emplace(name, families_.size());
  if (inserted) {
    prometheus::MetricFamily family;
    family.name = name;
    family.help = help;
    family.type = type;
    families_.push_back(std::move(family));
  }
  return families_[it->second];
}

prometheus::ClientMetric& SnapshotBuilder::metricOf(const std::string& name, const std::string& help,
                                                    prometheus::MetricType type) {
  return familyOf(name, help, type).metric.emplace_back();
}

void SnapshotBuilder::reserve(const std::string& name, const std::string& help, prometheus::MetricType type,
                              std::size_t count) {
  if (count == 0) return;  // no family without series
  auto& metrics = familyOf(name, help, type).metric;
  metrics.reserve(metrics.size() + count);
}

prometheus::ClientMetric& SnapshotBuilder::add(const std::string& name, const std::string& help,
                                               prometheus::MetricType type, const Labels& labels) {
  auto& metric = metricOf(name, help, type);
  metric.label.reserve(labels.size());
  for (const auto& [key, value] : labels) metric.label.push_back({key, value});
  return metric;
}

prometheus::ClientMetric& SnapshotBuilder::add(const std::string& name, const std::string& help,
                                               prometheus::MetricType type, Labels&& labels) {
  auto& metric = metricOf(name, help, type);
  metric.label.reserve(labels.size());
  for (auto& [key, value] : labels) metric.label.push_back({std::move(key), std::move(value)});
  return metric;
}

void SnapshotBuilder::gauge(const std::string& name, const std::string& help, const Labels& labels,
                            double value) {
  add(name, help, prometheus::MetricType::Gauge, labels).gauge.value = value;
}

void SnapshotBuilder::counter(const std::string& name, const std::string& help, const Labels& labels,
                              double value) {
  add(name, help, prometheus::MetricType::Counter, labels).counter.value = value;
}

void SnapshotBuilder::gauge(const std::string& name, const std::string& help, Labels&& labels, double value) {
  add(name, help, prometheus::MetricType::Gauge, std::move(labels)).gauge.value = value;
}

void SnapshotBuilder::counter(const std::string& name, const std::string& help, Labels&& labels, double value) {
  add(name, help, prometheus::MetricType::Counter, std::move(labels)).counter.value = value;
}

void SnapshotBuilder::histogram(const std::string& name, const std::string& help, const Labels& labels,
                                const prometheus::Histogram& histogram) {
  auto collected = histogram.Collect();
  auto& metric = add(name, help, prometheus::MetricType::Histogram, labels);
  metric.histogram = std::move(collected.histogram);
}

Families SnapshotBuilder::take() {
  index_.clear();
  return std::move(families_);
}

}  // namespace apphealth
