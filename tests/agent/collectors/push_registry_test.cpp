// The Pushgateway's grouping keys as Prometheus's client libraries write them: plain and
// percent-encoded parts, and base64url values (after a name ending in @base64) for values with
// a slash and empty ones.
#include <catch2/catch.hpp>

#include "agent/collectors/push/push_registry.h"

using namespace vigil;
using vigil::collectors::PushRegistry;

namespace {

LabelSet keyOf(std::string_view path) {
  auto key = PushRegistry::groupingKey(path);
  INFO(path << ": " << (key ? "" : key.status().message()));
  REQUIRE(key);
  return *key;
}

std::string errorOf(std::string_view path) {
  auto key = PushRegistry::groupingKey(path);
  INFO(path);
  REQUIRE_FALSE(key);
  return key.status().message();
}

}  // namespace

TEST_CASE("Push grouping keys: plain and percent-encoded parts", "[push]") {
  CHECK(keyOf("job/backup") == LabelSet{{"job", "backup"}});
  CHECK(keyOf("job/backup/instance/db-1/db/app") ==
        LabelSet{{"db", "app"}, {"instance", "db-1"}, {"job", "backup"}});
  // A percent-encoded slash stays inside its value; '+' is not a space in a path.
  CHECK(keyOf("job/backup/path/%2Fvar%2Ftmp") == LabelSet{{"job", "backup"}, {"path", "/var/tmp"}});
  CHECK(keyOf("job/a+b") == LabelSet{{"job", "a+b"}});
}

TEST_CASE("Push grouping keys: base64url values after @base64, as the client libraries send",
          "[push]") {
  // What the Pushgateway's README and the Python client write: "/var/tmp" with and without
  // padding, the empty value as "=", and a job name with a slash.
  CHECK(keyOf("job/directory_cleaner/path@base64/L3Zhci90bXA") ==
        LabelSet{{"job", "directory_cleaner"}, {"path", "/var/tmp"}});
  CHECK(keyOf("job/directory_cleaner/path@base64/L3Zhci90bXA=") ==
        LabelSet{{"job", "directory_cleaner"}, {"path", "/var/tmp"}});
  CHECK(keyOf("job/batch/instance@base64/=") == LabelSet{{"instance", ""}, {"job", "batch"}});
  CHECK(keyOf("job@base64/YS9i") == LabelSet{{"job", "a/b"}});
  // The URL-safe alphabet's '-' and '_' (bytes 0xfb 0xff), and every remainder of a block.
  CHECK(keyOf("job/x/v@base64/-_8") == LabelSet{{"job", "x"}, {"v", "\xfb\xff"}});
  CHECK(keyOf("job/x/v@base64/YQ") == LabelSet{{"job", "x"}, {"v", "a"}});
  CHECK(keyOf("job/x/v@base64/YWI") == LabelSet{{"job", "x"}, {"v", "ab"}});
  CHECK(keyOf("job/x/v@base64/YWJj") == LabelSet{{"job", "x"}, {"v", "abc"}});
}

TEST_CASE("Push grouping keys: what is wrong is named", "[push]") {
  CHECK_THAT(errorOf("jobs/x"), Catch::Contains("expected /metrics/job/JOB"));
  CHECK_THAT(errorOf("job/x/instance"), Catch::Contains("label without a value: instance"));
  CHECK_THAT(errorOf("job/"), Catch::Contains("job name is empty"));
  CHECK_THAT(errorOf("job@base64/="), Catch::Contains("job name is empty"));
  CHECK_THAT(errorOf("job/x/__name__/y"), Catch::Contains("invalid label name"));
  CHECK_THAT(errorOf("job/x/a-b/y"),
             Catch::Contains("invalid label name in the grouping key: a-b"));
  CHECK_THAT(errorOf("job/x/a/1/a@base64/Mg"), Catch::Contains("label a appears twice"));
  // Not base64url: the standard alphabet's '+', a stray character, a length no text has.
  CHECK_THAT(
      errorOf("job/x/path@base64/L3Zh+90"),
      Catch::Contains("value of path (\"L3Zh+90\") is not base64url") && Catch::Contains("'+'"));
  CHECK_THAT(errorOf("job/x/path@base64/a.b"), Catch::Contains("is not base64url"));
  CHECK_THAT(errorOf("job/x/path@base64/abcde"), Catch::Contains("cannot be whole"));
  // The suffix alone names no label.
  CHECK_THAT(errorOf("job/x/@base64/YQ"), Catch::Contains("invalid label name"));
}
