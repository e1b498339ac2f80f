# Drives the Sidekiq scenario through Sidekiq's own client and API:
#   ruby helper.rb produce-done   jobs that finish, fail into retry and dead
#   ruby helper.rb produce-rest   long jobs, waiting and scheduled jobs
#   ruby helper.rb counts QUEUE...   Sidekiq's own counts as JSON
require "json"
require "sidekiq/api"
require_relative "jobs"

case ARGV.shift
when "produce-done"
  3.times { QuickJob.perform_async }
  RetryLaterJob.perform_async
  DeadJob.perform_async
when "produce-rest"
  3.times { SleepJob.perform_async(600) }  # two run (concurrency 2), one waits
  2.times { QuickJob.perform_in(3600) }
  2.times { Sidekiq::Client.push("class" => QuickJob, "args" => [], "queue" => "reports") }
when "counts"
  queues = ARGV
  out = {"queues" => {}, "processes" => [], "active" => Hash.new(0)}
  queues.each do |q|
    queue = Sidekiq::Queue.new(q)
    out["queues"][q] = {"size" => queue.size, "latency" => queue.latency}
  end
  out["retry"] = Sidekiq::RetrySet.new.size
  out["scheduled"] = Sidekiq::ScheduledSet.new.size
  out["dead"] = Sidekiq::DeadSet.new.size
  stats = Sidekiq::Stats.new
  out["processed"] = stats.processed
  out["failed"] = stats.failed
  Sidekiq::ProcessSet.new.each do |p|
    out["processes"] << {"queues" => p["queues"], "busy" => p["busy"], "quiet" => p["quiet"]}
  end
  Sidekiq::Workers.new.each do |_process, _thread, work|
    out["active"][work["queue"]] += 1
  end
  puts JSON.generate(out)
end
