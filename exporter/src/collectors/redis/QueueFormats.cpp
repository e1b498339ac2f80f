#include "collectors/redis/QueueFormats.h"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <set>

#include "util/Base64.h"
#include "util/JsonEscape.h"

namespace apphealth {

namespace {

// One parser per sampling thread: parsing thousands of small documents per sample without
// allocating a parser for each. A parsed element is valid only until the next parse on the
// same thread, so callers copy what they need before parsing again.
simdjson::dom::parser& jsonParser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

bool parseJson(std::string_view text, simdjson::dom::element& out) {
  return jsonParser().parse(text.data(), text.size(), true).get(out) == simdjson::SUCCESS;
}

std::optional<std::string> stringField(simdjson::dom::element object, std::string_view field) {
  std::string_view value;
  if (object[field].get_string().get(value) != simdjson::SUCCESS) return std::nullopt;
  return std::string(value);
}

std::optional<double> positiveNumber(simdjson::dom::element value) {
  double number = 0;
  if (value.get_double().get(number) != simdjson::SUCCESS) {
    int64_t integer = 0;
    uint64_t unsignedInteger = 0;
    if (value.get_int64().get(integer) == simdjson::SUCCESS) {
      number = static_cast<double>(integer);
    } else if (value.get_uint64().get(unsignedInteger) == simdjson::SUCCESS) {
      number = static_cast<double>(unsignedInteger);
    } else {
      return std::nullopt;
    }
  }
  if (!std::isfinite(number) || number <= 0) return std::nullopt;
  return number;
}

bool digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::optional<double> parseIsoTime(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS, checked digit by digit (strptime would accept "2024-5-1").
  if (text.size() < 19) return std::nullopt;
  static constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd";
  for (std::size_t i = 0; i < kShape.size(); ++i) {
    const bool ok = kShape[i] == 'd' ? digit(text[i])
                    : i == 10        ? text[i] == 'T' || text[i] == ' '  // "2024-05-01 12:00:00" too
                                     : text[i] == kShape[i];
    if (!ok) return std::nullopt;
  }
  const auto number = [&](std::size_t at, std::size_t len) {
    int value = 0;
    for (std::size_t i = at; i < at + len; ++i) value = value * 10 + (text[i] - '0');
    return value;
  };
  std::tm tm{};
  tm.tm_year = number(0, 4) - 1900;
  tm.tm_mon = number(5, 2) - 1;
  tm.tm_mday = number(8, 2);
  tm.tm_hour = number(11, 2);
  tm.tm_min = number(14, 2);
  tm.tm_sec = number(17, 2);
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
    return std::nullopt;
  }
  double seconds = static_cast<double>(timegm(&tm));
  std::size_t at = 19;
  if (at < text.size() && text[at] == '.') {
    ++at;
    if (at >= text.size() || !digit(text[at])) return std::nullopt;
    double scale = 0.1;
    for (; at < text.size() && digit(text[at]); ++at, scale /= 10) seconds += (text[at] - '0') * scale;
  }
  if (at < text.size() && text[at] == 'Z') {
    ++at;
  } else if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
    const int sign = text[at] == '+' ? 1 : -1;
    ++at;
    if (at + 2 > text.size() || !digit(text[at]) || !digit(text[at + 1])) return std::nullopt;
    const int hours = number(at, 2);
    at += 2;
    if (at < text.size() && text[at] == ':') ++at;
    if (at + 2 > text.size() || !digit(text[at]) || !digit(text[at + 1])) return std::nullopt;
    const int minutes = number(at, 2);
    at += 2;
    if (hours > 23 || minutes > 59) return std::nullopt;
    seconds -= sign * (hours * 3600 + minutes * 60);  // local = UTC + offset
  }
  if (at != text.size()) return std::nullopt;
  return seconds;
}

std::optional<double> parseMillis(std::string_view text) {
  if (text.empty() || text.size() > 32) return std::nullopt;
  const std::string copy(text);  // strtod needs a terminated string
  char* end = nullptr;
  const double ms = std::strtod(copy.c_str(), &end);
  if (end == copy.c_str() || *end != '\0' || !std::isfinite(ms) || ms <= 0) return std::nullopt;
  return ms / 1000.0;
}

