#pragma once
// What the job frameworks write into Redis, parsed: enqueue times, kombu messages and Celery's
// remote-control replies, Sidekiq's process records, CLIENT LIST names. Pure functions over
// text that comes from outside (any app can write anything into Redis), so each returns
// nullopt/empty on anything unexpected instead of throwing, and is unit-tested without a
// server.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace apphealth {

// "2024-05-01T12:00:00.123456Z" (RQ's utcformat), "...+00:00" (Celery's eta), no zone (UTC)
// or a numeric offset -> Unix seconds.
std::optional<double> parseIsoTime(std::string_view text);
// A decimal number of milliseconds (BullMQ's job `timestamp`) -> Unix seconds.
std::optional<double> parseMillis(std::string_view text);
// The number under `field` of a JSON object: float seconds, or integer milliseconds when it is
// beyond year 5138 in seconds (Sidekiq 8's enqueued_at). Sidekiq's enqueued_at, Laravel 12's
// createdAt. nullopt: not JSON, no such field, not a positive number.
std::optional<double> parseJsonTime(std::string_view json, std::string_view field);
// Whether a JSON object has `field` at all (tells "no timestamp recorded" from "unreadable").
bool jsonHasField(std::string_view json, std::string_view field);

// One value of kombu's `unacked` hash: JSON [message, exchange, routing_key].
struct KombuUnacked {
  std::string exchange;
  std::string routingKey;
  std::string taskId;             // headers.id (Celery protocol 2); empty if absent
  std::optional<double> eta;      // headers.eta; nullopt when null or absent
  bool etaUnreadable = false;     // present but not a time
};
std::optional<KombuUnacked> parseKombuUnacked(std::string_view value);

// A kombu message as the Redis transport stores and publishes it: the decoded body (base64
// when properties.body_encoding says so) and headers.ticket (Celery control replies).
struct KombuMessage {
  std::string body;
  std::string ticket;
};
std::optional<KombuMessage> parseKombuMessage(std::string_view json);

// The message Celery's `inspect` broadcasts to every worker's pidbox (kombu Mailbox._broadcast
// over the Redis transport), for `method` with no arguments, replies to `replyRoutingKey` on
// the `reply.celery.pidbox` exchange. `expires` (Unix seconds) makes late workers ignore it.
std::string celeryControlRequest(std::string_view method, std::string_view ticket, std::string_view replyRoutingKey,
                                 std::string_view deliveryTag, double expires);

// Body of a reply to `active_queues`: {"<worker>": [{"name": "celery", "routing_key": ..., ...}]}.
struct CeleryWorkerQueues {
  std::string worker;
  std::vector<std::pair<std::string, std::string>> queues;  // (name, routing_key)
};
std::optional<CeleryWorkerQueues> parseCeleryActiveQueues(std::string_view body);
// Body of a reply to `active`: {"<worker>": [{"id": ..., "delivery_info": {"routing_key": ...}}]}.
struct CeleryWorkerActive {
  std::string worker;
  std::vector<std::pair<std::string, std::string>> tasks;  // (task id, routing_key)
};
std::optional<CeleryWorkerActive> parseCeleryActive(std::string_view body);

// The `info` field of a Sidekiq process hash: the queues it fetches from ("queues", or in
// Sidekiq 7/8 also the capsules' weights), without duplicates.
std::optional<std::vector<std::string>> parseSidekiqQueues(std::string_view infoJson);
// A value of a Sidekiq `<identity>:work` (7, 8) or `<identity>:workers` (6) hash: the queue of
// the job being executed.
std::optional<std::string> parseSidekiqWorkQueue(std::string_view json);

// The `name=` of every connection in a CLIENT LIST reply (empty names skipped).
std::vector<std::string_view> clientListNames(std::string_view clientList);

}  // namespace apphealth
