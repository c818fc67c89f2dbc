// Remote write into a real Prometheus 2.42 (Debian's package, --web.enable-remote-write-receiver)
// on loopback: what vigil sent is there with identical labels and values, a Prometheus outage
// leaves no gap, and neither does vigil killed with SIGKILL and restarted.
#include <httplib.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/process.h"

using namespace vigil::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

using SeriesMap = std::map<std::string, std::vector<std::pair<double, std::string>>>;

class RemoteWriteStack {
 public:
  RemoteWriteStack() : vigil_port_(freeLoopbackPort()), prom_port_(freeLoopbackPort()) {
    dir_.write("prometheus.yml", "global:\n  scrape_interval: 1h\n");
    dir_.write("vigil.yaml",
               "global:\n"
               "  collection_interval: 1s\n"
               "  external_labels: {cluster: it-cluster}\n"
               "storage:\n"
               "  checkpoint_interval: 2s\n"
               "remote_write:\n"
               "  - url: http://127.0.0.1:" +
                   std::to_string(prom_port_) +
                   "/api/v1/write\n"
                   "    name: prom\n"
                   "    queue_config: {min_backoff: 100ms, max_backoff: 500ms}\n");
    startPrometheus();
    startVigil();
  }

  void startPrometheus() {
    prometheus_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"prometheus", "--config.file=" + dir_.file("prometheus.yml"),
                                 "--storage.tsdb.path=" + dir_.file("tsdb"),
                                 "--web.enable-remote-write-receiver",
                                 "--web.listen-address=127.0.0.1:" + std::to_string(prom_port_)},
        dir_.file("prometheus.log"));
  }
  void stopPrometheus() {
    prometheus_->signal(SIGTERM);
    REQUIRE(prometheus_->waitExit(20s));
  }
  void startVigil() {
    vigil_ = std::make_unique<ChildProcess>(
        vigilRunArgv(VIGIL_BINARY, dir_.file("vigil.yaml"), vigil_port_, dir_.file("data")),
        dir_.file("vigil.log"));
  }
  void killVigil() {
    vigil_->signal(SIGKILL);
    REQUIRE(vigil_->waitExit(5s));
  }

  // `data.result` of an instant query, or null when the server did not answer.
  json query(int port, const std::string& expr, double at) {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(1, 0);
    client.set_read_timeout(10, 0);
    char t[32];
    std::snprintf(t, sizeof t, "%.3f", at);
    auto res = client.Get("/api/v1/query", httplib::Params{{"query", expr}, {"time", t}},
                          httplib::Headers{});
    if (!res || res->status != 200) {
      return nullptr;
    }
    return json::parse(res->body)["data"]["result"];
  }
  // Range-vector results as label text -> [(t, value)], with `drop_label` removed.
  SeriesMap matrix(int port, const std::string& expr, double at, const std::string& drop_label) {
    SeriesMap out;
    json result = query(port, expr, at);
    if (result.is_null()) {
      return out;
    }
    for (const auto& s : result) {
      std::string key;
      for (auto it = s["metric"].begin(); it != s["metric"].end(); ++it) {
        // Prometheus has no empty labels (an empty value is an absent label).
        if (it.key() != drop_label && !it.value().get<std::string>().empty()) {
          key += it.key() + "=" + it.value().get<std::string>() + ",";
        }
      }
      auto& v = out[key];
      for (const auto& p : s["values"]) {
        v.emplace_back(p[0].get<double>(), p[1].get<std::string>());
      }
    }
    return out;
  }
  // vigil's position (from its /metrics): every sample up to it has been acknowledged.
  double position() {
    httplib::Client client("127.0.0.1", vigil_port_);
    client.set_connection_timeout(1, 0);
    auto res = client.Get("/metrics");
    if (!res || res->status != 200) {
      return 0;
    }
    const std::string name = "vigil_remote_write_position_timestamp_seconds{";
    const auto line = res->body.find("\n" + name);
    if (line == std::string::npos) {
      return 0;
    }
    const auto space = res->body.find("} ", line);
    return std::stod(res->body.substr(space + 2, res->body.find('\n', space) - space - 2));
  }
  static double nowSeconds() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  // Waits until vigil has acknowledged everything up to `t`.
  bool sentThrough(double t, std::chrono::seconds timeout) {
    return eventually(timeout, [&] { return position() >= t; });
  }
  // The timestamps Prometheus holds of one series over [from, to].
  std::vector<double> promTimes(const std::string& selector, double from, double to) {
    const int range = static_cast<int>(std::ceil(to - from)) + 1;
    SeriesMap m = matrix(prom_port_, selector + "[" + std::to_string(range) + "s]", to, "");
    std::vector<double> out;
    for (const auto& [k, v] : m) {
      for (const auto& p : v) {
        out.push_back(p.first);
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  std::string logs() const {
    return "vigil log:\n" + readFile(dir_.file("vigil.log")) + "\nprometheus log:\n" +
           readFile(dir_.file("prometheus.log"));
  }

  int vigilPort() const { return vigil_port_; }
  int promPort() const { return prom_port_; }

 private:
  TempDir dir_;
  int vigil_port_;
  int prom_port_;
  std::unique_ptr<ChildProcess> prometheus_;
  std::unique_ptr<ChildProcess> vigil_;
};

double largestGap(const std::vector<double>& times) {
  double gap = 0;
  for (std::size_t i = 1; i < times.size(); ++i) {
    gap = std::max(gap, times[i] - times[i - 1]);
  }
  return gap;
}

}  // namespace

TEST_CASE("Remote write: what vigil sent is in Prometheus, with identical labels and values",
          "[integration][remote_write]") {
  RemoteWriteStack stack;
  const double started = RemoteWriteStack::nowSeconds();
  REQUIRE(stack.sentThrough(started + 8, 40s));
  INFO(stack.logs());
  // Every series vigil holds (node collectors, containers, anomaly scores, scrape-free
  // self series alike) over 6 s ending 3 s behind the position, so that samples appended a
  // little after their timestamp have been sent too.
  REQUIRE(stack.sentThrough(RemoteWriteStack::nowSeconds() + 3, 20s));
  const double at = stack.position() - 3;
  const SeriesMap in_vigil = stack.matrix(stack.vigilPort(), "{__name__=~\".+\"}[6s]", at, "");
  const SeriesMap in_prom =
      stack.matrix(stack.promPort(), "{cluster=\"it-cluster\"}[6s]", at, "cluster");
  REQUIRE(in_vigil.size() >= 100);
  CHECK(in_prom.size() == in_vigil.size());
  std::size_t samples = 0;
  std::size_t differing = 0;
  for (const auto& [series, values] : in_vigil) {
    auto it = in_prom.find(series);
    if (it == in_prom.end() || it->second != values) {
      UNSCOPED_INFO("differs: " << series);
      ++differing;
    }
    samples += values.size();
  }
  CHECK(differing == 0);
  CHECK(samples >= in_vigil.size() * 4);
  // The external label is there.
  json up = stack.query(stack.promPort(), "count(node_load1{cluster=\"it-cluster\"})", at);
  REQUIRE(up.is_array());
  CHECK(up[0]["value"][1] == "1");
}

TEST_CASE("Remote write: a Prometheus outage and vigil killed with SIGKILL leave no gap",
          "[integration][remote_write]") {
  RemoteWriteStack stack;
  const double started = RemoteWriteStack::nowSeconds();
  REQUIRE(stack.sentThrough(started + 4, 40s));
  INFO(stack.logs());

  // The receiver goes away for 6 s; vigil keeps collecting and retries.
  stack.stopPrometheus();
  const double outage_start = RemoteWriteStack::nowSeconds();
  std::this_thread::sleep_for(6s);
  const double stuck = stack.position();
  CHECK(stuck <= outage_start + 1);
  stack.startPrometheus();
  const double outage_end = RemoteWriteStack::nowSeconds();
  REQUIRE(stack.sentThrough(outage_end + 2, 40s));

  // vigil dies without a word, after a checkpoint has been written, and comes back.
  std::this_thread::sleep_for(3s);
  stack.killVigil();
  const double killed = RemoteWriteStack::nowSeconds();
  std::this_thread::sleep_for(1s);
  stack.startVigil();
  REQUIRE(eventually(30s, [&] { return stack.position() > killed + 3; }));
  const double restarted_by = RemoteWriteStack::nowSeconds();

  const auto times = stack.promTimes("node_load1{cluster=\"it-cluster\"}", started, restarted_by);
  REQUIRE(times.size() >= 10);
  // Across the outage, every second is there: the backlog came from the store.
  std::vector<double> around_outage;
  for (double t : times) {
    if (t >= outage_start - 3 && t <= outage_end + 2) {
      around_outage.push_back(t);
    }
  }
  REQUIRE(around_outage.size() >= 8);
  CHECK(largestGap(around_outage) <= 1.6);
  // Across the kill, the only hole is the time vigil was not running (nothing was collected
  // then): under 1 s down plus the restart itself.
  std::vector<double> around_kill;
  for (double t : times) {
    if (t >= killed - 5) {
      around_kill.push_back(t);
    }
  }
  REQUIRE(around_kill.size() >= 5);
  CHECK(largestGap(around_kill) <= 4.0);
  // And every sample the restarted vigil holds (restored from its checkpoint) is in
  // Prometheus.
  const double at = stack.position() - 1;
  const int range = static_cast<int>(at - started);
  const SeriesMap in_vigil =
      stack.matrix(stack.vigilPort(), "node_load1[" + std::to_string(range) + "s]", at, "");
  const SeriesMap in_prom = stack.matrix(
      stack.promPort(), "node_load1{cluster=\"it-cluster\"}[" + std::to_string(range) + "s]", at,
      "cluster");
  REQUIRE(in_vigil.size() == 1);
  REQUIRE(in_prom.size() == 1);
  const auto& v = in_vigil.begin()->second;
  const auto& p = in_prom.begin()->second;
  std::size_t missing = 0;
  for (const auto& sample : v) {
    missing += std::find(p.begin(), p.end(), sample) == p.end() ? 1 : 0;
  }
  CHECK(missing == 0);
  CHECK(v.size() >= 10);
}
