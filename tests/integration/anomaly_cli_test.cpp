// `vigil anomaly score`: one score per row, strictly online (a row's score does not change
// when later rows are cut off), and clear errors for bad input.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <sstream>

#include "tests/support/process.h"

using namespace vigil::test;
using namespace std::chrono_literals;

namespace {

std::string series(int rows) {
  std::ostringstream out;
  out << "timestamp,value\n";
  for (int i = 0; i < rows; ++i) {
    // A daily-ish wave with a spike at row 300.
    const double v = 50 + 10 * std::sin(i / 24.0 * 6.283) + (i == 300 ? 80 : 0);
    out << 1700000000 + i * 300 << "," << v << "\n";
  }
  return out.str();
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    out.push_back(l);
  }
  return out;
}

}  // namespace

TEST_CASE("CLI: vigil anomaly score is online and flags the spike", "[integration][anomaly]") {
  TempDir dir;
  dir.write("full.csv", series(400));
  dir.write("half.csv", series(320));
  for (const char* detector : {"ewma", "mad"}) {
    INFO(detector);
    const auto full = runCommand(
        {VIGIL_BINARY, "anomaly", "score", "--detector", detector, dir.file("full.csv")});
    const auto half = runCommand(
        {VIGIL_BINARY, "anomaly", "score", "--detector", detector, dir.file("half.csv")});
    REQUIRE(full.exit_code == 0);
    REQUIRE(half.exit_code == 0);
    const auto f = lines(full.output);
    const auto h = lines(half.output);
    REQUIRE(f.size() == 401);
    REQUIRE(h.size() == 321);
    CHECK(f[0] == "timestamp,value,anomaly_score");
    for (std::size_t i = 0; i < h.size(); ++i) {
      REQUIRE(f[i] == h[i]);  // the future does not change the past
    }
    // Row 300 (line 301) is the spike: the highest score of the series.
    double spike = 0;
    double others = 0;
    for (std::size_t i = 100; i < f.size(); ++i) {
      const double s = std::stod(f[i].substr(f[i].rfind(',') + 1));
      (i == 301 ? spike : others) = std::max(i == 301 ? spike : others, s);
    }
    CHECK(spike > others);
  }
  dir.write("bad.csv", "timestamp,value\n1700000000,1\n1700000300,abc\n");
  const auto bad = runCommand({VIGIL_BINARY, "anomaly", "score", dir.file("bad.csv")});
  CHECK(bad.exit_code == 1);
  CHECK(bad.output.find("bad.csv: line 3: bad value \"abc\"") != std::string::npos);
  const auto unknown =
      runCommand({VIGIL_BINARY, "anomaly", "score", "--detector", "nope", dir.file("bad.csv")});
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.output.find("unknown detector nope") != std::string::npos);
}

TEST_CASE("Anomaly scores in the agent: on /metrics and queryable", "[integration][anomaly]") {
  TempDir dir;
  dir.write("vigil.yaml", R"(global:
  collection_interval: 1s
anomaly:
  interval: 1s
)");
  const int port = freeLoopbackPort();
  ChildProcess vigil(vigilRunArgv(VIGIL_BINARY, dir.file("vigil.yaml"), port, dir.file("data")),
                     dir.file("vigil.log"));
  httplib::Client client("127.0.0.1", port);
  std::string metrics;
  const bool scored = eventually(20s, [&] {
    auto res = client.Get("/metrics");
    metrics = res ? res->body : "";
    return metrics.find("anomaly_score{source_metric=\"node_load1\"}") != std::string::npos &&
           metrics.find(
               "anomaly_score{cpu=\"0\",mode=\"idle\",source_metric=\"node_cpu_seconds_"
               "total\"}") != std::string::npos;
  });
  INFO(readFile(dir.file("vigil.log")));
  REQUIRE(scored);
  CHECK(metrics.find("# TYPE anomaly_score gauge") != std::string::npos);
  CHECK(metrics.find("vigil_anomaly_models ") != std::string::npos);
  // Rules and the query API see them like any series.
  auto res = client.Get("/api/v1/query?query=count(anomaly_score%20%3E%3D%200)");
  REQUIRE(res);
  CHECK(res->body.find("\"result\":[{") != std::string::npos);
}
