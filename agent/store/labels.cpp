#include <re2/re2.h>

#include <bit>
#include <cstring>

#include "vigil/store.h"

namespace vigil {

double staleNaN() { return std::bit_cast<double>(kStaleNaNBits); }
bool isStaleNaN(double v) { return std::bit_cast<uint64_t>(v) == kStaleNaNBits; }

namespace {
void appendLabelValue(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}
}  // namespace

std::string labelsToString(const LabelSet& labels) {
  std::string out;
  for (const Label& l : labels) {
    if (l.name == kMetricNameLabel) {
      out = l.value;
    }
  }
  out += '{';
  bool first = true;
  for (const Label& l : labels) {
    if (l.name == kMetricNameLabel) {
      continue;
    }
    if (!first) {
      out += ", ";
    }
    first = false;
    out += l.name;
    out += "=\"";
    appendLabelValue(out, l.value);
    out += '"';
  }
  out += '}';
  return out;
}

uint64_t labelsHash(const LabelSet& labels) {
  uint64_t h = 14695981039346656037ULL;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    h ^= 0xff;
    h *= 1099511628211ULL;
  };
  for (const Label& l : labels) {
    mix(l.name);
    mix(l.value);
  }
  return h;
}

Result<LabelMatcher> LabelMatcher::create(MatchType type, std::string name, std::string value) {
  LabelMatcher m;
  m.type_ = type;
  m.name_ = std::move(name);
  m.value_ = std::move(value);
  if (type == MatchType::kRegexMatch || type == MatchType::kRegexNoMatch) {
    // Prometheus anchors regexes at both ends; (?s) lets . match newlines as Go's does there.
    RE2::Options options;
    options.set_log_errors(false);
    options.set_dot_nl(true);
    auto re = std::make_shared<const re2::RE2>("^(?:" + m.value_ + ")$", options);
    if (!re->ok()) {
      // Report the error against what the user wrote, not the anchored wrapper.
      re2::RE2 raw(m.value_, options);
      const std::string why = raw.ok()                                     ? re->error()
                              : raw.error_code() == RE2::ErrorMissingParen ? "missing closing )"
                                                                           : raw.error();
      return invalidArgument("invalid regular expression \"" + m.value_ + "\": " + why);
    }
    m.re_ = std::move(re);
  }
  return m;
}

bool LabelMatcher::matches(std::string_view value) const {
  switch (type_) {
    case MatchType::kEqual:
      return value == value_;
    case MatchType::kNotEqual:
      return value != value_;
    case MatchType::kRegexMatch:
      return RE2::FullMatch(re2::StringPiece(value.data(), value.size()), *re_);
    case MatchType::kRegexNoMatch:
      return !RE2::FullMatch(re2::StringPiece(value.data(), value.size()), *re_);
  }
  return false;
}

std::string LabelMatcher::toString() const {
  static constexpr const char* kOps[] = {"=", "!=", "=~", "!~"};
  std::string out = name_ + kOps[static_cast<int>(type_)] + "\"";
  appendLabelValue(out, value_);
  return out + "\"";
}

}  // namespace vigil
