#include "ingest/BeaconParser.h"

#include <simdjson.h>

#include <cmath>
#include <optional>

#include "util/Utf8.h"

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

// Bodies up to this size are parsed with the thread's own parser, which keeps its buffers
// between calls; larger ones get a parser of their own, freed afterwards, so a thread that
// once parsed a 16 MiB body does not keep 16 MiB (times simdjson's working buffers) for good.
constexpr std::size_t kKeptParserCapacity = 64 * 1024;

std::string malformed(simdjson::error_code error) { return std::string("malformed JSON: ") + simdjson::error_message(error); }

// A value the entry cannot use (wrong type, a number out of range) drops the entry; any other
// error means the JSON itself is broken, which fails the whole body.
bool entryLevelError(simdjson::error_code error) {
  return error == simdjson::INCORRECT_TYPE || error == simdjson::NUMBER_ERROR ||
         error == simdjson::NUMBER_OUT_OF_RANGE || error == simdjson::STRING_ERROR;
}

std::string_view cut(std::string_view value) { return utf8Prefix(value, kMaxStringField); }

// Parses `body` as one object or an array of objects and calls `each` per object; `each`
// returns a JSON-level error (or SUCCESS). simdjson's On-Demand API parses a value only when
// asked for it, so a number out of double range in one entry (or in a field nobody reads)
// costs that entry, not the batch.
template <typename Each>
std::string forEachObject(std::string_view body, std::size_t maxBatch, std::vector<RejectReason>& rejected,
                          Each&& each) {
  thread_local simdjson::ondemand::parser kept;
  std::optional<simdjson::ondemand::parser> own;
  simdjson::ondemand::parser& parser = body.size() <= kKeptParserCapacity ? kept : own.emplace();
  // simdjson needs padding after the input; the padded_string copy provides it.
  const simdjson::padded_string padded(body);
  simdjson::ondemand::document doc;
  if (auto error = parser.iterate(padded).get(doc)) return malformed(error);
  // Nothing but whitespace may follow the root value.
  std::string_view root;
  if (auto error = doc.raw_json().get(root)) return malformed(error);
  const std::string_view rest(root.data() + root.size(), padded.data() + padded.size() - (root.data() + root.size()));
  if (rest.find_first_not_of(" \t\r\n") != std::string_view::npos) return "malformed JSON: content after the value";
  doc.rewind();

  simdjson::ondemand::json_type type;
  if (auto error = doc.type().get(type)) return malformed(error);
  if (type == simdjson::ondemand::json_type::object) {
    simdjson::ondemand::object object;
    if (auto error = doc.get_object().get(object)) return malformed(error);
    if (auto error = each(object)) return malformed(error);
    return {};
  }
  if (type != simdjson::ondemand::json_type::array) return "expected a JSON object or an array of objects";
  simdjson::ondemand::array array;
  if (auto error = doc.get_array().get(array)) return malformed(error);
  std::size_t count = 0;
  if (auto error = array.count_elements().get(count)) return malformed(error);
  if (count > maxBatch) {
    return "batch of " + std::to_string(count) + " entries exceeds the limit of " + std::to_string(maxBatch);
  }
  for (auto element : array) {
    simdjson::ondemand::value value;
    if (auto error = element.get(value)) return malformed(error);
    simdjson::ondemand::object object;
    if (value.get_object().get(object) != simdjson::SUCCESS) {
      rejected.push_back(RejectReason::NotAnObject);
      continue;
    }
    if (auto error = each(object)) return malformed(error);
  }
  return {};
}

// Calls `field(key, value)` for every field of `object`; returns the first JSON-level error.
template <typename Field>
simdjson::error_code forEachField(simdjson::ondemand::object& object, Field&& field) {
  for (auto member : object) {
    simdjson::ondemand::field entry;
    if (auto error = std::move(member).get(entry)) return error;
    std::string_view key;
    if (auto error = entry.unescaped_key().get(key)) return error;
    if (auto error = field(key, entry.value()); error && !entryLevelError(error)) return error;
  }
  return simdjson::SUCCESS;
}

