#include "vigil/rules/template.h"

#include "vigil/metric.h"

#include "go_time.h"
#include "vigil/duration.h"
#include "vigil/percent_encoding.h"

#include <re2/re2.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <optional>
#include <variant>
#include <vector>

namespace vigil::promql {

namespace {

// Values in a template: Go's nil, strings, numbers, booleans, label maps, a query's samples,
// one sample, and the data the template runs on (its top-level dot); and for notification
// templates Alertmanager's types: KV (a label map with methods), Pairs and Pair (its sorted
// pairs), []string, Alerts (with Firing and Resolved) and []Alert, Alert, and time.Time.
struct Root {};
using LabelsRef = std::shared_ptr<const LabelSet>;
using SampleRef = std::shared_ptr<const TemplateSample>;
using SamplesRef = std::shared_ptr<const std::vector<TemplateSample>>;
struct KVRef {
  LabelsRef map;
};
struct PairsRef {
  LabelsRef pairs;
};
struct PairValue {
  std::string name;
  std::string value;
};
using StringsRef = std::shared_ptr<const std::vector<std::string>>;
struct AlertsRef {
  std::shared_ptr<const std::vector<TemplateAlert>> list;
  bool with_methods = true;  // .Alerts has Firing and Resolved; what they return does not
};
using AlertRef = std::shared_ptr<const TemplateAlert>;
struct GoTime {
  int64_t ms = 0;
};
// Go's int, where a method returns one (Unix()): printed whole, as a float64 is not.
struct GoInt {
  int64_t v = 0;
};
using TValue =
    std::variant<std::monostate, std::string, double, bool, LabelsRef, SampleRef, SamplesRef, Root,
                 KVRef, PairsRef, PairValue, StringsRef, AlertsRef, AlertRef, GoTime, GoInt>;

std::string labelsText(const LabelSet& labels) {
  std::string out = "map[";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    out += (i > 0 ? " " : "") + labels[i].name + ":" + labels[i].value;
  }
  return out + "]";
}

// As Go's fmt prints the struct: its fields in order, space-separated, in braces.
std::string alertText(const TemplateAlert& a) {
  return "{" + a.status + " " + labelsText(a.labels) + " " + labelsText(a.annotations) + " " +
         goTimeString(alertTime(a.starts_at_ms)) + " " + goTimeString(alertTime(a.ends_at_ms)) +
         " " + a.generator_url + " " + a.fingerprint + "}";
}

std::string toText(const TValue& v) {
  if (auto* s = std::get_if<std::string>(&v)) {
    return *s;
  }
  if (auto* d = std::get_if<double>(&v)) {
    return goFloat(*d);
  }
  if (auto* b = std::get_if<bool>(&v)) {
    return *b ? "true" : "false";
  }
  if (auto* l = std::get_if<LabelsRef>(&v)) {
    return labelsText(**l);
  }
  if (auto* s = std::get_if<SampleRef>(&v)) {
    return "{" + labelsText((*s)->labels) + " " + goFloat((*s)->value) + "}";
  }
  if (auto* ss = std::get_if<SamplesRef>(&v)) {
    std::string out = "[";
    for (std::size_t i = 0; i < (*ss)->size(); ++i) {
      const auto& s = (**ss)[i];
      out += (i > 0 ? " " : "") + ("{" + labelsText(s.labels) + " " + goFloat(s.value) + "}");
    }
    return out + "]";
  }
  if (auto* kv = std::get_if<KVRef>(&v)) {
    return labelsText(*kv->map);
  }
  if (auto* p = std::get_if<PairsRef>(&v)) {
    std::string out = "[";
    for (std::size_t i = 0; i < p->pairs->size(); ++i) {
      const auto& l = (*p->pairs)[i];
      out += (i > 0 ? " {" : "{") + l.name + " " + l.value + "}";
    }
    return out + "]";
  }
  if (auto* p = std::get_if<PairValue>(&v)) {
    return "{" + p->name + " " + p->value + "}";
  }
  if (auto* strings = std::get_if<StringsRef>(&v)) {
    std::string out = "[";
    for (std::size_t i = 0; i < (*strings)->size(); ++i) {
      out += (i > 0 ? " " : "") + (**strings)[i];
    }
    return out + "]";
  }
  if (auto* alerts = std::get_if<AlertsRef>(&v)) {
    std::string out = "[";
    for (std::size_t i = 0; i < alerts->list->size(); ++i) {
      out += (i > 0 ? " " : "") + alertText((*alerts->list)[i]);
    }
    return out + "]";
  }
  if (auto* a = std::get_if<AlertRef>(&v)) {
    return alertText(**a);
  }
  if (auto* t = std::get_if<GoTime>(&v)) {
    return goTimeString(t->ms);
  }
  if (auto* i = std::get_if<GoInt>(&v)) {
    return std::to_string(i->v);
  }
  return "<no value>";
}

// The number of elements of a collection value, or nullopt for a value that is not one.
std::optional<std::size_t> collectionSize(const TValue& v) {
  if (auto* l = std::get_if<LabelsRef>(&v)) {
    return (*l)->size();
  }
  if (auto* ss = std::get_if<SamplesRef>(&v)) {
    return (*ss)->size();
  }
  if (auto* kv = std::get_if<KVRef>(&v)) {
    return kv->map->size();
  }
  if (auto* p = std::get_if<PairsRef>(&v)) {
    return p->pairs->size();
  }
  if (auto* strings = std::get_if<StringsRef>(&v)) {
    return (*strings)->size();
  }
  if (auto* alerts = std::get_if<AlertsRef>(&v)) {
    return alerts->list->size();
  }
  return std::nullopt;
}

bool truthy(const TValue& v) {
  if (auto* s = std::get_if<std::string>(&v)) {
    return !s->empty();
  }
  if (auto* d = std::get_if<double>(&v)) {
    return *d != 0;
  }
  if (auto* b = std::get_if<bool>(&v)) {
    return *b;
  }
  if (auto n = collectionSize(v)) {
    return *n > 0;
  }
  if (auto* i = std::get_if<GoInt>(&v)) {
    return i->v != 0;
  }
  return !std::holds_alternative<std::monostate>(v);  // a struct (an alert, a time) is true
}

Result<double> toNumber(const TValue& v) {
  if (auto* d = std::get_if<double>(&v)) {
    return *d;
  }
  if (auto* i = std::get_if<GoInt>(&v)) {
    return static_cast<double>(i->v);
  }
  if (auto* s = std::get_if<std::string>(&v)) {
    char* end = nullptr;
    const double x = std::strtod(s->c_str(), &end);
    if (!s->empty() && end == s->c_str() + s->size()) {
      return x;
    }
    return invalidArgument("cannot convert \"" + *s + "\" to a number");
  }
  return invalidArgument("expected a number, got " + toText(v));
}

// Prometheus's humanize: SI prefixes for large and small magnitudes.
std::string humanize(double v, bool base1024) {
  if (v == 0 || std::isnan(v) || std::isinf(v)) {
    char out[64];
    std::snprintf(out, sizeof out, "%.4g", v);
    return goFloat(v) == "NaN" ? "NaN" : std::isinf(v) ? (v > 0 ? "+Inf" : "-Inf") : out;
  }
  const double base = base1024 ? 1024 : 1000;
  static const char* kBig[] = {"", "k", "M", "G", "T", "P", "E", "Z", "Y"};
  static const char* kBigBin[] = {"", "ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"};
  static const char* kSmall[] = {"", "m", "u", "n", "p", "f", "a", "z", "y"};
  char out[64];
  if (std::fabs(v) >= 1) {
    int i = 0;
    while (std::fabs(v) >= base && i < 8) {
      v /= base;
      ++i;
    }
    std::snprintf(out, sizeof out, "%.4g%s", v, base1024 ? kBigBin[i] : kBig[i]);
    return out;
  }
  if (base1024) {
    std::snprintf(out, sizeof out, "%.4g", v);
    return out;
  }
  int i = 0;
  while (std::fabs(v) < 1 && i < 8) {
    v *= 1000;
    ++i;
  }
  std::snprintf(out, sizeof out, "%.4g%s", v, kSmall[i]);
  return out;
}

std::string humanizeDuration(double v) {
  char out[96];
  if (std::isnan(v) || std::isinf(v)) {
    std::snprintf(out, sizeof out, "%.4g", v);
    return out;
  }
  if (v == 0) {
    return "0s";
  }
  if (std::fabs(v) >= 1) {
    std::string sign = v < 0 ? "-" : "";
    v = std::fabs(v);
    // Past the range of long long the conversion is undefined (a fuzzer found 3.4e21 s).
    const long long secs =
        v < 9.2e18 ? static_cast<long long>(v) : std::numeric_limits<long long>::max();
    const long long days = secs / 86400;
    const long long hours = secs / 3600 % 24;
    const long long minutes = secs / 60 % 60;
    const double seconds = std::fmod(v, 60);
    if (days != 0) {
      std::snprintf(out, sizeof out, "%s%lldd %lldh %lldm %.4gs", sign.c_str(), days, hours,
                    minutes, seconds);
    } else if (hours != 0) {
      std::snprintf(out, sizeof out, "%s%lldh %lldm %.4gs", sign.c_str(), hours, minutes, seconds);
    } else if (minutes != 0) {
      std::snprintf(out, sizeof out, "%s%lldm %.4gs", sign.c_str(), minutes, seconds);
    } else {
      std::snprintf(out, sizeof out, "%s%.4gs", sign.c_str(), seconds);
    }
    return out;
  }
  return humanize(v, false) + "s";
}

// Go's template.HTMLEscapeString.
std::string htmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\0':
        out += "\uFFFD";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Go's template.JSEscapeString (for ASCII; other characters are kept).
std::string jsEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\\' || c == '\'' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '<' || c == '>' || c == '&' || c == '=' || u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04X", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

// Go's url.QueryEscape.
std::string queryEscape(std::string_view s) { return percentEncoded(s, true); }

// Four dot-separated decimal numbers up to 255.
bool isIPv4(std::string_view s) {
  int parts = 0;
  std::size_t i = 0;
  while (i <= s.size()) {
    std::size_t j = s.find('.', i);
    if (j == std::string_view::npos) {
      j = s.size();
    }
    const std::string_view part = s.substr(i, j - i);
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (part.empty() || part.size() > 3 || ec != std::errc() || end != part.data() + part.size() ||
        value > 255) {
      return false;
    }
    ++parts;
    i = j + 1;
  }
  return parts == 4;
}

// C's printf into `out` with a buffer of the size it asks for.
template <typename T>
void appendFormatted(std::string& out, const std::string& spec, T value) {
  const int n = std::snprintf(nullptr, 0, spec.c_str(), value);
  if (n <= 0) {
    return;
  }
  const std::size_t at = out.size();
  out.resize(at + static_cast<std::size_t>(n) + 1);
  std::snprintf(out.data() + at, static_cast<std::size_t>(n) + 1, spec.c_str(), value);
  out.resize(at + static_cast<std::size_t>(n));
}

// A printf result longer than this stops there (the expansion then fails on its length).
constexpr std::size_t kMaxPrintf = 1 << 20;
// Go refuses widths and precisions above this ("%!(BADWIDTH)", "%!(BADPREC)").
constexpr long kMaxWidth = 1'000'000;

// printf with Go verbs mapped onto C's for the common cases (%s %d %f %.Nf %g %v %q %%): flags,
// then a width, then a precision, each parsed here and handed to C only when Go accepts it.
std::string goPrintf(const std::string& format, const std::vector<TValue>& args) {
  std::string out;
  std::size_t next = 0;
  for (std::size_t i = 0; i < format.size() && out.size() <= kMaxPrintf; ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    std::size_t j = i + 1;
    std::string flags;
    while (j < format.size() && std::string_view("+-# 0").find(format[j]) != std::string::npos) {
      flags += format[j++];
    }
    auto number = [&](long& value) {
      bool any = false;
      value = 0;
      while (j < format.size() && std::isdigit(static_cast<unsigned char>(format[j]))) {
        value = std::min(value * 10 + (format[j++] - '0'), kMaxWidth + 1);
        any = true;
      }
      return any;
    };
    long width = 0;
    long precision = 0;
    const bool has_width = number(width);
    bool has_precision = false;
    if (j < format.size() && format[j] == '.') {
      ++j;
      number(precision);
      has_precision = true;
    }
    if (j >= format.size()) {
      out += format.substr(i);
      break;
    }
    const char verb = format[j];
    i = j;
    if (verb == '%') {
      out += '%';
      continue;
    }
    if (width > kMaxWidth || precision > kMaxWidth) {
      out += width > kMaxWidth ? "%!(BADWIDTH)" : "%!(BADPREC)";
      continue;
    }
    if (next >= args.size()) {
      out += std::string("%!") + verb + "(MISSING)";
      continue;
    }
    const TValue& arg = args[next++];
    std::string spec = "%" + flags;
    if (has_width) {
      spec += std::to_string(width);
    }
    if (has_precision) {
      spec += "." + std::to_string(precision);
    }
    switch (verb) {
      case 'd': {
        auto n = toNumber(arg);
        const double d = n ? *n : 0.0;
        const long long ll =
            std::isfinite(d) && std::fabs(d) < 9.2e18 ? static_cast<long long>(d) : 0;
        appendFormatted(out, spec + "lld", ll);
        break;
      }
      case 'f':
      case 'e':
      case 'g': {
        auto n = toNumber(arg);
        appendFormatted(out, spec + verb, n ? *n : 0.0);
        break;
      }
      case 'q':
        out += goQuote(toText(arg));
        break;
      default: {  // %s, %v
        const std::string text = toText(arg);
        if (spec.size() == 1) {
          out += text;
        } else {
          appendFormatted(out, spec + "s", text.c_str());
        }
      }
    }
  }
  return out;
}

}  // namespace

