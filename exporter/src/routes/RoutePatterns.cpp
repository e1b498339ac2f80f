#include "routes/RoutePatterns.h"

#include <algorithm>
#include <stdexcept>

namespace apphealth {

namespace {

// Splits "/a/b/" into {"a", "b"}: empty segments (doubled or trailing slashes) are skipped.
template <typename F>
void forEachSegment(std::string_view path, F&& each) {
  std::size_t pos = 0;
  while (pos < path.size()) {
    while (pos < path.size() && path[pos] == '/') ++pos;
    if (pos >= path.size()) break;
    const auto end = std::min(path.find('/', pos), path.size());
    if (!each(path.substr(pos, end - pos))) return;
    pos = end;
  }
}

bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

}  // namespace

std::optional<std::string> RoutePatterns::check(std::string_view pattern) {
  if (pattern.empty() || pattern.front() != '/') return "a route pattern must start with '/'";
  if (pattern.find_first_of("?# \t") != std::string_view::npos) {
    return "a route pattern matches the path only: no '?', '#' or spaces";
  }
  if (pattern.find("//") != std::string_view::npos) return "a route pattern has an empty segment ('//')";
  std::optional<std::string> problem;
  bool sawRest = false;
  forEachSegment(pattern, [&](std::string_view segment) {
    if (sawRest) {
      problem = "'*' must be the last segment of a route pattern";
      return false;
    }
    if (segment == "*") {
      sawRest = true;
    } else if (segment.find('*') != std::string_view::npos) {
      problem = "'*' must be a whole segment ('/blog/*'), not part of one";
    } else if (segment.front() == ':') {
      if (segment.size() == 1 || !std::all_of(segment.begin() + 1, segment.end(), isNameChar)) {
        problem = "a ':' segment needs a name of letters, digits or '_' (e.g. ':id')";
      }
    } else if (segment.find(':') != std::string_view::npos) {
      problem = "':' must start a whole segment ('/tutors/:id'), not sit inside one";
    }
    return !problem;
  });
  return problem;
}

std::string_view RoutePatterns::pathOf(std::string_view target) {
  if (auto end = target.find_first_of("?#"); end != std::string_view::npos) target = target.substr(0, end);
  // Absolute form (proxies, some clients): "http://host:port/path".
  if (auto scheme = target.find("://"); scheme != std::string_view::npos && target.front() != '/') {
    const auto slash = target.find('/', scheme + 3);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  return target;
}

RoutePatterns::RoutePatterns(const std::vector<std::string>& patterns) {
  if (patterns.size() > kMaxPatterns) {
    throw std::invalid_argument("at most " + std::to_string(kMaxPatterns) + " route patterns");
  }
  for (const auto& text : patterns) {
    if (auto problem = check(text)) throw std::invalid_argument(text + ": " + *problem);
    Pattern pattern;
    pattern.text = text;
    forEachSegment(text, [&](std::string_view segment) {
      if (segment == "*") {
        pattern.segments.push_back({Kind::Rest, {}});
      } else if (segment.front() == ':') {
        pattern.segments.push_back({Kind::Param, {}});
      } else {
        pattern.segments.push_back({Kind::Literal, std::string(segment)});
      }
      return true;
    });
    for (const auto& other : patterns_) {
      if (other.text == text) throw std::invalid_argument("duplicate route pattern " + text);
    }
    patterns_.push_back(std::move(pattern));
  }
  byOrder_.resize(patterns_.size());
  for (std::size_t i = 0; i < byOrder_.size(); ++i) byOrder_[i] = i;
  // Most specific first: at the first position where two patterns differ in kind, literal
  // beats param beats rest; a pattern that has ended sorts before a rest segment. Ties keep
  // the configured order.
  auto rank = [](const Pattern& p, std::size_t i) {
    if (i >= p.segments.size()) return 0;
    switch (p.segments[i].kind) {
      case Kind::Literal: return 1;
      case Kind::Param: return 2;
      case Kind::Rest: return 3;
    }
    return 3;
  };
  std::stable_sort(byOrder_.begin(), byOrder_.end(), [&](std::size_t a, std::size_t b) {
    const auto& pa = patterns_[a];
    const auto& pb = patterns_[b];
    const auto n = std::max(pa.segments.size(), pb.segments.size());
    for (std::size_t i = 0; i < n; ++i) {
      const int ra = rank(pa, i);
      const int rb = rank(pb, i);
      if (ra != rb) return ra < rb;
    }
    return false;
  });
}

bool RoutePatterns::matches(const Pattern& pattern, std::string_view path) {
  std::size_t i = 0;
  bool ok = true;
  bool rest = false;
  forEachSegment(path, [&](std::string_view segment) {
    if (i >= pattern.segments.size()) {
      ok = false;
      return false;
    }
    const auto& want = pattern.segments[i];
    if (want.kind == Kind::Rest) {
      rest = true;
      return false;
    }
    if (want.kind == Kind::Literal && want.text != segment) {
      ok = false;
      return false;
    }
    ++i;
    return true;
  });
  if (!ok) return false;
  if (rest) return true;
  // All path segments consumed: the pattern must be done too, or end in a rest segment.
  return i == pattern.segments.size() ||
         (i + 1 == pattern.segments.size() && pattern.segments[i].kind == Kind::Rest);
}

std::size_t RoutePatterns::index(std::string_view target) const {
  if (patterns_.empty()) return otherIndex();
  const auto path = pathOf(target);
  if (path.empty() || path.front() != '/') return otherIndex();  // "-", "*", garbage
  for (std::size_t i : byOrder_) {
    if (matches(patterns_[i], path)) return i;
  }
  return otherIndex();
}

const std::string& RoutePatterns::label(std::size_t index) const {
  return index < patterns_.size() ? patterns_[index].text : kOther;
}

}  // namespace apphealth
