# Jobs of the Sidekiq scenario (tests/queues/sidekiq_scenario.py); Redis from REDIS_URL.
require "sidekiq"

class SleepJob
  include Sidekiq::Worker
  def perform(seconds)
    sleep seconds
  end
end

class QuickJob
  include Sidekiq::Worker
  def perform
  end
end

# Fails once, then waits an hour in the retry set.
class RetryLaterJob
  include Sidekiq::Worker
  sidekiq_options retry: 3
  sidekiq_retry_in { |_count, _exception| 3600 }
  def perform
    raise "boom"
  end
end

# No retries: straight to the dead set.
class DeadJob
  include Sidekiq::Worker
  sidekiq_options retry: 0
  def perform
    raise "boom"
  end
end
