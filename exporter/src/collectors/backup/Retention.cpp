#include "collectors/backup/Retention.h"

#include <ctime>
#include <set>

namespace apphealth {

RetentionSummary summarizeRetention(const std::vector<BackupCandidate>& backups) {
  RetentionSummary out;
  std::set<long> days, weeks, months;
  for (const auto& b : backups) {
    if (out.oldest == 0 || b.time < out.oldest) out.oldest = b.time;
    const auto t = static_cast<std::time_t>(b.time);
    std::tm tm{};
    gmtime_r(&t, &tm);
    const long day = static_cast<long>(t >= 0 ? t / 86400 : (t - 86399) / 86400);
    days.insert(day);
    // ISO week: weeks start on Monday; 1970-01-01 was a Thursday, so day 4 is a Monday... the
    // week index is the number of Mondays since 1969-12-29.
    weeks.insert((day + 3) >= 0 ? (day + 3) / 7 : (day + 3 - 6) / 7);
    months.insert((tm.tm_year + 1900L) * 12 + tm.tm_mon);
  }
  out.days = static_cast<int>(days.size());
  out.weeks = static_cast<int>(weeks.size());
  out.months = static_cast<int>(months.size());
  return out;
}

}  // namespace apphealth
