// Remote write from a store to loopback receivers: the wire format and headers, external labels
// and relabeling, retries and drops by status, timeouts, ordering and resuming after a restart.
#include <httplib.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "tests/support/process.h"
#include "tests/support/test_ca.h"
#include "vigil/clock.h"
#include "vigil/exporters/remote_write.h"
#include "vigil/store.h"

using namespace std::chrono_literals;
using vigil::Label;
using vigil::LabelSet;
using vigil::RemoteWriteConfig;
using vigil::Sample;
using vigil::exporters::decodeWriteRequest;
using vigil::exporters::encodeWriteRequest;
using vigil::exporters::WriteRequestContent;

namespace {

// A remote-write receiver on loopback: answers each request with the next scripted response
// (then 200) and keeps what the 2xx requests carried, decoded.
class Receiver {
 public:
  struct Response {
    int status = 200;
    std::string retry_after;
    std::chrono::milliseconds delay{0};
  };
  struct Request {
    httplib::Headers headers;
    WriteRequestContent content;
    std::chrono::steady_clock::time_point at;
    int status = 0;
  };

  explicit Receiver(const std::string& cert = "", const std::string& key = "") {
    if (cert.empty()) {
      server_ = std::make_unique<httplib::Server>();
    } else {
      server_ = std::make_unique<httplib::SSLServer>(cert.c_str(), key.c_str());
      scheme_ = "https";
    }
    server_->Post("/api/v1/write", [this](const httplib::Request& req, httplib::Response& res) {
      const auto arrived = std::chrono::steady_clock::now();
      Response r;
      {
        std::lock_guard lock(mu_);
        if (!script_.empty()) {
          r = script_.front();
          script_.pop_front();
        }
      }
      if (r.delay > 0ms) {
        std::this_thread::sleep_for(r.delay);
      }
      auto decoded = decodeWriteRequest(req.body);
      std::lock_guard lock(mu_);
      Request got{req.headers, decoded ? *decoded : WriteRequestContent{}, arrived, r.status};
      all_.push_back(got);
      if (!decoded) {
        res.status = 400;
        return;
      }
      res.status = r.status;
      if (!r.retry_after.empty()) {
        res.set_header("Retry-After", r.retry_after);
      }
      res.set_content(r.status < 300 ? "" : "scripted failure", "text/plain");
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    while (!server_->is_running()) {
      std::this_thread::sleep_for(1ms);
    }
  }
  ~Receiver() {
    server_->stop();
    thread_.join();
  }
  std::string url() const {
    return scheme_ + "://127.0.0.1:" + std::to_string(port_) + "/api/v1/write";
  }
  void script(std::vector<Response> responses) {
    std::lock_guard lock(mu_);
    script_.assign(responses.begin(), responses.end());
  }
  // In order of arrival.
  std::vector<Request> requests() const {
    std::lock_guard lock(mu_);
    auto out = all_;
    std::stable_sort(out.begin(), out.end(),
                     [](const Request& a, const Request& b) { return a.at < b.at; });
    return out;
  }
  // Samples of accepted requests by series (labels as text), in arrival order.
  std::map<std::string, std::vector<Sample>> accepted() const {
    std::map<std::string, std::vector<Sample>> out;
    for (const Request& r : requests()) {
      if (r.status < 200 || r.status >= 300) {
        continue;
      }
      for (const auto& s : r.content.series) {
        auto& v = out[vigil::labelsToString(s.labels)];
        v.insert(v.end(), s.samples.begin(), s.samples.end());
      }
    }
    return out;
  }
  std::size_t acceptedSamples() const {
    std::size_t n = 0;
    for (const auto& [series, samples] : accepted()) {
      n += samples.size();
    }
    return n;
  }

 private:
  std::unique_ptr<httplib::Server> server_;
  std::string scheme_ = "http";
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::deque<Response> script_;
  std::vector<Request> all_;
};

LabelSet series(const std::string& name, std::vector<Label> labels = {}) {
  labels.push_back({"__name__", name});
  std::sort(labels.begin(), labels.end());
  return labels;
}

RemoteWriteConfig endpoint(const Receiver& r) {
  RemoteWriteConfig c;
  c.url = r.url();
  c.name = "test";
  c.remote_timeout = vigil::Duration(2000);
  c.queue.min_backoff = vigil::Duration(20);
  c.queue.max_backoff = vigil::Duration(200);
  c.queue.batch_send_deadline = vigil::Duration(100);
  c.metadata.send = false;
  return c;
}

// A writer attached to `store` that starts from `position`: the position file is written
// first, as a previous run would have left it.
std::shared_ptr<vigil::RemoteWriter> writerFrom(const vigil::Store& store,
                                                const vigil::test::TempDir& dir,
                                                const RemoteWriteConfig& c, int64_t position,
                                                std::vector<Label> external = {}) {
  dir.write("remote_write.positions", "{\"version\":1,\"endpoints\":[{\"key\":\"" + c.name + "@" +
                                          c.url + "\",\"position_ms\":" + std::to_string(position) +
                                          "}]}\n");
  auto w = vigil::exporters::makeRemoteWriter();
  w->attach(store, dir.path(), [] {
    return std::vector<vigil::MetricMetadata>{
        {"http_requests_total", vigil::MetricType::kCounter, "Requests."}};
  });
  w->configure({c}, external);
  return w;
}

double metric(const vigil::RemoteWriter& w, const std::string& name, const std::string& result) {
  vigil::MetricBatch batch;
  w.appendStats(batch);
  for (const auto& f : batch.families()) {
    if (f.name != name) {
      continue;
    }
    for (const auto& s : f.samples) {
      bool match = result.empty();
      for (const auto& l : s.labels) {
        match = match || (l.name == "result" && l.value == result);
      }
      if (match) {
        return s.value;
      }
    }
  }
  return -1;
}

using vigil::test::eventually;

}  // namespace

TEST_CASE("A WriteRequest survives encoding and decoding, stale markers bit for bit") {
  WriteRequestContent c;
  c.series.push_back({series("up", {{"job", "api"}}), {{1000, 1}, {2000, vigil::staleNaN()}}});
  c.metadata.push_back({"up", vigil::MetricType::kGauge, "Target up."});
  const std::string body = encodeWriteRequest(c);
  auto back = decodeWriteRequest(body);
  REQUIRE(back);
  REQUIRE(back->series.size() == 1);
  CHECK(back->series[0].labels == c.series[0].labels);
  REQUIRE(back->series[0].samples.size() == 2);
  CHECK(back->series[0].samples[0].t == 1000);
  CHECK(vigil::isStaleNaN(back->series[0].samples[1].v));
  REQUIRE(back->metadata.size() == 1);
  CHECK(back->metadata[0].type == vigil::MetricType::kGauge);
  CHECK(back->metadata[0].help == "Target up.");
  CHECK_FALSE(decodeWriteRequest("not snappy at all"));
}

TEST_CASE("Samples go out with the protocol's headers, external labels and write relabeling") {
  Receiver receiver;
  auto store = vigil::makeMemStore();
  const int64_t start = vigil::unixNowMs() - 10'000;
  for (int i = 0; i < 5; ++i) {
    REQUIRE(store->append(series("http_requests_total", {{"code", "200"}}), start + i * 1000, i)
                .isOk());
    REQUIRE(store->append(series("http_requests_total", {{"code", "500"}}), start + i * 1000, i)
                .isOk());
    // Already has a node label: the external one must not replace it. The empty label is no
    // label, as in Prometheus.
    REQUIRE(store
                ->append(series("node_load1", {{"node", "own"}, {"ifalias", ""}}), start + i * 1000,
                         0.5)
                .isOk());
  }
  RemoteWriteConfig c = endpoint(receiver);
  c.http.auth_type = "Bearer";
  c.http.credentials = "s3cret";
  c.http.headers.push_back({"X-Scope-OrgID", "team-a"});
  vigil::RelabelConfig drop;
  drop.source_labels = {"code"};
  drop.regex = "5..";
  drop.action = vigil::RelabelAction::kDrop;
  REQUIRE(drop.compile().isOk());
  c.write_relabel_configs.push_back(drop);
  vigil::test::TempDir dir;
  auto writer = writerFrom(*store, dir, c, start - 1, {{"node", "n1"}, {"cluster", "prod"}});

  // Until the writer has had the receiver's answer too: stopping while the answer is on its way
  // leaves those samples uncounted (they go again after a restart, from the saved position).
  REQUIRE(eventually(5s, [&] {
    return receiver.acceptedSamples() >= 10 &&
           metric(*writer, "vigil_remote_write_samples_total", "sent") >= 10;
  }));
  writer->stop();
  const auto got = receiver.accepted();
  CHECK(got.size() == 2);
  CHECK(got.count("http_requests_total{cluster=\"prod\", code=\"200\", node=\"n1\"}") == 1);
  CHECK(got.count("node_load1{cluster=\"prod\", node=\"own\"}") == 1);
  for (const auto& [name, samples] : got) {
    CHECK(samples.size() == 5);
  }
  CHECK(metric(*writer, "vigil_remote_write_samples_total", "filtered") == 5);
  CHECK(metric(*writer, "vigil_remote_write_samples_total", "sent") == 10);
  const auto requests = receiver.requests();
  REQUIRE_FALSE(requests.empty());
  const auto& h = requests.front().headers;
  CHECK(h.find("Content-Encoding")->second == "snappy");
  CHECK(h.find("Content-Type")->second == "application/x-protobuf");
  CHECK(h.find("X-Prometheus-Remote-Write-Version")->second == "0.1.0");
  CHECK(h.find("Authorization")->second == "Bearer s3cret");
  CHECK(h.find("X-Scope-OrgID")->second == "team-a");
}

TEST_CASE("New samples keep flowing, and a restart resumes at the saved position") {
  Receiver receiver;
  auto store = vigil::makeMemStore();
  vigil::test::TempDir dir;
  const int64_t start = vigil::unixNowMs() - 20'000;
  const LabelSet s = series("queue_depth");
  RemoteWriteConfig c = endpoint(receiver);
  for (int i = 0; i < 5; ++i) {
    REQUIRE(store->append(s, start + i * 1000, i).isOk());
  }
  auto writer = writerFrom(*store, dir, c, start - 1);
  REQUIRE(eventually(5s, [&] { return receiver.acceptedSamples() == 5; }));
  for (int i = 5; i < 10; ++i) {
    REQUIRE(store->append(s, start + i * 1000, i).isOk());
  }
  REQUIRE(eventually(5s, [&] { return receiver.acceptedSamples() == 10; }));
  writer->stop();  // writes the position
  const std::string positions = vigil::test::readFile(dir.file("remote_write.positions"));
  CHECK(positions.find("test@" + receiver.url()) != std::string::npos);

  // The next run, on the same store: only what is new goes out, nothing twice.
  const int64_t later = vigil::unixNowMs();
  for (int i = 10; i < 15; ++i) {
    REQUIRE(store->append(s, later + i, i).isOk());
  }
  auto again = vigil::exporters::makeRemoteWriter();
  again->attach(*store, dir.path(), {});
  again->configure({c}, {});
  REQUIRE(eventually(5s, [&] { return receiver.acceptedSamples() == 15; }));
  std::this_thread::sleep_for(300ms);
  again->stop();
  const auto got = receiver.accepted().at("queue_depth{}");
  REQUIRE(got.size() == 15);
  for (std::size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].v == static_cast<double>(i));
  }
}

