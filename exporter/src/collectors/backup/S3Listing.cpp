#include "collectors/backup/S3Listing.h"

#include <map>

#include "collectors/backup/LocalListing.h"
#include "config/Secret.h"

namespace apphealth {

S3Client::Options s3ClientOptions(const S3Location& location) {
  S3Client::Options o;
  o.endpoint = location.endpoint;
  o.region = location.region;
  o.bucket = location.bucket;
  o.pathStyle = location.path_style;
  o.caFile = location.ca_file;
  o.accessKeyId = readSecret(location.access_key_id).value_or("");
  o.secretAccessKey = readSecret(location.secret_access_key).value_or("");
  if (!location.session_token.empty()) o.sessionToken = readSecret(location.session_token).value_or("");
  return o;
}

std::vector<BackupCandidate> groupS3Objects(const BackupTarget& target, const std::vector<S3Object>& objects) {
  const std::string& prefix = target.s3->prefix;
  std::map<std::string, BackupCandidate> byName;
  for (const auto& o : objects) {
    if (o.key.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rel = o.key.substr(prefix.size());
    if (rel.empty() || rel[0] == '/') continue;  // the prefix's own "folder" marker
    const auto slash = rel.find('/');
    const std::string name = rel.substr(0, slash);
    if (!matchesBackupGlob(target, name)) continue;
    auto [it, inserted] = byName.try_emplace(name);
    BackupCandidate& c = it->second;
    if (inserted) {
      c.name = name;
      c.files = 0;
    }
    c.directory = c.directory || slash != std::string::npos;
    c.size += o.size;
    c.files += 1;
    c.mtime = std::max(c.mtime, o.lastModified);
  }
  std::vector<BackupCandidate> out;
  for (auto& [name, c] : byName) {
    c.time = c.mtime;
    if (!target.name_time_format.empty()) {
      auto parsed = backupTimeFromName(name, target.name_time_format);
      if (!parsed) continue;
      c.time = *parsed;
    }
    out.push_back(std::move(c));
  }
  return out;
}

BackupListing listS3Backups(const BackupTarget& target, const S3Client& client, SteadyDeadline deadline,
                            const std::stop_token& stop, std::size_t* pages) {
  BackupListing out;
  std::vector<S3Object> objects;
  std::string token;
  const std::size_t maxObjects = static_cast<std::size_t>(target.s3->max_objects);
  const int pageKeys = target.s3->max_keys;
  const std::size_t maxPages = maxObjects / static_cast<std::size_t>(pageKeys) + 2;
  std::size_t page = 0;
  try {
    do {
      if (++page > maxPages) throw S3Error("more than " + std::to_string(maxPages) + " pages: listing stopped");
      auto result = client.listObjectsV2(target.s3->prefix, token, pageKeys, deadline, stop);
      for (auto& o : result.objects) objects.push_back(std::move(o));
      if (objects.size() > maxObjects) {
        throw S3Error("more than max_objects (" + std::to_string(maxObjects) + ") objects under the prefix");
      }
      token = result.truncated ? result.nextContinuationToken : std::string();
    } while (!token.empty());
  } catch (const S3Error& e) {
    out.problem = "listing s3 bucket " + target.s3->bucket + ": " + e.what();
    out.locationMissing = e.code() == "NoSuchBucket";
    if (pages) *pages = page;
    return out;
  }
  if (pages) *pages = page;
  out.backups = groupS3Objects(target, objects);
  return out;
}

}  // namespace apphealth
