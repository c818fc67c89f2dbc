// node_filesystem_* from the mount table and statfs(2), with node_exporter 1.5's exclusions.
// statfs of a mount that may wait on a server or a device (NFS, FUSE, anything not known to
// answer from memory) runs on a helper thread: a hung mount (a dead NFS server) is reported
// with node_filesystem_device_error=1 after the mount timeout instead of blocking the cycle, and
// is skipped until its stuck call returns. The others are asked on the collector's thread: a
// hand-over to the helper and back costs more than all their calls together.
#include <re2/re2.h>
#include <sys/statfs.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "../common/proc_file.h"
#include "node_collectors.h"
#include "vigil/thread_name.h"

namespace vigil::collectors::node {
namespace {

// Debian's node_exporter 1.5 defaults.
constexpr const char* kMountPointsExclude =
    R"(^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/))";
constexpr const char* kFsTypesExclude =
    R"(^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$)";
constexpr std::chrono::milliseconds kMountTimeout{5000};

// Filesystems whose statfs reads counters the kernel keeps in memory: no I/O, no server, no
// lock held across either. (vfat may read its allocation table, btrfs waits on its chunk
// locks, overlay asks the filesystem below it: those go to the helper thread like the rest.)
bool statfsAnswersFromMemory(std::string_view fstype) {
  static constexpr std::string_view kTypes[] = {
      "ext2",    "ext3",       "ext4",      "xfs",        "tmpfs",    "ramfs",     "devtmpfs",
      "proc",    "sysfs",      "cgroup",    "cgroup2",    "devpts",   "mqueue",    "debugfs",
      "tracefs", "securityfs", "pstore",    "bpf",        "configfs", "hugetlbfs", "nsfs",
      "fusectl", "efivarfs",   "selinuxfs", "binfmt_misc"};
  return std::find(std::begin(kTypes), std::end(kTypes), fstype) != std::end(kTypes);
}

// Whether `path` is `dir` or lies under it.
bool isAtOrUnder(std::string_view path, std::string_view dir) {
  if (dir == "/") {
    return true;
  }
  return path.starts_with(dir) && (path.size() == dir.size() || path[dir.size()] == '/');
}

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
  std::string path;  // where to statfs it: under the rootfs
  // statfs answers from memory, and reaching the mount point crosses no mount that may hang
  // (the path walk waits on a dead NFS server as statfs would).
  bool stat_inline = false;
};

using StatFn = std::function<int(const std::string& path, struct statfs& out)>;

int realStatfs(const std::string& path, struct statfs& out) {
  return ::statfs(path.c_str(), &out) == 0 ? 0 : errno;
}

struct StatResult {
  int error = 0;
  struct statfs st {};
};

using SteadyClock = std::chrono::steady_clock;

// statfs of a cycle's mounts, one after another on its own thread, which hands back the whole
// list at once (a hand-over between threads per mount cost more than the calls). If a call
// hangs, the collector abandons this worker (it finishes or stays stuck on its own) and starts
// a fresh one for the rest.
class StatfsWorker {
 public:
  explicit StatfsWorker(StatFn fn) : state_(std::make_shared<State>()) {
    state_->fn = std::move(fn);
    std::thread([s = state_] {
      nameThisThread("statfs");
      s->run();
    }).detach();
  }
  ~StatfsWorker() {
    std::lock_guard lock(state_->mu);
    state_->quit = true;
    state_->cv.notify_all();
  }
  StatfsWorker(const StatfsWorker&) = delete;
  StatfsWorker& operator=(const StatfsWorker&) = delete;

