#pragma once
// A quantile from cumulative histogram buckets, the way PromQL's histogram_quantile() computes
// it: linear interpolation inside the bucket that holds the rank; a rank in the +Inf bucket
// gives the highest finite bound.

#include <vector>

namespace apphealth {

struct BucketCount {
  double upperBound;  // +Inf for the last bucket
  double cumulativeCount;
};

// NaN when there are no observations.
double histogramQuantile(double q, const std::vector<BucketCount>& buckets);

}  // namespace apphealth
