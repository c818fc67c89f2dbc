// vigil versus node_exporter 1.5 on this machine, with the same collectors, in one run:
//
//   build/bench/node_bench [--parts N] [SECONDS]
//
// Both exporters run at once for SECONDS (default 60) and are scraped in turn once a second
// over kept-alive connections, as Prometheus does, so that the machine's noise falls on both
// alike; vigil collects once a second too, so both do one collection per scrape. Each run
// scrapes both for 10 s first, unmeasured, long enough for vigil to have moved its collection
// onto the scrapes (global.collect_before_scrapes), as it has at any time but a restart's first
// seconds under a real Prometheus. The time is cut into N parts (default 4), each with both
// started afresh (see measureInParts), and the ratio of each part and their median are printed
// beside the whole's. vigil runs node_exporter's collectors only (the same collectors); then,
// alone, with its container collector too. Reported:
// CPU time per scrape and per series (the process's CPU clock), scrape latency p50/p99, series per
// scrape, RSS at the end, and vigil's CPU per scrape split by thread: its collection loop's (the
// rounds its timer starts), its HTTP threads' (serving /metrics, and the rounds a scrape starts:
// all of them once the rounds have moved onto the scrapes) and the rest. Then vigil with node and
// container collectors, not scraped, for its background collection cost at a 1 s interval.
//
//   build/bench/node_bench --alone [--parts N] [SECONDS]
//
// measures the same two one at a time instead: in each part node_exporter alone, then vigil
// alone (the order turning round each part), each for SECONDS / N, both from fresh copies: what
// running beside the other costs each (see measureAloneInParts).
//
//   build/bench/node_bench --against OTHER_VIGIL [--rate N] [--interval DURATION] [--parts N]
//                          [SECONDS]
//   build/bench/node_bench [--against OTHER_VIGIL] --with YAML [...]
//
// compares this build with another vigil binary instead (say, one built from the last commit):
// both run at once with node_exporter's collectors, collecting every DURATION (default 1s),
// and are scraped in turn N times a second (default 1), so that the machine's noise falls on
// both alike, with checkpoints off. The run is cut into parts (default 4), each with freshly
// started processes run from fresh copies of the binaries (see freshCopy); it prints CPU per scrape
// of each and the ratio over the run, in each part and the parts' median, whose spread shows how
// far to trust it. Run it against a copy of the same binary first: on a busy VM, four parts of that
// have ranged from 0.70 to 1.08, so a difference of a few per cent needs many parts (`--parts 16`)
// and a longer run.
// `--interval 100ms --rate 10` does ten times the work in the same time. `--with YAML` adds YAML
// (top-level keys other than global, anomaly, collectors and storage, say
// 'web: {compression: none}') to this build's configuration only, and compares it with the
// other binary (this one when --against is not given) without it: what a setting costs, with
// both processes running the same code.
#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/sample_stats.h"
#include "tests/support/process.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Result {
  double cpu_per_scrape_ms = 0;
  double cpu_per_series_us = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double series = 0;
  double rss_mib = 0;
  // CPU per scrape of the process's threads by name, numbers left off (vigil-http0 and
  // vigil-http1 are vigil-http): which loop the CPU went to. Empty without schedstat.
  std::map<std::string, double> thread_ms;
};

// The CPU time of each of `pid`'s threads now, summed by thread name without its trailing
// number. From schedstat, which counts in nanoseconds (stat's ticks of 10 ms would round a
// collection of a few hundred microseconds away); empty where the kernel has no schedstat.
std::map<std::string, double> threadCpuSeconds(pid_t pid) {
  std::map<std::string, double> by_name;
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream comm(task.path() / "comm");
    std::ifstream schedstat(task.path() / "schedstat");
    std::string name;
    double run_ns = 0;
    if (!std::getline(comm, name) || !(schedstat >> run_ns)) {
      continue;  // the thread ended meanwhile
    }
    while (!name.empty() && name.back() >= '0' && name.back() <= '9') {
      name.pop_back();
    }
    by_name[name] += run_ns / 1e9;
  }
  return by_name;
}

