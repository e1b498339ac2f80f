#pragma once

#include <chrono>
#include <string_view>

#include <spdlog/spdlog.h>

namespace apphealth {

// Runs a database target's probe, usually on the connection kept from the previous sample,
// and returns how long the probe that answered took, in seconds.
//
// A kept connection can die between samples (a server restart, an idle timeout, an
// administrator ending it, a NAT forgetting it): that says nothing about the database now.
// When the probe fails on a kept (`reused`) connection that is gone afterwards, the
// connection is made again once, within the caller's deadline, and the probe repeated,
// rather than a false "down" reported. A timeout, an error on a fresh connection, and an
// error that leaves the connection open are the database's answer: they propagate.
//
// TimeoutError must derive from Error. `reconnect` and `probe` throw Error on failure.
template <class TimeoutError, class Error, class Connection, class Reconnect, class Probe>
double probeKeptConnection(const Connection& connection, bool reused, std::string_view kind,
                           std::string_view target, Reconnect&& reconnect, Probe&& probe) {
  auto start = std::chrono::steady_clock::now();
  try {
    probe();
  } catch (const TimeoutError&) {
    throw;
  } catch (const Error& e) {
    if (!reused || connection.connected()) throw;
    spdlog::info("{} target {}: kept connection lost ({}), reconnecting", kind, target, e.what());
    reconnect();
    start = std::chrono::steady_clock::now();
    probe();
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace apphealth
