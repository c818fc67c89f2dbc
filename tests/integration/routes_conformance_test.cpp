// Routing conformance: generated Alertmanager route trees and label sets, run through
// `amtool config routes test` (Alertmanager 0.25, the oracle) and `vigil routes test`; the
// printed receivers, exit codes and routing trees must be identical.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "tests/support/process.h"

using namespace vigil::test;

namespace {

const std::vector<std::pair<std::string, std::vector<std::string>>> kVocabulary = {
    {"alertname", {"HighLatency", "DiskFull", "InstanceDown"}},
    {"severity", {"critical", "warning", "info"}},
    {"team", {"db", "frontend", "api"}},
    {"env", {"prod", "staging", "dev"}},
    {"service", {"mysql", "redis", "web"}},
};

class TreeGenerator {
 public:
  explicit TreeGenerator(uint32_t seed) : rng_(seed) {}

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  bool chance(int percent) { return pick(100) < percent; }

  const std::pair<std::string, std::vector<std::string>>& label() {
    return kVocabulary[static_cast<std::size_t>(pick(static_cast<int>(kVocabulary.size())))];
  }
  std::string value(const std::vector<std::string>& values) {
    return values[static_cast<std::size_t>(pick(static_cast<int>(values.size())))];
  }

  // A matcher in the new syntax: equality, negation, regex (alternations, prefixes, patterns
  // that match the empty string) and negative regex.
  std::string matcher() {
    const auto& [name, values] = label();
    switch (pick(6)) {
      case 0:
        return name + "=\"" + value(values) + "\"";
      case 1:
        return name + "!=\"" + value(values) + "\"";
      case 2:
        return name + "=~\"" + value(values) + "|" + value(values) + "\"";
      case 3:
        return name + "=~\"" + value(values).substr(0, 2) + ".*\"";
      case 4:
        return name + "!~\"" + value(values) + "\"";
      default:
        return chance(50) ? name + "=\"\"" : name + "=~\".*\"";
    }
  }

  std::string route(int depth, const std::string& indent, bool root) {
    std::string out;
    if (root || chance(60)) {
      out += indent + "receiver: r" + std::to_string(pick(6)) + "\n";
    }
    if (chance(25)) {
      out += indent + (chance(30) ? "group_by: ['...']\n" : "group_by: [alertname, team]\n");
    }
    if (!root) {
      switch (pick(4)) {
        case 0: {
          const auto& [name, values] = label();
          out += indent + "match:\n" + indent + "  " + name + ": " + value(values) + "\n";
          break;
        }
        case 1: {
          const auto& [name, values] = label();
          out += indent + "match_re:\n" + indent + "  " + name + ": '" + value(values) + "|" +
                 value(values).substr(0, 1) + ".*'\n";
          break;
        }
        case 2:
          // Two matchers in one string, comma-separated, in braces.
          out += indent + "matchers: ['{" + matcher() + ", " + matcher() + "}']\n";
          break;
        default: {
          out += indent + "matchers:\n";
          const int n = 1 + pick(2);
          for (int i = 0; i < n; ++i) {
            out += indent + "  - '" + matcher() + "'\n";
          }
        }
      }
      if (chance(35)) {
        out += indent + "continue: true\n";
      }
    }
    if (depth < 3 && (root || chance(50))) {
      const int children = root ? 2 + pick(3) : 1 + pick(3);
      out += indent + "routes:\n";
      for (int i = 0; i < children; ++i) {
        std::string child = route(depth + 1, indent + "    ", false);
        child.replace(indent.size(), 4, "  - ");
        out += child;
      }
    }
    return out;
  }

  std::string config() {
    std::string out = "route:\n" + route(0, "  ", true) + "receivers:\n";
    for (int i = 0; i < 6; ++i) {
      out += "  - name: r" + std::to_string(i) + "\n";
    }
    return out;
  }

  std::vector<std::string> labels() {
    std::vector<std::string> out;
    for (const auto& [name, values] : kVocabulary) {
      if (chance(55)) {
        out.push_back(name + "=" + value(values));
      }
    }
    return out;
  }

 private:
  std::mt19937 rng_;
};

// stdout and the exit code of a shell command; amtool warns on stderr that --config.file wins.
std::pair<std::string, int> stdoutOf(const std::string& command) {
  auto r = runCommand({"sh", "-c", command + " 2>/dev/null"});
  return {r.output, r.exit_code};
}

std::string join(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) {
    out += " '" + a + "'";
  }
  return out;
}

}  // namespace

