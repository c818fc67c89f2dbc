#include "vigil/metric.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "vigil/status.h"

namespace vigil {

namespace {
// How many samples ahead MetricBatch::addLabelRefs fetches last cycle's label sets.
constexpr std::size_t kLabelsAhead = 4;
}  // namespace

std::string_view statusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kInvalidArgument:
      return "invalid argument";
    case StatusCode::kNotFound:
      return "not found";
    case StatusCode::kUnavailable:
      return "unavailable";
    case StatusCode::kDeadlineExceeded:
      return "deadline exceeded";
    case StatusCode::kResourceExhausted:
      return "resource exhausted";
    case StatusCode::kInternal:
      return "internal error";
  }
  return "unknown";
}

std::string Status::toString() const {
  if (isOk()) {
    return "ok";
  }
  return std::string(statusCodeName(code_)) + ": " + message_;
}

std::string_view metricTypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kUntyped:
      return "untyped";
    case MetricType::kSummary:
      return "summary";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

MetricBatch::MetricBatch(MetricBatch&& other) noexcept
    : families_(std::move(other.families_)),
      active_(other.active_),
      index_(std::move(other.index_)),
      in_order_(other.in_order_),
      layout_(other.layout_),
      last_layout_(other.last_layout_),
      last_series_(other.last_series_),
      rewritten_(other.rewritten_),
      header_changed_(other.header_changed_),
      layout_checked_(other.layout_checked_) {
  other.clear();
}

MetricBatch& MetricBatch::operator=(MetricBatch&& other) noexcept {
  if (this != &other) {
    families_ = std::move(other.families_);
    active_ = other.active_;
    index_ = std::move(other.index_);
    in_order_ = other.in_order_;
    layout_ = other.layout_;
    last_layout_ = other.last_layout_;
    last_series_ = other.last_series_;
    rewritten_ = other.rewritten_;
    header_changed_ = other.header_changed_;
    layout_checked_ = other.layout_checked_;
    other.clear();
  }
  return *this;
}

MetricFamily& MetricBatch::family(std::string_view name, std::string_view help, MetricType type) {
  return families_[familyIndex(name, help, type)];
}

std::size_t MetricBatch::familyIndex(std::string_view name, std::string_view help,
                                     MetricType type) {
  // Most collectors ask for the same families in the same order every cycle: the next one is
  // last cycle's at this position, taken without hashing its name or moving it.
  if (active_ < families_.size() && families_[active_].name == name) {
    return take(help, type);
  }
  auto it = index_.find(name);
  if (it != index_.end() && it->second < active_) {
    return it->second;  // asked for again this cycle (one family per device attribute, say)
  }
  in_order_ = false;
  if (it == index_.end()) {
    it = index_.emplace(std::string(name), families_.size()).first;
    families_.push_back(MetricFamily{std::string(name), std::string(help), type, {}, {}});
  }
  // Last cycle's family (or the new one, at the end) goes to position active_, and whichever
  // of last cycle's was there to where it was.
  const std::size_t from = it->second;
  if (from != active_) {
    std::swap(families_[from], families_[active_]);
    index_.find(families_[from].name)->second = from;
    it->second = active_;
  }
  return take(help, type);
}

std::size_t MetricBatch::take(std::string_view help, MetricType type) {
  // Its samples were set aside by recycle() (or it is new): only help and type are this call's.
  MetricFamily& family = families_[active_];
  if (family.help != help) {
    family.help.assign(help);
    header_changed_ = true;
  }
  if (family.type != type) {
    family.type = type;
    header_changed_ = true;
  }
  // The family asked for next is most likely last cycle's next one: its name and help, on the
  // heap and cold since last cycle, are fetched now so that comparing them then does not wait.
  if (active_ + 1 < families_.size()) {
    const MetricFamily& next = families_[active_ + 1];
    __builtin_prefetch(next.name.data());
    __builtin_prefetch(next.help.data());
    __builtin_prefetch(next.previous.data());
  }
  return active_++;
}

uint64_t MetricBatch::newLayout() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

void MetricBatch::add(MetricFamily& family, LabelSet labels, double value) {
  std::sort(labels.begin(), labels.end(),
            [](const Label& a, const Label& b) { return a.name < b.name; });
  const std::size_t position = family.samples.size();
  if (position < family.previous.size() && family.previous[position].suffix.empty() &&
      family.previous[position].labels == labels) {
    ++family.same_as_previous;
  }
  family.samples.push_back(MetricSample{std::move(labels), value, {}});
}

void MetricBatch::add(MetricFamily& family, std::initializer_list<LabelRef> labels, double value) {
  addLabelRefs(family, {}, std::span(labels.begin(), labels.size()), value);
}

void MetricBatch::addRefs(MetricFamily& family, std::span<const LabelRef> labels, double value) {
  addLabelRefs(family, {}, labels, value);
}

void MetricBatch::addSuffixed(MetricFamily& family, std::string_view suffix,
                              std::initializer_list<LabelRef> labels, double value) {
  addLabelRefs(family, suffix, std::span(labels.begin(), labels.size()), value);
}

void MetricBatch::addLabelRefs(MetricFamily& family, std::string_view suffix,
                               std::span<const LabelRef> labels, double value) {
  const std::size_t position = family.samples.size();
  if (position < family.previous.size()) {
    MetricSample& last = family.previous[position];
    // The label sets are on the heap, cold since last cycle: the one a few samples on is
    // fetched now, for when its turn comes.
    if (position + kLabelsAhead < family.previous.size()) {
      __builtin_prefetch(family.previous[position + kLabelsAhead].labels.data());
    }
    if (last.suffix == suffix && sameLabels(last.labels, labels)) {
      family.samples.push_back(MetricSample{std::move(last.labels), value, std::move(last.suffix)});
      ++family.same_as_previous;
      return;
    }
  }
  family.samples.push_back(MetricSample{labelSetOf(labels), value, std::string(suffix)});
}

