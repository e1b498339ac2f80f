#include <gtest/gtest.h>

#include "util/Duration.h"

using namespace apphealth;
using namespace std::chrono_literals;

TEST(Duration, ParsesPrometheusStyleUnits) {
  EXPECT_EQ(parseDuration("500ms"), Duration(500));
  EXPECT_EQ(parseDuration("15s"), Duration(15'000));
  EXPECT_EQ(parseDuration("2m"), Duration(120'000));
  EXPECT_EQ(parseDuration("26h"), Duration(26 * 3'600'000));
  EXPECT_EQ(parseDuration("1d"), Duration(86'400'000));
  EXPECT_EQ(parseDuration("1h30m"), Duration(5'400'000));
  EXPECT_EQ(parseDuration("0"), Duration(0));
}

TEST(Duration, RejectsMalformedText) {
  for (const char* bad : {"", "15", "s", "1.5s", "-1s", "15 s", "10x", "1h30", "99999999999999h"}) {
    EXPECT_FALSE(parseDuration(bad).has_value()) << bad;
  }
}

TEST(Duration, FormatsShortestExactForm) {
  EXPECT_EQ(formatDuration(15s), "15s");
  EXPECT_EQ(formatDuration(90s), "1m30s");
  EXPECT_EQ(formatDuration(250ms), "250ms");
  EXPECT_EQ(formatDuration(26h), "26h");
  EXPECT_EQ(formatDuration(0ms), "0s");
}
