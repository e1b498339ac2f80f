#include "metrics/Exposition.h"

#include <prometheus/text_serializer.h>

#include <sstream>
#include <unordered_map>

namespace apphealth {

std::string renderText(const Families& families) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return std::move(out).str();
}

RenderedFamilies renderFamilies(Families&& families) {
  RenderedFamilies rendered;
  rendered.reserve(families.size());
  Families one(1);
  for (auto& family : families) {
    one.front() = std::move(family);
    std::string text = renderText(one);
    // The serializer writes exactly two header lines (HELP escapes newlines in the text).
    const auto firstNewline = text.find('\n');
    const auto headerEnd = firstNewline == std::string::npos ? std::string::npos : text.find('\n', firstNewline + 1);
    RenderedFamily r;
    r.name = std::move(one.front().name);
    if (headerEnd != std::string::npos) {
      r.header = text.substr(0, headerEnd + 1);
      text.erase(0, headerEnd + 1);
    }
    r.samples = std::move(text);
    rendered.push_back(std::move(r));
  }
  return rendered;
}

std::string joinRendered(const std::vector<const RenderedFamilies*>& parts) {
  struct Group {
    const RenderedFamily* first;
    std::vector<const std::string*> samples;
  };
  std::vector<Group> groups;
  std::unordered_map<std::string_view, std::size_t> index;
  std::size_t size = 0;
  for (const auto* part : parts) {
    for (const auto& family : *part) {
      auto [it, inserted] = index.try_emplace(family.name, groups.size());
      if (inserted) {
        groups.push_back({&family, {}});
        size += family.header.size();
      }
      groups[it->second].samples.push_back(&family.samples);
      size += family.samples.size();
    }
  }
  std::string out;
  out.reserve(size);
  for (const auto& group : groups) {
    out += group.first->header;
    for (const auto* samples : group.samples) out += *samples;
  }
  return out;
}

}  // namespace apphealth
