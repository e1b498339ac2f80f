// libFuzzer target for everything the beacon endpoints do with outside input: the Web Vitals
// and error-report parsers, the route matcher and the error-message sanitizer. Built with
// clang -fsanitize=fuzzer,address,undefined by scripts/fuzz.sh.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "ingest/BeaconParser.h"
#include "ingest/Sanitize.h"
#include "routes/RoutePatterns.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  static const apphealth::RoutePatterns routes({"/tutors/:id", "/blog/*", "/", "/a/:b/c/*"});

  auto vitals = apphealth::ingest::parseVitals(body, 50);
  for (const auto& v : vitals.accepted) {
    // Every accepted value must be finite, non-negative and within the absurdity caps.
    if (!(v.value >= 0 && v.value <= 600)) __builtin_trap();
    (void)routes.match(v.page);
  }
  auto errors = apphealth::ingest::parseErrors(body, 50);
  for (const auto& e : errors.accepted) {
    // Free text from a valid body stays valid UTF-8 through masking and cutting, within budget.
    const std::string clean = apphealth::ingest::sanitizeMessage(e.message);
    if (clean.size() > apphealth::ingest::kMaxLoggedMessage) __builtin_trap();
    if (!simdjson::validate_utf8(clean.data(), clean.size())) __builtin_trap();
    const std::string component = apphealth::ingest::sanitizeText(e.component, apphealth::ingest::kMaxLoggedComponent);
    if (component.size() > apphealth::ingest::kMaxLoggedComponent) __builtin_trap();
    if (!simdjson::validate_utf8(component.data(), component.size())) __builtin_trap();
    (void)routes.match(e.page);
  }
  (void)routes.match(body);
  (void)apphealth::ingest::sanitizeMessage(std::string(body));
  return 0;
}
