#include "clients/S3Client.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <memory>
#include <mutex>

#include "clients/CurlEasy.h"

namespace apphealth {

namespace {

void xmlInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { xmlInitParser(); });
}

struct DocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
using XmlDoc = std::unique_ptr<xmlDoc, DocFree>;

XmlDoc parseXml(const std::string& body) {
  xmlInitOnce();
  if (body.size() > static_cast<std::size_t>(INT32_MAX)) return nullptr;
  // XML_PARSE_NONET: never fetch a DTD; no XML_PARSE_NOENT / DTDLOAD: entities stay unexpanded.
  return XmlDoc(xmlReadMemory(body.data(), static_cast<int>(body.size()), "s3.xml", nullptr,
                              XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
}

bool named(const xmlNode* n, const char* name) {
  return n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, reinterpret_cast<const xmlChar*>(name)) == 0;
}

std::string text(const xmlNode* n) {
  std::string out;
  for (const xmlNode* c = n->children; c != nullptr; c = c->next) {
    if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content != nullptr) {
      out += reinterpret_cast<const char*>(c->content);
    }
  }
  return out;
}

const xmlNode* child(const xmlNode* n, const char* name) {
  for (const xmlNode* c = n->children; c != nullptr; c = c->next) {
    if (named(c, name)) return c;
  }
  return nullptr;
}

// Printable ASCII only, cut: what a broken proxy sends must not flood or garble the log.
std::string sanitize(std::string_view s, std::size_t max = 120) {
  std::string out;
  for (char c : s.substr(0, max)) out += (c >= 0x20 && c < 0x7f) ? c : ' ';
  if (s.size() > max) out += "...";
  return out;
}

double parseIsoTime(const std::string& s) {
  std::tm tm{};
  if (strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return 0;
  return static_cast<double>(timegm(&tm));
}

}  // namespace

S3Client::S3Client(Options options) : options_(std::move(options)) {}

std::string S3Client::uriEncode(std::string_view text, bool keepSlash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keepSlash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

S3Response S3Client::get(const std::string& path, std::vector<std::pair<std::string, std::string>> query,
                         Deadline deadline, std::stop_token stop) const {
  // libcurl 7.88 signs the path and the query string exactly as given: they must already be
  // in canonical form (keys sorted, RFC 3986 encoding), which is also what we send.
  std::sort(query.begin(), query.end());
  std::string queryString;
  for (const auto& [k, v] : query) {
    queryString += (queryString.empty() ? "" : "&") + uriEncode(k, false) + "=" + uriEncode(v, false);
  }
  const auto schemeEnd = options_.endpoint.find("://") + 3;
  const std::string scheme = options_.endpoint.substr(0, schemeEnd);
  const std::string host = options_.endpoint.substr(schemeEnd);
  std::string url = options_.pathStyle ? scheme + host + "/" + options_.bucket + (path == "/" ? "" : uriEncode(path, true))
                                       : scheme + options_.bucket + "." + host + uriEncode(path, true);
  if (!queryString.empty()) url += "?" + queryString;

  CurlEasy curl;
  curl.set(CURLOPT_URL, url.c_str());
  curl.set(CURLOPT_PROTOCOLS_STR, "http,https");
  curl.set(CURLOPT_FOLLOWLOCATION, 0L);
  curl.set(CURLOPT_PROXY, "");  // never through a proxy from the environment
  curl.set(CURLOPT_USERNAME, options_.accessKeyId.c_str());
  curl.set(CURLOPT_PASSWORD, options_.secretAccessKey.c_str());
  const std::string sigv4 = "aws:amz:" + options_.region + ":s3";
  curl.set(CURLOPT_AWS_SIGV4, sigv4.c_str());
  if (!options_.caFile.empty()) curl.set(CURLOPT_CAINFO, options_.caFile.c_str());
  const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (remaining.count() <= 0) throw S3Error("timeout before the request could be sent");
  curl.set(CURLOPT_TIMEOUT_MS, static_cast<long>(remaining.count()));
  curl.set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min<long>(remaining.count(), 10000)));

  std::vector<std::string> headers;
  // S3 wants the payload hash as a header; libcurl 7.88 signs it when present. Empty body.
  headers.emplace_back("x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  if (options_.fixedTime) {
    const std::time_t t = *options_.fixedTime;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    headers.push_back(std::string("x-amz-date: ") + stamp);
  }
  if (!options_.sessionToken.empty()) headers.push_back("x-amz-security-token: " + options_.sessionToken);
  curl.setHeaders(headers);
  curl_slist* connectTo = nullptr;
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> connectToGuard(nullptr, &curl_slist_free_all);
  for (const auto& entry : options_.connectTo) {
    connectTo = curl_slist_append(connectTo, entry.c_str());
    connectToGuard.release();
    connectToGuard.reset(connectTo);
  }
  if (connectTo != nullptr) curl.set(CURLOPT_CONNECT_TO, connectTo);

  S3Response response;
  struct Sink {
    std::string* body;
    std::size_t max;
    bool overflow = false;
  } sink{&response.body, options_.maxBodyBytes};
  curl.set(CURLOPT_WRITEDATA, &sink);
  curl.set(CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t n, void* user) -> size_t {
    auto* s = static_cast<Sink*>(user);
    if (s->body->size() + size * n > s->max) {
      s->overflow = true;
      return 0;  // aborts the transfer
    }
    s->body->append(data, size * n);
    return size * n;
  });
  struct HeaderCapture {
    std::string* authorization;
  } capture{&response.authorization};
  curl.set(CURLOPT_DEBUGDATA, &capture);
  curl.set(CURLOPT_DEBUGFUNCTION, +[](CURL*, curl_infotype type, char* data, size_t size, void* user) -> int {
    if (type != CURLINFO_HEADER_OUT) return 0;
    const std::string_view block(data, size);
    const auto at = block.find("Authorization: ");
    if (at != std::string_view::npos) {
      const auto end = block.find("\r\n", at);
      *static_cast<HeaderCapture*>(user)->authorization = std::string(block.substr(at + 15, end - at - 15));
    }
    return 0;
  });
  curl.set(CURLOPT_VERBOSE, 1L);  // feeds the debug callback only; nothing is printed

  const CURLcode code = curl.perform(stop);
  if (sink.overflow) throw S3Error("answer larger than " + std::to_string(options_.maxBodyBytes) + " bytes");
  if (code == CURLE_ABORTED_BY_CALLBACK && stop.stop_requested()) throw S3Error("stopped");
  if (code == CURLE_OPERATION_TIMEDOUT) throw S3Error("no answer from " + options_.endpoint + " within the timeout");
  if (code != CURLE_OK) throw S3Error(options_.endpoint + ": " + curl.errorMessage(code));
  response.status = curl.responseCode();
  return response;
}

