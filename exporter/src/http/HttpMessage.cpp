#include "http/HttpMessage.h"

namespace apphealth {

HttpResponse errorResponse(int status, const std::string& reason, std::vector<std::pair<std::string, std::string>> headers,
                           bool close) {
  HttpResponse response;
  response.status = status;
  response.body = reason + "\n";
  response.headers = std::move(headers);
  response.close = close;
  return response;
}

}  // namespace apphealth
