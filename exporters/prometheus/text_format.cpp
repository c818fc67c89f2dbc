#include "vigil/exporters/text_format.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

namespace vigil::exporters {

namespace {

// The exposition is rewritten on every scrape, about a hundred bytes per sample in a dozen
// pieces: appended to a std::string one at a time, each piece costs a capacity check and a
// size update. Each sample line is written instead through a pointer into room made for it
// beforehand (a bound on its length), and the string is cut to what was written at the end.
class LineWriter {
 public:
  explicit LineWriter(std::string& out) : out_(out), used_(out.size()) {
    out_.resize(std::max(out_.capacity(), used_ + kMinRoom));
  }
  ~LineWriter() { out_.resize(used_); }
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;

  // Where up to `n` bytes may be written; commit() says where they ended. The string grows
  // its capacity geometrically, and its size follows the capacity: room is zero-filled once.
  char* room(std::size_t n) {
    if (out_.size() - used_ < n) {
      out_.resize(used_ + n);
      out_.resize(out_.capacity());
    }
    return out_.data() + used_;
  }
  void commit(const char* end) { used_ = static_cast<std::size_t>(end - out_.data()); }
  std::size_t size() const { return used_; }

  static char* put(char* p, std::string_view text) {
    std::memcpy(p, text.data(), text.size());
    return p + text.size();
  }

 private:
  static constexpr std::size_t kMinRoom = 4096;
  std::string& out_;
  std::size_t used_;
};

// Longest text of a float: to_chars's shortest round-trip form of a double fits in 24 bytes.
constexpr std::size_t kMaxFloatBytes = 32;

char* putFloat(char* p, double v) {
  if (std::isnan(v)) {
    return LineWriter::put(p, "NaN");
  }
  if (std::isinf(v)) {
    return LineWriter::put(p, v > 0 ? "+Inf" : "-Inf");
  }
  // A whole number that does not end in 0 (most counters and byte counts) is written as an
  // integer: the same text as to_chars's shortest form (every digit is needed, and the fixed
  // form is shorter than the exponent form), at a fraction of its cost. Those ending in 0 may
  // be shorter with an exponent (1e+06) and take the general path, as does -0.
  if (v == 0 && !std::signbit(v)) {
    *p = '0';
    return p + 1;
  }
  if (std::fabs(v) < 1e15) {
    const auto n = static_cast<int64_t>(v);
    if (static_cast<double>(n) == v && n % 10 != 0) {
      return std::to_chars(p, p + kMaxFloatBytes, n).ptr;
    }
  }
  return std::to_chars(p, p + kMaxFloatBytes, v).ptr;
}

// `text` with backslashes, newlines and (in label values) double quotes escaped; at most
// twice its length.
char* putEscaped(char* p, std::string_view text, bool quotes) {
  std::size_t copied = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c != '\\' && c != '\n' && (c != '"' || !quotes)) {
      continue;
    }
    p = LineWriter::put(p, text.substr(copied, i - copied));
    *p++ = '\\';
    *p++ = c == '\n' ? 'n' : c;
    copied = i + 1;
  }
  return LineWriter::put(p, text.substr(copied));
}

// The most a sample's line takes besides its value: name, suffix, labels escaped, braces,
// the space before the value and the newline after it.
std::size_t lineBound(const std::string& name, const MetricSample& s) {
  std::size_t bound = name.size() + s.suffix.size() + 3;  // {} ' ' '\n'
  for (const Label& l : s.labels) {
    bound += l.name.size() + 2 * l.value.size() + 4;  // ="",
  }
  return bound;
}

// `name{labels} `: all of a sample's line but its value and newline.
char* putSeriesPrefix(char* p, const std::string& name, const MetricSample& s) {
  p = LineWriter::put(p, name);
  p = LineWriter::put(p, s.suffix);
  if (!s.labels.empty()) {
    *p++ = '{';
    for (std::size_t i = 0; i < s.labels.size(); ++i) {
      if (i != 0) {
        *p++ = ',';
      }
      p = LineWriter::put(p, s.labels[i].name);
      *p++ = '=';
      *p++ = '"';
      p = putEscaped(p, s.labels[i].value, true);
      *p++ = '"';
    }
    *p++ = '}';
  }
  *p++ = ' ';
  return p;
}

void writeSample(LineWriter& w, const std::string& name, const MetricSample& s) {
  char* p = w.room(lineBound(name, s) + kMaxFloatBytes);
  p = putSeriesPrefix(p, name, s);
  p = putFloat(p, s.value);
  *p++ = '\n';
  w.commit(p);
}