// ---- Parsing ---------------------------------------------------------------------------------

namespace {

struct Pipe;

// One operand of a command: a word (a literal, a variable or field chain, a function name),
// or a parenthesised pipeline with the fields read from its result.
struct Operand {
  std::string word;
  std::shared_ptr<const Pipe> pipe;
  std::vector<std::string> fields;
};

struct Command {
  std::vector<Operand> operands;
};

// [$a[, $b] := | =] command | command ...
struct Pipe {
  std::vector<std::string> vars;
  bool declare = false;
  bool assign = false;
  std::vector<Command> commands;
};

// Templates come from rule files and configuration; nesting this deep is a mistake or an
// attack, and recursion must stay bounded.
constexpr int kMaxDepth = 64;

enum class Tok { kWord, kLeftParen, kRightParen, kBar, kDeclare, kAssign, kComma, kFields };

struct Token {
  Tok type;
  std::string text;
};

Result<std::vector<Token>> lexAction(std::string_view body) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < body.size()) {
    const char c = body[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    if (c == '(' || c == ')' || c == '|' || c == ',') {
      out.push_back({c == '('   ? Tok::kLeftParen
                     : c == ')' ? Tok::kRightParen
                     : c == '|' ? Tok::kBar
                                : Tok::kComma,
                     std::string(1, c)});
      ++i;
      // Fields of a parenthesised result: (query "x").Labels
      if (c == ')' && i < body.size() && body[i] == '.') {
        std::size_t j = i;
        while (j < body.size() && !std::isspace(static_cast<unsigned char>(body[j])) &&
               std::string_view("()|,").find(body[j]) == std::string_view::npos) {
          ++j;
        }
        out.push_back({Tok::kFields, std::string(body.substr(i, j - i))});
        i = j;
      }
      continue;
    }
    if (c == ':' && i + 1 < body.size() && body[i + 1] == '=') {
      out.push_back({Tok::kDeclare, ":="});
      i += 2;
      continue;
    }
    if (c == '=') {
      out.push_back({Tok::kAssign, "="});
      ++i;
      continue;
    }
    if (c == '"' || c == '`') {
      std::size_t j = i + 1;
      while (j < body.size() && body[j] != c) {
        j += (c == '"' && body[j] == '\\') ? 2 : 1;
      }
      if (j >= body.size()) {
        return invalidArgument("template: unterminated quoted string");
      }
      out.push_back({Tok::kWord, std::string(body.substr(i, j - i + 1))});
      i = j + 1;
      continue;
    }
    std::size_t j = i;
    while (j < body.size() && !std::isspace(static_cast<unsigned char>(body[j])) &&
           std::string_view("()|,=").find(body[j]) == std::string_view::npos &&
           !(body[j] == ':' && j + 1 < body.size() && body[j + 1] == '=')) {
      ++j;
    }
    if (j == i) {
      return invalidArgument(std::string("template: unexpected \"") + c + "\" in action");
    }
    out.push_back({Tok::kWord, std::string(body.substr(i, j - i))});
    i = j;
  }
  return out;
}

// ".Labels.instance" -> {"Labels", "instance"}
std::vector<std::string> splitChain(const std::string& chain) {
  std::vector<std::string> out;
  std::size_t i = 1;  // past the leading dot
  while (i <= chain.size()) {
    const auto next = chain.find('.', i);
    out.push_back(chain.substr(i, next == std::string::npos ? std::string::npos : next - i));
    if (next == std::string::npos) {
      break;
    }
    i = next + 1;
  }
  return out;
}

