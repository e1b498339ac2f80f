#pragma once
// Lists the backups of an off-site copy in S3-compatible storage: ListObjectsV2 pages of
// max_keys keys under the prefix, bounded by max_objects and the target's timeout. A key
// directly under the prefix is a file backup; keys sharing a first path segment form a
// directory backup (what `s3cmd sync` or `aws s3 cp --recursive` of a dump directory makes).

#include <stop_token>

#include "collectors/backup/BackupCandidate.h"
#include "clients/S3Client.h"
#include "config/Config.h"

namespace apphealth {

S3Client::Options s3ClientOptions(const S3Location& location);  // reads the credentials (throws)

BackupListing listS3Backups(const BackupTarget& target, const S3Client& client, SteadyDeadline deadline,
                            const std::stop_token& stop, std::size_t* pages = nullptr);

// Groups listed objects into backups (public for the unit tests).
std::vector<BackupCandidate> groupS3Objects(const BackupTarget& target, const std::vector<S3Object>& objects);

}  // namespace apphealth
