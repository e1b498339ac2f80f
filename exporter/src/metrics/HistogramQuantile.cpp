#include "metrics/HistogramQuantile.h"

#include <cmath>
#include <limits>

namespace apphealth {

double histogramQuantile(double q, const std::vector<BucketCount>& buckets) {
  if (buckets.empty() || buckets.back().cumulativeCount <= 0) return std::numeric_limits<double>::quiet_NaN();
  const double rank = q * buckets.back().cumulativeCount;
  double lowerBound = 0, lowerCount = 0;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    const auto& b = buckets[i];
    if (b.cumulativeCount >= rank) {
      if (std::isinf(b.upperBound)) return i == 0 ? std::numeric_limits<double>::quiet_NaN() : lowerBound;
      const double inBucket = b.cumulativeCount - lowerCount;
      if (inBucket <= 0) return b.upperBound;
      return lowerBound + (b.upperBound - lowerBound) * (rank - lowerCount) / inBucket;
    }
    lowerBound = b.upperBound;
    lowerCount = b.cumulativeCount;
  }
  return lowerBound;
}

}  // namespace apphealth