class PipeParser {
 public:
  explicit PipeParser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Result<Pipe> parseTop(bool allow_declaration) {
    auto p = parsePipe(0, allow_declaration);
    if (!p) {
      return p.status();
    }
    if (pos_ < toks_.size()) {
      return invalidArgument("template: unexpected \"" + toks_[pos_].text + "\" in command");
    }
    return p;
  }

 private:
  Result<Pipe> parsePipe(int depth, bool allow_declaration) {
    if (depth > kMaxDepth) {
      return invalidArgument("template: expressions nested too deeply");
    }
    Pipe pipe;
    if (allow_declaration) {
      // $x := ..., $k, $v := ..., $x = ...
      std::size_t look = pos_;
      std::vector<std::string> vars;
      while (look < toks_.size() && toks_[look].type == Tok::kWord &&
             toks_[look].text.front() == '$' && toks_[look].text.find('.') == std::string::npos) {
        vars.push_back(toks_[look].text);
        ++look;
        if (look < toks_.size() && toks_[look].type == Tok::kComma && vars.size() == 1) {
          ++look;
          continue;
        }
        break;
      }
      if (!vars.empty() && look < toks_.size() &&
          (toks_[look].type == Tok::kDeclare || toks_[look].type == Tok::kAssign)) {
        pipe.declare = toks_[look].type == Tok::kDeclare;
        pipe.assign = !pipe.declare;
        pipe.vars = std::move(vars);
        pos_ = look + 1;
      }
    }
    while (true) {
      Command command;
      while (pos_ < toks_.size() && toks_[pos_].type != Tok::kBar &&
             toks_[pos_].type != Tok::kRightParen) {
        const Token& t = toks_[pos_];
        if (t.type == Tok::kLeftParen) {
          ++pos_;
          auto sub = parsePipe(depth + 1, false);
          if (!sub) {
            return sub.status();
          }
          if (pos_ >= toks_.size() || toks_[pos_].type != Tok::kRightParen) {
            return invalidArgument("template: unclosed left paren");
          }
          ++pos_;
          Operand op;
          op.pipe = std::make_shared<const Pipe>(std::move(*sub));
          if (pos_ < toks_.size() && toks_[pos_].type == Tok::kFields) {
            op.fields = splitChain(toks_[pos_].text);
            ++pos_;
          }
          command.operands.push_back(std::move(op));
          continue;
        }
        if (t.type != Tok::kWord) {
          return invalidArgument("template: unexpected \"" + t.text + "\" in operand");
        }
        command.operands.push_back({t.text, nullptr, {}});
        ++pos_;
      }
      if (command.operands.empty()) {
        return invalidArgument(pipe.commands.empty() && pipe.vars.empty()
                                   ? "template: missing value for command"
                                   : "template: empty command in pipeline");
      }
      pipe.commands.push_back(std::move(command));
      if (pos_ < toks_.size() && toks_[pos_].type == Tok::kBar) {
        ++pos_;
        continue;
      }
      return pipe;
    }
  }

  std::vector<Token> toks_;
  std::size_t pos_ = 0;
};

// Go refuses a template that uses a variable it has not declared, when it parses it.
Status checkVariables(const Pipe& pipe, const std::vector<std::string>& declared) {
  for (const auto& command : pipe.commands) {
    for (const auto& op : command.operands) {
      if (op.pipe != nullptr) {
        VIGIL_RETURN_IF_ERROR(checkVariables(*op.pipe, declared));
      } else if (op.word.front() == '$') {
        const std::string name = op.word.substr(0, op.word.find('.'));
        if (std::find(declared.begin(), declared.end(), name) == declared.end()) {
          return invalidArgument("template: undefined variable \"" + name + "\"");
        }
      }
    }
  }
  if (pipe.assign) {
    for (const auto& name : pipe.vars) {
      if (std::find(declared.begin(), declared.end(), name) == declared.end()) {
        return invalidArgument("template: undefined variable \"" + name + "\"");
      }
    }
  }
  return Status::ok();
}

}  // namespace

struct Template::Node {
  enum class Kind { kText, kAction, kIf, kWith, kRange, kList, kTemplate };
  Kind kind = Kind::kList;
  std::string text;       // kText; kTemplate: the name of the template it runs
  Pipe pipe;              // kAction; kIf, kWith, kRange: their argument; kTemplate: its dot, if any
  bool has_pipe = false;  // kTemplate: given a pipeline
  std::vector<std::shared_ptr<Node>> children;  // kList; control nodes: [then, else]
};

namespace {

// `"name"` or `` `name` ``, the name of a {{define}}, {{template}} or {{block}}.
std::optional<std::string> templateName(const std::vector<Token>& tokens) {
  if (tokens.size() < 2 || tokens[1].type != Tok::kWord || tokens[1].text.size() < 2 ||
      (tokens[1].text.front() != '"' && tokens[1].text.front() != '`')) {
    return std::nullopt;
  }
  const std::string& quoted = tokens[1].text;
  if (quoted.front() == '`') {
    return quoted.substr(1, quoted.size() - 2);
  }
  std::string out;
  for (std::size_t i = 1; i + 1 < quoted.size(); ++i) {
    if (quoted[i] == '\\' && i + 2 < quoted.size()) {
      ++i;
    }
    out += quoted[i];
  }
  return out;
}

}  // namespace