// Reads a string field into `out` (cut to kMaxStringField); other types leave it empty.
simdjson::error_code readString(simdjson::ondemand::value& value, std::string& out) {
  std::string_view text;
  const auto error = value.get_string().get(text);
  if (!error) out.assign(cut(text));
  return error;
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
  result.error = forEachObject(body, maxBatch, result.rejected, [&](simdjson::ondemand::object& object) {
    std::string name;
    std::optional<simdjson::error_code> valueError;  // nullopt: no "value" field
    double value = 0;
    VitalObservation observation;
    const auto error = forEachField(object, [&](std::string_view key, simdjson::ondemand::value& field) {
      if (key == "name") return readString(field, name);
      if (key == "value") return *(valueError = field.get_double().get(value));
      if (key == "id") return readString(field, observation.id);
      if (key == "page") return readString(field, observation.page);
      if (key == "device") return readString(field, observation.device);
      if (key == "navigationType") return readString(field, observation.navigationType);
      if (key == "pageViewId") return readString(field, observation.pageViewId);
      return simdjson::SUCCESS;  // anything else (rating, delta, attribution, ...) is skipped unparsed
    });
    if (error) return error;
    if (name.empty()) {
      result.rejected.push_back(RejectReason::MissingField);
      return simdjson::SUCCESS;
    }
    const VitalName* known = nullptr;
    for (const auto& v : kVitalNames) {
      if (v.name == name) known = &v;
    }
    if (known == nullptr) {
      result.rejected.push_back(RejectReason::UnknownMetric);
      return simdjson::SUCCESS;
    }
    // Integers are numbers too (get_double accepts them); a number beyond double's range
    // (1e309) is a parse error of this value alone, and so is anything that is not a number.
    if (!valueError) {
      result.rejected.push_back(RejectReason::MissingField);
      return simdjson::SUCCESS;
    }
    if (*valueError != simdjson::SUCCESS || !std::isfinite(value) || value < 0) {
      result.rejected.push_back(RejectReason::InvalidValue);
      return simdjson::SUCCESS;
    }
    const bool isTime = vitalIsTime(known->vital);
    if (value > (isTime ? kMaxTimingMs : kMaxCls)) {
      result.rejected.push_back(RejectReason::AbsurdValue);
      return simdjson::SUCCESS;
    }
    observation.vital = known->vital;
    observation.value = isTime ? value / 1000.0 : value;
    result.accepted.push_back(std::move(observation));
    return simdjson::SUCCESS;
  });
  if (!result.error.empty()) result.accepted.clear();
  return result;
}

ErrorsParseResult parseErrors(std::string_view body, std::size_t maxBatch) {
  ErrorsParseResult result;
  result.error = forEachObject(body, maxBatch, result.rejected, [&](simdjson::ondemand::object& object) {
    ClientErrorReport report;
    const auto error = forEachField(object, [&](std::string_view key, simdjson::ondemand::value& field) {
      if (key == "message") return readString(field, report.message);
      if (key == "level") return readString(field, report.level);
      if (key == "severity") return readString(field, report.severity);
      if (key == "component") return readString(field, report.component);
      if (key == "page") return readString(field, report.page);
      return simdjson::SUCCESS;
    });
    if (error) return error;
    if (report.message.empty()) {
      result.rejected.push_back(RejectReason::MissingField);
      return simdjson::SUCCESS;
    }
    if (report.level != "global" && report.level != "page" && report.level != "component") report.level = "other";
    if (report.severity != "fatal" && report.severity != "error" && report.severity != "warning" &&
        report.severity != "info") {
      report.severity = "error";
    }
    result.accepted.push_back(std::move(report));
    return simdjson::SUCCESS;
  });
  if (!result.error.empty()) result.accepted.clear();
  return result;
}

}  // namespace apphealth::ingest
