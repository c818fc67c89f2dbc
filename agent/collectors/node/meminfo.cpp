// node_memory_* from /proc/meminfo: every key, named as node_exporter 1.5 names them.
#include <string_view>

#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

class MeminfoCollector final : public Collector {
 public:
  explicit MeminfoCollector(const HostPaths& paths) : file_(joinPath(paths.procfs, "meminfo")) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    VIGIL_RETURN_IF_ERROR(file_.read(buf_));
    std::size_t place = 0;
    forEachLine(buf_, [&](std::string_view line) {
      splitFields(line, fields_);
      if (fields_.size() < 2 || fields_[0].back() != ':') {
        return;
      }
      auto value = parseDouble(fields_[1]);
      if (!value) {
        return;
      }
      const bool in_kb = fields_.size() == 3;  // the only unit the kernel uses here is kB
      const Field& f = fieldAt(place++, fields_[0], in_kb);
      out.addSingle(f.name, f.help, f.type, in_kb ? *value * 1024 : *value);
    });
    return Status::ok();
  }

 private:
  struct Field {
    std::string name;
    std::string help;
    MetricType type;
  };

  // The field of the line at `place`: last cycle's at that place when the key is the same (the
  // kernel lists the same keys in the same order), else looked up by key.
  const Field& fieldAt(std::size_t place, std::string_view token, bool in_kb) {
    if (place < by_place_.size() && by_place_[place].token == token &&
        by_place_[place].in_kb == in_kb) {
      return *by_place_[place].field;
    }
    const Field& f = field(token, in_kb);
    if (place >= by_place_.size()) {
      by_place_.resize(place + 1);
    }
    by_place_[place] = {std::string(token), in_kb, &f};
    return f;
  }

  // The metric of a meminfo key such as "Active(anon):", named once: the kernel's keys are
  // the same every cycle.
  const Field& field(std::string_view token, bool in_kb) {
    auto& known = in_kb ? kb_fields_ : plain_fields_;
    if (auto it = known.find(token); it != known.end()) {
      return it->second;
    }
    if (known.size() > 1024) {  // not a kernel's meminfo; keep the memory bounded
      known.clear();
      by_place_.clear();  // points into it
    }
    std::string key = mangle(token.substr(0, token.size() - 1));
    if (in_kb) {
      key += "_bytes";
    }
    const bool counter = key.size() > 6 && key.compare(key.size() - 6, 6, "_total") == 0;
    Field f{"node_memory_" + key, "Memory information field " + key + ".",
            counter ? MetricType::kCounter : MetricType::kGauge};
    return known.emplace(std::string(token), std::move(f)).first->second;
  }

  // "Active(anon)" becomes "Active_anon".
  static std::string mangle(std::string_view key) {
    std::string out;
    out.reserve(key.size());
    for (char c : key) {
      if (c == '(') {
        out += '_';
      } else if (c != ')') {
        out += c;
      }
    }
    return out;
  }

  struct Placed {
    std::string token;
    bool in_kb = false;
    const Field* field = nullptr;
  };
  std::vector<Placed> by_place_;
  StringMap<Field> kb_fields_;
  StringMap<Field> plain_fields_;
  ProcFile file_;
  std::string buf_;
  std::vector<std::string_view> fields_;
};

}  // namespace

Result<CollectorPtr> makeMeminfoCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<MeminfoCollector>(paths));
}

}  // namespace vigil::collectors::node
