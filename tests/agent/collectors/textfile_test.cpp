// The textfile collector as node_exporter 1.5 behaves: *.prom files merged, a bad file skipped
// and flagged, timestamps refused, mtime per file by full path.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "agent/collectors/node/node_collectors.h"

using namespace vigil;

namespace {

struct Dir {
  std::filesystem::path path;
  Dir() {
    path = std::filesystem::temp_directory_path() /
           ("vigil-textfile-" + std::to_string(::getpid()) + "-" +
            std::to_string(reinterpret_cast<uintptr_t>(this)));
    std::filesystem::create_directories(path);
  }
  ~Dir() { std::filesystem::remove_all(path); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
  }
};

MetricBatch collect(const std::string& directory) {
  CollectorSettings settings;
  settings.directory = directory;
  auto c = collectors::node::makeTextfileCollector(settings, HostPaths{});
  REQUIRE(c);
  MetricBatch out;
  REQUIRE((*c)->collect(CollectContext{}, out).isOk());
  return out;
}

const MetricFamily* family(const MetricBatch& b, const std::string& name) {
  for (const auto& f : b.families()) {
    if (f.name == name) {
      return &f;
    }
  }
  return nullptr;
}

}  // namespace

TEST_CASE("Textfile collector: files merged, bad ones skipped and flagged", "[textfile]") {
  Dir dir;
  dir.write("backup.prom",
            "# HELP backup_last_success_timestamp_seconds Last good backup.\n"
            "# TYPE backup_last_success_timestamp_seconds gauge\n"
            "backup_last_success_timestamp_seconds{db=\"app\"} 1.7e9\n");
  dir.write("jobs.prom", "# TYPE jobs_run_total counter\njobs_run_total{job=\"x\"} 5\n");
  dir.write("notes.txt", "not a metric file\n");
  auto good = collect(dir.path.string());
  REQUIRE(family(good, "backup_last_success_timestamp_seconds") != nullptr);
  CHECK(family(good, "backup_last_success_timestamp_seconds")->help == "Last good backup.");
  CHECK(family(good, "backup_last_success_timestamp_seconds")->samples[0].value == 1.7e9);
  CHECK(family(good, "jobs_run_total")->type == MetricType::kCounter);
  // A family the file gives no help gets node_exporter's.
  CHECK(family(good, "jobs_run_total")->help ==
        "Metric read from " + (dir.path / "jobs.prom").string());
  CHECK(family(good, "node_textfile_scrape_error")->samples[0].value == 0);
  const auto* mtime = family(good, "node_textfile_mtime_seconds");
  REQUIRE(mtime->samples.size() == 2);
  CHECK(mtime->samples[0].labels == LabelSet{{"file", (dir.path / "backup.prom").string()}});

  // A broken file, one with timestamps and ones with a second TYPE or HELP line (which
  // node_exporter's parser refuses): skipped, flagged; the good one stays.
  dir.write("broken.prom", "half_written{job=\"x\" 1\n");
  dir.write("stamped.prom", "with_time 1 1700000000000\n");
  dir.write("retyped.prom", "# TYPE retyped gauge\nretyped 1\n# TYPE retyped gauge\n");
  dir.write("rehelped.prom", "# HELP rehelped One.\n# HELP rehelped Two.\nrehelped 1\n");
  auto mixed = collect(dir.path.string());
  CHECK(family(mixed, "node_textfile_scrape_error")->samples[0].value == 1);
  CHECK(family(mixed, "backup_last_success_timestamp_seconds") != nullptr);
  CHECK(family(mixed, "with_time") == nullptr);
  CHECK(family(mixed, "retyped") == nullptr);
  CHECK(family(mixed, "rehelped") == nullptr);
  CHECK(family(mixed, "node_textfile_mtime_seconds")->samples.size() == 2);

  // A directory that is not there is an error too, not a crash.
  CHECK(family(collect((dir.path / "nope").string()), "node_textfile_scrape_error")
            ->samples[0]
            .value == 1);
}
