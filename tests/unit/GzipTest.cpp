#include <gtest/gtest.h>
#include <zlib.h>

#include "util/Gzip.h"

using namespace apphealth;

namespace {
std::string gunzip(const std::string& data) {
  z_stream s{};
  inflateInit2(&s, 15 + 16);
  std::string out(1 << 20, '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  s.avail_in = static_cast<uInt>(data.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&s, Z_FINISH), Z_STREAM_END);
  out.resize(s.total_out);
  inflateEnd(&s);
  return out;
}
}  // namespace

TEST(Gzip, RoundTrips) {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += "apphealth_queue_jobs{queue=\"q" + std::to_string(i) + "\"} 1\n";
  const auto compressed = gzipCompress(text);
  EXPECT_LT(compressed.size(), text.size() / 4);
  EXPECT_EQ(static_cast<unsigned char>(compressed[0]), 0x1f);  // gzip magic
  EXPECT_EQ(gunzip(compressed), text);
}

TEST(Gzip, AcceptEncodingNegotiation) {
  EXPECT_TRUE(acceptsGzip("gzip"));
  EXPECT_TRUE(acceptsGzip("deflate, gzip;q=1.0, *;q=0.5"));
  EXPECT_TRUE(acceptsGzip("br, *"));
  EXPECT_FALSE(acceptsGzip("identity"));
  EXPECT_FALSE(acceptsGzip("gzip;q=0"));
  EXPECT_FALSE(acceptsGzip(""));
  EXPECT_FALSE(acceptsGzip("x-gzip-like"));
}