struct Target {
  pid_t pid;
  int port;
  std::string log;  // the process's output, named when it never answers
};

// Which target the `turn`th scrape of round `round` goes to: the order turns round each round,
// so that no target is always the one scraped straight after another (whose request may have
// left the kernel's loopback path and the client warm for it).
std::size_t scrapeOrder(int round, std::size_t turn, std::size_t targets) {
  return (static_cast<std::size_t>(round) + turn) % targets;
}

// How long every target is scraped, unmeasured, before the measured scrapes (see measure).
constexpr int kWarmUpSeconds = 10;

// Scrapes every target `rate` times a second, in turn, for `seconds`: running at once, they
// share whatever else the machine does in that time, which over minutes varies by more than the
// differences measured here.
std::vector<Result> measure(const std::vector<Target>& targets, int seconds, int rate) {
  std::vector<std::unique_ptr<httplib::Client>> clients;
  for (const Target& t : targets) {
    clients.push_back(std::make_unique<httplib::Client>("127.0.0.1", t.port));
    clients.back()->set_keep_alive(true);
    clients.back()->set_read_timeout(10, 0);
    bool answered = false;
    for (int i = 0; i < 50 && !answered; ++i) {  // until it answers
      auto r = clients.back()->Get("/metrics");
      answered = r && r->status == 200;
      if (!answered) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    // A program that is not installed or did not start would otherwise be measured at no CPU
    // and no series, and every ratio printed as inf or 0.
    if (!answered) {
      // Its output goes with the message: the log is in a directory removed on the way out.
      std::ifstream log(t.log);
      std::string output(2048, '\0');
      log.read(output.data(), static_cast<std::streamsize>(output.size()));
      output.resize(static_cast<std::size_t>(log.gcount()));
      throw std::runtime_error("the process on 127.0.0.1:" + std::to_string(t.port) +
                               " never answered /metrics in 5 s; it wrote:\n" + output);
    }
  }
  std::vector<std::vector<double>> latencies(targets.size());
  std::vector<double> series(targets.size(), 0);
  std::vector<double> cpu_before;
  std::vector<std::map<std::string, double>> threads_before;
  // Scraped alike, unmeasured, for kWarmUpSeconds first: long enough for a vigil to learn the
  // scrape interval and move its rounds onto the scrapes (seven arrivals;
  // global.collect_before_scrapes), as it has a minute into a Prometheus's scrapes, which go on
  // for days.
  const int warm_up = kWarmUpSeconds * rate;
  const int scrapes = std::max(seconds * rate, 1);
  auto next = Clock::now();
  for (int i = -warm_up; i < scrapes; ++i) {
    if (i == 0) {
      for (const Target& t : targets) {
        cpu_before.push_back(vigil::test::processCpuSeconds(t.pid));
        threads_before.push_back(threadCpuSeconds(t.pid));
      }
    }
    next += std::chrono::microseconds(1'000'000 / rate);
    std::this_thread::sleep_until(next);
    for (std::size_t turn = 0; turn < targets.size(); ++turn) {
      const std::size_t k = scrapeOrder(i + warm_up, turn, targets.size());
      const auto start = Clock::now();
      auto r = clients[k]->Get("/metrics", {{"Accept-Encoding", "gzip"}});
      const double took = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
      if (i < 0) {
        continue;
      }
      latencies[k].push_back(took);
      if (r) {
        std::size_t samples = 0;
        std::istringstream lines(r->body);
        for (std::string line; std::getline(lines, line);) {
          samples += (!line.empty() && line[0] != '#') ? 1 : 0;
        }
        series[k] = static_cast<double>(samples);
      }
    }
  }
  std::vector<Result> results;
  for (std::size_t k = 0; k < targets.size(); ++k) {
    const double cpu = vigil::test::processCpuSeconds(targets[k].pid) - cpu_before[k];
    auto& lat = latencies[k];
    std::sort(lat.begin(), lat.end());
    Result res;
    res.cpu_per_scrape_ms = cpu / scrapes * 1000;
    res.cpu_per_series_us = cpu / scrapes / series[k] * 1e6;
    res.p50_ms = lat[lat.size() / 2];
    res.p99_ms = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)];
    res.series = series[k];
    res.rss_mib = vigil::test::processRssBytes(targets[k].pid) / (1024.0 * 1024.0);
    // Threads that started during the run (a Go runtime's) count from 0.
    for (const auto& [name, cpu_now] : threadCpuSeconds(targets[k].pid)) {
      const auto before = threads_before[k].find(name);
      const double spent = cpu_now - (before == threads_before[k].end() ? 0 : before->second);
      res.thread_ms[name] = spent / scrapes * 1000;
    }
    results.push_back(res);
  }
  return results;
}

