#include "TempPrometheus.h"

#include <curl/curl.h>
#include <signal.h>
#include <sys/wait.h>

#include <simdjson.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace apphealth::test {

namespace {

std::string urlEncode(const std::string& text) {
  CURL* curl = curl_easy_init();
  char* escaped = curl_easy_escape(curl, text.c_str(), static_cast<int>(text.size()));
  std::string out(escaped ? escaped : "");
  curl_free(escaped);
  curl_easy_cleanup(curl);
  return out;
}

}  // namespace

TempPrometheus::TempPrometheus(const std::string& scrapeConfigs, const std::string& scrapeInterval)
    : dir_("apphealth-prometheus"), port_(freePort()) {
  dir_.write("prometheus.yml", "global:\n  scrape_interval: " + scrapeInterval + "\n  scrape_timeout: " + scrapeInterval +
                                   "\n  evaluation_interval: " + scrapeInterval + "\nscrape_configs:\n" + scrapeConfigs);
  pid_ = spawnWithLog({"/usr/bin/prometheus", "--config.file=" + dir_.file("prometheus.yml"),
                       "--storage.tsdb.path=" + dir_.file("data"),
                       "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=info"},
                      dir_.file("prometheus.log"));
  const std::string ready = "http://127.0.0.1:" + std::to_string(port_) + "/-/ready";
  const bool up = waitFor(
      [&] {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          throw std::runtime_error("prometheus exited at start:\n" + log());
        }
        return httpRequest("GET", ready).status == 200;
      },
      std::chrono::seconds(60));
  if (!up) throw std::runtime_error("prometheus not ready after 60 s:\n" + log());
}

TempPrometheus::~TempPrometheus() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  if (!waitFor([&] { return waitpid(pid_, nullptr, WNOHANG) == pid_; }, std::chrono::seconds(20))) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::optional<double> TempPrometheus::value(const std::string& expr) const {
  const auto r = httpRequest("GET", "http://127.0.0.1:" + std::to_string(port_) + "/api/v1/query?query=" + urlEncode(expr));
  if (r.status != 200) return std::nullopt;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(r.body).get(doc) != simdjson::SUCCESS) return std::nullopt;
  simdjson::dom::array result;
  if (doc["data"]["result"].get(result) != simdjson::SUCCESS || result.size() != 1) return std::nullopt;
  std::string_view text;
  if (result.at(0)["value"].at(1).get(text) != simdjson::SUCCESS) return std::nullopt;
  return std::stod(std::string(text));
}

std::string TempPrometheus::targets() const {
  return httpRequest("GET", "http://127.0.0.1:" + std::to_string(port_) + "/api/v1/targets").body;
}

std::string TempPrometheus::log() const {
  std::ifstream in(dir_.file("prometheus.log"));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace apphealth::test
