#pragma once
// RAII wrapper around one libcurl easy handle: owns the handle, its header list and error
// buffer, and runs a transfer through a private multi handle so that a stop request ends it
// at once instead of when libcurl's own timeout fires.

#include <curl/curl.h>

#include <memory>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <vector>

namespace apphealth {

class CurlError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class CurlEasy {
 public:
  CurlEasy();  // throws CurlError when libcurl cannot create a handle
  ~CurlEasy();
  CurlEasy(const CurlEasy&) = delete;
  CurlEasy& operator=(const CurlEasy&) = delete;

  CURL* get() const { return handle_; }

  // curl_easy_setopt that throws CurlError naming the option's number on failure (an option
  // this libcurl build does not support is a bug or a packaging problem, not a probe result).
  template <typename T>
  void set(CURLoption option, T value) {
    const CURLcode code = curl_easy_setopt(handle_, option, value);
    if (code != CURLE_OK) {
      throw CurlError("curl_easy_setopt(" + std::to_string(static_cast<int>(option)) + "): " +
                      curl_easy_strerror(code));
    }
  }
  // CURLOPT_HTTPHEADER from "Name: value" lines; the list lives as long as the handle.
  void setHeaders(const std::vector<std::string>& lines);

  // Performs the transfer. Returns CURLE_ABORTED_BY_CALLBACK when `stop` was requested.
  CURLcode perform(std::stop_token stop);

  // libcurl's detailed message for the last failure, or curl_easy_strerror(code) if empty.
  std::string errorMessage(CURLcode code) const;
  long responseCode() const;
  // CURLINFO_CERTINFO (needs CURLOPT_CERTINFO): one entry per certificate of the peer's
  // chain, each a list of "Key:value" lines as libcurl's TLS backend formats them.
  std::vector<std::vector<std::string>> certInfo() const;

 private:
  CURL* handle_ = nullptr;
  curl_slist* headers_ = nullptr;
  std::unique_ptr<char[]> errorBuffer_;
};

}  // namespace apphealth
