#include "collectors/redis/RedisRounds.h"

namespace apphealth {

void RedisRounds::add(RedisCommand command, Handler handler, bool blocking) {
  if (blocking) {
    next_.blockingCommands.push_back(std::move(command));
    next_.blockingHandlers.push_back(std::move(handler));
    return;
  }
  next_.commands.push_back(std::move(command));
  next_.handlers.push_back(std::move(handler));
}

void RedisRounds::addShared(RedisCommand command, Handler handler) {
  // The arguments, length-prefixed so that ("a b", "c") and ("a", "b c") differ.
  std::string key;
  for (const auto& arg : command) key += std::to_string(arg.size()) + ':' + arg;
  auto [it, inserted] = next_.sharedIndex.try_emplace(std::move(key), next_.commands.size());
  if (inserted) {
    add(std::move(command), std::move(handler));
  } else {
    next_.shared.emplace_back(it->second, std::move(handler));
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
    for (std::size_t i = 0; i < round.blockingCommands.size(); ++i) {
      round.commands.push_back(std::move(round.blockingCommands[i]));
      round.handlers.push_back(std::move(round.blockingHandlers[i]));
    }
    if (!round.commands.empty()) {
      // Each handler runs as its reply arrives (Redis may still be running the round's later
      // scripts); what it queues goes to the next round.
      auto replies = connection.pipeline(
          round.commands, [&round](std::size_t i, const redisReply& reply) { round.handlers[i](reply, round.commands[i]); });
      ++roundsRun_;
      commandsSent_ += round.commands.size();
      for (const auto& [index, handler] : round.shared) handler(*replies[index], round.commands[index]);
    }
    for (const auto& hook : round.after) hook();
  }
}

}  // namespace apphealth
