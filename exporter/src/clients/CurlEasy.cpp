#include "clients/CurlEasy.h"

#include <mutex>

namespace apphealth {

namespace {

// curl_global_init is not guaranteed to be thread-safe: run it once, before the first handle.
void globalInit() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw CurlError("curl_global_init failed");
  });
}

struct MultiDeleter {
  void operator()(CURLM* multi) const { curl_multi_cleanup(multi); }
};

}  // namespace

CurlEasy::CurlEasy() : errorBuffer_(new char[CURL_ERROR_SIZE]) {
  globalInit();
  handle_ = curl_easy_init();
  if (handle_ == nullptr) throw CurlError("curl_easy_init failed");
  errorBuffer_[0] = '\0';
  set(CURLOPT_ERRORBUFFER, errorBuffer_.get());
  set(CURLOPT_NOSIGNAL, 1L);  // we run on collector threads: no SIGALRM-based DNS timeouts
}

CurlEasy::~CurlEasy() {
  curl_easy_cleanup(handle_);
  curl_slist_free_all(headers_);
}

void CurlEasy::setHeaders(const std::vector<std::string>& lines) {
  curl_slist* list = nullptr;
  for (const auto& line : lines) {
    curl_slist* next = curl_slist_append(list, line.c_str());
    if (next == nullptr) {
      curl_slist_free_all(list);
      throw CurlError("out of memory building the header list");
    }
    list = next;
  }
  set(CURLOPT_HTTPHEADER, list);
  curl_slist_free_all(headers_);
  headers_ = list;
}

CURLcode CurlEasy::perform(std::stop_token stop) {
  errorBuffer_[0] = '\0';
  std::unique_ptr<CURLM, MultiDeleter> multi(curl_multi_init());
  if (!multi) return CURLE_OUT_OF_MEMORY;
  if (curl_multi_add_handle(multi.get(), handle_) != CURLM_OK) return CURLE_FAILED_INIT;

  CURLcode result = CURLE_OK;
  bool done = false;
  {
    // Wakes curl_multi_poll from the thread that requests the stop.
    std::stop_callback wake(stop, [&multi] { curl_multi_wakeup(multi.get()); });
    int running = 1;
    while (!done) {
      if (curl_multi_perform(multi.get(), &running) != CURLM_OK) {
        result = CURLE_FAILED_INIT;
        break;
      }
      if (running == 0) {
        done = true;
        break;
      }
      if (stop.stop_requested()) {
        result = CURLE_ABORTED_BY_CALLBACK;
        break;
      }
      if (curl_multi_poll(multi.get(), nullptr, 0, 1000, nullptr) != CURLM_OK) {
        result = CURLE_FAILED_INIT;
        break;
      }
    }
  }
  if (done) {
    int queued = 0;
    while (CURLMsg* message = curl_multi_info_read(multi.get(), &queued)) {
      if (message->msg == CURLMSG_DONE && message->easy_handle == handle_) result = message->data.result;
    }
  }
  curl_multi_remove_handle(multi.get(), handle_);
  return result;
}

std::string CurlEasy::errorMessage(CURLcode code) const {
  if (errorBuffer_[0] != '\0') return errorBuffer_.get();
  return curl_easy_strerror(code);
}

long CurlEasy::responseCode() const {
  long code = 0;
  if (curl_easy_getinfo(handle_, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK) return 0;
  return code;
}

std::vector<std::vector<std::string>> CurlEasy::certInfo() const {
  std::vector<std::vector<std::string>> chain;
  curl_certinfo* info = nullptr;
  if (curl_easy_getinfo(handle_, CURLINFO_CERTINFO, &info) != CURLE_OK || info == nullptr) return chain;
  for (int i = 0; i < info->num_of_certs; ++i) {
    std::vector<std::string> lines;
    for (curl_slist* item = info->certinfo[i]; item != nullptr; item = item->next) lines.emplace_back(item->data);
    chain.push_back(std::move(lines));
  }
  return chain;
}

}  // namespace apphealth
