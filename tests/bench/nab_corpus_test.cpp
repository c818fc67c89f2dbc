// Loading a NAB corpus from either layout: the development subset's (windows.json beside data/)
// and the NAB repository's own (labels/combined_windows.json), so that a clone of the whole
// corpus can be benchmarked as it is.
#include <catch2/catch.hpp>
#include <string>

#include "nab_corpus.h"
#include "tests/support/process.h"

using namespace vigil::nab;
using vigil::test::TempDir;

namespace {

// A corpus directory with one category of two small files.
class CorpusDir : public TempDir {
 public:
  CorpusDir() {
    for (const char* name : {"a.csv", "b.csv"}) {
      std::string text = "timestamp,value\n";
      for (int minute = 0; minute < 10; ++minute) {
        text += "2015-01-01 00:0" + std::to_string(minute) + ":00," + std::to_string(minute) + "\n";
      }
      write(std::string("data/realTest/") + name, text);
    }
  }
};

constexpr const char* kWindows =
    R"({"realTest/b.csv": [["2015-01-01 00:02:00.000000", "2015-01-01 00:04:00.000000"]],
        "realTest/a.csv": []})";

}  // namespace

// The development subset keeps its windows in windows.json, a clone of the NAB repository in
// labels/combined_windows.json: both load alike.
TEST_CASE("NAB corpus: either layout, files in name order", "[nab]") {
  const std::string windows_file =
      GENERATE(std::string("windows.json"), std::string("labels/combined_windows.json"));
  CorpusDir dir;
  dir.write(windows_file, kWindows);
  CHECK(windowsFile(dir.path()) == dir.path() + "/" + windows_file);
  std::vector<CorpusFile> corpus;
  std::string error;
  REQUIRE(loadCorpus(dir.path(), corpus, error));
  REQUIRE(corpus.size() == 2);
  CHECK(corpus[0].name == "realTest/a.csv");
  CHECK(corpus[0].windows.empty());
  CHECK(corpus[1].name == "realTest/b.csv");
  CHECK(corpus[1].series.values.size() == 10);
  REQUIRE(corpus[1].windows.size() == 1);
  CHECK(corpus[1].windows[0] == std::pair<std::size_t, std::size_t>{2, 4});
  std::vector<std::string> names;
  REQUIRE(listCorpus(dir.path(), names, error));
  CHECK(names == std::vector<std::string>{"realTest/a.csv", "realTest/b.csv"});
}

TEST_CASE("NAB corpus: what is missing or malformed is named", "[nab]") {
  CorpusDir dir;
  std::vector<CorpusFile> corpus;
  std::string error;
  CHECK(windowsFile(dir.path()).empty());
  CHECK_FALSE(loadCorpus(dir.path(), corpus, error));
  CHECK(error.find("no windows.json or labels/combined_windows.json") != std::string::npos);

  dir.write("windows.json", R"({"realTest/c.csv": []})");
  CHECK_FALSE(loadCorpus(dir.path(), corpus, error));
  CHECK(error.find("realTest/c.csv") != std::string::npos);

  dir.write("windows.json", R"({"realTest/a.csv": [["2015-01-01 00:02:00"]]})");
  CHECK_FALSE(loadCorpus(dir.path(), corpus, error));
  CHECK(error.find("realTest/a.csv: window") != std::string::npos);
  CHECK(error.find("not a pair of timestamps") != std::string::npos);

  // A window whose bounds are not rows of the file.
  dir.write("windows.json",
            R"({"realTest/a.csv": [["2015-01-01 00:02:00", "2015-01-01 01:00:00"]]})");
  CHECK_FALSE(loadCorpus(dir.path(), corpus, error));
  CHECK(error.find("does not match the data's timestamps") != std::string::npos);

  dir.write("windows.json", "[1, 2]");
  CHECK_FALSE(loadCorpus(dir.path(), corpus, error));
  CHECK(error.find("not a JSON object") != std::string::npos);
}
