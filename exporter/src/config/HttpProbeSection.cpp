// The `http_probes:` section.

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <regex>

#include "config/LoadContext.h"

namespace apphealth {

namespace {

const std::set<std::string> kMethods = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// RFC 9110 token characters: what a header field name may consist of.
bool isHeaderName(const std::string& name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
  });
}

bool isHeaderValue(const std::string& value) {
  return std::none_of(value.begin(), value.end(), [](unsigned char c) { return c == '\r' || c == '\n' || c == 0; });
}

// Returns the scheme in lower case, or "" when libcurl cannot parse the URL.
std::string urlScheme(const std::string& url) {
  CURLU* handle = curl_url();
  std::string scheme;
  if (handle != nullptr && curl_url_set(handle, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
    char* part = nullptr;
    if (curl_url_get(handle, CURLUPART_SCHEME, &part, 0) == CURLUE_OK && part != nullptr) scheme = lower(part);
    curl_free(part);
  }
  curl_url_cleanup(handle);
  return scheme;
}

bool urlHasPassword(const std::string& url) {
  CURLU* handle = curl_url();
  bool has = false;
  if (handle != nullptr && curl_url_set(handle, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
    char* part = nullptr;
    has = curl_url_get(handle, CURLUPART_PASSWORD, &part, 0) == CURLUE_OK && part != nullptr;
    curl_free(part);
  }
  curl_url_cleanup(handle);
  return has;
}

void parseUrl(LoadContext& ctx, YamlReader::Map& map, HttpProbeTarget& t) {
  if (!map.getString("url", t.url, true)) return;
  const auto scheme = urlScheme(t.url);
  if (scheme.empty()) {
    ctx.reader().error(map.node("url"), "url '" + t.url + "' is not a valid URL");
  } else if (scheme != "http" && scheme != "https") {
    ctx.reader().error(map.node("url"), "url must start with http:// or https://, got '" + scheme + "://'");
  } else if (urlHasPassword(t.url)) {
    ctx.reader().error(map.node("url"), "the url must not contain a password: use username with password_file or password_env");
  }
}

void parseAuth(LoadContext& ctx, YamlReader::Map& map, HttpProbeTarget& t) {
  map.getString("username", t.username);
  ctx.secret(map, t.password);
  if (!t.password.empty() && t.username.empty()) {
    ctx.reader().error(map.node(t.password.file.empty() ? "password_env" : "password_file"),
                       "a password needs a username (HTTP basic auth)");
  }
}

void parseStatusCodes(LoadContext& ctx, YamlReader::Map& map, HttpProbeTarget& t) {
  auto n = map.node("valid_status_codes");
  if (!n.IsDefined() || n.IsNull()) return;
  if (!n.IsSequence() || n.size() == 0) {
    ctx.reader().error(n, "'valid_status_codes' must be a non-empty list of HTTP status codes such as [200, 204]");
    return;
  }
  for (const auto& item : n) {
    int code = 0;
    if (!item.IsScalar() || !YAML::convert<int>::decode(item, code) || code < 100 || code > 599) {
      ctx.reader().error(item, "'valid_status_codes' entries must be status codes from 100 to 599, got '" +
                                   (item.IsScalar() ? item.Scalar() : std::string("a collection")) + "'");
      continue;
    }
    t.valid_status_codes.push_back(code);
  }
}

void parseHeaders(LoadContext& ctx, YamlReader::Map& map, HttpProbeTarget& t) {
  auto n = map.node("headers");
  if (!n.IsDefined() || n.IsNull()) return;
  if (!n.IsMap()) {
    ctx.reader().error(n, "'headers' must be a mapping of header names to values");
    return;
  }
  std::set<std::string> seen;
  for (const auto& entry : n) {
    const auto& key = entry.first;
    const auto& value = entry.second;
    if (!key.IsScalar() || !isHeaderName(key.Scalar())) {
      ctx.reader().error(key, "header name '" + (key.IsScalar() ? key.Scalar() : std::string("?")) +
                                  "' is not a valid HTTP field name");
      continue;
    }
    if (!seen.insert(lower(key.Scalar())).second) {
      ctx.reader().error(key, "duplicate header '" + key.Scalar() + "' (names are case-insensitive)");
      continue;
    }
    if (!value.IsScalar() && !value.IsNull()) {
      ctx.reader().error(value, "the value of header '" + key.Scalar() + "' must be a string");
      continue;
    }
    const std::string text = value.IsNull() ? "" : value.Scalar();
    if (!isHeaderValue(text)) {
      ctx.reader().error(value, "the value of header '" + key.Scalar() + "' must not contain line breaks");
      continue;
    }
    t.headers.emplace_back(key.Scalar(), text);
  }
}

void parseTls(LoadContext& ctx, YamlReader::Map& map, HttpProbeTarget& t) {
  map.getBool("insecure_skip_verify", t.insecure_skip_verify);
  if (!map.getString("ca_file", t.ca_file)) return;
  if (t.insecure_skip_verify) {
    ctx.reader().error(map.node("ca_file"), "set either ca_file or insecure_skip_verify, not both");
  } else if (!std::ifstream(t.ca_file)) {
    ctx.reader().error(map.node("ca_file"), "ca_file '" + t.ca_file + "' cannot be read");
  }
}

}  // namespace

std::optional<HttpProbeTarget> parseHttpProbeTarget(LoadContext& ctx, const YAML::Node& node) {
  YamlReader::Map map(ctx.reader(), node, "an http probe");
  if (!map.valid()) return std::nullopt;
  HttpProbeTarget t;
  ctx.checkName(map, "http probe", t.name);
  parseUrl(ctx, map, t);

  if (map.getString("method", t.method)) {
    for (auto& c : t.method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (!kMethods.count(t.method)) {
      ctx.reader().error(map.node("method"), "method must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    }
  }
  map.getString("body", t.body);
  if (!t.body.empty() && t.method == "HEAD") {
    ctx.reader().error(map.node("body"), "a HEAD request cannot carry a body");
  }
  parseStatusCodes(ctx, map, t);

  if (map.getString("body_regex", t.body_regex)) {
    if (t.method == "HEAD") {
      ctx.reader().error(map.node("body_regex"), "body_regex needs a response body: not with method HEAD");
    }
    try {
      std::regex check(t.body_regex, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      ctx.reader().error(map.node("body_regex"), "body_regex is not a valid ECMAScript regex: " + std::string(e.what()));
    }
  }
  parseHeaders(ctx, map, t);
  parseAuth(ctx, map, t);
  map.getBool("follow_redirects", t.follow_redirects);
  parseTls(ctx, map, t);
  ctx.intervalAndTimeout(map, t.interval, t.timeout);
  return t;
}

}  // namespace apphealth
