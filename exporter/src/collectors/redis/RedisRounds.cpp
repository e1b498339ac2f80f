#include "collectors/redis/RedisRounds.h"

namespace apphealth {

namespace {

// A command's arguments, length-prefixed so that ("a b", "c") and ("a", "b c") differ.
std::string commandKey(const RedisCommand& command) {
  std::string key;
  for (const auto& arg : command) {
    key += std::to_string(arg.size());
    key += ':';
    key += arg;
  }
  return key;
}

}  // namespace

void RedisRounds::add(RedisCommand command, Handler handler, bool blocking) {
  if (blocking) {
    next_.blocking.push_back({std::move(command), {std::move(handler)}});
    return;
  }
  auto [it, inserted] = next_.index.try_emplace(commandKey(command), next_.commands.size());
  if (inserted) {
    next_.commands.push_back({std::move(command), {std::move(handler)}});
  } else {
    next_.commands[it->second].handlers.push_back(std::move(handler));
  }
}

void RedisRounds::afterNextRound(std::function<void()> hook) { next_.after.push_back(std::move(hook)); }

void RedisRounds::run(RedisConnection& connection, int maxRounds) {
  for (int iteration = 0; !next_.empty(); ++iteration) {
    if (iteration >= maxRounds) {
      throw RedisError("more than " + std::to_string(maxRounds) + " dependent round trips in one sample");
    }
    Round round = std::move(next_);
    next_ = Round();
    for (auto& pending : round.blocking) round.commands.push_back(std::move(pending));
    std::vector<RedisCommand> commands;
    commands.reserve(round.commands.size());
    for (const auto& pending : round.commands) commands.push_back(pending.command);
    if (!commands.empty()) {
      auto replies = connection.pipeline(commands);
      ++roundsRun_;
      commandsSent_ += commands.size();
      for (std::size_t i = 0; i < round.commands.size(); ++i) {
        for (const auto& handler : round.commands[i].handlers) handler(*replies[i]);
      }
    }
    for (const auto& hook : round.after) hook();
  }
}

}  // namespace apphealth