std::optional<double> parseJsonTime(std::string_view json, std::string_view field) {
  simdjson::dom::element doc;
  if (!parseJson(json, doc)) return std::nullopt;
  simdjson::dom::element value;
  if (doc[field].get(value) != simdjson::SUCCESS) return std::nullopt;
  auto number = positiveNumber(value);
  if (!number) return std::nullopt;
  // Sidekiq 8 stores milliseconds; earlier versions (and Laravel) seconds.
  return *number > 1e11 ? *number / 1000.0 : *number;
}

bool jsonHasField(std::string_view json, std::string_view field) {
  simdjson::dom::element doc;
  simdjson::dom::element value;
  return parseJson(json, doc) && doc[field].get(value) == simdjson::SUCCESS;
}

std::optional<KombuUnacked> parseKombuUnacked(std::string_view value) {
  simdjson::dom::element doc;
  if (!parseJson(value, doc)) return std::nullopt;
  simdjson::dom::array entry;
  if (doc.get_array().get(entry) != simdjson::SUCCESS || entry.size() != 3) return std::nullopt;
  KombuUnacked out;
  std::string_view text;
  if (entry.at(1).get_string().get(text) != simdjson::SUCCESS) return std::nullopt;
  out.exchange = std::string(text);
  if (entry.at(2).get_string().get(text) != simdjson::SUCCESS) return std::nullopt;
  out.routingKey = std::string(text);
  simdjson::dom::object headers;
  if (entry.at(0)["headers"].get_object().get(headers) == simdjson::SUCCESS) {
    if (headers["id"].get_string().get(text) == simdjson::SUCCESS) out.taskId = std::string(text);
    simdjson::dom::element eta;
    if (headers["eta"].get(eta) == simdjson::SUCCESS && !eta.is_null()) {
      if (eta.get_string().get(text) == simdjson::SUCCESS) out.eta = parseIsoTime(text);
      out.etaUnreadable = !out.eta;
    }
  }
  return out;
}

std::optional<KombuMessage> parseKombuMessage(std::string_view json) {
  simdjson::dom::element doc;
  if (!parseJson(json, doc)) return std::nullopt;
  auto body = stringField(doc, "body");
  if (!body) return std::nullopt;
  KombuMessage out;
  std::string_view text;
  if (doc["headers"]["ticket"].get_string().get(text) == simdjson::SUCCESS) out.ticket = std::string(text);
  std::string_view encoding;
  if (doc["properties"]["body_encoding"].get_string().get(encoding) == simdjson::SUCCESS && encoding == "base64") {
    auto decoded = base64Decode(*body);
    if (!decoded) return std::nullopt;
    out.body = std::move(*decoded);
  } else {
    out.body = std::move(*body);
  }
  return out;
}

std::string celeryControlRequest(std::string_view method, std::string_view ticket, std::string_view replyRoutingKey,
                                 std::string_view deliveryTag, double expires) {
  // kombu.pidbox.Mailbox._broadcast: the body as Mailbox._publish writes it; the envelope as
  // kombu.transport.virtual.Channel.prepare_message plus the Redis transport's _put_fanout.
  std::string body = "{\"method\": \"";
  appendJsonEscaped(body, method);
  body += "\", \"arguments\": {}, \"destination\": null, \"pattern\": null, \"matcher\": null, \"ticket\": \"";
  appendJsonEscaped(body, ticket);
  body += "\", \"reply_to\": {\"exchange\": \"reply.celery.pidbox\", \"routing_key\": \"";
  appendJsonEscaped(body, replyRoutingKey);
  body += "\"}}";
  char expiresText[64];
  std::snprintf(expiresText, sizeof expiresText, "%.6f", expires);
  std::string message = "{\"body\": \"" + base64Encode(body) +
                        "\", \"content-encoding\": \"utf-8\", \"content-type\": \"application/json\", "
                        "\"headers\": {\"clock\": 1, \"expires\": " +
                        expiresText +
                        "}, \"properties\": {\"delivery_mode\": 2, \"delivery_info\": {\"exchange\": "
                        "\"celery.pidbox\", \"routing_key\": \"\"}, \"priority\": 0, \"body_encoding\": \"base64\", "
                        "\"delivery_tag\": \"";
  appendJsonEscaped(message, deliveryTag);
  message += "\"}}";
  return message;
}