TEST_CASE("5xx and a receiver that hangs are retried with back-off until the samples are taken") {
  Receiver receiver;
  receiver.script({{503, "", 0ms}, {500, "", 0ms}, {503, "", 3000ms}, {502, "", 0ms}});
  auto store = vigil::makeMemStore();
  const int64_t start = vigil::unixNowMs() - 5000;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(store->append(series("up"), start + i * 1000, 1).isOk());
  }
  vigil::test::TempDir dir;
  RemoteWriteConfig c = endpoint(receiver);
  c.remote_timeout = vigil::Duration(500);  // the hanging answer comes too late
  auto writer = writerFrom(*store, dir, c, start - 1);
  REQUIRE(eventually(10s, [&] { return receiver.acceptedSamples() >= 3; }));
  // The receiver counts the samples before its answer reaches the writer: stopping the writer
  // at once could cut that answer off (and count a retry) on a slow machine.
  REQUIRE(eventually(
      10s, [&] { return metric(*writer, "vigil_remote_write_samples_total", "sent") >= 3; }));
  writer->stop();
  REQUIRE(eventually(5s, [&] { return receiver.requests().size() >= 5; }));
  const auto requests = receiver.requests();
  REQUIRE(requests.size() >= 5);
  CHECK(metric(*writer, "vigil_remote_write_samples_total", "sent") == 3);
  CHECK(metric(*writer, "vigil_remote_write_samples_total", "dropped") == 0);
  CHECK(metric(*writer, "vigil_remote_write_requests_total", "retry") == 4);
  CHECK(metric(*writer, "vigil_remote_write_samples_total", "retried") == 12);
  // Back-off doubles: 20, 40, 80 (after the timeout), 160 ms between attempts at least.
  CHECK(requests[1].at - requests[0].at >= 20ms);
  CHECK(requests[2].at - requests[1].at >= 40ms);
  CHECK(requests[4].at - requests[3].at >= 160ms);
  // The series arrived once, in order.
  CHECK(receiver.accepted().at("up{}").size() == 3);
}

