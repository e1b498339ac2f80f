#pragma once
// Turns metric families into the Prometheus text exposition format.
//
// Collectors render their snapshot once, when they publish it; a scrape only concatenates
// the pre-rendered text, grouping samples of the same family from different collectors
// under one HELP/TYPE header. Profiling showed serialization was >90% of a scrape's cost.

#include <string>
#include <vector>

#include "metrics/SnapshotBuilder.h"

namespace apphealth {

inline constexpr const char* kTextContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string renderText(const Families& families);

struct RenderedFamily {
  std::string name;
  std::string header;   // "# HELP ...\n# TYPE ...\n"
  std::string samples;  // the sample lines
};
using RenderedFamilies = std::vector<RenderedFamily>;

// Consumes the families: each is moved into the serializer's input, not copied.
RenderedFamilies renderFamilies(Families&& families);

// Joins several rendered snapshots; families with the same name are merged under the header
// of their first occurrence, in first-seen order.
std::string joinRendered(const std::vector<const RenderedFamilies*>& parts);

}  // namespace apphealth
