#include "collectors/HttpProbeCollector.h"

namespace apphealth {

bool HttpProbeCollector::sample(SnapshotBuilder&, std::stop_token) { return true; }

}  // namespace apphealth