TEST_CASE("Routing conformance: vigil routes like amtool config routes test",
          "[integration][alerting]") {
  TempDir dir;
  int compared = 0;
  for (uint32_t seed = 1; seed <= 30; ++seed) {
    TreeGenerator gen(seed);
    const std::string config = gen.config();
    const std::string file = dir.file("am" + std::to_string(seed) + ".yml");
    dir.write("am" + std::to_string(seed) + ".yml", config);
    INFO("config (seed " << seed << "):\n" << config);
    {
      auto amtool = stdoutOf("amtool config routes show --config.file=" + file);
      auto vigil = stdoutOf(std::string(VIGIL_BINARY) + " routes show --config " + file);
      REQUIRE(amtool.second == 0);
      CHECK(vigil == amtool);
    }
    for (int i = 0; i < 8; ++i) {
      const std::string labels = join(gen.labels());
      INFO("labels:" << labels);
      auto amtool = stdoutOf("amtool config routes test --config.file=" + file + labels);
      auto vigil = stdoutOf(std::string(VIGIL_BINARY) + " routes test --config " + file + labels);
      CHECK(vigil == amtool);
      ++compared;
      if (i == 0) {
        // The receivers amtool printed verify; a wrong expectation warns and exits 1.
        std::string expected = amtool.first.substr(0, amtool.first.find('\n'));
        for (const std::string& verify : {expected, std::string("nobody")}) {
          const std::string flag = " --verify.receivers=" + verify;
          auto a = stdoutOf("amtool config routes test --config.file=" + file + flag + labels);
          auto v =
              stdoutOf(std::string(VIGIL_BINARY) + " routes test --config " + file + flag + labels);
          CHECK(v == a);
        }
        auto a = stdoutOf("amtool config routes test --tree --config.file=" + file + labels);
        auto v =
            stdoutOf(std::string(VIGIL_BINARY) + " routes test --tree --config " + file + labels);
        CHECK(v == a);
      }
    }
  }
  CHECK(compared == 240);
}

TEST_CASE("Routing conformance: label arguments parse as amtool parses them",
          "[integration][alerting]") {
  TempDir dir;
  dir.write("am.yml", R"(route:
  receiver: default
  routes:
    - matchers: ['msg="a, b"', 'path=~"/api/.*"']
      receiver: quoted
    - matchers: ['{team="db",env!~"dev|staging"}']
      receiver: db
receivers:
  - name: default
  - name: quoted
  - name: db
)");
  const std::string file = dir.file("am.yml");
  for (const std::string& labels :
       {std::string(" 'msg=\"a, b\"' path=/api/v1"), std::string(" 'msg=a, b' path=/api/v1"),
        std::string(" 'team = db' env=prod"), std::string(" team=db env=dev"),
        std::string(" 'team=\"db\"' 'env=\"prod\"'"), std::string(" team=db team=fe"),
        std::string(" 'team=~db'"), std::string(" '{team=\"db\"}'"), std::string(" =db")}) {
    INFO("labels:" << labels);
    auto amtool = stdoutOf("amtool config routes test --config.file=" + file + labels);
    auto vigil = stdoutOf(std::string(VIGIL_BINARY) + " routes test --config " + file + labels);
    CHECK(vigil == amtool);
  }
}

TEST_CASE("Routing conformance: configurations amtool rejects, vigil rejects with a position",
          "[integration][alerting]") {
  const std::vector<std::string> bad = {
      "route:\n  receiver: nobody\nreceivers:\n  - name: a\n",
      "route:\n  group_by: [a]\nreceivers:\n  - name: a\n",
      "route:\n  receiver: a\n  matchers: ['x=\"y\"']\nreceivers:\n  - name: a\n",
      "route:\n  receiver: a\nreceivers:\n  - name: a\n  - name: a\n",
      "route:\n  receiver: a\n  routes:\n    - matchers: ['x=~\"(\"']\nreceivers:\n  - name: a\n",
      "route:\n  receiver: a\n  group_interval: 0s\nreceivers:\n  - name: a\n",
      "route:\n  receiver: a\n  group_by: ['...', job]\nreceivers:\n  - name: a\n",
      "route:\n  receiver: a\n  group_by: [a, a]\nreceivers:\n  - name: a\n",
      "route:\n  receiver: a\n  continue: true\nreceivers:\n  - name: a\n",
      "route:\n  receiver: a\n  routes:\n    - recevier: a\nreceivers:\n  - name: a\n",
      "route:\n  receiver: a\n  routes:\n    - mute_time_intervals: [x]\nreceivers:\n  - name: a\n",
      "route:\n  receiver: a\nreceivers:\n  - name: a\ntime_intervals:\n  - name: t\n"
      "    time_intervals:\n      - weekdays: ['friday:monday']\n",
      "route:\n  receiver: a\nreceivers:\n  - name: a\ntime_intervals:\n  - name: t\n"
      "    time_intervals:\n      - location: Mars/Olympus\n",
  };
  TempDir dir;
  for (std::size_t i = 0; i < bad.size(); ++i) {
    const std::string name = "bad" + std::to_string(i) + ".yml";
    dir.write(name, bad[i]);
    INFO(bad[i]);
    auto amtool = runCommand({"amtool", "check-config", dir.file(name)});
    CHECK(amtool.exit_code != 0);
    auto vigil = runCommand({VIGIL_BINARY, "routes", "show", "--config", dir.file(name)});
    CHECK(vigil.exit_code == 1);
    // FILE:LINE:COL: field: message
    CHECK_THAT(vigil.output, Catch::StartsWith(dir.file(name) + ":"));
    CHECK(vigil.output.find(".yml:0") == std::string::npos);
  }
}
