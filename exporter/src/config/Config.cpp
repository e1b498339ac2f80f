#include "config/Config.h"

namespace apphealth {

const char* presetName(RedisQueueSpec::Preset preset) {
  switch (preset) {
    case RedisQueueSpec::Preset::None: return "none";
    case RedisQueueSpec::Preset::Celery: return "celery";
    case RedisQueueSpec::Preset::Rq: return "rq";
    case RedisQueueSpec::Preset::Sidekiq: return "sidekiq";
    case RedisQueueSpec::Preset::Laravel: return "laravel";
    case RedisQueueSpec::Preset::BullMQ: return "bullmq";
  }
  return "none";
}

}  // namespace apphealth
