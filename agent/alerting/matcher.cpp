// Alertmanager's classic matcher syntax, as its configuration, amtool and the silence API use it.
#include <algorithm>
#include <cctype>

#include "vigil/alerting/config.h"

namespace vigil::alerting {

namespace {

bool isNameStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
bool isNameChar(char c) { return isNameStart(c) || std::isdigit(static_cast<unsigned char>(c)); }
bool isBlank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && isBlank(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && isBlank(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

// The value part: optionally in double quotes, with OpenMetrics escapes (\" \\ \n); any other
// backslash is literal, as Alertmanager tolerates it.
Result<std::string> unquoteValue(std::string_view raw) {
  std::string value;
  bool quoted = !raw.empty() && raw.front() == '"';
  std::string_view body = quoted ? raw.substr(1) : raw;
  bool closed = !quoted;
  for (std::size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c == '\\' && i + 1 < body.size()) {
      const char next = body[++i];
      if (next == 'n') {
        value += '\n';
      } else if (next == '"' || next == '\\') {
        value += next;
      } else {
        value += '\\';
        value += next;
      }
      continue;
    }
    if (c == '"') {
      if (!quoted || i + 1 != body.size()) {
        return invalidArgument("matcher value contains unescaped double quote: " +
                               std::string(raw));
      }
      closed = true;
      continue;
    }
    value += c;
  }
  if (!closed) {
    return invalidArgument("matcher value contains unescaped double quote: " + std::string(raw));
  }
  return value;
}

}  // namespace

Result<LabelMatcher> parseMatcher(std::string_view text) {
  const std::string_view s = trim(text);
  auto bad = [&] { return invalidArgument("bad matcher format: " + std::string(text)); };
  std::size_t i = 0;
  if (s.empty() || !isNameStart(s[0])) {
    return bad();
  }
  while (i < s.size() && isNameChar(s[i])) {
    ++i;
  }
  std::string name(s.substr(0, i));
  while (i < s.size() && isBlank(s[i])) {
    ++i;
  }
  const std::string_view rest = s.substr(i);
  MatchType type;
  std::size_t op_len = 2;
  if (rest.starts_with("=~")) {
    type = MatchType::kRegexMatch;
  } else if (rest.starts_with("!=")) {
    type = MatchType::kNotEqual;
  } else if (rest.starts_with("!~")) {
    type = MatchType::kRegexNoMatch;
  } else if (rest.starts_with("=")) {
    type = MatchType::kEqual;
    op_len = 1;
  } else {
    return bad();
  }
  auto value = unquoteValue(trim(rest.substr(op_len)));
  if (!value) {
    return value.status();
  }
  return LabelMatcher::create(type, std::move(name), std::move(*value));
}

Result<std::vector<LabelMatcher>> parseMatchers(std::string_view text) {
  std::string_view s = text;
  if (s.starts_with("{")) {
    s.remove_prefix(1);
  }
  if (s.ends_with("}")) {
    s.remove_suffix(1);
  }
  // Commas separate matchers except inside double quotes (an escaped quote does not count).
  std::vector<std::string_view> tokens;
  bool in_quotes = false;
  bool escaped = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == ',' && !in_quotes) {
      tokens.push_back(s.substr(start, i - start));
      start = i + 1;
      escaped = false;
      continue;
    }
    if (c == '"' && !escaped) {
      in_quotes = !in_quotes;
    }
    escaped = c == '\\' && !escaped;
  }
  if (auto last = trim(s.substr(start)); !last.empty()) {
    tokens.push_back(last);
  }
  std::vector<LabelMatcher> out;
  for (auto token : tokens) {
    auto m = parseMatcher(token);
    if (!m) {
      return m.status();
    }
    out.push_back(std::move(*m));
  }
  return out;
}

std::string matcherString(const LabelMatcher& m) {
  // The store's form is Alertmanager's: name, operator, the value quoted with OpenMetrics
  // escapes.
  return m.toString();
}

std::string matchersString(const std::vector<LabelMatcher>& matchers) {
  std::string out = "{";
  for (std::size_t i = 0; i < matchers.size(); ++i) {
    out += (i > 0 ? "," : "") + matcherString(matchers[i]);
  }
  return out + "}";
}

void sortMatchers(std::vector<LabelMatcher>& matchers) {
  std::stable_sort(matchers.begin(), matchers.end(),
                   [](const LabelMatcher& a, const LabelMatcher& b) {
                     if (a.name() != b.name()) {
                       return a.name() < b.name();
                     }
                     if (a.value() != b.value()) {
                       return a.value() < b.value();
                     }
                     return a.type() < b.type();
                   });
}

bool matchesAll(const std::vector<LabelMatcher>& matchers, const LabelSet& labels) {
  for (const auto& m : matchers) {
    std::string_view value;
    for (const auto& l : labels) {
      if (l.name == m.name()) {
        value = l.value;
        break;
      }
    }
    if (!m.matches(value)) {
      return false;
    }
  }
  return true;
}

}  // namespace vigil::alerting