// Starts one process of a program to measure, listening on `port`, its files named after
// `name`.
using Starter =
    std::function<std::unique_ptr<vigil::test::ChildProcess>(int port, const std::string& name)>;

// A new copy of `program` (a path, or a name looked up in PATH) at `copy`, to run instead of
// it. On this kind of VM, wherever a binary file's pages happen to lie in memory slows or speeds
// every process run from it alike, for as long as the file stays in the page cache: two copies of
// one vigil binary, both at once on the same CPU, took 1.32 to 1.46 times each other's CPU in four
// runs of four parts with fresh processes in each (2026-12-04), and a file against itself 0.96. A
// fresh copy of each program in each part turns that into spread between the parts instead of
// a bias of the whole run.
std::string freshCopy(const std::string& program, const std::string& copy) {
  std::filesystem::path source = program;
  if (program.find('/') == std::string::npos) {
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
    for (std::string d; std::getline(dirs, d, ':');) {
      if (!d.empty() && ::access((d + "/" + program).c_str(), X_OK) == 0) {
        source = d + "/" + program;
        break;
      }
    }
  }
  if (source.string().find('/') == std::string::npos) {
    throw std::runtime_error(program +
                             " is not installed (scripts/setup.sh --with-test-servers "
                             "installs it)");
  }
  std::error_code ec;
  std::filesystem::copy_file(source, copy, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) {
    throw std::runtime_error("cannot copy " + source.string() + " to " + copy + ": " +
                             ec.message());
  }
  std::filesystem::permissions(copy, std::filesystem::perms::owner_all, ec);
  return copy;
}

// `programs` measured at once in `parts` parts of SECONDS / parts each, every part with fresh
// processes started in turn (a different one first each part), each from a fresh copy of its
// binary (see freshCopy): a figure is only worth the spread of its parts. Returns each part's
// results, [part][program].
std::vector<std::vector<Result>> measureInParts(const std::vector<Starter>& programs, int seconds,
                                                int rate, int part_count) {
  std::vector<std::vector<Result>> parts;
  for (int part = 1; part <= part_count; ++part) {
    std::vector<std::unique_ptr<vigil::test::ChildProcess>> processes(programs.size());
    std::vector<Target> targets(programs.size());
    for (std::size_t turn = 0; turn < programs.size(); ++turn) {
      const std::size_t k = scrapeOrder(part, turn, programs.size());
      const int port = vigil::test::freeLoopbackPort();
      processes[k] = programs[k](port, std::to_string(k) + "-" + std::to_string(part));
      targets[k] = {processes[k]->pid(), port, processes[k]->logPath()};
    }
    parts.push_back(measure(targets, std::max(seconds / part_count, 1), rate));
  }
  return parts;
}