TEST_CASE("429 waits for Retry-After, other 4xx drop the samples, counted, and sending goes on") {
  Receiver receiver;
  receiver.script({{429, "1", 0ms}, {400, "", 0ms}, {400, "", 0ms}});
  auto store = vigil::makeMemStore();
  const int64_t start = vigil::unixNowMs() - 5000;
  REQUIRE(store->append(series("a"), start, 1).isOk());
  vigil::test::TempDir dir;
  auto writer = writerFrom(*store, dir, endpoint(receiver), start - 1);
  // 429 then 400: the first batch (one series) is dropped after its Retry-After wait.
  REQUIRE(eventually(
      5s, [&] { return metric(*writer, "vigil_remote_write_samples_total", "dropped") == 1; }));
  auto requests = receiver.requests();
  REQUIRE(requests.size() >= 2);
  CHECK(requests[1].at - requests[0].at >= 950ms);
  // The next batch, two series: rejected as a whole (400), then each series alone: taken.
  // Stamped a little ahead of the clock so that both become visible to the writer at once: a
  // cycle between the two appends would send b alone (seen on a slow sanitizer build).
  const int64_t soon = vigil::unixNowMs() + 500;
  REQUIRE(store->append(series("b"), soon, 2).isOk());
  REQUIRE(store->append(series("c"), soon, 3).isOk());
  const bool both = eventually(5s, [&] { return receiver.acceptedSamples() == 2; });
  writer->stop();
  for (const auto& r : receiver.requests()) {
    UNSCOPED_INFO("request status " << r.status << " series " << r.content.series.size());
  }
  REQUIRE(both);
  CHECK(receiver.accepted().count("b{}") == 1);
  CHECK(receiver.accepted().count("c{}") == 1);
  CHECK(metric(*writer, "vigil_remote_write_samples_total", "dropped") == 1);
  CHECK(metric(*writer, "vigil_remote_write_requests_total", "rejected") == 2);
}

