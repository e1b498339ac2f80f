#include <gtest/gtest.h>

#include "app/CommandLine.h"

using namespace apphealth;

TEST(CommandLine, AcceptsBothFlagForms) {
  auto r = parseCommandLine({"--config.file=a.yml", "--web.listen-address", "127.0.0.1:9999", "--log.format=json"});
  ASSERT_TRUE(r.options) << r.error;
  EXPECT_EQ(r.options->configFile, "a.yml");
  EXPECT_EQ(r.options->listenAddress, "127.0.0.1:9999");
  EXPECT_EQ(r.options->logFormat, "json");
  EXPECT_EQ(r.options->logLevel, "info");
}

TEST(CommandLine, DefaultsAndModes) {
  auto r = parseCommandLine({"--config.file", "c.yml", "--check-config"});
  ASSERT_TRUE(r.options);
  EXPECT_TRUE(r.options->checkConfig);
  EXPECT_EQ(r.options->listenAddress, ":10045");
  EXPECT_TRUE(parseCommandLine({"--version"}).options->version);
  EXPECT_TRUE(parseCommandLine({"--help"}).options->help);
}

TEST(CommandLine, ReportsMistakes) {
  EXPECT_EQ(parseCommandLine({}).error, "--config.file is required (see --help)");
  EXPECT_EQ(parseCommandLine({"--config.file=a", "--bogus"}).error, "unknown flag --bogus (see --help)");
  EXPECT_EQ(parseCommandLine({"--config.file"}).error, "--config.file needs a value");
}
