#pragma once
// Turns metric families into the Prometheus text exposition format.

#include <string>

#include "metrics/SnapshotBuilder.h"

namespace apphealth {

inline constexpr const char* kTextContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string renderText(const Families& families);

}  // namespace apphealth
