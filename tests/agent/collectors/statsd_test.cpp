// StatsD and DogStatsD lines aggregated as statsd_exporter maps them, garbage counted and
// dropped, and the listener receiving real UDP datagrams on loopback.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <thread>

#include "agent/collectors/push/statsd.h"
#include "agent/collectors/push/statsd_collector.h"
#include "tests/support/collect.h"
#include "tests/support/process.h"

using namespace vigil;
using namespace vigil::collectors;
using namespace std::chrono_literals;

namespace {}  // namespace

TEST_CASE("StatsD: counters, gauges, timers, tags, sample rates", "[statsd]") {
  StatsdAggregator agg;
  agg.ingestPacket("api.requests:1|c\napi.requests:1|c|@0.5\napi.requests:2|c|#route:/login\n");
  agg.ingestPacket("queue.depth:10|g\nqueue.depth:+5|g\nqueue.depth:-3|g\n");
  agg.ingestPacket("db.query:120|ms|#db:app,env:prod\ndb.query:4|ms|#db:app,env:prod\n");
  agg.ingestPacket("payload-size:0.3|h");
  MetricBatch batch;
  agg.snapshot(batch);
  auto m = test::flattenBatch(batch);
  CHECK(m["api_requests"] == 3);  // 1 + 1/0.5
  CHECK(m["api_requests|route=/login"] == 2);
  CHECK(m["queue_depth"] == 12);
  CHECK(m["db_query_count|db=app|env=prod"] == 2);
  CHECK(m["db_query_sum|db=app|env=prod"] == Approx(0.124));  // milliseconds to seconds
  CHECK(m["db_query_bucket|db=app|env=prod|le=0.005"] == 1);
  CHECK(m["db_query_bucket|db=app|env=prod|le=0.25"] == 2);
  CHECK(m["db_query_bucket|db=app|env=prod|le=+Inf"] == 2);
  CHECK(m["payload_size_count"] == 1);
  for (const auto& f : batch.families()) {
    if (f.name == "api_requests") {
      CHECK(f.type == MetricType::kCounter);
    }
    if (f.name == "db_query") {
      CHECK(f.type == MetricType::kHistogram);
    }
  }
  CHECK(m["vigil_statsd_lines_total|result=ok"] == 9);
}

TEST_CASE("StatsD: garbage is counted and dropped, never fatal", "[statsd]") {
  StatsdAggregator agg;
  const char* garbage[] = {"",         "novalue",      ":1|c",  "x:abc|c",  "x:1|zz",
                           "x:1|c|@2", "x:1|c|@abc",   "x:1",   "x:-1|c",   "users:alice|s",
                           "x:nan|g",  "\xff\xfe:1|c", "a|b:c", "x:1e400|g"};
  for (const char* line : garbage) {
    agg.ingestPacket(line);
  }
  agg.ingestPacket("x:1|c");
  agg.ingestPacket("x:1|g");  // the same name as another type
  // ... also with other tags (found by the fuzzer: the histogram family's snapshot then read
  // the counter's buckets, which it has none of).
  agg.ingestPacket("size:512|h|#route:home");
  agg.ingestPacket("size:511|c|#region:eu");
  const auto stats = agg.stats();
  CHECK(stats.lines_ok == 3);  // "\xff\xfe:1|c" is a valid line with a sanitised name
  CHECK(stats.lines_bad == 14);
  CHECK(stats.packets == 18);
  MetricBatch out;
  agg.snapshot(out);
  for (const auto& f : out.families()) {
    if (f.name == "size") {
      CHECK(f.type == MetricType::kHistogram);
      CHECK(f.samples.size() == 14);  // 11 buckets, +Inf, _sum, _count: the counter is not in
    }
  }
}

TEST_CASE("StatsD: the listener receives UDP datagrams", "[statsd][integration]") {
  const int port = test::freeLoopbackPort();
  CollectorSettings settings;
  settings.listen_address = "127.0.0.1:" + std::to_string(port);
  auto collector = makeStatsdCollector(settings, HostPaths{});
  REQUIRE(collector);
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < 100; ++i) {
    const std::string packet = "orders.placed:1|c|#shop:eu";
    ::sendto(fd, packet.data(), packet.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  }
  const std::string junk = "\x01\x02 not statsd at all";
  ::sendto(fd, junk.data(), junk.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  // Over the 8 KiB a packet may have: counted as bad, not half-read.
  const std::string huge = "big.metric:1|c|#tag:" + std::string(9000, 'x');
  ::sendto(fd, huge.data(), huge.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  ::close(fd);
  std::map<std::string, double> m;
  REQUIRE(test::eventually(5s, [&] {
    MetricBatch batch;
    REQUIRE((*collector)->collect(CollectContext{}, batch).isOk());
    m = test::flattenBatch(batch);
    return m["orders_placed|shop=eu"] == 100 && m["vigil_statsd_lines_total|result=bad"] == 2;
  }));
  CHECK(m["vigil_statsd_packets_total"] == 102);
  CHECK(m.count("big_metric|tag=" + std::string(9000, 'x')) == 0);
}
