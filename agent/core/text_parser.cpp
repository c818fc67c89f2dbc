#include "vigil/text_parser.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <set>

namespace vigil {

namespace {

bool nameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool nameChar(char c) { return nameStart(c) || (c >= '0' && c <= '9'); }

// A value as Prometheus's parser reads it: Go's ParseFloat, with Inf/NaN spellings.
bool parseValue(std::string_view s, double& out) {
  if (s == "+Inf" || s == "Inf" || s == "+inf" || s == "inf") {
    out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (s == "-Inf" || s == "-inf") {
    out = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (s == "NaN" || s == "nan") {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (s.empty() || s.size() > 64) {
    return false;
  }
  // The common decimal forms through from_chars; anything else it does not take whole (a
  // leading '+', hex floats, out of range) goes the strtod way, which matches Go's ParseFloat.
  const std::string_view digits =
      s[0] == '+' && s.size() > 1 && s[1] != '-' && s[1] != '+' ? s.substr(1) : s;
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
  if (ec == std::errc() && ptr == digits.data() + digits.size() && !std::isnan(out) &&
      !std::isinf(out)) {
    return true;
  }
  const std::string text(s);
  char* end = nullptr;
  out = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && !std::isnan(out) && !std::isinf(out);
}

class LineParser {
 public:
  LineParser(std::string_view line, std::size_t line_no) : s_(line), line_no_(line_no) {}

  Status error(const std::string& what) const {
    return invalidArgument("line " + std::to_string(line_no_) + ": " + what);
  }
  void skipSpaces() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) {
      ++pos_;
    }
  }
  bool atEnd() const { return pos_ >= s_.size(); }
  char peek() const { return atEnd() ? '\0' : s_[pos_]; }
  std::string_view name() {
    const std::size_t start = pos_;
    if (!atEnd() && nameStart(s_[pos_])) {
      ++pos_;
      while (!atEnd() && nameChar(s_[pos_])) {
        ++pos_;
      }
    }
    return s_.substr(start, pos_ - start);
  }
  std::string_view token() {
    const std::size_t start = pos_;
    while (!atEnd() && s_[pos_] != ' ' && s_[pos_] != '\t') {
      ++pos_;
    }
    return s_.substr(start, pos_ - start);
  }
  std::string_view rest() const { return s_.substr(std::min(pos_, s_.size())); }
  std::size_t position() const { return pos_; }
  std::string_view between(std::size_t from, std::size_t to) const {
    return s_.substr(from, to - from);
  }
  // A quoted label value with \\, \" and \n escapes.
  Result<std::string> quoted() {
    if (peek() != '"') {
      return error("expected a quoted label value");
    }
    ++pos_;
    std::string out;
    while (true) {
      // Runs without escapes are copied whole.
      const std::size_t stop = s_.find_first_of("\"\\", pos_);
      if (stop == std::string_view::npos) {
        pos_ = s_.size();
        break;
      }
      out.append(s_.data() + pos_, stop - pos_);
      pos_ = stop + 1;
      if (s_[stop] == '"') {
        return out;
      }
      if (atEnd()) {
        break;
      }
      const char e = s_[pos_++];
      if (e == 'n') {
        out += '\n';
      } else if (e == '\\' || e == '"') {
        out += e;
      } else {
        return error(std::string("invalid escape \\") + e + " in a label value");
      }
    }
    return error("unterminated label value");
  }
  bool consume(char c) {
    if (peek() == c) {
      ++pos_;
      return true;
    }
    return false;
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
  std::size_t line_no_;
};

// HELP text escapes: \\ and \n.
std::string unescapeHelp(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '\\' || s[i + 1] == 'n')) {
      out += s[i + 1] == 'n' ? '\n' : '\\';
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

// A body's lines one by one, without their line end ("\n" or "\r\n").
class Lines {
 public:
  explicit Lines(std::string_view text) : text_(text) {}
  bool next(std::string_view& line) {
    if (pos_ >= text_.size()) {
      return false;
    }
    std::size_t eol = text_.find('\n', pos_);
    if (eol == std::string_view::npos) {
      eol = text_.size();
    }
    line = text_.substr(pos_, eol - pos_);
    pos_ = eol + 1;
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    return true;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

uint64_t hashCommentLine(uint64_t h, std::string_view line) {
  return (h ^ std::hash<std::string_view>{}(line)) * 1099511628211ULL + 1;
}

struct FamilyInfo {
  MetricType type = MetricType::kUntyped;
  std::string help;
  bool help_given = false;  // a HELP line came for it
  bool type_given = false;  // a TYPE line came for it
  bool sampled = false;     // a sample line came for it
};

std::optional<MetricType> typeFromName(std::string_view t) {
  if (t == "counter") return MetricType::kCounter;
  if (t == "gauge") return MetricType::kGauge;
  if (t == "histogram" || t == "gaugehistogram") return MetricType::kHistogram;
  if (t == "summary") return MetricType::kSummary;
  if (t == "untyped" || t == "unknown" || t == "info" || t == "stateset") {
    return MetricType::kUntyped;
  }
  return std::nullopt;
}

}  // namespace

Result<TextParseResult> parseTextFormat(std::string_view text, const TextParseLimits& limits) {
  TextParseResult out;
  std::map<std::string, FamilyInfo, std::less<>> declared;
  std::set<std::string, std::less<>> sampled_undeclared;  // families with samples, no HELP/TYPE
  // The family of the previous sample line: consecutive samples nearly always share it, and
  // resolving it (suffixes, declared types, the batch's index) is most of a line's cost.
  std::string cached_name;
  MetricFamily* cached_family = nullptr;
  std::size_t cached_family_index = 0;
  std::string cached_suffix;
  std::size_t label_hint = 0;
  std::size_t line_no = 0;
  Lines lines(text);
  std::string_view line;
  while (lines.next(line)) {
    ++line_no;
    if (line.size() > limits.max_line_bytes) {
      return invalidArgument("line " + std::to_string(line_no) + ": longer than " +
                             std::to_string(limits.max_line_bytes) + " bytes");
    }
    LineParser p(line, line_no);
    p.skipSpaces();
    if (p.atEnd()) {
      continue;
    }
    if (p.consume('#')) {
      if (limits.layout) {
        out.layout.comments_ = hashCommentLine(out.layout.comments_, line);
      }
      p.skipSpaces();
      const std::string_view keyword = p.token();
      if (keyword == "EOF") {
        break;  // OpenMetrics: nothing after it counts
      }
      if (keyword != "HELP" && keyword != "TYPE" && keyword != "UNIT") {
        continue;  // a comment
      }
      p.skipSpaces();
      const std::string name(p.name());
      if (name.empty()) {
        return p.error("expected a metric name after # " + std::string(keyword));
      }
      cached_family = nullptr;  // what a name resolves to may change with its declaration
      p.skipSpaces();
      FamilyInfo& info = declared[name];
      // Prometheus reads on past these; Go's text parser (the Pushgateway's, promtool's) does
      // not: said once, for callers that refuse what it refuses.
      if (out.metadata_error.empty() &&
          ((keyword == "HELP" && info.help_given) ||
           (keyword == "TYPE" &&
            (info.type_given || info.sampled || sampled_undeclared.contains(name))))) {
        out.metadata_error = "line " + std::to_string(line_no) + ": a second " +
                             std::string(keyword) + " line for " + name +
                             (keyword == "TYPE" ? ", or one after its samples" : "");
      }
      info.help_given = info.help_given || keyword == "HELP";
      info.type_given = info.type_given || keyword == "TYPE";
      if (keyword == "HELP") {
        // Carriage returns left at the end (a CRLF body drops one with the line ending) are
        // no text: kept, /metrics would write them back and the next reader would drop one.
        std::string_view help = p.rest();
        while (!help.empty() && help.back() == '\r') {
          help.remove_suffix(1);
        }
        info.help = unescapeHelp(help);
      } else if (keyword == "TYPE") {
        const auto type = typeFromName(p.token());
        if (!type) {
          return p.error("unknown metric type for " + name);
        }
        info.type = *type;
      }
      continue;
    }
    // A sample: name{labels} value [timestamp]
    const std::size_t series_start = p.position();
    const std::string_view name = p.name();
    if (name.empty()) {
      return p.error("expected a metric name");
    }
    LabelSet labels;
    labels.reserve(label_hint + limits.label_headroom);
    if (p.consume('{')) {
      p.skipSpaces();
      while (!p.consume('}')) {
        std::string label(p.name());
        if (label.empty()) {
          return p.error("expected a label name in " + std::string(name));
        }
        p.skipSpaces();
        if (!p.consume('=')) {
          return p.error("expected '=' after label " + label);
        }
        p.skipSpaces();
        auto value = p.quoted();
        if (!value) {
          return value.status();
        }
        if (label == "__name__") {
          return p.error("__name__ is not a label a sample may set");
        }
        for (const auto& l : labels) {
          if (l.name == label) {
            return p.error("duplicate label " + label + " in " + std::string(name));
          }
        }
        labels.push_back({std::move(label), std::move(*value)});
        if (labels.size() > limits.max_labels) {
          return p.error("more than " + std::to_string(limits.max_labels) + " labels");
        }
        p.skipSpaces();
        if (!p.consume(',')) {
          p.skipSpaces();
          if (!p.consume('}')) {
            return p.error("expected ',' or '}' in the labels of " + std::string(name));
          }
          break;
        }
        p.skipSpaces();
      }
    }
    if (limits.layout) {
      out.layout.text_.append(p.between(series_start, p.position()));
      out.layout.ends_.push_back(static_cast<uint32_t>(out.layout.text_.size()));
    }
    p.skipSpaces();
    double value = 0;
    const std::string_view value_text = p.token();
    if (!parseValue(value_text, value)) {
      return p.error("bad value \"" + std::string(value_text.substr(0, 40)) + "\" for " +
                     std::string(name));
    }
    p.skipSpaces();
    if (!p.atEnd() && p.peek() != '#') {
      const std::string_view ts = p.token();
      double t = 0;
      if (!parseValue(ts, t)) {
        return p.error("bad timestamp \"" + std::string(ts.substr(0, 40)) + "\"");
      }
      ++out.timestamped;
      p.skipSpaces();
    }
    if (!p.atEnd() && p.peek() != '#') {
      return p.error("unexpected text after the value of " + std::string(name));
    }
    label_hint = labels.size();
    if (cached_family == nullptr || name != cached_name) {
      // Histogram and summary samples belong to their family by the declared base name; an
      // OpenMetrics counter declared as `foo` has samples named `foo_total`.
      std::string family(name);
      std::string suffix;
      FamilyInfo* info = nullptr;
      bool info_is_family = false;  // info is the declaration of `family` itself
      if (auto it = declared.find(name); it != declared.end()) {
        info = &it->second;
        info_is_family = true;
      }
      for (std::string_view sfx : {"_bucket", "_sum", "_count", "_total"}) {
        if (info != nullptr || name.size() <= sfx.size() || !name.ends_with(sfx)) {
          continue;
        }
        auto it = declared.find(name.substr(0, name.size() - sfx.size()));
        if (it == declared.end()) {
          continue;
        }
        const MetricType type = it->second.type;
        if (sfx == "_total" && type == MetricType::kCounter) {
          info = &it->second;
        } else if (sfx != "_total" &&
                   (type == MetricType::kHistogram || type == MetricType::kSummary)) {
          info = &it->second;
          info_is_family = true;
          family = it->first;
          suffix = sfx;
        }
      }
      cached_family_index = out.batch.familyIndex(family, info ? info->help : std::string(),
                                                  info ? info->type : MetricType::kUntyped);
      // For the check of TYPE lines after samples (an undeclared family is not put in
      // `declared`, where a name resolves samples to their family).
      if (info_is_family) {
        info->sampled = true;
      } else {
        sampled_undeclared.insert(family);
      }
      if (!suffix.empty() && out.batch.families()[cached_family_index].type != info->type) {
        // The base name had samples before its TYPE line, so its family is untyped: a
        // histogram's or summary's suffixed samples cannot join it (rendered back, they would
        // read as samples of an untyped family with another name). They stay a family of
        // their own, as written.
        family = std::string(name);
        suffix.clear();
        cached_family_index = out.batch.familyIndex(family, std::string(), MetricType::kUntyped);
      }
      cached_family = &out.batch.mutableFamilies()[cached_family_index];
      cached_name = name;
      cached_suffix = std::move(suffix);
    }
    if (cached_suffix.empty()) {
      MetricBatch::add(*cached_family, std::move(labels), value);
    } else {
      std::sort(labels.begin(), labels.end());
      cached_family->samples.push_back({std::move(labels), value, cached_suffix});
    }
    if (limits.layout) {
      out.positions.push_back({static_cast<uint32_t>(cached_family_index),
                               static_cast<uint32_t>(cached_family->samples.size() - 1)});
    }
    if (++out.samples > limits.max_samples) {
      return invalidArgument("line " + std::to_string(line_no) + ": more than " +
                             std::to_string(limits.max_samples) + " samples");
    }
  }
  return out;
}

bool readValues(std::string_view text, const TextLayout& layout, const TextParseLimits& limits,
                std::vector<double>& values, std::size_t& timestamped) {
  values.clear();
  values.reserve(layout.lines());
  timestamped = 0;
  uint64_t comments = 0;
  Lines lines(text);
  std::string_view line;
  while (lines.next(line)) {
    if (line.size() > limits.max_line_bytes) {
      return false;
    }
    const std::size_t start = line.find_first_not_of(" \t");
    if (start == std::string_view::npos) {
      continue;
    }
    if (line[start] == '#') {
      comments = hashCommentLine(comments, line);
      LineParser p(line.substr(start + 1), 0);
      p.skipSpaces();
      if (p.token() == "EOF") {
        break;
      }
      continue;
    }
    // The series text must be the one this line had before, followed by the value.
    const std::size_t line_index = values.size();
    if (line_index >= layout.lines()) {
      return false;
    }
    const std::string_view series = layout.series(line_index);
    line.remove_prefix(start);
    if (line.size() <= series.size() || line.compare(0, series.size(), series) != 0 ||
        (line[series.size()] != ' ' && line[series.size()] != '\t')) {
      return false;
    }
    LineParser p(line.substr(series.size()), 0);
    p.skipSpaces();
    double value = 0;
    if (!parseValue(p.token(), value)) {
      return false;
    }
    p.skipSpaces();
    if (!p.atEnd() && p.peek() != '#') {
      double t = 0;
      if (!parseValue(p.token(), t)) {
        return false;
      }
      ++timestamped;
      p.skipSpaces();
    }
    if (!p.atEnd() && p.peek() != '#') {
      return false;
    }
    values.push_back(value);
  }
  return values.size() == layout.lines() && comments == layout.comments_;
}

}  // namespace vigil
