#pragma once
// Value types for collected metrics: what a collector produces in one cycle and what the
// exporters render. Names, label names and types follow the Prometheus data model.

#include <algorithm>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace vigil {

enum class MetricType { kCounter, kGauge, kUntyped, kSummary, kHistogram };

std::string_view metricTypeName(MetricType type);

// A sample value as Prometheus writes it in JSON and in count_values labels (Go's 'f' format,
// shortest digits, no exponent): "0.5", "1500000", "NaN", "+Inf".
std::string formatPlainFloat(double v);
/// formatPlainFloat appended to `out`, without a string per value (query answers hold many).
void appendPlainFloat(std::string& out, double v);
/// formatPlainFloat written at `first`, which has room for kMaxPlainFloatChars; returns the end.
inline constexpr std::size_t kMaxPlainFloatChars = 512;  // 1e308 takes 309 digits
char* writePlainFloat(char* first, double v);

/// Go's fmt %v (strconv's 'g', shortest) for a float64: shortest digits, the exponent form
/// below 1e-4 and from 1e6 ("1e+06", "123456"). How Go's clients write le and quantile labels.
std::string goFloat(double v);

/// A string in double quotes as Go's strconv.Quote writes it for the text labels and PromQL
/// strings hold: \" \\ \n \t \r escaped, other control bytes as \xNN.
std::string goQuote(std::string_view s);

/// A map from strings that is searched with a string_view without making a string from it,
/// for lookups done on every collection cycle.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename Value>
using StringMap = std::unordered_map<std::string, Value, StringHash, std::equal_to<>>;

struct Label {
  std::string name;
  std::string value;
  bool operator==(const Label&) const = default;
  auto operator<=>(const Label&) const = default;
};

/// Labels of one sample, sorted by name, without `__name__` (the family carries the name).
using LabelSet = std::vector<Label>;

struct MetricSample {
  LabelSet labels;
  double value = 0;
  /// For histograms and summaries: "_bucket", "_sum" or "_count"; empty otherwise.
  std::string suffix;
};

struct MetricFamily {
  std::string name;
  std::string help;
  MetricType type = MetricType::kUntyped;
  std::vector<MetricSample> samples;
  /// Not part of the family's value (readers look at `samples` only): the samples of the cycle
  /// before, set aside by MetricBatch::recycle() for MetricBatch::add to take back.
  std::vector<MetricSample> previous = {};
  /// Also not part of its value: how many of `samples` add() gave the labels of the sample at
  /// the same position in `previous` (for MetricBatch::sealLayout).
  std::size_t same_as_previous = 0;
};

/// A label named by views, for MetricBatch::add.
struct LabelRef {
  std::string_view name;
  std::string_view value;
};

/// Whether `refs` (distinct names, in any order) are the labels of `set`: the same size, and
/// every one of them in `set` (a handful of labels: no sorting needed to tell).
inline bool sameLabels(const LabelSet& set, std::span<const LabelRef> refs) {
  return set.size() == refs.size() && std::all_of(refs.begin(), refs.end(), [&](const LabelRef& l) {
           return std::any_of(set.begin(), set.end(), [&](const Label& kept) {
             return kept.name == l.name && kept.value == l.value;
           });
         });
}
/// `refs` copied into a label set, sorted by name.
LabelSet labelSetOf(std::span<const LabelRef> refs);

/// Everything one collector produced in one cycle. Not thread-safe; a batch is filled by one
/// collector and then published read-only.
class MetricBatch {
 public:
  MetricBatch() = default;
  MetricBatch(const MetricBatch&) = default;
  MetricBatch& operator=(const MetricBatch&) = default;
  /// A batch moved from is empty, as after clear().
  MetricBatch(MetricBatch&& other) noexcept;
  MetricBatch& operator=(MetricBatch&& other) noexcept;

  /// The family with this name, created on first use. Help and type are taken from the first
  /// call; later calls with the same name return the same family. References stay valid for
  /// the batch's lifetime, so a collector may hold several families while it fills them.
  MetricFamily& family(std::string_view name, std::string_view help, MetricType type);
  /// The same, by its position in families().
  std::size_t familyIndex(std::string_view name, std::string_view help, MetricType type);

  /// Adds a sample; `labels` may come in any order and is sorted here.
  static void add(MetricFamily& family, LabelSet labels, double value);
  /// The same for labels written in place (`add(f, {{"device", name}}, v)` comes here). A
  /// collector reports the same series in the same order cycle after cycle: when the sample at
  /// this position in the family's last cycle (see recycle()) has these labels, its label set
  /// is taken back instead of a new one being made, and nothing is allocated. Label names must
  /// be distinct, as in any label set.
  static void add(MetricFamily& family, std::initializer_list<LabelRef> labels, double value);
  static void add(MetricFamily& family, double value) { add(family, {}, value); }
  /// The same for labels in a list made at run time (views into someone else's strings).
  static void addRefs(MetricFamily& family, std::span<const LabelRef> labels, double value);
  /// The same for a histogram's or summary's "_bucket", "_sum" or "_count" sample.
  static void addSuffixed(MetricFamily& family, std::string_view suffix,
                          std::initializer_list<LabelRef> labels, double value);
  /// The same for a label set the collector keeps from cycle to cycle (sorted by name): copied
  /// only when the sample at this position last cycle had other labels.
  static void addCopyOf(MetricFamily& family, const LabelSet& labels, double value);