S3ListPage S3Client::listObjectsV2(const std::string& prefix, const std::string& continuationToken, int maxKeys,
                                   Deadline deadline, std::stop_token stop) const {
  std::vector<std::pair<std::string, std::string>> query = {{"list-type", "2"}, {"max-keys", std::to_string(maxKeys)}};
  if (!prefix.empty()) query.emplace_back("prefix", prefix);
  if (!continuationToken.empty()) query.emplace_back("continuation-token", continuationToken);
  const auto response = get("/", std::move(query), deadline, stop);
  if (response.status != 200) {
    std::string code;
    if (auto doc = parseXml(response.body)) {
      if (const xmlNode* root = xmlDocGetRootElement(doc.get()); root && named(root, "Error")) {
        if (const xmlNode* c = child(root, "Code")) code = text(c);
      }
    }
    throw S3Error(describeError(response.status, response.body), response.status, code);
  }
  return parseListObjectsV2(response.body);
}

std::string S3Client::describeError(long status, const std::string& body) {
  std::string out = "S3 answered HTTP " + std::to_string(status);
  auto doc = parseXml(body);
  const xmlNode* root = doc ? xmlDocGetRootElement(doc.get()) : nullptr;
  if (root != nullptr && named(root, "Error")) {
    const xmlNode* code = child(root, "Code");
    const xmlNode* message = child(root, "Message");
    if (code) out += " " + sanitize(text(code), 64);
    if (message) out += ": " + sanitize(text(message));
    return out;
  }
  if (body.empty()) return out + " with an empty body";
  return out + " with a non-S3 body: \"" + sanitize(body, 80) + "\"";
}

S3ListPage S3Client::parseListObjectsV2(const std::string& xml) {
  auto doc = parseXml(xml);
  if (!doc) throw S3Error("S3 answer is not XML: \"" + sanitize(xml, 80) + "\"");
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  if (root == nullptr || !named(root, "ListBucketResult")) {
    throw S3Error(std::string("S3 answer is not a ListBucketResult (root element ") +
                  (root ? sanitize(reinterpret_cast<const char*>(root->name), 40) : "none") + ")");
  }
  S3ListPage page;
  for (const xmlNode* c = root->children; c != nullptr; c = c->next) {
    if (named(c, "IsTruncated")) page.truncated = text(c) == "true";
    if (named(c, "NextContinuationToken")) page.nextContinuationToken = text(c);
    if (!named(c, "Contents")) continue;
    S3Object object;
    const xmlNode* key = child(c, "Key");
    const xmlNode* size = child(c, "Size");
    const xmlNode* modified = child(c, "LastModified");
    if (key == nullptr || size == nullptr || modified == nullptr) throw S3Error("S3 listing entry without Key, Size or LastModified");
    object.key = text(key);
    try {
      object.size = std::stoull(text(size));
    } catch (const std::exception&) {
      throw S3Error("S3 listing entry with a non-numeric Size: \"" + sanitize(text(size), 40) + "\"");
    }
    object.lastModified = parseIsoTime(text(modified));
    if (object.lastModified == 0) throw S3Error("S3 listing entry with an unreadable LastModified");
    page.objects.push_back(std::move(object));
  }
  if (page.truncated && page.nextContinuationToken.empty()) throw S3Error("truncated S3 listing without a continuation token");
  return page;
}

}  // namespace apphealth