Result<Template> Template::parse(std::string_view text) {
  using Node = Template::Node;
  auto root = std::make_shared<Node>();
  // Open control structures, each with the list that receives nodes now. An {{else if}}
  // opens an if inside the else branch that the same {{end}} closes.
  struct Open {
    std::shared_ptr<Node> node;
    std::shared_ptr<Node> list;
    bool chained = false;
    std::size_t scope = 0;  // variables declared before it opened
  };
  std::vector<Open> open;
  std::map<std::string, std::shared_ptr<const Node>> defines;
  // The {{define}} and {{block}}s being read, innermost last (a block may stand inside a
  // define's or another block's body): each body is open[at] onwards.
  struct Defining {
    std::size_t at;
    std::string name;
    std::vector<std::string> declared_outside;  // the variables in scope where it began
  };
  std::vector<Defining> defining;
  // Variables in scope; Prometheus declares these before every alert template.
  const std::vector<std::string> prelude = {"$", "$labels", "$externalLabels", "$externalURL",
                                            "$value"};
  std::vector<std::string> declared = prelude;
  auto current = [&]() -> Node& { return open.empty() ? *root : *open.back().list; };
  auto addText = [&](std::string literal) {
    if (!literal.empty()) {
      auto n = std::make_shared<Node>();
      n->kind = Node::Kind::kText;
      n->text = std::move(literal);
      current().children.push_back(n);
    }
  };
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto start = text.find("{{", pos);
    std::string literal(
        text.substr(pos, start == std::string_view::npos ? std::string_view::npos : start - pos));
    if (start == std::string_view::npos) {
      addText(std::move(literal));
      break;
    }
    const auto close = text.find("}}", start + 2);
    if (close == std::string_view::npos) {
      return invalidArgument("template: unclosed action (missing }})");
    }
    std::string_view body = text.substr(start + 2, close - start - 2);
    bool trim_left = false;
    bool trim_right = false;
    if (body.size() >= 2 && body[0] == '-' && std::isspace(static_cast<unsigned char>(body[1]))) {
      trim_left = true;
      body.remove_prefix(1);
    }
    if (body.size() >= 2 && body.back() == '-' &&
        std::isspace(static_cast<unsigned char>(body[body.size() - 2]))) {
      trim_right = true;
      body.remove_suffix(1);
    }
    if (trim_left) {
      while (!literal.empty() && std::isspace(static_cast<unsigned char>(literal.back()))) {
        literal.pop_back();
      }
    }
    addText(std::move(literal));
    pos = close + 2;
    if (trim_right) {
      while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos]))) {
        ++pos;
      }
    }
    // A comment: {{/* ... */}}
    std::string_view trimmed = body;
    while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.front()))) {
      trimmed.remove_prefix(1);
    }
    if (trimmed.starts_with("/*")) {
      continue;
    }
    auto tokens = lexAction(body);
    if (!tokens) {
      return tokens.status();
    }
    if (tokens->empty()) {
      return invalidArgument("template: missing value for command");
    }
    const std::string keyword = (*tokens)[0].type == Tok::kWord ? (*tokens)[0].text : "";
    auto controlPipe = [&](std::size_t skip, bool declaration) -> Result<Pipe> {
      std::vector<Token> rest(tokens->begin() + static_cast<std::ptrdiff_t>(skip), tokens->end());
      if (rest.empty()) {
        return invalidArgument("template: missing value for " + keyword);
      }
      return PipeParser(std::move(rest)).parseTop(declaration);
    };
    // Opens an if, with or range whose argument starts at token `skip`, in `parent`.
    auto openControl = [&](Node::Kind kind, std::size_t skip, Node& parent,
                           bool chained) -> Status {
      if (open.size() >= static_cast<std::size_t>(kMaxDepth)) {
        return invalidArgument("template: control structures nested too deeply");
      }
      auto p = controlPipe(skip, true);
      if (!p) {
        return p.status();
      }
      VIGIL_RETURN_IF_ERROR(checkVariables(*p, declared));
      const std::size_t scope = declared.size();
      if (p->declare) {
        declared.insert(declared.end(), p->vars.begin(), p->vars.end());
      }
      auto n = std::make_shared<Node>();
      n->kind = kind;
      n->pipe = std::move(*p);
      n->children.push_back(std::make_shared<Node>());
      parent.children.push_back(n);
      open.push_back({n, n->children[0], chained, scope});
      return Status::ok();
    };
    // {{template "name" [pipeline]}} (or a block's call) at this point of the current list.
    auto addTemplateCall = [&](const std::string& name) -> Status {
      auto call = std::make_shared<Node>();
      call->kind = Node::Kind::kTemplate;
      call->text = name;
      if (tokens->size() > 2) {
        auto p = controlPipe(2, false);
        if (!p) {
          return p.status();
        }
        VIGIL_RETURN_IF_ERROR(checkVariables(*p, declared));
        call->pipe = std::move(*p);
        call->has_pipe = true;
      }
      current().children.push_back(call);
      return Status::ok();
    };
    if (keyword == "if" || keyword == "with" || keyword == "range") {
      VIGIL_RETURN_IF_ERROR(openControl(keyword == "if"     ? Node::Kind::kIf
                                        : keyword == "with" ? Node::Kind::kWith
                                                            : Node::Kind::kRange,
                                        1, current(), false));
    } else if (keyword == "else") {
      if (open.empty() || open.back().node->children.size() != 1) {
        return invalidArgument("template: unexpected {{else}}");
      }
      auto else_list = std::make_shared<Node>();
      open.back().node->children.push_back(else_list);
      open.back().list = else_list;
      declared.resize(open.back().scope);
      if (tokens->size() > 1) {
        if ((*tokens)[1].type != Tok::kWord || (*tokens)[1].text != "if") {
          return invalidArgument("template: unexpected \"" + (*tokens)[1].text + "\" in else");
        }
        VIGIL_RETURN_IF_ERROR(openControl(Node::Kind::kIf, 2, *else_list, true));
      }
    } else if (keyword == "end") {
      if (open.empty()) {
        return invalidArgument("template: unexpected {{end}}");
      }
      while (open.back().chained) {
        open.pop_back();
      }
      declared.resize(open.back().scope);
      if (!defining.empty() && defining.back().at == open.size() - 1) {
        // The end of a {{define}} (its body a template of its own) or of a {{block}}.
        defines[defining.back().name] = open.back().list;
        declared = std::move(defining.back().declared_outside);
        defining.pop_back();
      }
      open.pop_back();
    } else if (keyword == "define" || keyword == "block") {
      const auto name = templateName(*tokens);
      if (!name) {
        return invalidArgument("template: {{" + keyword + "}} needs a quoted template name");
      }
      // As in Go, a define stands only at the top level; a block anywhere.
      if (keyword == "define" && !open.empty()) {
        return invalidArgument("template: {{" + keyword + " \"" + *name +
                               "\"}} inside another template's body");
      }
      if (keyword == "define" && tokens->size() != 2) {
        return invalidArgument("template: unexpected \"" + (*tokens)[2].text + "\" in define");
      }
      // A block runs where it stands, like {{template "name" pipeline}}.
      if (keyword == "block") {
        VIGIL_RETURN_IF_ERROR(addTemplateCall(*name));
      }
      // The body is read like a control structure's, into a list of its own; a template's
      // body sees only $, as in Go.
      auto holder = std::make_shared<Node>();
      holder->children.push_back(std::make_shared<Node>());
      defining.push_back({open.size(), *name, declared});
      declared = prelude;
      open.push_back({holder, holder->children[0], false, declared.size()});
    } else if (keyword == "template") {
      const auto name = templateName(*tokens);
      if (!name) {
        return invalidArgument("template: {{template}} needs a quoted template name");
      }
      VIGIL_RETURN_IF_ERROR(addTemplateCall(*name));
    } else if (keyword == "break" || keyword == "continue") {
      return invalidArgument("template: {{" + keyword + "}} is not supported");
    } else {
      auto p = PipeParser(std::move(*tokens)).parseTop(true);
      if (!p) {
        return p.status();
      }
      VIGIL_RETURN_IF_ERROR(checkVariables(*p, declared));
      if (p->declare) {
        declared.insert(declared.end(), p->vars.begin(), p->vars.end());
      }
      auto n = std::make_shared<Node>();
      n->kind = Node::Kind::kAction;
      n->pipe = std::move(*p);
      current().children.push_back(n);
    }
  }
  if (!open.empty()) {
    const Node::Kind kind = open.back().node->kind;
    return invalidArgument("template: unexpected EOF (an {{" +
                           std::string(!defining.empty() && defining.back().at == open.size() - 1
                                           ? "define \"" + defining.back().name + "\""
                                       : kind == Node::Kind::kIf   ? "if"
                                       : kind == Node::Kind::kWith ? "with"
                                                                   : "range") +
                           "}} has no {{end}})");
  }
  Template t;
  t.root_ = root;
  t.defines_ = std::make_shared<const Definitions>(std::move(defines));
  return t;
}

// ---- Execution -------------------------------------------------------------------------------

namespace {

// Bounds on one expansion: a template's loops can multiply (a range in a range ...).
constexpr std::size_t kMaxSteps = 100'000;
// Templates calling templates, each with its own nesting: the product bounds the depth of the
// recursion that renders them (and so the stack it takes), where Go's stacks would grow.
constexpr std::size_t kMaxTemplateCalls = 16;
constexpr std::size_t kMaxOutput = 1 << 20;

bool isFunctionName(const std::string& word) {
  const char c = word.front();
  return std::isalpha(static_cast<unsigned char>(c)) && word != "true" && word != "false" &&
         word != "nil";
}

class Executor {
 public:
  Executor(const TemplateData& data, const Template::Definitions& own)
      : data_(data), own_(own), external_labels_(externalLabelSet(data)) {
    vars_.emplace_back("$", Root{});
    if (data.notification != nullptr) {
      return;  // Alertmanager defines no others
    }
    // Prometheus defines these before every alert template.
    vars_.emplace_back("$labels", field(Root{}, "Labels").value());
    vars_.emplace_back("$externalLabels", field(Root{}, "ExternalLabels").value());
    vars_.emplace_back("$externalURL", std::string());
    vars_.emplace_back("$value", data.value);
  }

  Status render(const Template::Node& node, const TValue& dot, std::string& out) {
    using Kind = Template::Node::Kind;
    if (++steps_ > kMaxSteps) {
      return invalidArgument("template: stopped after " + std::to_string(kMaxSteps) + " steps");
    }
    if (out.size() > kMaxOutput) {
      return invalidArgument("template: output longer than 1 MiB");
    }
    switch (node.kind) {
      case Kind::kText:
        out += node.text;
        return Status::ok();
      case Kind::kAction: {
        auto v = runPipe(node.pipe, dot);
        if (!v) {
          return v.status();
        }
        if (node.pipe.vars.empty()) {
          out += toText(*v);
        }
        return Status::ok();
      }
      case Kind::kList:
        for (const auto& child : node.children) {
          VIGIL_RETURN_IF_ERROR(render(*child, dot, out));
        }
        return Status::ok();
      case Kind::kIf:
      case Kind::kWith:
        return renderIfWith(node, dot, out);
      case Kind::kRange:
        return renderRange(node, dot, out);
      case Kind::kTemplate:
        return renderTemplateCall(node, dot, out);
    }
    return Status::ok();
  }