namespace {

// {"<worker>": <array>}: the one worker name and its array.
bool singleWorker(std::string_view body, std::string& worker, simdjson::dom::array& items) {
  simdjson::dom::element doc;
  simdjson::dom::object object;
  if (!parseJson(body, doc) || doc.get_object().get(object) != simdjson::SUCCESS) return false;
  if (object.size() != 1) return false;
  for (auto field : object) {
    worker = std::string(field.key);
    return field.value.get_array().get(items) == simdjson::SUCCESS;
  }
  return false;
}

}  // namespace

std::optional<CeleryWorkerQueues> parseCeleryActiveQueues(std::string_view body) {
  CeleryWorkerQueues out;
  simdjson::dom::array items;
  if (!singleWorker(body, out.worker, items)) return std::nullopt;
  for (auto item : items) {
    auto name = stringField(item, "name");
    if (!name) continue;
    out.queues.emplace_back(std::move(*name), stringField(item, "routing_key").value_or(""));
  }
  return out;
}

std::optional<CeleryWorkerActive> parseCeleryActive(std::string_view body) {
  CeleryWorkerActive out;
  simdjson::dom::array items;
  if (!singleWorker(body, out.worker, items)) return std::nullopt;
  for (auto item : items) {
    std::string_view routingKey;
    if (item["delivery_info"]["routing_key"].get_string().get(routingKey) != simdjson::SUCCESS) routingKey = {};
    out.tasks.emplace_back(stringField(item, "id").value_or(""), std::string(routingKey));
  }
  return out;
}

std::optional<std::vector<std::string>> parseSidekiqQueues(std::string_view infoJson) {
  simdjson::dom::element doc;
  if (!parseJson(infoJson, doc)) return std::nullopt;
  std::set<std::string> queues;
  bool found = false;
  simdjson::dom::array list;
  if (doc["queues"].get_array().get(list) == simdjson::SUCCESS) {
    found = true;
    for (auto q : list) {
      std::string_view name;
      if (q.get_string().get(name) == simdjson::SUCCESS) queues.emplace(name);
    }
  }
  // Sidekiq 7/8: {"capsules": {"default": {"weights": {"critical": 0, ...}}}}.
  simdjson::dom::object capsules;
  if (doc["capsules"].get_object().get(capsules) == simdjson::SUCCESS) {
    for (auto capsule : capsules) {
      simdjson::dom::object weights;
      if (capsule.value["weights"].get_object().get(weights) != simdjson::SUCCESS) continue;
      found = true;
      for (auto weight : weights) queues.emplace(weight.key);
    }
  }
  if (!found) return std::nullopt;
  return std::vector<std::string>(queues.begin(), queues.end());
}

std::optional<std::string> parseSidekiqWorkQueue(std::string_view json) {
  simdjson::dom::element doc;
  if (!parseJson(json, doc)) return std::nullopt;
  return stringField(doc, "queue");
}

std::vector<std::string_view> clientListNames(std::string_view clientList) {
  std::vector<std::string_view> names;
  std::size_t lineStart = 0;
  while (lineStart < clientList.size()) {
    std::size_t lineEnd = clientList.find('\n', lineStart);
    if (lineEnd == std::string_view::npos) lineEnd = clientList.size();
    std::string_view line = clientList.substr(lineStart, lineEnd - lineStart);
    lineStart = lineEnd + 1;
    // Fields are "key=value" separated by single spaces; a client name cannot contain a space.
    std::size_t at = line.find(" name=");
    if (line.substr(0, 5) == "name=") {
      at = 0;
    } else if (at != std::string_view::npos) {
      at += 1;
    } else {
      continue;
    }
    std::string_view rest = line.substr(at + 5);
    const std::size_t end = rest.find(' ');
    std::string_view name = rest.substr(0, end);
    if (!name.empty() && name.back() == '\r') name.remove_suffix(1);
    if (!name.empty()) names.push_back(name);
  }
  return names;
}

}  // namespace apphealth