// `programs` measured one at a time: each part runs every program alone for SECONDS / parts,
// one after the other (in the order measureInParts starts them, which turns round each part),
// each a fresh process from a fresh copy of its binary. On a node, vigil runs instead of
// node_exporter, not beside it: measured alone in turn, each has the machine as the other had
// it, a few seconds apart, without the other's work between its scrapes. That work costs both:
// on 2026-12-07 node_exporter took about a third more CPU a scrape beside vigil than alone and
// vigil about a fifth more beside node_exporter, so the ratio measured at once (the default
// run's, which the target is judged on) is the lower, by about a tenth. Returns
// [part][program].
std::vector<std::vector<Result>> measureAloneInParts(const std::vector<Starter>& programs,
                                                     int seconds, int part_count) {
  std::vector<std::vector<Result>> parts;
  for (int part = 1; part <= part_count; ++part) {
    std::vector<Result> results(programs.size());
    for (std::size_t turn = 0; turn < programs.size(); ++turn) {
      const std::size_t k = scrapeOrder(part, turn, programs.size());
      const int port = vigil::test::freeLoopbackPort();
      auto process = programs[k](port, std::to_string(k) + "-alone-" + std::to_string(part));
      results[k] = measure({{process->pid(), port, process->logPath()}},
                           std::max(seconds / part_count, 1), 1)[0];
    }
    parts.push_back(std::move(results));
  }
  return parts;
}

// Program `k`'s parts as one: the means, the worst part's p99 and the largest RSS.
Result combine(const std::vector<std::vector<Result>>& parts, std::size_t k) {
  Result sum;
  for (const auto& part : parts) {
    const Result& r = part[k];
    const auto n = static_cast<double>(parts.size());
    sum.cpu_per_scrape_ms += r.cpu_per_scrape_ms / n;
    sum.cpu_per_series_us += r.cpu_per_series_us / n;
    sum.p50_ms += r.p50_ms / n;
    sum.p99_ms = std::max(sum.p99_ms, r.p99_ms);
    sum.series = r.series;
    sum.rss_mib = std::max(sum.rss_mib, r.rss_mib);
    for (const auto& [name, ms] : r.thread_ms) {
      sum.thread_ms[name] += ms / n;
    }
  }
  return sum;
}

// The CPU per scrape of program `a` over program `b`'s in each part, and the parts' median
// (the caller prints the run's). With many parts, the median: one pair of processes far off (see
// measureInParts) moves it less than the mean.
void printRatios(const std::vector<std::vector<Result>>& parts, std::size_t a, std::size_t b) {
  std::vector<double> ratios;
  std::printf("by part       ");
  for (const auto& part : parts) {
    ratios.push_back(part[a].cpu_per_scrape_ms / part[b].cpu_per_scrape_ms);
    std::printf(" %.3f", ratios.back());
  }
  std::printf("\nmedian part    %.3f  (%zu parts)\n", vigil::bench::median(ratios), ratios.size());
}

void print(const char* who, const Result& r) {
  std::printf(
      "%-14s cpu/scrape %7.3f ms  cpu/series %6.2f us  latency p50 %6.2f ms p99 %6.2f ms"
      "  series %5.0f  rss %6.1f MiB\n",
      who, r.cpu_per_scrape_ms, r.cpu_per_series_us, r.p50_ms, r.p99_ms, r.series, r.rss_mib);
}

// Where a vigil's CPU per scrape went: its collection loop (rounds its timer starts), its HTTP
// threads (rendering and serving /metrics, and the rounds a scrape starts before it renders:
// with the rounds on the scrapes, the whole collection is here) and the rest (threads that ended
// and those that wake only now and then).
void printThreads(const char* who, const Result& r) {
  if (r.thread_ms.empty()) {
    return;
  }
  double rest = r.cpu_per_scrape_ms;
  std::string parts;
  for (const auto& [name, label] : {std::pair{"vigil-collect", "collection loop"},
                                    std::pair{"vigil-http", "http (scrape rounds too)"}}) {
    const auto found = r.thread_ms.find(name);
    const double ms = found == r.thread_ms.end() ? 0 : found->second;
    rest -= ms;
    char text[96];
    std::snprintf(text, sizeof text, "  %s %.3f ms", label, ms);
    parts += text;
  }
  std::printf("%-14s by thread:%s  rest %.3f ms\n", who, parts.c_str(), std::max(rest, 0.0));
}