// HELP (unless there is no help text: a family scraped or pushed without one gets no HELP
// line, as Prometheus's own exposition leaves it out) and TYPE.
void writeHeader(LineWriter& w, const MetricFamily& f) {
  const std::string_view type = metricTypeName(f.type);
  char* p = w.room(2 * f.name.size() + 2 * f.help.size() + type.size() + 18);
  if (!f.help.empty()) {
    p = LineWriter::put(p, "# HELP ");
    p = LineWriter::put(p, f.name);
    *p++ = ' ';
    p = putEscaped(p, f.help, false);
    *p++ = '\n';
  }
  p = LineWriter::put(p, "# TYPE ");
  p = LineWriter::put(p, f.name);
  *p++ = ' ';
  p = LineWriter::put(p, type);
  *p++ = '\n';
  w.commit(p);
}

}  // namespace

void appendFloat(std::string& out, double v) {
  char text[kMaxFloatBytes];
  out.append(text, putFloat(text, v));
}

void appendEscapedLabelValue(std::string& out, std::string_view value) {
  const std::size_t used = out.size();
  out.resize(used + 2 * value.size());
  out.resize(static_cast<std::size_t>(putEscaped(out.data() + used, value, true) - out.data()));
}

void appendEscapedHelp(std::string& out, std::string_view help) {
  const std::size_t used = out.size();
  out.resize(used + 2 * help.size());
  out.resize(static_cast<std::size_t>(putEscaped(out.data() + used, help, false) - out.data()));
}

namespace {

// A family to write, in the order the exposition has them.
struct OrderEntry {
  uint32_t batch;
  uint32_t family;
  bool header;  // the first of its name: HELP and TYPE go before it
};

// Every family with samples, sorted by name; the same family from several batches keeps batch
// order within its group (stable), under the first one's HELP and TYPE.
void orderFamilies(std::span<const MetricBatch* const> batches, std::vector<OrderEntry>& order) {
  order.clear();
  for (std::size_t b = 0; b < batches.size(); ++b) {
    const auto& families = batches[b]->families();
    for (std::size_t f = 0; f < families.size(); ++f) {
      if (!families[f].samples.empty()) {
        order.push_back({static_cast<uint32_t>(b), static_cast<uint32_t>(f), false});
      }
    }
  }
  auto name = [&](const OrderEntry& e) -> const std::string& {
    return batches[e.batch]->families()[e.family].name;
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](const OrderEntry& a, const OrderEntry& b) { return name(a) < name(b); });
  for (std::size_t i = 0; i < order.size(); ++i) {
    order[i].header = i == 0 || name(order[i]) != name(order[i - 1]);
  }
}

}  // namespace

void renderTextFormat(std::span<const MetricBatch* const> batches, std::string& out) {
  std::vector<OrderEntry> order;
  orderFamilies(batches, order);
  LineWriter w(out);
  for (const OrderEntry& e : order) {
    const MetricFamily& f = batches[e.batch]->families()[e.family];
    if (e.header) {
      writeHeader(w, f);
    }
    for (const MetricSample& s : f.samples) {
      writeSample(w, f.name, s);
    }
  }
}

namespace {

// What a batch renders to besides its values, kept for its layouts: batches with the same
// layout have the same families and series, so the same HELP and TYPE lines (unless their
// help changed: sealLayout() gives such a batch a new layout, and under a layout a collector
// set the help is compared) and the same `name{labels} ` before each value. One text
// serves several layouts: a collector fills two batches in turn, which get a layout each.
struct Rendered {
  struct Family {
    std::size_t name_size = 0;
    std::size_t header_begin = 0;  // in text; the name follows "# HELP " or "# TYPE "
    std::size_t header_end = 0;
    std::string help;
    MetricType type = MetricType::kUntyped;
    std::size_t first_prefix = 0;  // in prefixes
    std::size_t samples = 0;
  };
  struct Use {
    uint64_t layout;
    uint64_t render;  // the last render that had a batch with it
  };
  std::vector<Use> layouts;
  std::string text;
  std::vector<Family> families;
  std::vector<std::pair<uint32_t, uint32_t>> prefixes;  // [begin, end) in text, per sample

  bool sameText(const Rendered& other) const {
    return text == other.text && prefixes == other.prefixes;
  }

  // Whether `batch` has the shape this was made from; a collector that changed its series
  // without changing its layout would otherwise have its values written under others' names.
  bool fits(const MetricBatch& batch) const {
    const auto& fs = batch.families();
    if (fs.size() != families.size()) {
      return false;
    }
    for (std::size_t i = 0; i < fs.size(); ++i) {
      const Family& f = families[i];
      if (fs[i].samples.size() != f.samples || fs[i].name.size() != f.name_size ||
          std::memcmp(fs[i].name.data(), text.data() + f.header_begin + 7, f.name_size) != 0) {
        return false;
      }
    }
    return true;
  }

