#include "collectors/AccessLogCollector.h"

namespace apphealth {

bool AccessLogCollector::sample(SnapshotBuilder&, std::stop_token) { return true; }

}  // namespace apphealth