LabelSet labelSetOf(std::span<const LabelRef> refs) {
  LabelSet made;
  made.reserve(refs.size());
  for (const LabelRef& l : refs) {
    made.push_back(Label{std::string(l.name), std::string(l.value)});
  }
  std::sort(made.begin(), made.end(),
            [](const Label& a, const Label& b) { return a.name < b.name; });
  return made;
}

void MetricBatch::addCopyOf(MetricFamily& family, const LabelSet& labels, double value) {
  const std::size_t position = family.samples.size();
  if (position < family.previous.size()) {
    MetricSample& last = family.previous[position];
    if (last.suffix.empty() && last.labels == labels) {
      family.samples.push_back(MetricSample{std::move(last.labels), value, {}});
      ++family.same_as_previous;
      return;
    }
  }
  add(family, LabelSet(labels), value);
}

void MetricBatch::addSingle(std::string_view name, std::string_view help, MetricType type,
                            double value) {
  add(family(name, help, type), value);
}

std::size_t MetricBatch::seriesCount() const {
  std::size_t n = 0;
  for (const auto& f : families()) {
    n += f.samples.size();
  }
  return n;
}

void MetricBatch::clear() {
  families_.clear();
  active_ = 0;
  index_.clear();
  in_order_ = false;
  layout_ = 0;
  last_layout_ = 0;
  last_series_ = 0;
  rewritten_ = false;
  header_changed_ = false;
  layout_checked_ = false;
}

void MetricBatch::sealLayout() {
  if (layout_ != 0) {
    return;  // set by the collector
  }
  // Every family of last cycle asked for again, in its order, and no other.
  bool same = !rewritten_ && in_order_ && last_layout_ != 0 && active_ == families_.size();
  std::size_t series = 0;
  std::size_t same_series = 0;
  for (const MetricFamily& f : families()) {
    series += f.samples.size();
    same_series += f.same_as_previous;
  }
  // Every sample has last cycle's labels at its position in a family at its position, and
  // there are as many as last cycle: nothing was added, dropped or moved.
  same = same && same_series == series && series == last_series_ && !header_changed_;
  layout_ = same ? last_layout_ : newLayout();
  layout_checked_ = true;
}

void MetricBatch::recycle() {
  // Last cycle's families that were not asked for this cycle are gone.
  for (std::size_t i = active_; i < families_.size(); ++i) {
    index_.erase(families_[i].name);
  }
  families_.erase(families_.begin() + active(), families_.end());
  last_layout_ = rewritten_ ? 0 : layout_;
  last_series_ = 0;
  rewritten_ = false;
  header_changed_ = false;
  layout_checked_ = false;
  for (MetricFamily& f : families_) {
    last_series_ += f.samples.size();
    f.same_as_previous = 0;
    // The cycle before last's label sets go now (those add() did not take back); this cycle's
    // samples are the next one's to take back, and the storage for as many samples stays.
    f.previous.clear();
    std::swap(f.previous, f.samples);
    f.samples.reserve(f.previous.size());
  }
  active_ = 0;
  in_order_ = true;
  layout_ = 0;
}

namespace {
bool isNameStart(char c, bool allow_colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
}
bool isNameChar(char c, bool allow_colon) {
  return isNameStart(c, allow_colon) || (c >= '0' && c <= '9');
}
bool isValidName(std::string_view name, bool allow_colon) {
  if (name.empty() || !isNameStart(name[0], allow_colon)) {
    return false;
  }
  return std::all_of(name.begin() + 1, name.end(),
                     [allow_colon](char c) { return isNameChar(c, allow_colon); });
}
}  // namespace

bool isValidMetricName(std::string_view name) { return isValidName(name, true); }
bool isValidLabelName(std::string_view name) { return isValidName(name, false); }

char* writePlainFloat(char* first, double v) {
  std::string_view special;
  if (std::isnan(v)) {
    special = "NaN";
  } else if (std::isinf(v)) {
    special = v > 0 ? "+Inf" : "-Inf";
  } else {
    return std::to_chars(first, first + kMaxPlainFloatChars, v, std::chars_format::fixed).ptr;
  }
  return std::copy(special.begin(), special.end(), first);
}

void appendPlainFloat(std::string& out, double v) {
  char buf[kMaxPlainFloatChars];
  out.append(buf, writePlainFloat(buf, v));
}

std::string formatPlainFloat(double v) {
  std::string out;
  appendPlainFloat(out, v);
  return out;
}

std::string goFloat(double v) {
  if (std::isnan(v)) {
    return "NaN";
  }
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  if (v == 0) {
    return std::signbit(v) ? "-0" : "0";
  }
  // Shortest digits and exponent, then strconv's %g rule for the shortest precision: the
  // exponent form if exp < -4 or exp >= 6 (so 1e+06, but 123456).
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, end);
  const auto e = sci.find('e');
  std::string mantissa = sci.substr(0, e);
  const int exp = std::stoi(sci.substr(e + 1));
  if (exp < -4 || exp >= 6) {
    char out[80];
    std::snprintf(out, sizeof out, "%se%c%02d", mantissa.c_str(), exp < 0 ? '-' : '+',
                  std::abs(exp));
    return out;
  }
  auto [fend, fec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return std::string(buf, fend);
}

std::string goQuote(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

}  // namespace vigil