// vigil collecting every second with node_exporter's collectors (its others off), and its
// container collector too if `containers`; anomaly detection off: collectors only.
std::string vigilConfig(bool containers, const std::string& interval = "1s") {
  std::string yaml = "global:\n  collection_interval: " + interval +
                     "\n  log_level: warn\n"
                     "anomaly:\n  enabled: false\ncollectors:\n";
  for (const char* other : {"textfile", "cgroup", "cost", "process", "push", "statsd", "postgres",
                            "probe", "redis", "scrape"}) {
    const bool on = containers && std::string_view(other) == "cgroup";
    yaml += std::string("  ") + other + ": {enabled: " + (on ? "true" : "false") + "}\n";
  }
  return yaml;
}

}  // namespace

int run(int argc, char** argv);

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    // Thrown out of run() so that the processes it started are killed on the way.
    std::fprintf(stderr, "node_bench: %s\n", e.what());
    return 1;
  }
}

int run(int argc, char** argv) {
  int seconds = 60;
  int rate = 1;
  int part_count = 4;
  bool alone = false;
  std::string interval = "1s";
  std::string against;
  std::string with;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--against" && i + 1 < argc) {
      against = argv[++i];
    } else if (arg == "--with" && i + 1 < argc) {
      with = std::string(argv[++i]) + "\n";
    } else if (arg == "--rate" && i + 1 < argc) {
      rate = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--parts" && i + 1 < argc) {
      part_count = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--alone") {
      alone = true;
    } else if (arg == "--interval" && i + 1 < argc) {
      interval = argv[++i];
    } else {
      seconds = std::max(1, std::atoi(argv[i]));
    }
  }
  vigil::test::TempDir dir;
  if (!with.empty() && against.empty()) {
    against = VIGIL_BINARY;
  }
  if (!against.empty()) {
    // Without checkpoints: their cost grows with the store, at a different moment in each
    // process, and only adds noise to a comparison of collecting and serving.
    const std::string config =
        vigilConfig(false, interval) + "storage:\n  checkpoint_interval: 1d\n";
    dir.write("compare-this.yaml", config + with);
    dir.write("compare-other.yaml", config);
    std::vector<Starter> programs;
    for (const auto& [binary, file] : {std::pair{std::string(VIGIL_BINARY), "compare-this.yaml"},
                                       std::pair{against, "compare-other.yaml"}}) {
      programs.push_back([&dir, binary, file](int port, const std::string& name) {
        return std::make_unique<vigil::test::ChildProcess>(
            std::vector<std::string>{freshCopy(binary, dir.file("program-" + name)), "run",
                                     "--config", dir.file(file), "--listen-address",
                                     "127.0.0.1:" + std::to_string(port), "--data-dir",
                                     dir.file("compare-" + name + "-data")},
            dir.file("compare-" + name + ".log"));
      });
    }
    const auto parts = measureInParts(programs, seconds, rate, part_count);
    const Result mine = combine(parts, 0);
    const Result other = combine(parts, 1);
    // With --with, "this" is the configuration with it and "other" the one without.
    const std::string this_name = with.empty() ? "this vigil" : "with";
    const std::string other_name =
        with.empty() ? std::filesystem::path(against).filename().string() : "without";
    std::printf("%-14s cpu/scrape %7.3f ms\n%-14s cpu/scrape %7.3f ms\n", this_name.c_str(),
                mine.cpu_per_scrape_ms, other_name.c_str(), other.cpu_per_scrape_ms);
    std::printf(
        "ratio          this/other = %.3f  (%d scrapes a second for %d s, collecting every %s, "
        "both at once)\n",
        mine.cpu_per_scrape_ms / other.cpu_per_scrape_ms, rate, seconds, interval.c_str());
    printThreads(this_name.c_str(), mine);
    printThreads(other_name.c_str(), other);
    printRatios(parts, 0, 1);
    return 0;
  }

  // node_exporter and vigil with its collectors only (its other collectors off) at once, for
  // the CPU per scrape; then vigil with the container collector too, as the memory and
  // idle targets have it.
  auto config = [&](const char* file, bool containers) {
    dir.write(file, vigilConfig(containers));
    return dir.file(file);
  };
  auto startVigil = [&](const std::string& name, bool containers, int port) {
    return std::make_unique<vigil::test::ChildProcess>(
        std::vector<std::string>{freshCopy(VIGIL_BINARY, dir.file("program-" + name)), "run",
                                 "--config", config((name + ".yaml").c_str(), containers),
                                 "--listen-address", "127.0.0.1:" + std::to_string(port),
                                 "--data-dir", dir.file(name + "-data")},
        dir.file(name + ".log"));
  };
  const Starter node_exporter = [&](int port, const std::string& name) {
    std::vector<std::string> args = {
        freshCopy("prometheus-node-exporter", dir.file("program-node_exporter-" + name)),
        "--web.listen-address=127.0.0.1:" + std::to_string(port), "--collector.disable-defaults"};
    for (const char* c : vigil::test::kNodeExporterCollectors) {
      args.push_back(std::string("--collector.") + c);
    }
    return std::make_unique<vigil::test::ChildProcess>(args,
                                                       dir.file("node_exporter-" + name + ".log"));
  };
  const Starter vigil_node = [&](int port, const std::string& name) {
    return startVigil("vigil-node-" + name, false, port);
  };
  if (alone) {
    const auto parts = measureAloneInParts({node_exporter, vigil_node}, seconds, part_count);
    const Result ne_alone = combine(parts, 0);
    const Result vg_alone = combine(parts, 1);
    print("node_exporter", ne_alone);
    print("vigil", vg_alone);
    printThreads("vigil", vg_alone);
    std::printf(
        "ratio          cpu/scrape vigil/node_exporter = %.3f  (each alone, in turn; target <= "
        "0.1)\n",
        vg_alone.cpu_per_scrape_ms / ne_alone.cpu_per_scrape_ms);
    printRatios(parts, 1, 0);
    return 0;
  }
  const auto parts = measureInParts({node_exporter, vigil_node}, seconds, 1, part_count);
  const Result ne_result = combine(parts, 0);
  const Result vg_result = combine(parts, 1);
  const int vg_port = vigil::test::freeLoopbackPort();
  auto vg = startVigil("vigil-containers", true, vg_port);
  const Result with_containers = measure({{vg->pid(), vg_port, vg->logPath()}}, seconds, 1)[0];
  // The same vigil, not scraped: the cost of collecting at a 1 s interval.
  const double idle_before = vigil::test::processCpuSeconds(vg->pid());
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  const double idle_core_percent =
      (vigil::test::processCpuSeconds(vg->pid()) - idle_before) / seconds * 100;

  print("node_exporter", ne_result);
  print("vigil", vg_result);
  print("vigil+cgroup", with_containers);
  printThreads("vigil", vg_result);
  printThreads("vigil+cgroup", with_containers);
  std::printf("ratio          cpu/scrape vigil/node_exporter = %.3f  (target <= 0.1)\n",
              vg_result.cpu_per_scrape_ms / ne_result.cpu_per_scrape_ms);
  printRatios(parts, 1, 0);
  // The target is in MB, 10^6 bytes: 14.3 MiB is 15.0 MB, so both are printed.
  std::printf(
      "vigil+cgroup   rss %.1f MiB = %.2f MB (target under 15 MB); collecting every 1 s, not "
      "scraped: %.3f %% of one core (target < 0.2 %%)\n",
      with_containers.rss_mib, with_containers.rss_mib * 1.048576, idle_core_percent);
  return 0;
}