TEST_CASE("A reload keeps an unchanged endpoint's queue and hands a changed one its position") {
  Receiver receiver;
  auto store = vigil::makeMemStore();
  vigil::test::TempDir dir;
  const LabelSet s = series("requests");
  int64_t t = vigil::unixNowMs() - 3000;
  REQUIRE(store->append(s, t, 1).isOk());
  RemoteWriteConfig c = endpoint(receiver);
  auto writer = writerFrom(*store, dir, c, t - 1);
  REQUIRE(eventually(5s, [&] { return receiver.acceptedSamples() == 1; }));
  writer->configure({c}, {});  // unchanged: the same queue goes on
  REQUIRE(store->append(s, ++t, 2).isOk());
  REQUIRE(eventually(5s, [&] { return receiver.acceptedSamples() == 2; }));
  // Counted once the answer is read, a moment after the receiver has the samples.
  CHECK(eventually(
      2s, [&] { return metric(*writer, "vigil_remote_write_samples_total", "sent") == 2; }));

  c.http.headers.push_back({"X-Scope-OrgID", "team-b"});
  writer->configure({c}, {});  // changed: a new queue, from where the old one stopped
  std::this_thread::sleep_for(5ms);
  REQUIRE(store->append(s, vigil::unixNowMs(), 3).isOk());  // collected after the reload
  REQUIRE(eventually(5s, [&] { return receiver.acceptedSamples() == 3; }));
  std::this_thread::sleep_for(300ms);
  writer->stop();
  CHECK(receiver.accepted().at("requests{}").size() == 3);  // nothing sent twice
  CHECK(receiver.requests().back().headers.find("X-Scope-OrgID")->second == "team-b");
  CHECK(metric(*writer, "vigil_remote_write_samples_total", "sent") == 1);  // the new queue's

  writer->configure({}, {});  // stopped writers take no configuration
}

