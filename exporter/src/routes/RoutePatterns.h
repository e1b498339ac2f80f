#pragma once
// Route patterns that turn request paths into a bounded set of label values. Shared by the
// access-log collector and the Web Vitals ingest, so both speak the same syntax:
//
//   /tutors/:id     `:name` matches exactly one non-empty path segment
//   /blog/*         `*` as the last segment matches the rest, zero or more segments
//   /about          anything else matches literally (case-sensitive, no percent-decoding)
//
// Query strings and fragments are ignored, so are a trailing slash and the scheme and host of
// an absolute-form target ("http://host/path"). When several patterns match, the most
// specific wins, segment by segment from the left: literal before `:param` before `*`
// (`/tutors/new` beats `/tutors/:id`, which beats `/tutors/*`). A path no pattern matches gets
// the label "other": the label set is the configured patterns plus "other", never more.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace apphealth {

class RoutePatterns {
 public:
  static constexpr std::size_t kMaxPatterns = 200;
  static inline const std::string kOther = "other";

  // Why `pattern` is not a valid pattern, or nullopt when it is.
  static std::optional<std::string> check(std::string_view pattern);
  // The path part of a request target: no scheme/host, query or fragment.
  static std::string_view pathOf(std::string_view target);

  RoutePatterns() = default;
  // Throws std::invalid_argument for an invalid or duplicate pattern, or too many of them.
  explicit RoutePatterns(const std::vector<std::string>& patterns);

  bool empty() const { return patterns_.empty(); }
  // Number of distinct labels: the patterns plus "other".
  std::size_t labelCount() const { return patterns_.size() + 1; }
  // Index of the best pattern for `target` (a path or full request target), or
  // otherIndex() when none matches. Indices follow the configured order.
  std::size_t index(std::string_view target) const;
  std::size_t otherIndex() const { return patterns_.size(); }
  const std::string& label(std::size_t index) const;
  // The label for `target`: the matching pattern's text, or "other".
  const std::string& match(std::string_view target) const { return label(index(target)); }

 private:
  enum class Kind { Literal, Param, Rest };
  struct Segment {
    Kind kind;
    std::string text;  // literal text; empty for the others
  };
  struct Pattern {
    std::string text;
    std::vector<Segment> segments;
  };
  static bool matches(const Pattern& pattern, std::string_view path);

  std::vector<Pattern> patterns_;     // configured order
  std::vector<std::size_t> byOrder_;  // indices, most specific first
};

}  // namespace apphealth