  /// Shorthand for a family with a single unlabelled sample.
  void addSingle(std::string_view name, std::string_view help, MetricType type, double value);

  /// A run of a batch's families: iterated, indexed, counted like the deque it views.
  template <typename Iterator>
  class FamilyRange {
   public:
    FamilyRange(Iterator begin, Iterator end) : begin_(begin), end_(end) {}
    Iterator begin() const { return begin_; }
    Iterator end() const { return end_; }
    std::size_t size() const { return static_cast<std::size_t>(end_ - begin_); }
    bool empty() const { return begin_ == end_; }
    auto& operator[](std::size_t i) const { return begin_[static_cast<std::ptrdiff_t>(i)]; }
    auto& front() const { return *begin_; }
    auto& back() const { return *(end_ - 1); }

   private:
    Iterator begin_;
    Iterator end_;
  };
  using Families = FamilyRange<std::deque<MetricFamily>::const_iterator>;
  using MutableFamilies = FamilyRange<std::deque<MetricFamily>::iterator>;
  /// This cycle's families, in the order they were first asked for.
  Families families() const { return {families_.begin(), families_.begin() + active()}; }
  /// For code that takes a batch apart (moving samples into another batch) or rewrites its
  /// samples' labels; family names must not change. The batch's shape is then unknown: see
  /// sealLayout().
  MutableFamilies mutableFamilies() {
    rewritten_ = true;
    return {families_.begin(), families_.begin() + active()};
  }
  std::size_t seriesCount() const;
  bool empty() const { return active_ == 0; }
  void clear();
  /// Empties the batch for its collector's next cycle, which looks much like this one: the
  /// families are set aside, their samples in `previous`, and family() takes one back (its
  /// name, help, sample storage and last samples) when asked for it again instead of allocating
  /// a new one. What the collector sees is the same as with a new batch (families in the order
  /// it asks for them, help and type from its first call); families it does not ask for are
  /// gone at the next recycle().
  void recycle();

  /// Names this batch's shape (its families in order and every sample's name and labels in
  /// order) for whoever receives it: two batches from one collector with the same nonzero
  /// layout differ only in their values, so the store need not compare their labels again.
  /// 0, the default, promises nothing. Whoever changes a batch's shape must reset it.
  uint64_t layout() const { return layout_; }
  void setLayout(uint64_t layout) {
    layout_ = layout;
    layout_checked_ = false;
  }
  /// Whether layout() came from sealLayout(), which kept last cycle's layout only for the same
  /// shape with the same help and type on every family: readers may then take a text made for
  /// the layout as it is. A layout the collector set is its own promise, to be checked.
  bool layoutChecked() const { return layout_checked_; }
  /// A layout never handed out before, process-wide.
  static uint64_t newLayout();
  /// Gives the batch a layout once its collector has filled it, unless one was set this cycle:
  /// the same as last cycle's when it has the same shape (every family asked for in last
  /// cycle's order and every sample added with last cycle's labels at its position, as add()
  /// finds when it takes them back), a new one otherwise. Collectors that report the same
  /// series cycle after cycle thus spare the store comparing their labels. A sample's labels
  /// must not change once added, except through mutableFamilies(), or the layout is wrong.
  void sealLayout();

 private:
  // families_[0, active_) are this cycle's, in the order asked for. After recycle(), the rest
  // are last cycle's not asked for again yet: family() takes the one at active_ when it is the
  // one asked for (a collector asks for the same families in the same order every cycle), and
  // swaps another one there otherwise. This cycle's families never move, so references to them
  // stay valid; the deque keeps references valid as it grows.
  std::deque<MetricFamily> families_;
  std::size_t active_ = 0;
  // Looked up by string_view without making a string. name -> position in families_.
  StringMap<std::size_t> index_;
  // Since recycle(), every family was asked for in last cycle's order (none swapped or added).
  bool in_order_ = false;
  uint64_t layout_ = 0;
  // For sealLayout(): last cycle's layout and series count, and whether mutableFamilies() was
  // handed out since recycle().
  uint64_t last_layout_ = 0;
  std::size_t last_series_ = 0;
  bool rewritten_ = false;
  bool header_changed_ = false;  // a family's help or type changed since recycle()
  bool layout_checked_ = false;  // see layoutChecked()

  std::ptrdiff_t active() const { return static_cast<std::ptrdiff_t>(active_); }
  std::size_t take(std::string_view help, MetricType type);
  static void addLabelRefs(MetricFamily& family, std::string_view suffix,
                           std::span<const LabelRef> labels, double value);
};

/// Whether `name` is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*).
bool isValidMetricName(std::string_view name);
/// Whether `name` is a valid label name ([a-zA-Z_][a-zA-Z0-9_]*).
bool isValidLabelName(std::string_view name);

}  // namespace vigil