TEST_CASE("TLS receivers are verified against the configured CA, basic auth goes along") {
  vigil::test::TempDir certs_dir;
  const auto certs = vigil::test::makeTestCertificates(certs_dir);
  Receiver receiver(certs.cert, certs.key);
  auto store = vigil::makeMemStore();
  const int64_t start = vigil::unixNowMs() - 2000;
  REQUIRE(store->append(series("up"), start, 1).isOk());

  // Not trusted (the system's CAs do not know the test CA): retried, nothing delivered.
  vigil::test::TempDir dir1;
  RemoteWriteConfig untrusted = endpoint(receiver);
  auto w1 = writerFrom(*store, dir1, untrusted, start - 1);
  REQUIRE(eventually(
      5s, [&] { return metric(*w1, "vigil_remote_write_requests_total", "retry") >= 2; }));
  w1->stop();
  CHECK(receiver.requests().empty());

  vigil::test::TempDir dir2;
  RemoteWriteConfig trusted = endpoint(receiver);
  trusted.http.ca_file = certs.ca;
  trusted.http.auth_type = "Basic";
  trusted.http.basic_username = "vigil";
  trusted.http.basic_password = "pw";
  auto w2 = writerFrom(*store, dir2, trusted, start - 1);
  REQUIRE(eventually(5s, [&] { return receiver.acceptedSamples() == 1; }));
  w2->stop();
  CHECK(receiver.requests().front().headers.find("Authorization")->second ==
        "Basic dmlnaWw6cHc=");  // vigil:pw
}

TEST_CASE("Shards grow with a backlog and come back down, every series arrives in order") {
  Receiver receiver;
  // 40 ms a request: a 5-minute step's 60 batches take 2.4 s on one shard, more than the
  // second a cycle is meant to take.
  std::vector<Receiver::Response> slow(400, {200, "", 40ms});
  receiver.script(slow);
  auto store = vigil::makeMemStore();
  // 20 minutes of 20 series: read in 5-minute steps, 60 batches of 100 samples a step.
  const int64_t start = vigil::unixNowMs() - 20 * 60'000;
  for (int i = 0; i < 20 * 60; ++i) {
    for (int k = 0; k < 20; ++k) {
      REQUIRE(
          store->append(series("backlog", {{"k", std::to_string(k)}}), start + i * 1000, i).isOk());
    }
  }
  vigil::test::TempDir dir;
  RemoteWriteConfig c = endpoint(receiver);
  c.queue.max_samples_per_send = 100;
  c.queue.min_shards = 1;
  c.queue.max_shards = 8;
  auto writer = writerFrom(*store, dir, c, start - 1);
  CHECK(eventually(20s, [&] { return metric(*writer, "vigil_remote_write_shards", "") >= 2; }));
  REQUIRE(eventually(30s, [&] { return receiver.acceptedSamples() == 24'000; }));
  CHECK(eventually(5s, [&] { return metric(*writer, "vigil_remote_write_shards", "") == 1; }));
  writer->stop();
  for (const auto& [name, samples] : receiver.accepted()) {
    REQUIRE(samples.size() == 1200);
    for (std::size_t i = 1; i < samples.size(); ++i) {
      REQUIRE(samples[i].t > samples[i - 1].t);
    }
  }
}
