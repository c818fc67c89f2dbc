// Other detectors' published NAB results: reading NAB's results/<detector>/*_scores.csv, and
// their score normalised over some of the files, computed by hand.
#include <catch2/catch.hpp>
#include <string>

#include "nab_published.h"
#include "tests/support/process.h"

using namespace vigil::nab;
using Catch::Detail::Approx;
using vigil::test::TempDir;

namespace {

constexpr const char* kHeader = "Detector,Profile,File,Threshold,Score,TP,TN,FP,FN,Total_Count\n";

// 40 rows (probation 6) with one window right after probation, so that detecting every row
// scores far below missing the window (30 false positives after it): null -1, perfect 1 under
// the standard profile. A file without windows has null 0 and perfect 0.
ScoredFile file(const std::string& name, bool with_window) {
  ScoredFile f{name, std::vector<double>(40, 0.0), {}};
  if (with_window) {
    f.windows.emplace_back(6, 9);
  }
  return f;
}

}  // namespace

TEST_CASE("NAB published results: read, and normalised over some of the files", "[nab]") {
  TempDir dir;
  dir.write("results/other/other_standard_scores.csv",
            std::string(kHeader) +
                "other,standard,realTest/a.csv,0.5,0.5,1,30,0,3,40\r\n"
                "other,standard,realTest/b.csv,0.5,-1.0,0,34,0,4,40\n"
                "other,standard,realTest/c.csv,0.5,-0.22,0,32,2,0,40\n"
                "other,standard,realTest/unused.csv,0.5,7,0,32,2,0,40\n"
                "Totals,,,,6.28,1,128,4,7,160\n");
  PublishedScores published;
  std::string error;
  REQUIRE(loadPublishedScores(dir.path() + "/results/other/other_standard_scores.csv", published,
                              error));
  CHECK(published.detector == "other");
  CHECK(published.profile == "standard");
  CHECK(published.threshold == 0.5);
  REQUIRE(published.raw_by_file.size() == 4);  // the Totals row is not a file
  CHECK(published.raw_by_file.at("realTest/c.csv") == -0.22);

  const Profile& standard = profiles()[0];
  const ScoredFile a = file("realTest/a.csv", true), b = file("realTest/b.csv", true),
                   c = file("realTest/c.csv", false);
  double score = 0;
  // a alone: 100 (0.5 - (-1)) / (1 - (-1)).
  REQUIRE(publishedScore(published, {a}, standard, score, error));
  CHECK(score == Approx(75.0));
  // b and c: raw -1.22, perfect 1, null -1: 100 (-1.22 + 1) / 2.
  REQUIRE(publishedScore(published, {b, c}, standard, score, error));
  CHECK(score == Approx(-11.0));
  // All three: raw -0.72, perfect 2, null -2; realTest/unused.csv is not among them.
  REQUIRE(publishedScore(published, {a, b, c}, standard, score, error));
  CHECK(score == Approx(32.0));

  CHECK_FALSE(publishedScore(published, {a, file("realTest/d.csv", true)}, standard, score, error));
  CHECK(error.find("has no score for realTest/d.csv") != std::string::npos);
}

TEST_CASE("NAB published results: found under a results directory, in name order", "[nab]") {
  TempDir dir;
  dir.write("results/zeta/zeta_standard_scores.csv", kHeader);
  dir.write("results/alpha/alpha_reward_low_FP_rate_scores.csv", kHeader);
  dir.write("results/alpha/realTweets/alpha_Twitter_volume_AAPL.csv", "timestamp,value\n");
  dir.write("results/final_results.json", "{}");
  const auto found = findPublishedScores(dir.path() + "/results");
  REQUIRE(found.size() == 2);
  CHECK(found[0] == dir.path() + "/results/alpha/alpha_reward_low_FP_rate_scores.csv");
  CHECK(found[1] == dir.path() + "/results/zeta/zeta_standard_scores.csv");
  CHECK(findPublishedScores(found[1]) == std::vector<std::string>{found[1]});
  CHECK(findPublishedScores(dir.path() + "/nowhere").empty());
}

TEST_CASE("NAB published results: what is not a scores file is refused by file and line", "[nab]") {
  TempDir dir;
  auto refused = [&](const std::string& text) {
    dir.write("s.csv", text);
    PublishedScores published;
    std::string error;
    CHECK_FALSE(loadPublishedScores(dir.path() + "/s.csv", published, error));
    return error;
  };
  CHECK(refused("").find("s.csv: empty") != std::string::npos);
  CHECK(refused("timestamp,value\n1,2\n").find("s.csv:1: not a NAB scores file") !=
        std::string::npos);
  CHECK(refused(std::string(kHeader) + "d,standard,x.csv,0.5,1,0,0,0,0,1\nd,standard,y.csv,0.5\n")
            .find("s.csv:3: 4 fields where the header has 10") != std::string::npos);
  CHECK(refused(std::string(kHeader) + "d,standard,x.csv,0.5,high,0,0,0,0,1\n")
            .find("s.csv:2: Score and Threshold must be numbers") != std::string::npos);
  CHECK(refused(std::string(kHeader) + "d,standard,x.csv,0.5,1,0,0,0,0,1\n"
                                       "d,standard,x.csv,0.5,1,0,0,0,0,1\n")
            .find("s.csv:3: x.csv is scored twice") != std::string::npos);
  CHECK(refused(std::string(kHeader) + "d,standard,x.csv,0.5,1,0,0,0,0,1\n"
                                       "e,standard,y.csv,0.5,1,0,0,0,0,1\n")
            .find("s.csv:3: another detector or profile") != std::string::npos);
  CHECK(refused(kHeader).find("s.csv: no scores") != std::string::npos);
  PublishedScores published;
  std::string error;
  CHECK_FALSE(loadPublishedScores(dir.path() + "/missing.csv", published, error));
  CHECK(error.find("cannot read") != std::string::npos);
}
