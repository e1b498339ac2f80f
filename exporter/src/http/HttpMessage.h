#pragma once
// Requests and responses as the exporter's handlers see them, whichever HTTP library serves the
// listener (CivetWeb for the main listener, or libmicrohttpd when it serves TLS; libmicrohttpd
// for the beacon listener): handlers
// take an HttpRequest and return an HttpResponse, and never touch a library's types.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace apphealth {

struct HttpResponse {
  int status = 200;
  std::string contentType = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;  // answer with Connection: close and end the connection
};

// A plain-text refusal whose body is the reason, e.g. 405 "method GET not allowed; use POST".
HttpResponse errorResponse(int status, const std::string& reason,
                           std::vector<std::pair<std::string, std::string>> headers = {}, bool close = false);

class HttpRequest {
 public:
  virtual ~HttpRequest() = default;
  virtual std::string_view method() const = 0;
  virtual std::string_view path() const = 0;           // without the query string
  virtual std::string_view remoteAddress() const = 0;  // the TCP peer, e.g. "127.0.0.1"
  // The first value of a header (names are case-insensitive), or nullopt.
  virtual std::optional<std::string_view> header(std::string_view name) const = 0;
  // How many times a header occurs (framing checks need to see duplicates).
  virtual int headerCount(std::string_view name) const = 0;
  // The declared Content-Length, or -1 when there is none.
  virtual long long contentLength() const = 0;
  // The whole body, once the route's head check accepted the request (empty before).
  virtual std::string_view body() const = 0;

  std::string headerOr(std::string_view name, std::string_view fallback = {}) const {
    const auto value = header(name);
    return std::string(value ? *value : fallback);
  }
};

// A route answers with `respond`. A route that takes a body also has a `head` check, called
// as soon as the request line and headers are in: it returns a refusal (a body the request
// announced is then never read, and the connection is closed) or nullopt, after which the body
// (exactly Content-Length bytes) is read and `respond` is called. The head check is where
// framingProblem() (Framing.h) belongs, so its refusals are counted like any other; listeners
// apply it again after an accepting head check. Without `head`, no body is read.
struct Route {
  std::function<HttpResponse(const HttpRequest&)> respond;
  std::function<std::optional<HttpResponse>(const HttpRequest&)> head;
  // Exempt from the listener's filter check (basic authentication): the browser beacon
  // endpoints, which any visitor's browser posts to without credentials.
  bool open = false;
};

// What a listener applies to every request, routed or not (a 404 included), before the route:
// the web configuration's basic authentication and response headers (web/WebGuard.h).
struct RequestFilter {
  // A refusal (401 without valid credentials) answers the request instead of its route; a
  // body the request announced is then never read.
  std::function<std::optional<HttpResponse>(const HttpRequest&)> admit;
  // Called on every response before it is sent, refusals included (adds headers).
  std::function<void(HttpResponse&)> decorate;
};

// What every listener type offers the exporter.
class HttpListener {
 public:
  virtual ~HttpListener() = default;
  // Registers `route` for exactly `path`. Routes must be added before traffic arrives.
  virtual void route(const std::string& path, Route route) = 0;
  // Sets the filter every request passes; like routes, before traffic arrives.
  virtual void filter(RequestFilter filter) = 0;
  virtual int port() const = 0;
};

}  // namespace apphealth
