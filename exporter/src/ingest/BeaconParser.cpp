#include "ingest/BeaconParser.h"

#include <simdjson.h>

#include <cmath>

namespace apphealth::ingest {

namespace {

// Beyond these a value is a bug or an attack, not a page view: 10 minutes for any timing,
// 100 for CLS (real pages stay far below 1).
constexpr double kMaxTimingMs = 10 * 60 * 1000;
constexpr double kMaxCls = 100;
constexpr std::size_t kMaxStringField = 2048;

struct VitalName {
  std::string_view name;
  Vital vital;
};
constexpr VitalName kVitalNames[] = {{"LCP", Vital::LCP}, {"INP", Vital::INP},   {"CLS", Vital::CLS},
                                     {"FCP", Vital::FCP}, {"TTFB", Vital::TTFB}, {"FID", Vital::FID}};

// The parser keeps its buffers between calls; one per thread, as CivetWeb serves requests
// on many threads at once.
simdjson::dom::parser& threadParser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

std::string stringField(const simdjson::dom::object& object, std::string_view key) {
  std::string_view value;
  if (object[key].get_string().get(value) != simdjson::SUCCESS) return {};
  return std::string(value.substr(0, kMaxStringField));
}

// Parses `body` as one object or an array of objects; calls `each` per element.
template <typename Each>
std::string forEachObject(std::string_view body, std::size_t maxBatch, std::vector<RejectReason>& rejected,
                          Each&& each) {
  simdjson::dom::element root;
  // simdjson needs padding after the input; the padded_string copy provides it.
  const simdjson::padded_string padded(body);
  if (auto error = threadParser().parse(padded).get(root); error != simdjson::SUCCESS) {
    return std::string("malformed JSON: ") + simdjson::error_message(error);
  }
  simdjson::dom::array array;
  if (root.get_array().get(array) == simdjson::SUCCESS) {
    if (array.size() > maxBatch) {
      return "batch of " + std::to_string(array.size()) + " entries exceeds the limit of " + std::to_string(maxBatch);
    }
    for (simdjson::dom::element element : array) {
      simdjson::dom::object object;
      if (element.get_object().get(object) != simdjson::SUCCESS) {
        rejected.push_back(RejectReason::NotAnObject);
        continue;
      }
      each(object);
    }
    return {};
  }
  simdjson::dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) return "expected a JSON object or an array of objects";
  each(object);
  return {};
}

}  // namespace

const char* vitalMetricName(Vital vital) {
  switch (vital) {
    case Vital::LCP: return "lcp";
    case Vital::INP: return "inp";
    case Vital::CLS: return "cls";
    case Vital::FCP: return "fcp";
    case Vital::TTFB: return "ttfb";
    case Vital::FID: return "fid";
  }
  return "unknown";
}

bool vitalIsTime(Vital vital) { return vital != Vital::CLS; }

const char* rejectReasonLabel(RejectReason reason) {
  switch (reason) {
    case RejectReason::UnknownMetric: return "unknown_metric";
    case RejectReason::MissingField: return "missing_field";
    case RejectReason::InvalidValue: return "invalid_value";
    case RejectReason::AbsurdValue: return "absurd_value";
    case RejectReason::BatchTooLarge: return "batch_too_large";
    case RejectReason::NotAnObject: return "not_an_object";
  }
  return "unknown";
}

VitalsParseResult parseVitals(std::string_view body, std::size_t maxBatch) {
  VitalsParseResult result;
  result.error = forEachObject(body, maxBatch, result.rejected, [&](const simdjson::dom::object& object) {
    std::string_view name;
    if (object["name"].get_string().get(name) != simdjson::SUCCESS) {
      result.rejected.push_back(RejectReason::MissingField);
      return;
    }
    const VitalName* known = nullptr;
    for (const auto& v : kVitalNames) {
      if (v.name == name) known = &v;
    }
    if (known == nullptr) {
      result.rejected.push_back(RejectReason::UnknownMetric);
      return;
    }
    double value = 0;
    if (object["value"].get_double().get(value) != simdjson::SUCCESS) {
      // Integers are numbers too (get_double accepts them); anything else is not a value.
      result.rejected.push_back(object["value"].error() == simdjson::NO_SUCH_FIELD ? RejectReason::MissingField
                                                                                  : RejectReason::InvalidValue);
      return;
    }
    if (!std::isfinite(value) || value < 0) {
      result.rejected.push_back(RejectReason::InvalidValue);
      return;
    }
    const bool isTime = vitalIsTime(known->vital);
    if (value > (isTime ? kMaxTimingMs : kMaxCls)) {
      result.rejected.push_back(RejectReason::AbsurdValue);
      return;
    }
    VitalObservation observation;
    observation.vital = known->vital;
    observation.value = isTime ? value / 1000.0 : value;
    observation.id = stringField(object, "id");
    observation.page = stringField(object, "page");
    observation.device = stringField(object, "device");
    observation.navigationType = stringField(object, "navigationType");
    observation.pageViewId = stringField(object, "pageViewId");
    result.accepted.push_back(std::move(observation));
  });
  if (!result.error.empty()) result.accepted.clear();
  return result;
}

ErrorsParseResult parseErrors(std::string_view body, std::size_t maxBatch) {
  ErrorsParseResult result;
  result.error = forEachObject(body, maxBatch, result.rejected, [&](const simdjson::dom::object& object) {
    ClientErrorReport report;
    report.message = stringField(object, "message");
    if (report.message.empty()) {
      result.rejected.push_back(RejectReason::MissingField);
      return;
    }
    report.level = stringField(object, "level");
    if (report.level != "global" && report.level != "page" && report.level != "component") report.level = "other";
    report.severity = stringField(object, "severity");
    if (report.severity != "fatal" && report.severity != "error" && report.severity != "warning" &&
        report.severity != "info") {
      report.severity = "error";
    }
    report.component = stringField(object, "component");
    report.page = stringField(object, "page");
    result.accepted.push_back(std::move(report));
  });
  if (!result.error.empty()) result.accepted.clear();
  return result;
}

}  // namespace apphealth::ingest