  /// statfs of paths[first..] in order into results[first..]. Returns the index it stopped at:
  /// paths.size() when all returned, else the one that had not returned `timeout` after it
  /// started or at `deadline` (this worker is stuck in it).
  std::size_t statAll(const std::vector<std::string>& paths, std::size_t first,
                      std::chrono::milliseconds timeout, SteadyClock::time_point deadline,
                      std::vector<StatResult>& results) {
    State& s = *state_;
    std::unique_lock lock(s.mu);
    s.paths.assign(paths.begin() + static_cast<std::ptrdiff_t>(first), paths.end());
    s.results.resize(s.paths.size());
    s.done = 0;
    s.current_started = SteadyClock::now();
    s.has_request = true;
    s.cv.notify_all();
    // The worker wakes us only when all are done; meanwhile, each call's limit is checked when
    // it would pass, counted from when that call started.
    while (s.done < s.paths.size()) {
      const auto limit = std::min(deadline, s.current_started + timeout);
      if (SteadyClock::now() >= limit) {
        break;
      }
      s.cv.wait_until(lock, limit);
    }
    std::copy_n(s.results.begin(), s.done, results.begin() + static_cast<std::ptrdiff_t>(first));
    return first + s.done;
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> paths;
    std::vector<StatResult> results;
    std::size_t done = 0;
    SteadyClock::time_point current_started;  // of paths[done]
    bool has_request = false;
    bool quit = false;
    StatFn fn;

    void run() {
      std::unique_lock lock(mu);
      for (;;) {
        cv.wait(lock, [&] { return has_request || quit; });
        if (quit) {
          return;
        }
        has_request = false;
        for (std::size_t i = 0; i < paths.size(); ++i) {
          // Read unlocked: the collector assigns paths again only once this list is done, or
          // never, having abandoned this worker.
          const std::string& path = paths[i];
          lock.unlock();
          StatResult r;
          r.error = fn(path, r.st);
          lock.lock();
          if (quit) {
            return;  // abandoned while that call hung: the rest are a fresh worker's
          }
          results[i] = r;
          done = i + 1;
          current_started = SteadyClock::now();
        }
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
    // An overlay mount's line lists every layer: read whole, it is read only when it changed.
    mountinfo_.expectLongRecords();
    self_mountinfo_.expectLongRecords();
  }

  Status collect(const CollectContext& ctx, MetricBatch& out) override {
    // PID 1's view is the host's when vigil shares the host PID namespace; else our own. The
    // mount table is parsed again only when the kernel says it changed.
    bool changed = false;
    if (!mountinfo_.readIfChanged(buf_, changed).isOk()) {
      VIGIL_RETURN_IF_ERROR(self_mountinfo_.readIfChanged(buf_, changed));
    }
    if (changed) {
      parseMounts(buf_);
    }
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

    statMounts(ctx.deadline);
    for (std::size_t i = 0; i < mounts_.size(); ++i) {
      const Mount& m = mounts_[i];
      const bool failed = results_[i].error != 0;
      const std::initializer_list<LabelRef> labels = {
          {"device", m.device}, {"fstype", m.fstype}, {"mountpoint", m.mountpoint}};
      MetricBatch::add(device_error, labels, failed ? 1 : 0);
      MetricBatch::add(readonly, labels, m.readonly ? 1 : 0);
      if (failed) {
        continue;
      }
      const struct statfs& st = results_[i].st;
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
  // statfs of every mount not known to hang into results_ (an error for those that do).
  void statMounts(SteadyClock::time_point deadline) {
    index_.clear();
    results_.assign(mounts_.size(), StatResult{EIO, {}});
    for (std::size_t i = 0; i < mounts_.size(); ++i) {
      if (mounts_[i].stat_inline) {
        results_[i].error = stat_(mounts_[i].path, results_[i].st);
      } else if (!isStuck(mounts_[i].mountpoint)) {
        index_.push_back(i);
      }
    }
    if (index_.empty()) {
      return;
    }
    if (!worker_) {
      worker_ = std::make_unique<StatfsWorker>(stat_);
    }
    // Assigned in place: the strings keep their storage from one cycle to the next.
    paths_.resize(index_.size());
    for (std::size_t k = 0; k < index_.size(); ++k) {
      paths_[k] = mounts_[index_[k]].path;
    }
    stat_results_.resize(paths_.size());
    std::size_t next = 0;
    while (next < paths_.size()) {
      const std::size_t stopped =
          worker_->statAll(paths_, next, mount_timeout_, deadline, stat_results_);
      for (std::size_t k = next; k < stopped; ++k) {
        results_[index_[k]] = stat_results_[k];
      }
      if (stopped == paths_.size()) {
        break;
      }
      // paths_[stopped] hangs: skipped until it answers; the rest are tried on a fresh worker,
      // unless the cycle's own deadline is what passed (they then fail this cycle).
      markStuck(mounts_[index_[stopped]]);
      if (SteadyClock::now() >= deadline) {
        break;
      }
      next = stopped + 1;
    }
  }

  // The mounts to report, in mount table order, without exclusions and with one per label set
  // (bind mounts).
  void parseMounts(std::string_view text) {
    mounts_.clear();
    std::set<std::tuple<std::string, std::string, std::string>> seen;
    // Mount points (as in the table) of every mount, reported or not, that may hang.
    std::vector<std::string> may_hang;
    std::vector<std::string> table_mountpoints;  // of mounts_, as in the table
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
      m.stat_inline = statfsAnswersFromMemory(m.fstype);
      if (!m.stat_inline) {
        may_hang.push_back(m.mountpoint);
      }
      std::string table_mountpoint = m.mountpoint;
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
      if (!seen.emplace(m.device, m.fstype, m.mountpoint).second) {
        return;
      }
      m.path = rootfs_ == "/" ? m.mountpoint : rootfs_ + m.mountpoint;
      mounts_.push_back(std::move(m));
      table_mountpoints.push_back(std::move(table_mountpoint));
    });
    for (std::size_t i = 0; i < mounts_.size(); ++i) {
      for (const std::string& dir : may_hang) {
        if (isAtOrUnder(table_mountpoints[i], dir)) {
          mounts_[i].stat_inline = false;
          break;
        }
      }
    }
  }

  bool isStuck(const std::string& mountpoint) {
    std::lock_guard lock(stuck_->mu);
    return stuck_->mounts.count(mountpoint) != 0;
  }

  void markStuck(const Mount& mount) {
    {
      std::lock_guard lock(stuck_->mu);
      stuck_->mounts.insert(mount.mountpoint);
    }
    // The worker is stuck in statfs: abandon it (its thread exits once the call returns) and
    // start a fresh one. A watcher waits for the mount to answer, so that it is tried again.
    worker_ = std::make_unique<StatfsWorker>(stat_);
    std::thread([stuck = stuck_, stat = stat_, mountpoint = mount.mountpoint, path = mount.path] {
      nameThisThread("mountwait");
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
  std::unique_ptr<StatfsWorker> worker_;  // started when a mount first needs it
  std::shared_ptr<StuckMounts> stuck_ = std::make_shared<StuckMounts>();
  std::string buf_;
  std::vector<std::string_view> fields_;
  std::vector<Mount> mounts_;  // from the last mount table read
  // This cycle: per mount its result, and the mounts asked of the worker.
  std::vector<StatResult> results_;
  std::vector<std::string> paths_;
  std::vector<std::size_t> index_;  // paths_[k] is mounts_[index_[k]]
  std::vector<StatResult> stat_results_;
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