 private:
  Status renderIfWith(const Template::Node& node, const TValue& dot, std::string& out) {
    const std::size_t scope = vars_.size();
    auto v = runPipe(node.pipe, dot);
    if (!v) {
      return v.status();
    }
    Status st;
    if (truthy(*v)) {
      st = render(*node.children[0], node.kind == Template::Node::Kind::kWith ? *v : dot, out);
    } else if (node.children.size() > 1) {
      st = render(*node.children[1], dot, out);
    }
    vars_.resize(scope);
    return st;
  }

  // {{template "name" pipeline}}: the named template with the pipeline's value as its dot and
  // its $ (nil without a pipeline), and no other variables.
  Status renderTemplateCall(const Template::Node& node, const TValue& dot, std::string& out) {
    const Template::Node* body = definition(node.text);
    if (body == nullptr) {
      return invalidArgument("template: template \"" + node.text + "\" not defined");
    }
    TValue arg;
    if (node.has_pipe) {
      auto v = runPipe(node.pipe, dot);
      if (!v) {
        return v.status();
      }
      arg = std::move(*v);
    }
    if (calls_ >= kMaxTemplateCalls) {
      return invalidArgument("template: template calls nested too deeply (at \"" + node.text +
                             "\": does it call itself?)");
    }
    ++calls_;
    std::vector<std::pair<std::string, TValue>> caller_vars = std::move(vars_);
    vars_.clear();
    vars_.emplace_back("$", arg);
    Status st = render(*body, arg, out);
    vars_ = std::move(caller_vars);
    --calls_;
    return st;
  }

  // A named template: the executing template's own, or else the library's.
  const Template::Node* definition(const std::string& name) const {
    if (auto it = own_.find(name); it != own_.end()) {
      return it->second.get();
    }
    if (data_.library != nullptr) {
      return data_.library->definition(name);
    }
    return nullptr;
  }

  Status renderRange(const Template::Node& node, const TValue& dot, std::string& out) {
    const std::size_t scope = vars_.size();
    Pipe pipe = node.pipe;  // the range's variables take each element, not the whole value
    const std::vector<std::string> vars = std::move(pipe.vars);
    pipe.vars.clear();
    pipe.declare = false;
    auto v = runPipe(pipe, dot);
    if (!v) {
      return v.status();
    }
    std::vector<std::pair<TValue, TValue>> items;  // key or index, element
    if (auto* ss = std::get_if<SamplesRef>(&*v)) {
      for (std::size_t i = 0; i < (*ss)->size(); ++i) {
        items.emplace_back(static_cast<double>(i),
                           std::make_shared<const TemplateSample>((**ss)[i]));
      }
    } else if (auto* l = std::get_if<LabelsRef>(&*v)) {
      for (const auto& label : **l) {  // sorted by name, as Go ranges over a map
        items.emplace_back(label.name, label.value);
      }
    } else if (auto* kv = std::get_if<KVRef>(&*v)) {
      for (const auto& label : *kv->map) {
        items.emplace_back(label.name, label.value);
      }
    } else if (auto* pairs = std::get_if<PairsRef>(&*v)) {
      for (std::size_t i = 0; i < pairs->pairs->size(); ++i) {
        const Label& l = (*pairs->pairs)[i];
        items.emplace_back(static_cast<double>(i), PairValue{l.name, l.value});
      }
    } else if (auto* strings = std::get_if<StringsRef>(&*v)) {
      for (std::size_t i = 0; i < (*strings)->size(); ++i) {
        items.emplace_back(static_cast<double>(i), (**strings)[i]);
      }
    } else if (auto* alerts = std::get_if<AlertsRef>(&*v)) {
      for (std::size_t i = 0; i < alerts->list->size(); ++i) {
        // Shares the list's ownership rather than copying the alert.
        items.emplace_back(static_cast<double>(i), AlertRef(alerts->list, &(*alerts->list)[i]));
      }
    } else if (!std::holds_alternative<std::monostate>(*v)) {
      return invalidArgument("template: range can't iterate over " + toText(*v));
    }
    Status st;
    if (items.empty()) {
      if (node.children.size() > 1) {
        st = render(*node.children[1], dot, out);
      }
    } else {
      for (const auto& [key, element] : items) {
        vars_.resize(scope);
        if (vars.size() == 1) {
          vars_.emplace_back(vars[0], element);
        } else if (vars.size() == 2) {
          vars_.emplace_back(vars[0], key);
          vars_.emplace_back(vars[1], element);
        }
        st = render(*node.children[0], element, out);
        if (!st.isOk()) {
          break;
        }
      }
    }
    vars_.resize(scope);
    return st;
  }

  Result<TValue> runPipe(const Pipe& pipe, const TValue& dot) {
    std::optional<TValue> previous;
    for (const auto& command : pipe.commands) {
      auto v = runCommand(command, dot, previous);
      if (!v) {
        return v.status();
      }
      previous = std::move(*v);
    }
    if (pipe.declare) {
      for (const auto& name : pipe.vars) {
        vars_.emplace_back(name, *previous);
      }
    } else if (pipe.assign) {
      for (const auto& name : pipe.vars) {
        auto* slot = variable(name);
        if (slot == nullptr) {
          return invalidArgument("template: undefined variable: " + name);
        }
        *slot = *previous;
      }
    }
    return *previous;
  }

  Result<TValue> runCommand(const Command& command, const TValue& dot,
                            const std::optional<TValue>& previous) {
    const Operand& head = command.operands[0];
    if (head.pipe == nullptr && isFunctionName(head.word)) {
      std::vector<TValue> args;
      for (std::size_t i = 1; i < command.operands.size(); ++i) {
        auto v = operand(command.operands[i], dot);
        if (!v) {
          return v.status();
        }
        args.push_back(std::move(*v));
      }
      if (previous) {
        args.push_back(*previous);  // a pipeline passes the previous result as the last argument
      }
      return call(head.word, args);
    }
    if (command.operands.size() != 1 || previous) {
      return runMethod(command, dot, previous);
    }
    return operand(head, dot);
  }

  // A method with arguments at the end of a field chain: .StartsAt.Format "15:04",
  // .CommonLabels.Remove .GroupLabels.Names.
  Result<TValue> runMethod(const Command& command, const TValue& dot,
                           const std::optional<TValue>& previous) {
    const Operand& head = command.operands[0];
    const bool chain = head.pipe != nullptr
                           ? !head.fields.empty()
                           : head.word.find('.') != std::string::npos && head.word != "." &&
                                 head.word.front() != '"' && head.word.front() != '`';
    if (!chain) {
      return invalidArgument("template: can't give argument to non-function " +
                             (head.pipe ? std::string("(...)") : head.word));
    }
    // The receiver: the chain without its last name.
    Operand receiver_op = head;
    std::string method;
    if (head.pipe != nullptr) {
      method = receiver_op.fields.back();
      receiver_op.fields.pop_back();
    } else {
      const auto last_dot = head.word.rfind('.');
      method = head.word.substr(last_dot + 1);
      receiver_op.word = last_dot == 0 ? "." : head.word.substr(0, last_dot);
    }
    auto receiver = operand(receiver_op, dot);
    if (!receiver) {
      return receiver.status();
    }
    std::vector<TValue> args;
    for (std::size_t i = 1; i < command.operands.size(); ++i) {
      auto v = operand(command.operands[i], dot);
      if (!v) {
        return v.status();
      }
      args.push_back(std::move(*v));
    }
    if (previous) {
      args.push_back(*previous);
    }
    if (auto* kv = std::get_if<KVRef>(&*receiver); kv != nullptr && method == "Remove") {
      auto* keys = args.size() == 1 ? std::get_if<StringsRef>(&args[0]) : nullptr;
      if (keys == nullptr) {
        return invalidArgument("template: Remove takes one argument, a list of names");
      }
      auto kept = std::make_shared<LabelSet>(*kv->map);
      std::erase_if(*kept, [&](const Label& l) {
        return std::find((*keys)->begin(), (*keys)->end(), l.name) != (*keys)->end();
      });
      return TValue(KVRef{std::move(kept)});
    }
    if (auto* t = std::get_if<GoTime>(&*receiver); t != nullptr && method == "Format") {
      if (args.size() != 1 || !std::holds_alternative<std::string>(args[0])) {
        return invalidArgument("template: Format takes one argument, a layout string");
      }
      return TValue(goTimeFormat(t->ms, std::get<std::string>(args[0])));
    }
    return invalidArgument("template: can't give argument to non-function " + method);
  }

