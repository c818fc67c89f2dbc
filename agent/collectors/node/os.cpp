// node_os_info and node_os_version from os-release.
#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <string>

#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

// os-release values may be quoted with " or ' and use shell escapes.
std::string unquote(std::string_view v) {
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
    v = v.substr(1, v.size() - 2);
  }
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\\' && i + 1 < v.size()) {
      ++i;
    }
    out += v[i];
  }
  return out;
}

class OsCollector final : public Collector {
 public:
  explicit OsCollector(const HostPaths& paths)
      : etc_(joinPath(paths.rootfs, "etc/os-release")),
        usr_(joinPath(paths.rootfs, "usr/lib/os-release")) {}

  Status collect(const CollectContext& ctx, MetricBatch& out) override {
    // os-release changes with an upgrade, which replaces the file: it is read and parsed again
    // only when stat shows another file (device and inode) or a new modification (a file kept
    // open would never see the replacement). The stat walks a path through a symlink, cold every
    // cycle: it is done once a minute of the cycles' timestamps, which an upgrade's new labels
    // can wait for (every cycle for a caller that gives none).
    const int64_t now_ms = ctx.timestamp_ms;
    if (parsed_ && now_ms != 0 && now_ms >= checked_ms_ && now_ms - checked_ms_ < kRecheckMs) {
      return addSamples(out);
    }
    checked_ms_ = now_ms;
    struct stat st {};
    const std::string* path = &etc_;
    if (::stat(etc_.c_str(), &st) != 0) {
      path = &usr_;
      if (::stat(usr_.c_str(), &st) != 0) {
        return notFound(etc_ + " and " + usr_ + ": " + std::strerror(errno));
      }
    }
    const FileStamp stamp{st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
    if (!parsed_ || stamp != stamp_) {
      std::string text;
      VIGIL_RETURN_IF_ERROR(ProcFile(*path).read(text));
      parse(text);
      stamp_ = stamp;
      parsed_ = true;
    }
    return addSamples(out);
  }

 private:
  static constexpr int64_t kRecheckMs = 60'000;

  Status addSamples(MetricBatch& out) const {
    MetricBatch::addCopyOf(
        out.family("node_os_info",
                   "A metric with a constant '1' value labeled by build_id, id, id_like, "
                   "image_id, image_version, name, pretty_name, variant, variant_id, version, "
                   "version_codename, version_id.",
                   MetricType::kGauge),
        info_labels_, 1);
    if (version_) {
      MetricBatch::addCopyOf(
          out.family("node_os_version", "Metric containing the major.minor part of the OS version.",
                     MetricType::kGauge),
          version_labels_, *version_);
    }
    return Status::ok();
  }

  struct FileStamp {
    dev_t dev;
    ino_t ino;
    off_t size;
    time_t mtime_sec;
    long mtime_nsec;
    bool operator==(const FileStamp&) const = default;
  };

  void parse(std::string_view text) {
    std::map<std::string, std::string> kv;
    forEachLine(text, [&](std::string_view line) {
      auto eq = line.find('=');
      if (eq == std::string_view::npos || line.empty() || line.front() == '#') {
        return;
      }
      kv[std::string(line.substr(0, eq))] = unquote(line.substr(eq + 1));
    });
    auto get = [&](const char* key) {
      auto it = kv.find(key);
      return it == kv.end() ? std::string() : it->second;
    };
    info_labels_ = {{"build_id", get("BUILD_ID")},
                    {"id", get("ID")},
                    {"id_like", get("ID_LIKE")},
                    {"image_id", get("IMAGE_ID")},
                    {"image_version", get("IMAGE_VERSION")},
                    {"name", get("NAME")},
                    {"pretty_name", get("PRETTY_NAME")},
                    {"variant", get("VARIANT")},
                    {"variant_id", get("VARIANT_ID")},
                    {"version", get("VERSION")},
                    {"version_codename", get("VERSION_CODENAME")},
                    {"version_id", get("VERSION_ID")}};
    version_labels_ = {{"id", get("ID")}, {"id_like", get("ID_LIKE")}, {"name", get("NAME")}};
    // VERSION_ID as a number: its major.minor part ("22.04.3" is 22.04).
    const std::string version = get("VERSION_ID");
    std::size_t end = 0;
    int dots = 0;
    while (end < version.size() && (std::isdigit(static_cast<unsigned char>(version[end])) ||
                                    (version[end] == '.' && ++dots < 2))) {
      ++end;
    }
    version_ = parseDouble(std::string_view(version).substr(0, end));
  }

  const std::string etc_;
  const std::string usr_;
  FileStamp stamp_{};
  bool parsed_ = false;
  int64_t checked_ms_ = 0;  // the timestamp of the cycle that last looked at the file
  LabelSet info_labels_;
  LabelSet version_labels_;
  std::optional<double> version_;
};

}  // namespace

Result<CollectorPtr> makeOsCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<OsCollector>(paths));
}

}  // namespace vigil::collectors::node
