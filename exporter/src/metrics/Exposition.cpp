#include "metrics/Exposition.h"

#include <prometheus/text_serializer.h>

#include <sstream>

namespace apphealth {

std::string renderText(const Families& families) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return std::move(out).str();
}

}  // namespace apphealth
