// StatsD ingest on one core, twice: the aggregator alone over a realistic mix of counters,
// gauges and timers with tags and sample rates (one line per datagram, as most clients send),
// 2 million datagrams; then the real UDP listener (its own thread, recvmmsg) fed over loopback
// by a sender thread for five seconds, counting the datagrams it took per CPU second of its
// thread. Target: at least 500,000 datagrams per second.
//
//   build/bench/statsd_bench
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/collectors/push/statsd.h"
#include "agent/collectors/push/statsd_collector.h"
#include "tests/support/process.h"

namespace {

// CPU seconds of every thread of this process, by thread id.
std::map<int, double> threadCpuSeconds() {
  std::map<int, double> out;
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) {
    return out;
  }
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') {
      continue;
    }
    std::ifstream in(std::string("/proc/self/task/") + e->d_name + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string f;
    double utime = 0;
    double stime = 0;
    for (int i = 3; i <= 15 && fields >> f; ++i) {
      if (i == 14) {
        utime = std::stod(f);
      } else if (i == 15) {
        stime = std::stod(f);
      }
    }
    out[std::atoi(e->d_name)] = (utime + stime) / ticks;
  }
  ::closedir(dir);
  return out;
}

double metricValue(const vigil::MetricBatch& batch, const std::string& name,
                   const std::string& result) {
  for (const auto& f : batch.families()) {
    if (f.name != name) {
      continue;
    }
    for (const auto& s : f.samples) {
      if (result.empty() || (!s.labels.empty() && s.labels[0].value == result)) {
        return s.value;
      }
    }
  }
  return 0;
}

}  // namespace

int main() {
  std::vector<std::string> packets;
  for (int i = 0; i < 1000; ++i) {
    const std::string n = std::to_string(i % 50);
    packets.push_back("api.requests:1|c|#route:/r" + n + ",code:200");
    packets.push_back("api.latency:" + std::to_string(5 + i % 200) + "|ms|@0.5|#route:/r" + n);
    packets.push_back("queue.depth:" + std::to_string(i % 30) + "|g|#queue:q" +
                      std::to_string(i % 5));
    packets.push_back("checkout.total:" + std::to_string(10 + i % 90) + ".5|h|#shop:eu");
  }
  vigil::collectors::StatsdAggregator agg;
  constexpr int kDatagrams = 2'000'000;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kDatagrams; ++i) {
    agg.ingestPacket(packets[static_cast<std::size_t>(i) % packets.size()]);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto stats = agg.stats();
  std::printf(
      "statsd: %d datagrams in %.3f s: %.0f datagrams/s on one core (target >= 500000); "
      "lines ok %llu, bad %llu\n",
      kDatagrams, seconds, kDatagrams / seconds, static_cast<unsigned long long>(stats.lines_ok),
      static_cast<unsigned long long>(stats.lines_bad));

  // The UDP listener.
  const int port = vigil::test::freeLoopbackUdpPort();
  vigil::CollectorSettings settings;
  settings.listen_address = "127.0.0.1:" + std::to_string(port);
  auto collector = vigil::collectors::makeStatsdCollector(settings, vigil::HostPaths{});
  if (!collector) {
    std::fprintf(stderr, "%s\n", collector.status().message().c_str());
    return 1;
  }
  const int main_tid = static_cast<int>(::gettid());
  std::atomic<int> sender_tid{0};
  std::atomic<uint64_t> sent{0};
  const auto before = threadCpuSeconds();
  std::thread sender([&] {
    sender_tid = static_cast<int>(::gettid());
    const int fd = vigil::test::connectedLoopbackUdpSocket(port);
    constexpr std::size_t kBatch = 64;
    std::vector<mmsghdr> msgs(kBatch);
    std::vector<iovec> iov(kBatch);
    std::size_t next = 0;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < end) {
      for (std::size_t i = 0; i < kBatch; ++i) {
        const std::string& p = packets[next++ % packets.size()];
        iov[i] = {const_cast<char*>(p.data()), p.size()};
        msgs[i] = {};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      const int n = ::sendmmsg(fd, msgs.data(), kBatch, 0);
      if (n > 0) {
        sent += static_cast<uint64_t>(n);
      }
    }
    ::close(fd);
  });
  sender.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the listener catches up
  const auto after = threadCpuSeconds();
  double listener_cpu = 0;
  for (const auto& [tid, cpu] : after) {
    if (tid == main_tid || tid == sender_tid) {
      continue;
    }
    auto b = before.find(tid);
    listener_cpu = std::max(listener_cpu, cpu - (b == before.end() ? 0 : b->second));
  }
  vigil::MetricBatch batch;
  (void)(*collector)->collect(vigil::CollectContext{}, batch);
  const double received = metricValue(batch, "vigil_statsd_packets_total", "");
  std::printf(
      "statsd listener: %.0f of %llu datagrams received over loopback in 5 s (the rest "
      "lost in the kernel's socket buffer), %.2f CPU s on the listener thread: %.0f "
      "datagrams per CPU second (target >= 500000)\n",
      received, static_cast<unsigned long long>(sent.load()), listener_cpu,
      listener_cpu > 0 ? received / listener_cpu : 0.0);
  return 0;
}
