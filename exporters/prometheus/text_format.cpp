#include "vigil/exporters/text_format.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
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

void writeSample(LineWriter& w, const std::string& name, const MetricSample& s) {
  std::size_t bound = name.size() + s.suffix.size() + 3 + kMaxFloatBytes;  // {} ' ' '\n'
  for (const Label& l : s.labels) {
    bound += l.name.size() + 2 * l.value.size() + 4;  // ="",
  }
  char* p = w.room(bound);
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

void renderTextFormat(std::span<const MetricBatch* const> batches, std::string& out) {
  std::vector<const MetricFamily*> families;
  for (const MetricBatch* batch : batches) {
    for (const MetricFamily& f : batch->families()) {
      if (!f.samples.empty()) {
        families.push_back(&f);
      }
    }
  }
  // Stable: the same family from several batches keeps batch order within its group.
  std::stable_sort(families.begin(), families.end(),
                   [](const MetricFamily* a, const MetricFamily* b) { return a->name < b->name; });
  LineWriter w(out);
  const std::string* current = nullptr;
  for (const MetricFamily* f : families) {
    if (current == nullptr || *current != f->name) {
      current = &f->name;
      writeHeader(w, *f);
    }
    for (const MetricSample& s : f->samples) {
      writeSample(w, f->name, s);
    }
  }
}

}  // namespace vigil::exporters