  Result<TValue> operand(const Operand& op, const TValue& dot) {
    if (op.pipe != nullptr) {
      auto v = runPipe(*op.pipe, dot);
      if (!v) {
        return v.status();
      }
      return fields(std::move(*v), op.fields);
    }
    const std::string& word = op.word;
    if (word == "true" || word == "false") {
      return TValue(word == "true");
    }
    if (word == "nil") {
      return TValue(std::monostate{});
    }
    if (word.front() == '`') {
      return TValue(word.substr(1, word.size() - 2));
    }
    if (word.front() == '"') {
      return TValue(unquote(word));
    }
    if (word.front() == '$') {
      const auto dot_at = word.find('.');
      const std::string name = word.substr(0, dot_at);
      const TValue* v = variable(name);
      if (v == nullptr) {
        return invalidArgument("template: undefined variable \"" + name + "\"");
      }
      if (dot_at == std::string::npos) {
        return *v;
      }
      return fields(*v, splitChain(word.substr(dot_at)));
    }
    if (word.front() == '.') {
      if (word == ".") {
        return dot;
      }
      return fields(dot, splitChain(word));
    }
    if (isFunctionName(word)) {
      return call(word, {});  // a function without arguments
    }
    char* end = nullptr;
    const double num = std::strtod(word.c_str(), &end);
    if (end == word.c_str() + word.size()) {
      return TValue(num);
    }
    return invalidArgument("template: unknown value \"" + word + "\"");
  }

  static std::string unquote(const std::string& word) {
    std::string out;
    for (std::size_t i = 1; i + 1 < word.size(); ++i) {
      if (word[i] == '\\' && i + 2 < word.size()) {
        ++i;
        out += word[i] == 'n' ? '\n' : word[i] == 't' ? '\t' : word[i];
      } else {
        out += word[i];
      }
    }
    return out;
  }

  Result<TValue> fields(TValue v, const std::vector<std::string>& chain) {
    for (const auto& name : chain) {
      auto next = field(v, name);
      if (!next) {
        return next.status();
      }
      v = std::move(*next);
    }
    return v;
  }

  Result<TValue> field(const TValue& v, const std::string& name) const {
    if (std::holds_alternative<Root>(v) && data_.notification != nullptr) {
      return notificationField(*data_.notification, name);
    }
    if (auto r = alertmanagerField(v, name)) {
      return std::move(*r);
    }
    if (std::holds_alternative<Root>(v)) {
      if (name == "Labels") {
        // Borrowed, not copied: the data outlives the execution and every value made in it.
        static const LabelSet kNoLabels;
        return TValue(LabelsRef(LabelsRef(), data_.labels != nullptr ? data_.labels : &kNoLabels));
      }
      if (name == "ExternalLabels") {
        return TValue(external_labels_);
      }
      if (name == "Value") {
        return TValue(data_.value);
      }
      if (name == "ExternalURL") {
        return TValue(std::string());
      }
    }
    if (auto* l = std::get_if<LabelsRef>(&v)) {
      for (const auto& label : **l) {
        if (label.name == name) {
          return TValue(label.value);
        }
      }
      return TValue(std::string());  // Prometheus runs templates with missingkey=zero
    }
    if (auto* s = std::get_if<SampleRef>(&v)) {
      if (name == "Labels") {
        return TValue(std::make_shared<const LabelSet>((*s)->labels));
      }
      if (name == "Value") {
        return TValue((*s)->value);
      }
    }
    return invalidArgument("template: can't evaluate field " + name + " in " + toText(v));
  }

  // A field of the notification a template runs over (Alertmanager's template.Data).
  Result<TValue> notificationField(const NotificationTemplateData& n,
                                   const std::string& name) const {
    if (name == "Receiver") {
      return TValue(n.receiver);
    }
    if (name == "Status") {
      return TValue(n.status);
    }
    if (name == "Alerts") {
      // Borrowed, not copied: the data outlives the execution and every value made in it.
      return TValue(AlertsRef{{std::shared_ptr<const void>(), &n.alerts}, true});
    }
    if (name == "GroupLabels" || name == "CommonLabels" || name == "CommonAnnotations") {
      const LabelSet& map = name == "GroupLabels"    ? n.group_labels
                            : name == "CommonLabels" ? n.common_labels
                                                     : n.common_annotations;
      return TValue(KVRef{LabelsRef(LabelsRef(), &map)});
    }
    if (name == "ExternalURL") {
      return TValue(n.external_url);
    }
    // vigil's own, kept from before .Alerts could be ranged over.
    if (name == "GroupKey") {
      return TValue(n.group_key);
    }
    if (name == "NumFiring" || name == "NumResolved") {
      const auto firing =
          std::count_if(n.alerts.begin(), n.alerts.end(),
                        [](const TemplateAlert& a) { return a.status == "firing"; });
      return TValue(GoInt{
          name == "NumFiring" ? firing : static_cast<std::ptrdiff_t>(n.alerts.size()) - firing});
    }
    return invalidArgument("template: can't evaluate field " + name + " in type template.Data");
  }

  // A field or argument-less method of one of Alertmanager's types, or nullopt when `v` is
  // not one of them. A map's methods win over its keys, as in Go.
  std::optional<Result<TValue>> alertmanagerField(const TValue& v, const std::string& name) const {
    auto names = [](const LabelSet& labels, bool values) {
      auto out = std::make_shared<std::vector<std::string>>();
      for (const auto& l : labels) {
        out->push_back(values ? l.value : l.name);
      }
      return TValue(StringsRef(std::move(out)));
    };
    if (auto* kv = std::get_if<KVRef>(&v)) {
      if (name == "SortedPairs") {
        return TValue(PairsRef{kv->map});  // a label set is sorted by name already
      }
      if (name == "Names" || name == "Values") {
        return names(*kv->map, name == "Values");
      }
      if (name == "Remove") {
        return Result<TValue>(
            invalidArgument("template: wrong number of args for Remove: want 1 got 0"));
      }
      for (const auto& l : *kv->map) {
        if (l.name == name) {
          return TValue(l.value);
        }
      }
      return TValue(std::string());  // Alertmanager too runs templates with missingkey=zero
    }
    if (auto* p = std::get_if<PairsRef>(&v)) {
      if (name == "Names" || name == "Values") {
        return names(*p->pairs, name == "Values");
      }
    } else if (auto* p = std::get_if<PairValue>(&v)) {
      if (name == "Name" || name == "Value") {
        return TValue(name == "Name" ? p->name : p->value);
      }
    } else if (auto* alerts = std::get_if<AlertsRef>(&v)) {
      if (alerts->with_methods && (name == "Firing" || name == "Resolved")) {
        // Copying the alerts counts against the steps: a loop over the alerts that asks for
        // them each time must not take the square of a big notification's time.
        steps_ += alerts->list->size();
        if (steps_ > kMaxSteps) {
          return Result<TValue>(
              invalidArgument("template: stopped after " + std::to_string(kMaxSteps) + " steps"));
        }
        auto out = std::make_shared<std::vector<TemplateAlert>>();
        for (const auto& a : *alerts->list) {
          if ((a.status == "firing") == (name == "Firing")) {
            out->push_back(a);
          }
        }
        return TValue(AlertsRef{std::move(out), false});
      }
    } else if (auto* a = std::get_if<AlertRef>(&v)) {
      const TemplateAlert& alert = **a;
      if (name == "Status") {
        return TValue(alert.status);
      }
      if (name == "Labels" || name == "Annotations") {
        return TValue(KVRef{LabelsRef(*a, name == "Labels" ? &alert.labels : &alert.annotations)});
      }
      if (name == "StartsAt" || name == "EndsAt") {
        return TValue(
            GoTime{alertTime(name == "StartsAt" ? alert.starts_at_ms : alert.ends_at_ms)});
      }
      if (name == "GeneratorURL") {
        return TValue(alert.generator_url);
      }
      if (name == "Fingerprint") {
        return TValue(alert.fingerprint);
      }
    } else if (auto* t = std::get_if<GoTime>(&v)) {
      if (name == "Unix") {
        return TValue(GoInt{goTimeUnix(t->ms)});
      }
      if (name == "UnixMilli") {
        return TValue(GoInt{t->ms == kGoZeroTime ? goTimeUnix(kGoZeroTime) * 1000 : t->ms});
      }
      if (name == "UTC" || name == "Local") {
        return TValue(*t);  // times are UTC
      }
      if (name == "Format") {
        return Result<TValue>(
            invalidArgument("template: wrong number of args for Format: want 1 got 0"));
      }
    } else {
      return std::nullopt;
    }
    return Result<TValue>(
        invalidArgument("template: can't evaluate field " + name + " in " + toText(v)));
  }

  TValue* variable(const std::string& name) {
    for (auto it = vars_.rbegin(); it != vars_.rend(); ++it) {
      if (it->first == name) {
        return &it->second;
      }
    }
    return nullptr;
  }

