#include <gtest/gtest.h>

#include "collectors/backup/BackupCollector.h"

using namespace apphealth;

TEST(BackupNameTime, ParsesUtcTimeFromTheStartOfTheName) {
  // 2026-11-23 01:30:00 UTC
  EXPECT_EQ(BackupCollector::timeFromName("full-backup-20261123-013000.sql.gz", "full-backup-%Y%m%d-%H%M%S"),
            1795397400.0);
  EXPECT_EQ(BackupCollector::timeFromName("db_2026-11-23.dump", "db_%Y-%m-%d"), 1795392000.0);
}

TEST(BackupNameTime, RejectsNamesThatDoNotMatch) {
  EXPECT_FALSE(BackupCollector::timeFromName("full-backup-latest.sql", "full-backup-%Y%m%d-%H%M%S"));
  EXPECT_FALSE(BackupCollector::timeFromName("other-20261123-013000", "full-backup-%Y%m%d-%H%M%S"));
}
