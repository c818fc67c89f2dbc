#pragma once
// Helpers for integration tests: child processes, free loopback ports, temporary directories.

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace vigil::test {

/// A child process whose stdout and stderr go to `log_path`. Killed (SIGKILL) on destruction
/// if still running.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::string& log_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& logPath() const { return log_path_; }
  void signal(int sig) const;
  /// Waits up to `timeout` for the process to exit; returns its wait status, or nullopt.
  std::optional<int> waitExit(std::chrono::milliseconds timeout);
  bool running();

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  std::optional<int> status_;
};

/// A TCP port on 127.0.0.1 that was free a moment ago.
int freeLoopbackPort();
/// A UDP port on 127.0.0.1 that is free now (for StatsD listeners).
int freeLoopbackUdpPort();
/// A UDP socket connected to 127.0.0.1:`port` (for StatsD senders); the caller closes it.
int connectedLoopbackUdpSocket(int port);
/// A socket of `type` (SOCK_STREAM, SOCK_DGRAM) bound to a port the kernel picks on 127.0.0.1,
/// which goes to `port`; the caller closes it. Throws if it cannot be made.
int boundLoopbackSocket(int type, int& port);

/// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  /// Writes `content` to `name` (which may be a path within: its directories are made).
  void write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr, interleaved
};

/// Runs `argv` to completion with `stdin_data` on its standard input.
CommandResult runCommand(const std::vector<std::string>& argv, const std::string& stdin_data = "");

std::string readFile(const std::string& path);

/// The command line of `vigil run` with a configuration file, on 127.0.0.1:port, with its own
/// data directory: how the integration tests start the agent.
inline std::vector<std::string> vigilRunArgv(const std::string& binary, const std::string& config,
                                             int port, const std::string& data_dir) {
  return {binary,
          "run",
          "--config",
          config,
          "--listen-address",
          "127.0.0.1:" + std::to_string(port),
          "--data-dir",
          data_dir};
}

/// The command line of a real node_exporter (Debian's) on 127.0.0.1:port with only its
/// textfile collector, reading `directory`: the oracle for textfiles and pushed bodies.
inline std::vector<std::string> nodeExporterTextfileArgv(int port, const std::string& directory) {
  return {"prometheus-node-exporter", "--web.listen-address=127.0.0.1:" + std::to_string(port),
          "--collector.disable-defaults", "--collector.textfile",
          "--collector.textfile.directory=" + directory};
}

/// The node_exporter collectors vigil implements, by node_exporter's names: what node_bench
/// and the differential tests run on both sides.
inline constexpr const char* kNodeExporterCollectors[] = {
    "cpu",       "meminfo",    "loadavg",      "stat",    "vmstat",    "filefd",
    "pressure",  "netdev",     "netclass",     "netstat", "sockstat",  "conntrack",
    "diskstats", "filesystem", "uname",        "time",    "os",        "timex",
    "entropy",   "softnet",    "udp_queues",   "arp",     "schedstat", "cpufreq",
    "hwmon",     "dmi",        "thermal_zone", "edac",    "nvme",      "rapl"};

/// Those of them that ask the running system (the clock, uname(2), statfs(2), adjtimex(2))
/// rather than read files under the procfs, sysfs and rootfs roots.
inline constexpr const char* kLiveSystemCollectors[] = {"filesystem", "uname", "time", "timex"};

/// `config` with authorization turned off: the tests' vigils listen on loopback, where that is
/// allowed, so that they can post alerts, silences and reloads without tokens (the security
/// tests set tokens up themselves).
inline std::string openOnLoopback(const std::string& config) {
  return config + (config.empty() || config.back() == '\n' ? "" : "\n") +
         "web:\n  authorization:\n    disabled_on_loopback: true\n";
}

/// CPU time (user + system) a process has used so far: its kernel CPU clock (nanoseconds), or
/// /proc/PID/stat (ticks) where that clock cannot be read.
double processCpuSeconds(pid_t pid);
/// A process's resident memory, from /proc/PID/status.
double processRssBytes(pid_t pid);

/// Polls `predicate` every 100ms until it returns true or `timeout` passes.
template <typename Predicate>
bool eventually(std::chrono::milliseconds timeout, Predicate&& predicate);

}  // namespace vigil::test

#include <thread>

template <typename Predicate>
bool vigil::test::eventually(std::chrono::milliseconds timeout, Predicate&& predicate) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return predicate();
}

namespace vigil::test {
/// Sends `request` over a fresh TCP connection to 127.0.0.1:port (stopping quietly if the peer
/// closes early) and returns what the peer answered before closing or `timeout`.
std::string rawHttpExchange(int port, const std::string& request,
                            std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
}  // namespace vigil::test