  Result<TValue> call(const std::string& fn, const std::vector<TValue>& args);

  // The external labels as a label set, made once per execution.
  static LabelsRef externalLabelSet(const TemplateData& data) {
    auto labels = std::make_shared<LabelSet>();
    if (data.external_labels != nullptr) {
      for (const auto& [k, value] : *data.external_labels) {
        labels->push_back({k, value});
      }
    }
    return labels;
  }

  const TemplateData& data_;
  const Template::Definitions& own_;
  const LabelsRef external_labels_;
  std::size_t calls_ = 0;  // {{template}} calls under way
  std::vector<std::pair<std::string, TValue>> vars_;
  mutable std::size_t steps_ = 0;  // field() counts the alerts it copies
};

Result<TValue> Executor::call(const std::string& fn, const std::vector<TValue>& args) {
  auto need = [&](std::size_t n) -> Status {
    if (args.size() != n) {
      return invalidArgument("template: wrong number of args for " + fn + ": want " +
                             std::to_string(n) + " got " + std::to_string(args.size()));
    }
    return Status::ok();
  };
  auto number = [&](std::size_t i) { return toNumber(args[i]); };
  auto sample = [&](std::size_t i) -> Result<SampleRef> {
    if (auto* s = std::get_if<SampleRef>(&args[i])) {
      return *s;
    }
    return invalidArgument("template: " + fn + ": expected a sample, got " + toText(args[i]));
  };
  auto samples = [&](std::size_t i) -> Result<SamplesRef> {
    if (auto* s = std::get_if<SamplesRef>(&args[i])) {
      return *s;
    }
    return invalidArgument("template: " + fn + ": expected a query result, got " + toText(args[i]));
  };
  if (fn == "query") {
    VIGIL_RETURN_IF_ERROR(need(1));
    if (data_.query == nullptr) {
      return invalidArgument("template: query is not available in this template");
    }
    auto r = (*data_.query)(toText(args[0]));
    if (!r) {
      return invalidArgument("template: query \"" + toText(args[0]) +
                             "\": " + r.status().message());
    }
    return TValue(std::make_shared<const std::vector<TemplateSample>>(std::move(*r)));
  }
  if (fn == "first") {
    VIGIL_RETURN_IF_ERROR(need(1));
    auto s = samples(0);
    if (!s) {
      return s.status();
    }
    if ((*s)->empty()) {
      return invalidArgument("template: first() called on vector with no elements");
    }
    return TValue(std::make_shared<const TemplateSample>((*s)->front()));
  }
  if (fn == "label" || fn == "value" || fn == "strvalue") {
    VIGIL_RETURN_IF_ERROR(need(fn == "label" ? 2 : 1));
    auto s = sample(fn == "label" ? 1 : 0);
    if (!s) {
      return s.status();
    }
    if (fn == "value") {
      return TValue((*s)->value);
    }
    const std::string name = fn == "label" ? toText(args[0]) : "__value__";
    for (const auto& l : (*s)->labels) {
      if (l.name == name) {
        return TValue(l.value);
      }
    }
    return TValue(std::string());
  }
  if (fn == "sortByLabel") {
    VIGIL_RETURN_IF_ERROR(need(2));
    auto s = samples(1);
    if (!s) {
      return s.status();
    }
    const std::string name = toText(args[0]);
    auto sorted = std::make_shared<std::vector<TemplateSample>>(**s);
    auto labelOf = [&](const TemplateSample& x) -> std::string_view {
      for (const auto& l : x.labels) {
        if (l.name == name) {
          return l.value;
        }
      }
      return {};
    };
    std::stable_sort(sorted->begin(), sorted->end(),
                     [&](const auto& a, const auto& b) { return labelOf(a) < labelOf(b); });
    return TValue(SamplesRef(std::move(sorted)));
  }
  if (fn == "humanize" || fn == "humanize1024" || fn == "humanizePercentage" ||
      fn == "humanizeDuration" || fn == "humanizeTimestamp") {
    VIGIL_RETURN_IF_ERROR(need(1));
    auto v = number(0);
    if (!v) {
      return v.status();
    }
    if (fn == "humanize") {
      return TValue(humanize(*v, false));
    }
    if (fn == "humanize1024") {
      return TValue(humanize(*v, true));
    }
    if (fn == "humanizePercentage") {
      char out[64];
      std::snprintf(out, sizeof out, "%.4g%%", *v * 100);
      return TValue(std::string(out));
    }
    if (fn == "humanizeDuration") {
      return TValue(humanizeDuration(*v));
    }
    const std::time_t secs =
        std::isfinite(*v) && std::fabs(*v) < 9.2e15 ? static_cast<std::time_t>(*v) : 0;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char out[64];
    std::strftime(out, sizeof out, "%Y-%m-%d %H:%M:%S +0000 UTC", &tm);
    return TValue(std::string(out));
  }
  if (fn == "toUpper" || fn == "toLower" || fn == "title") {
    VIGIL_RETURN_IF_ERROR(need(1));
    std::string s = toText(args[0]);
    bool start = true;
    for (char& c : s) {
      if (fn == "toUpper") {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      } else if (fn == "toLower") {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      } else {
        if (start && std::isalpha(static_cast<unsigned char>(c))) {
          c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
        start = !std::isalnum(static_cast<unsigned char>(c));
      }
    }
    return TValue(s);
  }
  if (fn == "safeHtml") {
    VIGIL_RETURN_IF_ERROR(need(1));
    return TValue(toText(args[0]));
  }
  if (fn == "stripPort") {
    // host:port, [v6]:port and a bare host, as Go's net.SplitHostPort sees them.
    VIGIL_RETURN_IF_ERROR(need(1));
    const std::string s = toText(args[0]);
    if (s.starts_with("[")) {
      const auto close = s.find(']');
      return TValue(close == std::string::npos ? s : s.substr(1, close - 1));
    }
    const auto colon = s.find(':');
    if (colon != std::string::npos && s.find(':', colon + 1) == std::string::npos) {
      return TValue(s.substr(0, colon));
    }
    return TValue(s);
  }
  if (fn == "match") {
    VIGIL_RETURN_IF_ERROR(need(2));
    RE2 re(toText(args[0]), RE2::Quiet);
    if (!re.ok()) {
      return invalidArgument("template: match: " + re.error());
    }
    return TValue(RE2::PartialMatch(toText(args[1]), re));
  }
  if (fn == "reReplaceAll") {
    VIGIL_RETURN_IF_ERROR(need(3));
    RE2 re(toText(args[0]), RE2::Quiet);
    if (!re.ok()) {
      return invalidArgument("template: reReplaceAll: " + re.error());
    }
    std::string s = toText(args[2]);
    std::string repl = toText(args[1]);
    // Go's $1 and ${1} are RE2's \1; a literal backslash must be doubled for RE2.
    std::string rewrite;
    for (std::size_t i = 0; i < repl.size(); ++i) {
      if (repl[i] == '\\') {
        rewrite += "\\\\";
      } else if (repl[i] == '$' && i + 1 < repl.size() &&
                 std::isdigit(static_cast<unsigned char>(repl[i + 1]))) {
        rewrite += '\\';
        rewrite += repl[++i];
      } else if (repl[i] == '$' && i + 3 < repl.size() && repl[i + 1] == '{' &&
                 std::isdigit(static_cast<unsigned char>(repl[i + 2])) && repl[i + 3] == '}') {
        rewrite += '\\';
        rewrite += repl[i + 2];
        i += 3;
      } else {
        rewrite += repl[i];
      }
    }
    RE2::GlobalReplace(&s, re, rewrite);
    return TValue(s);
  }
  if (fn == "printf") {
    if (args.empty()) {
      return invalidArgument("template: printf needs a format");
    }
    return TValue(goPrintf(toText(args[0]), std::vector<TValue>(args.begin() + 1, args.end())));
  }
  if (fn == "print" || fn == "html" || fn == "js" || fn == "urlquery") {
    // Go's fmt.Sprint: a space between operands when neither is a string; the escaping
    // builtins escape what Sprint makes of their arguments.
    std::string out;
    for (std::size_t i = 0; i < args.size(); ++i) {
      if (i > 0 && !std::holds_alternative<std::string>(args[i - 1]) &&
          !std::holds_alternative<std::string>(args[i])) {
        out += ' ';
      }
      out += toText(args[i]);
    }
    return TValue(fn == "html"       ? htmlEscape(out)
                  : fn == "js"       ? jsEscape(out)
                  : fn == "urlquery" ? queryEscape(out)
                                     : out);
  }
  if (fn == "println") {  // fmt.Sprintln: spaces between all operands, and a newline
    std::string out;
    for (std::size_t i = 0; i < args.size(); ++i) {
      out += (i > 0 ? " " : "") + toText(args[i]);
    }
    return TValue(out + "\n");
  }
  // Prometheus's: arguments as a map for a named template (.arg0, .arg1, ...), links to its
  // expression browser (under the external URL's path, which vigil does not have: ""),
  // durations in seconds, and times.
  if (fn == "args") {
    auto map = std::make_shared<LabelSet>();
    for (std::size_t i = 0; i < args.size(); ++i) {
      map->push_back({"arg" + std::to_string(i), toText(args[i])});
    }
    std::sort(map->begin(), map->end(),
              [](const Label& a, const Label& b) { return a.name < b.name; });
    return TValue(LabelsRef(std::move(map)));
  }
  if (fn == "pathPrefix" || fn == "externalURL") {
    VIGIL_RETURN_IF_ERROR(need(0));
    return TValue(std::string());
  }
  if (fn == "graphLink" || fn == "tableLink") {
    VIGIL_RETURN_IF_ERROR(need(1));
    return TValue("/graph?g0.expr=" + queryEscape(toText(args[0])) +
                  "&g0.tab=" + (fn == "graphLink" ? "0" : "1"));
  }
  if (fn == "parseDuration") {
    VIGIL_RETURN_IF_ERROR(need(1));
    auto d = vigil::parseDuration(toText(args[0]));
    if (!d) {
      return invalidArgument("template: parseDuration: " + d.status().message());
    }
    return TValue(static_cast<double>(d->count()) / 1000);
  }
  if (fn == "toTime") {
    VIGIL_RETURN_IF_ERROR(need(1));
    // As Prometheus: to whole nanoseconds, then to whole milliseconds, each cut toward zero.
    auto v = number(0);
    const double ns = v ? *v * 1e9 : 0;
    if (!v || !(std::fabs(ns) < 9.2e18)) {
      return invalidArgument("template: toTime: not a time in seconds: " + toText(args[0]));
    }
    return TValue(GoTime{static_cast<int64_t>(ns) / 1'000'000});
  }
  if (fn == "stripDomain") {
    // The host's first label, port kept; an IP address stays as it is.
    VIGIL_RETURN_IF_ERROR(need(1));
    const std::string s = toText(args[0]);
    std::string host = s;
    std::string port;
    const auto colon = s.rfind(':');
    if (s.starts_with("[")) {
      return TValue(s);  // an IPv6 address
    }
    if (colon != std::string::npos && s.find(':') == colon) {
      host = s.substr(0, colon);
      port = s.substr(colon + 1);
    } else if (colon != std::string::npos) {
      return TValue(s);  // several colons: a bare IPv6 address
    }
    if (isIPv4(host)) {
      return TValue(s);
    }
    host = host.substr(0, host.find('.'));
    return TValue(colon == std::string::npos ? host : host + ":" + port);
  }
  if (fn == "len") {
    VIGIL_RETURN_IF_ERROR(need(1));
    if (auto* s = std::get_if<std::string>(&args[0])) {
      return TValue(GoInt{static_cast<int64_t>(s->size())});
    }
    if (auto n = collectionSize(args[0])) {
      return TValue(GoInt{static_cast<int64_t>(*n)});
    }
    return invalidArgument("template: len of " + toText(args[0]));
  }
  if (fn == "index") {
    VIGIL_RETURN_IF_ERROR(need(2));
    if (std::holds_alternative<LabelsRef>(args[0])) {
      return field(args[0], toText(args[1]));
    }
    if (auto* kv = std::get_if<KVRef>(&args[0])) {  // a key, never a method
      const std::string key = toText(args[1]);
      for (const auto& l : *kv->map) {
        if (l.name == key) {
          return TValue(l.value);
        }
      }
      return TValue(std::string());
    }
    if (!std::holds_alternative<SamplesRef>(args[0])) {
      if (auto n = collectionSize(args[0])) {
        auto i = number(1);
        if (!i || *i < 0 || *i >= static_cast<double>(*n)) {
          return invalidArgument("template: index out of range");
        }
        const auto at = static_cast<std::size_t>(*i);
        if (auto* strings = std::get_if<StringsRef>(&args[0])) {
          return TValue((**strings)[at]);
        }
        if (auto* pairs = std::get_if<PairsRef>(&args[0])) {
          return TValue(PairValue{(*pairs->pairs)[at].name, (*pairs->pairs)[at].value});
        }
        if (auto* alerts = std::get_if<AlertsRef>(&args[0])) {
          return TValue(AlertRef(alerts->list, &(*alerts->list)[at]));
        }
      }
    }
    if (auto* ss = std::get_if<SamplesRef>(&args[0])) {
      auto i = number(1);
      if (!i || *i < 0 || *i >= static_cast<double>((*ss)->size())) {
        return invalidArgument("template: index out of range");
      }
      return TValue(std::make_shared<const TemplateSample>((**ss)[static_cast<std::size_t>(*i)]));
    }
    return invalidArgument("template: can't index " + toText(args[0]));
  }
  if (fn == "eq" || fn == "ne" || fn == "lt" || fn == "le" || fn == "gt" || fn == "ge") {
    VIGIL_RETURN_IF_ERROR(need(2));
    int cmp = 0;
    if (std::holds_alternative<std::string>(args[0]) &&
        std::holds_alternative<std::string>(args[1])) {
      cmp = toText(args[0]).compare(toText(args[1]));
    } else if (std::holds_alternative<bool>(args[0]) && std::holds_alternative<bool>(args[1])) {
      cmp = std::get<bool>(args[0]) == std::get<bool>(args[1]) ? 0 : 1;
    } else {
      auto a = number(0);
      auto b = number(1);
      if (!a || !b) {
        return invalidArgument("template: incompatible types for comparison");
      }
      cmp = *a < *b ? -1 : *a > *b ? 1 : 0;
    }
    const bool r = fn == "eq"   ? cmp == 0
                   : fn == "ne" ? cmp != 0
                   : fn == "lt" ? cmp < 0
                   : fn == "le" ? cmp <= 0
                   : fn == "gt" ? cmp > 0
                                : cmp >= 0;
    return TValue(r);
  }
  // Alertmanager's: join a list of strings, and make one.
  if (fn == "join") {
    VIGIL_RETURN_IF_ERROR(need(2));
    auto* strings = std::get_if<StringsRef>(&args[1]);
    if (strings == nullptr) {
      return invalidArgument("template: join: expected a list of strings, got " + toText(args[1]));
    }
    std::string out;
    for (std::size_t i = 0; i < (*strings)->size(); ++i) {
      out += (i > 0 ? toText(args[0]) : "") + (**strings)[i];
    }
    return TValue(out);
  }
  if (fn == "stringSlice") {
    auto out = std::make_shared<std::vector<std::string>>();
    for (const auto& a : args) {
      out->push_back(toText(a));
    }
    return TValue(StringsRef(std::move(out)));
  }
  if (fn == "not") {
    VIGIL_RETURN_IF_ERROR(need(1));
    return TValue(!truthy(args[0]));
  }
  if (fn == "and" || fn == "or") {
    if (args.empty()) {
      return invalidArgument("template: " + fn + " needs arguments");
    }
    for (const auto& a : args) {
      if (fn == "and" ? !truthy(a) : truthy(a)) {
        return a;
      }
    }
    return args.back();
  }
  return invalidArgument("template: function \"" + fn + "\" not defined");
}

}  // namespace

Result<std::string> Template::execute(const TemplateData& data) const {
  std::string out;
  if (root_) {
    static const Definitions kNone;
    Executor exec(data, defines_ ? *defines_ : kNone);
    VIGIL_RETURN_IF_ERROR(exec.render(*root_, Root{}, out));
  }
  return out;
}

const Template::Node* Template::definition(const std::string& name) const {
  if (defines_) {
    if (auto it = defines_->find(name); it != defines_->end()) {
      return it->second.get();
    }
  }
  return nullptr;
}

void Template::addDefinitions(const Template& other) {
  if (!other.defines_ || other.defines_->empty()) {
    return;
  }
  auto merged =
      defines_ ? std::make_shared<Definitions>(*defines_) : std::make_shared<Definitions>();
  for (const auto& [name, body] : *other.defines_) {
    (*merged)[name] = body;
  }
  defines_ = std::move(merged);
}

std::vector<std::string> Template::definedNames() const {
  std::vector<std::string> out;
  if (defines_) {
    for (const auto& [name, body] : *defines_) {
      out.push_back(name);
    }
  }
  return out;
}

}  // namespace vigil::promql
