#pragma once
// vigil started as an alert pipeline for the integration tests: its own directory, config and
// port, restartable (kill -9 included), with amtool pointed at it.
#include <httplib.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace vigil::test {

using namespace std::chrono_literals;

struct AlertingVigil {
  TempDir dir;
  int port = freeLoopbackPort();
  std::unique_ptr<ChildProcess> process;
  int runs = 0;

  explicit AlertingVigil(const std::string& config_yaml, const std::string& rules_yaml = "") {
    dir.write("vigil.yaml", openOnLoopback(config_yaml));
    dir.write("rules.yml", rules_yaml.empty() ? "groups: []\n" : rules_yaml);
    start();
  }
  void start() {
    process = std::make_unique<ChildProcess>(
        vigilRunArgv(VIGIL_BINARY, dir.file("vigil.yaml"), port, dir.file("data")),
        dir.file("vigil" + std::to_string(++runs) + ".log"));
    bool ready = eventually(10s, [&] {
      auto res = client().Get("/-/healthy");
      return res && res->status == 200;
    });
    INFO(log());
    REQUIRE(ready);
  }
  void kill9() {
    process->signal(SIGKILL);
    (void)process->waitExit(5s);
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(2, 0);
    c.set_read_timeout(5, 0);
    return c;
  }
  // Every run's log, in order.
  std::string log() const {
    std::string out;
    for (int i = 1; i <= runs; ++i) {
      out += readFile(dir.file("vigil" + std::to_string(i) + ".log"));
    }
    return out;
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
  CommandResult amtool(std::vector<std::string> args) const {
    args.insert(args.begin(), {"amtool", "--alertmanager.url=" + url()});
    return runCommand(args);
  }
  std::size_t notifications(const std::string& needle) const {
    std::size_t n = 0;
    const std::string text = log();
    for (std::size_t pos = 0; (pos = text.find("msg=\"notification ", pos)) != std::string::npos;
         ++pos) {
      const std::size_t end = text.find('\n', pos);
      if (text.substr(pos, end - pos).find(needle) != std::string::npos) {
        ++n;
      }
    }
    return n;
  }
};

/// A real Alertmanager (Debian's 0.25) on loopback, alone (no cluster), with `config_yaml`.
struct RealAlertmanager {
  int port = freeLoopbackPort();
  std::unique_ptr<ChildProcess> process;

  RealAlertmanager(const TempDir& dir, const std::string& config_yaml) {
    dir.write("am.yml", config_yaml);
    process = std::make_unique<ChildProcess>(
        std::vector<std::string>{"prometheus-alertmanager", "--config.file=" + dir.file("am.yml"),
                                 "--storage.path=" + dir.file("am-data"),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(port),
                                 "--cluster.listen-address="},
        dir.file("am.log"));
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
  bool waitReady() const {
    return eventually(15s, [&] {
      httplib::Client c("127.0.0.1", port);
      auto res = c.Get("/-/ready");
      return res && res->status == 200;
    });
  }
};

}  // namespace vigil::test
