#include "vigil/exporters/text_format.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <vector>

namespace vigil::exporters {

void appendFloat(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

namespace {

// Appends `text` with backslashes, newlines and (in label values) double quotes escaped.
// Runs without one are copied whole: most text has nothing to escape, and appending a byte at
// a time costs a capacity check per byte on every scrape.
void appendEscaped(std::string& out, std::string_view text, bool quotes) {
  std::size_t copied = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c != '\\' && c != '\n' && (c != '"' || !quotes)) {
      continue;
    }
    out.append(text.data() + copied, i - copied);
    out += '\\';
    out += c == '\n' ? 'n' : c;
    copied = i + 1;
  }
  out.append(text.data() + copied, text.size() - copied);
}

}  // namespace

void appendEscapedLabelValue(std::string& out, std::string_view value) {
  appendEscaped(out, value, true);
}

void appendEscapedHelp(std::string& out, std::string_view help) { appendEscaped(out, help, false); }

namespace {

void appendSample(std::string& out, const std::string& name, const MetricSample& s) {
  out += name;
  out += s.suffix;
  if (!s.labels.empty()) {
    out += '{';
    bool first = true;
    for (const Label& l : s.labels) {
      if (!first) {
        out += ',';
      }
      first = false;
      out += l.name;
      out += "=\"";
      appendEscapedLabelValue(out, l.value);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  appendFloat(out, s.value);
  out += '\n';
}

}  // namespace

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
  const std::string* current = nullptr;
  for (const MetricFamily* f : families) {
    if (current == nullptr || *current != f->name) {
      current = &f->name;
      // A family without help text (scraped or pushed without one) gets no HELP line, as
      // Prometheus's own exposition leaves it out.
      if (!f->help.empty()) {
        out += "# HELP ";
        out += f->name;
        out += ' ';
        appendEscapedHelp(out, f->help);
        out += '\n';
      }
      out += "# TYPE ";
      out += f->name;
      out += ' ';
      out += metricTypeName(f->type);
      out += '\n';
    }
    for (const MetricSample& s : f->samples) {
      appendSample(out, f->name, s);
    }
  }
}

}  // namespace vigil::exporters