  void build(const MetricBatch& batch) {
    text.clear();
    families.clear();
    prefixes.clear();
    LineWriter w(text);
    std::size_t written = 0;
    auto end = [&](char* p) {
      w.commit(p);
      written = static_cast<std::size_t>(p - text.data());
      return written;
    };
    for (const MetricFamily& mf : batch.families()) {
      Family f;
      f.name_size = mf.name.size();
      f.help = mf.help;
      f.type = mf.type;
      f.first_prefix = prefixes.size();
      f.samples = mf.samples.size();
      f.header_begin = written;
      writeHeader(w, mf);
      f.header_end = end(w.room(0));
      for (const MetricSample& s : mf.samples) {
        const std::size_t begin = written;
        prefixes.emplace_back(begin,
                              end(putSeriesPrefix(w.room(lineBound(mf.name, s)), mf.name, s)));
      }
      families.push_back(std::move(f));
    }
  }
};

}  // namespace

struct TextRenderer::Cache {
  // A layout not seen for this many renders is forgotten (its collector moved on to another
  // shape, or went); a collector's two batches alternate well within it.
  static constexpr uint64_t kForgetAfter = 8;

  uint64_t render = 0;  // renders so far
  std::vector<std::unique_ptr<Rendered>> rendered;
  std::vector<OrderEntry> order;  // the families of the last render, in order
  // The texts `order` was made for, per batch; empty when a batch had none (no layout).
  std::vector<const Rendered*> order_rendered;
  std::vector<const Rendered*> batch_rendered;  // this render's, per batch
  Rendered scratch;

  // The last render's output (from where it began in `out`) cut into pieces, a family's HELP
  // and TYPE lines or a sample's line: where each piece ended, and each sample's value bits
  // (for HELP and TYPE, kKeptHeader when they came from the kept text). While the order holds,
  // a piece at the same place has the same text as last time when its bits are the same: the
  // same kept prefix or header and the same value. Most values do not change from one scrape to
  // the next, so the output is mostly runs of last time's text, each copied in one go.
  static constexpr uint64_t kKeptHeader = 0;
  static constexpr uint64_t kWrittenHeader = 1;
  static constexpr std::size_t kMaxKeptText = 16 << 20;
  std::string last_text;
  std::vector<std::size_t> last_end;
  std::vector<uint64_t> last_bits;
  bool last_valid = false;
  std::vector<std::size_t> next_end;  // this render's, swapped in at its end
  std::vector<uint64_t> next_bits;

  // The text for `batch`'s layout, made if it has none yet; sets `changed` when a text the
  // last render used was rewritten.
  const Rendered* textFor(const MetricBatch& batch, bool& changed) {
    const uint64_t layout = batch.layout();
    for (auto& r : rendered) {
      auto use = std::find_if(r->layouts.begin(), r->layouts.end(),
                              [&](const Rendered::Use& u) { return u.layout == layout; });
      if (use == r->layouts.end()) {
        continue;
      }
      // A layout sealLayout() kept has the text's shape, help and type: only one a collector
      // set itself is checked, name by name.
      if (batch.layoutChecked() || r->fits(batch)) {
        use->render = render;
        return r.get();
      }
      // The collector changed its series under the same layout: the layout leaves this text
      // (another batch of this render may be using it) and gets its own below.
      r->layouts.erase(use);
      changed = true;
      break;
    }
    scratch.build(batch);
    for (auto& r : rendered) {
      if (r->sameText(scratch)) {
        r->layouts.push_back({layout, render});
        return r.get();
      }
    }
    auto& made = rendered.emplace_back(std::make_unique<Rendered>(std::move(scratch)));
    made->layouts = {{layout, render}};
    scratch = Rendered{};
    return made.get();
  }

  void forgetOld() {
    for (auto& r : rendered) {
      std::erase_if(r->layouts,
                    [&](const Rendered::Use& use) { return use.render + kForgetAfter < render; });
    }
    std::erase_if(rendered, [](const auto& r) { return r->layouts.empty(); });
  }
};

TextRenderer::TextRenderer() : cache_(std::make_unique<Cache>()) {}
TextRenderer::~TextRenderer() = default;

