// node_exporter's textfile collector: *.prom files in a directory, written atomically by cron
// jobs (a backup job publishing backup_last_success_timestamp_seconds, say). A file that cannot
// be read or parsed is skipped and flagged in node_textfile_scrape_error; the others are kept.
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "node_collectors.h"
#include "vigil/text_parser.h"

namespace vigil::collectors::node {

namespace {

constexpr std::uintmax_t kMaxFileBytes = 16 << 20;

class TextfileCollector : public Collector {
 public:
  explicit TextfileCollector(std::string directory) : directory_(std::move(directory)) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    if (directory_.empty()) {
      return Status::ok();
    }
    namespace fs = std::filesystem;
    std::vector<fs::path> files;
    std::error_code ec;
    bool failed = false;
    for (const auto& entry : fs::directory_iterator(directory_, ec)) {
      if (entry.path().extension() == ".prom" && entry.is_regular_file(ec)) {
        files.push_back(entry.path());
      }
    }
    if (ec) {
      spdlog::warn("textfile directory unreadable directory={} error=\"{}\"", directory_,
                   ec.message());
      failed = true;
    }
    std::sort(files.begin(), files.end());
    auto& mtime = out.family("node_textfile_mtime_seconds",
                             "Unixtime mtime of textfiles successfully read.", MetricType::kGauge);
    std::vector<std::pair<std::string, double>> read_ok;
    for (const auto& path : files) {
      auto parsed = readFile(path);
      if (!parsed) {
        spdlog::warn("textfile skipped file={} error=\"{}\"", path.string(),
                     parsed.status().message());
        failed = true;
        continue;
      }
      for (const auto& f : parsed->batch.families()) {
        // node_exporter's help for a family the file gives none.
        MetricFamily& dest = out.family(
            f.name, f.help.empty() ? "Metric read from " + path.string() : f.help, f.type);
        for (const auto& sample : f.samples) {
          dest.samples.push_back(sample);
        }
      }
      struct stat st {};
      if (::stat(path.c_str(), &st) == 0) {
        // node_exporter 1.5: the file's full path, whole seconds.
        read_ok.emplace_back(path.string(), static_cast<double>(st.st_mtim.tv_sec));
      }
    }
    for (auto& [name, t] : read_ok) {
      MetricBatch::add(mtime, {{"file", name}}, t);
    }
    out.addSingle("node_textfile_scrape_error",
                  "1 if there was an error opening or reading a file, 0 otherwise",
                  MetricType::kGauge, failed ? 1 : 0);
    return Status::ok();
  }

 private:
  static Result<TextParseResult> readFile(const std::filesystem::path& path) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) {
      return Status(StatusCode::kUnavailable, ec.message());
    }
    if (size > kMaxFileBytes) {
      return invalidArgument("larger than 16 MiB");
    }
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      return Status(StatusCode::kUnavailable, "cannot read");
    }
    auto parsed = parseTextFormat(text.str());
    if (parsed && parsed->timestamped > 0) {
      // As node_exporter: a textfile's samples are as of the scrape.
      return invalidArgument("contains unsupported client-side timestamps");
    }
    if (parsed && !parsed->metadata_error.empty()) {
      // node_exporter's parser refuses a second HELP or TYPE line for a family, or a TYPE line
      // after its samples: the file is skipped there, so here too.
      return invalidArgument(parsed->metadata_error);
    }
    return parsed;
  }

  std::string directory_;
};

}  // namespace

Result<CollectorPtr> makeTextfileCollector(const CollectorSettings& settings, const HostPaths&) {
  return CollectorPtr(std::make_unique<TextfileCollector>(settings.directory));
}

}  // namespace vigil::collectors::node
