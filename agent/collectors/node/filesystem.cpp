// node_filesystem_* from the mount table and statfs(2), with node_exporter 1.5's exclusions.
// statfs runs on a helper thread: a hung mount (a dead NFS server) is reported with
// node_filesystem_device_error=1 after the mount timeout instead of blocking the cycle, and is
// skipped until its stuck call returns.
#include <re2/re2.h>
#include <sys/statfs.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

// Debian's node_exporter 1.5 defaults.
constexpr const char* kMountPointsExclude =
    R"(^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/))";
constexpr const char* kFsTypesExclude =
    R"(^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$)";
constexpr std::chrono::milliseconds kMountTimeout{5000};

// "\040" in the mount table is a space, "\011" a tab, "\134" a backslash.
std::string unescapeOctal(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
        s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct Mount {
  std::string device;
  std::string mountpoint;  // as labelled: without the rootfs prefix
  std::string fstype;
  bool readonly = false;
};

using StatFn = std::function<int(const std::string& path, struct statfs& out)>;

int realStatfs(const std::string& path, struct statfs& out) {
  return ::statfs(path.c_str(), &out) == 0 ? 0 : errno;
}

struct StatResult {
  bool done = false;
  int error = 0;
  struct statfs st {};
};

// One statfs at a time on its own thread. If a call hangs, the collector abandons this worker
// (it finishes or stays stuck on its own) and starts a fresh one.
class StatfsWorker {
 public:
  explicit StatfsWorker(StatFn fn) : state_(std::make_shared<State>()) {
    state_->fn = std::move(fn);
    std::thread([s = state_] { s->run(); }).detach();
  }
  ~StatfsWorker() {
    std::lock_guard lock(state_->mu);
    state_->quit = true;
    state_->cv.notify_all();
  }

  /// statfs(path), or nullopt if it did not return before `deadline`.
  std::optional<StatResult> stat(const std::string& path,
                                 std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(state_->mu);
    state_->request = path;
    state_->result = StatResult{};
    state_->has_request = true;
    state_->cv.notify_all();
    if (!state_->cv.wait_until(lock, deadline, [&] { return state_->result.done; })) {
      return std::nullopt;
    }
    return state_->result;
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::string request;
    bool has_request = false;
    bool quit = false;
    StatResult result;
    StatFn fn;

    void run() {
      std::unique_lock lock(mu);
      for (;;) {
        cv.wait(lock, [&] { return has_request || quit; });
        if (quit) {
          return;
        }
        has_request = false;
        const std::string path = request;
        lock.unlock();
        StatResult r;
        r.error = fn(path, r.st);
        r.done = true;
        lock.lock();
        result = r;
        cv.notify_all();
      }
    }
  };
  std::shared_ptr<State> state_;
};

class FilesystemCollector final : public Collector {
 public:
  FilesystemCollector(const HostPaths& paths, StatFn stat, std::chrono::milliseconds mount_timeout)
      : stat_(std::move(stat)),
        mount_timeout_(mount_timeout),
        rootfs_(paths.rootfs),
        mountinfo_(joinPath(paths.procfs, "1/mountinfo")),
        self_mountinfo_(joinPath(paths.procfs, "self/mountinfo")),
        mountpoints_exclude_(kMountPointsExclude),
        fstypes_exclude_(kFsTypesExclude) {
    while (rootfs_.size() > 1 && rootfs_.back() == '/') {
      rootfs_.pop_back();
    }
  }

  Status collect(const CollectContext& ctx, MetricBatch& out) override {
    // PID 1's view is the host's when vigil shares the host PID namespace; else our own.
    if (!mountinfo_.read(buf_).isOk()) {
      VIGIL_RETURN_IF_ERROR(self_mountinfo_.read(buf_));
    }
    std::vector<Mount> mounts = parseMounts(buf_);
    auto& size =
        out.family("node_filesystem_size_bytes", "Filesystem size in bytes.", MetricType::kGauge);
    auto& free = out.family("node_filesystem_free_bytes", "Filesystem free space in bytes.",
                            MetricType::kGauge);
    auto& avail =
        out.family("node_filesystem_avail_bytes",
                   "Filesystem space available to non-root users in bytes.", MetricType::kGauge);
    auto& files =
        out.family("node_filesystem_files", "Filesystem total file nodes.", MetricType::kGauge);
    auto& files_free = out.family("node_filesystem_files_free", "Filesystem total free file nodes.",
                                  MetricType::kGauge);
    auto& readonly =
        out.family("node_filesystem_readonly", "Filesystem read-only status.", MetricType::kGauge);
    auto& device_error =
        out.family("node_filesystem_device_error",
                   "Whether an error occurred while getting statistics for the given device.",
                   MetricType::kGauge);

    std::set<std::tuple<std::string, std::string, std::string>> seen;
    for (const Mount& m : mounts) {
      if (!seen.emplace(m.device, m.fstype, m.mountpoint).second) {
        continue;  // bind mounts: one series per label set
      }
      const LabelSet labels{
          {"device", m.device}, {"fstype", m.fstype}, {"mountpoint", m.mountpoint}};
      bool failed = true;
      struct statfs st {};
      if (!isStuck(m.mountpoint)) {
        const auto deadline =
            std::min(ctx.deadline, std::chrono::steady_clock::now() + mount_timeout_);
        const std::string path = rootfs_ == "/" ? m.mountpoint : rootfs_ + m.mountpoint;
        auto r = worker_->stat(path, deadline);
        if (!r) {
          markStuck(m.mountpoint);
        } else if (r->error == 0) {
          st = r->st;
          failed = false;
        }
      }
      MetricBatch::add(device_error, labels, failed ? 1 : 0);
      MetricBatch::add(readonly, labels, m.readonly ? 1 : 0);
      if (failed) {
        continue;
      }
      const double bsize = static_cast<double>(st.f_bsize);
      MetricBatch::add(size, labels, static_cast<double>(st.f_blocks) * bsize);
      MetricBatch::add(free, labels, static_cast<double>(st.f_bfree) * bsize);
      MetricBatch::add(avail, labels, static_cast<double>(st.f_bavail) * bsize);
      MetricBatch::add(files, labels, static_cast<double>(st.f_files));
      MetricBatch::add(files_free, labels, static_cast<double>(st.f_ffree));
    }
    return Status::ok();
  }

 private:
  std::vector<Mount> parseMounts(std::string_view text) {
    std::vector<Mount> mounts;
    forEachLine(text, [&](std::string_view line) {
      // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
      splitFields(line, fields_);
      std::size_t dash = 6;
      while (dash < fields_.size() && fields_[dash] != "-") {
        ++dash;
      }
      if (fields_.size() < 6 || dash + 2 >= fields_.size()) {
        return;
      }
      Mount m;
      m.mountpoint = unescapeOctal(fields_[4]);
      m.fstype = std::string(fields_[dash + 1]);
      m.device = unescapeOctal(fields_[dash + 2]);
      const std::string options = "," + std::string(fields_[5]) + ",";
      m.readonly = options.find(",ro,") != std::string::npos;
      // Reading our own mount table inside a container, the host's mounts appear under the
      // rootfs mount: label them with their host path (node_exporter's rootfsStripPrefix).
      if (rootfs_ != "/" && m.mountpoint.rfind(rootfs_, 0) == 0) {
        m.mountpoint = m.mountpoint.substr(rootfs_.size());
        if (m.mountpoint.empty()) {
          m.mountpoint = "/";
        }
      }
      if (RE2::PartialMatch(m.mountpoint, mountpoints_exclude_) ||
          RE2::FullMatch(m.fstype, fstypes_exclude_)) {
        return;
      }
      mounts.push_back(std::move(m));
    });
    return mounts;
  }

  bool isStuck(const std::string& mountpoint) {
    std::lock_guard lock(stuck_->mu);
    return stuck_->mounts.count(mountpoint) != 0;
  }

  void markStuck(const std::string& mountpoint) {
    {
      std::lock_guard lock(stuck_->mu);
      stuck_->mounts.insert(mountpoint);
    }
    // The worker is stuck in statfs: abandon it (its thread exits once the call returns) and
    // start a fresh one. A watcher waits for the mount to answer, so that it is tried again.
    worker_ = std::make_unique<StatfsWorker>(stat_);
    std::thread([stuck = stuck_, stat = stat_, mountpoint,
                 path = rootfs_ == "/" ? mountpoint : rootfs_ + mountpoint] {
      struct statfs st {};
      stat(path, st);  // returns when the mount recovers
      std::lock_guard lock(stuck->mu);
      stuck->mounts.erase(mountpoint);
    }).detach();
  }

  struct StuckMounts {
    std::mutex mu;
    std::set<std::string> mounts;
  };

  StatFn stat_;
  std::chrono::milliseconds mount_timeout_;
  std::string rootfs_;
  ProcFile mountinfo_;
  ProcFile self_mountinfo_;
  RE2 mountpoints_exclude_;
  RE2 fstypes_exclude_;
  std::unique_ptr<StatfsWorker> worker_ = std::make_unique<StatfsWorker>(stat_);
  std::shared_ptr<StuckMounts> stuck_ = std::make_shared<StuckMounts>();
  std::string buf_;
  std::vector<std::string_view> fields_;
};

}  // namespace

Result<CollectorPtr> makeFilesystemCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<FilesystemCollector>(paths, realStatfs, kMountTimeout));
}

CollectorPtr makeFilesystemCollectorForTest(
    const HostPaths& paths, std::function<int(const std::string&, struct statfs&)> stat,
    std::chrono::milliseconds mount_timeout) {
  return std::make_unique<FilesystemCollector>(paths, std::move(stat), mount_timeout);
}

}  // namespace vigil::collectors::node