void TextRenderer::render(std::span<const MetricBatch* const> batches, std::string& out) {
  std::unique_lock lock(mu_, std::try_to_lock);
  if (!lock.owns_lock()) {
    renderTextFormat(batches, out);  // another scrape holds the cache
    return;
  }
  Cache& c = *cache_;
  ++c.render;
  bool changed = false;
  bool all_kept = true;
  c.batch_rendered.assign(batches.size(), nullptr);
  for (std::size_t b = 0; b < batches.size(); ++b) {
    if (batches[b]->layout() == 0) {
      all_kept = false;  // its shape is not known to stay: written in full
    } else {
      c.batch_rendered[b] = c.textFor(*batches[b], changed);
    }
  }
  // The order of families holds while every batch has the text it had last time.
  const bool reordered = changed || !all_kept || c.batch_rendered != c.order_rendered;
  if (reordered) {
    orderFamilies(batches, c.order);
    c.order_rendered = c.batch_rendered;
    if (!all_kept) {
      c.order_rendered.clear();
    }
  }
  // Last time's pieces are this time's only while the order holds (and, which that implies,
  // there are as many).
  bool reuse = c.last_valid && !reordered;
  if (reuse) {
    std::size_t pieces = 0;
    for (const OrderEntry& e : c.order) {
      pieces += (e.header ? 1 : 0) + batches[e.batch]->families()[e.family].samples.size();
    }
    reuse = pieces == c.last_bits.size();
  }
  c.next_end.clear();
  c.next_bits.clear();
  const std::size_t base = out.size();
  {
    LineWriter w(out);
    // The run of pieces unchanged since last time not written yet: [run_from, run_to) of
    // last_text.
    std::size_t run_from = 0;
    std::size_t run_to = 0;
    auto flush = [&] {
      if (run_to > run_from) {
        const std::size_t size = run_to - run_from;
        w.commit(LineWriter::put(w.room(size), {c.last_text.data() + run_from, size}));
      }
      run_from = run_to;
    };
    // Piece number `piece` (bits `bits`): true when it is last time's text, added to the run;
    // false when the caller is to write it, the run before it written first.
    auto unchanged = [&](std::size_t piece, uint64_t bits) {
      c.next_bits.push_back(bits);
      if (reuse && c.last_bits[piece] == bits && bits != Cache::kWrittenHeader) {
        run_to = c.last_end[piece];
        c.next_end.push_back(w.size() - base + (run_to - run_from));
        return true;
      }
      flush();
      if (reuse) {
        run_from = run_to = c.last_end[piece];  // the next run starts after this piece
      }
      return false;
    };
    std::size_t piece = 0;
    for (const OrderEntry& e : c.order) {
      const MetricFamily& f = batches[e.batch]->families()[e.family];
      const Rendered* r = c.batch_rendered[e.batch];
      if (r == nullptr) {
        if (e.header) {
          writeHeader(w, f);
        }
        for (const MetricSample& s : f.samples) {
          writeSample(w, f.name, s);
        }
        continue;
      }
      const Rendered::Family& rf = r->families[e.family];
      if (e.header) {
        const bool kept_header =
            batches[e.batch]->layoutChecked() || (rf.help == f.help && rf.type == f.type);
        if (!unchanged(piece++, kept_header ? Cache::kKeptHeader : Cache::kWrittenHeader)) {
          if (kept_header) {
            const std::size_t size = rf.header_end - rf.header_begin;
            w.commit(LineWriter::put(w.room(size), {r->text.data() + rf.header_begin, size}));
          } else {
            writeHeader(w, f);
          }
          c.next_end.push_back(w.size() - base);
        }
      }
      for (std::size_t k = 0; k < f.samples.size(); ++k) {
        const double value = f.samples[k].value;
        if (unchanged(piece++, std::bit_cast<uint64_t>(value))) {
          continue;
        }
        const auto [begin, end] = r->prefixes[rf.first_prefix + k];
        char* p = w.room(end - begin + kMaxFloatBytes + 1);
        p = LineWriter::put(p, {r->text.data() + begin, end - begin});
        p = putFloat(p, value);
        *p++ = '\n';
        w.commit(p);
        c.next_end.push_back(w.size() - base);
      }
    }
    flush();
  }
  // Pieces are counted only for batches with kept texts: with any other, the next render
  // sorts the families again and starts afresh. A federation-sized exposition is not kept
  // twice over: past kMaxKeptText, every render writes it in full.
  c.last_valid = all_kept && out.size() - base <= Cache::kMaxKeptText;
  if (c.last_valid) {
    c.last_text.assign(out, base);
    std::swap(c.last_end, c.next_end);
    std::swap(c.last_bits, c.next_bits);
  } else {
    std::string().swap(c.last_text);
    std::vector<std::size_t>().swap(c.last_end);
    std::vector<uint64_t>().swap(c.last_bits);
  }
  c.forgetOld();
}

}  // namespace vigil::exporters
