#include "vigil/rules/template.h"

#include <re2/re2.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <variant>
#include <vector>

namespace vigil::promql {

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

namespace {

using TValue = std::variant<std::string, double, bool>;

std::string toText(const TValue& v) {
  if (auto* s = std::get_if<std::string>(&v)) {
    return *s;
  }
  if (auto* d = std::get_if<double>(&v)) {
    return goFloat(*d);
  }
  return std::get<bool>(v) ? "true" : "false";
}

bool truthy(const TValue& v) {
  if (auto* s = std::get_if<std::string>(&v)) {
    return !s->empty();
  }
  if (auto* d = std::get_if<double>(&v)) {
    return *d != 0;
  }
  return std::get<bool>(v);
}

Result<double> toNumber(const TValue& v) {
  if (auto* d = std::get_if<double>(&v)) {
    return *d;
  }
  if (auto* s = std::get_if<std::string>(&v)) {
    char* end = nullptr;
    const double x = std::strtod(s->c_str(), &end);
    if (!s->empty() && end == s->c_str() + s->size()) {
      return x;
    }
    return invalidArgument("cannot convert \"" + *s + "\" to a number");
  }
  return invalidArgument("expected a number, got a boolean");
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

// printf with Go verbs mapped onto C's for the common cases (%s %d %f %.Nf %g %v %q %%).
std::string goPrintf(const std::string& format, const std::vector<TValue>& args) {
  std::string out;
  std::size_t next = 0;
  for (std::size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    std::size_t j = i + 1;
    while (j < format.size() &&
           std::string_view("+-# 0123456789.").find(format[j]) != std::string_view::npos) {
      ++j;
    }
    if (j >= format.size()) {
      out += format.substr(i);
      break;
    }
    const char verb = format[j];
    const std::string flags = format.substr(i + 1, j - i - 1);
    i = j;
    if (verb == '%') {
      out += '%';
      continue;
    }
    if (next >= args.size()) {
      out += std::string("%!") + verb + "(MISSING)";
      continue;
    }
    const TValue& arg = args[next++];
    char buf[256];
    switch (verb) {
      case 'd': {
        auto n = toNumber(arg);
        std::snprintf(buf, sizeof buf, ("%" + flags + "lld").c_str(),
                      static_cast<long long>(n ? *n : 0));
        out += buf;
        break;
      }
      case 'f':
      case 'e':
      case 'g': {
        auto n = toNumber(arg);
        std::snprintf(buf, sizeof buf, ("%" + flags + verb).c_str(), n ? *n : 0.0);
        out += buf;
        break;
      }
      case 'q':
        out += "\"" + toText(arg) + "\"";
        break;
      default:  // %s, %v
        std::snprintf(buf, sizeof buf, ("%" + flags + "s").c_str(), toText(arg).c_str());
        out += buf;
    }
  }
  return out;
}

}  // namespace

// ---- Parsing ---------------------------------------------------------------------------------

struct Template::Node {
  enum class Kind { kText, kAction, kIf, kList };
  Kind kind = Kind::kList;
  std::string text;                                // kText
  std::vector<std::vector<std::string>> pipeline;  // kAction, kIf condition: commands of words
  std::vector<std::shared_ptr<Node>> children;     // kList; kIf: [then, else]
};

namespace {

// Splits an action's body into words, keeping quoted strings whole.
Result<std::vector<std::vector<std::string>>> splitPipeline(std::string_view body) {
  std::vector<std::vector<std::string>> commands(1);
  std::size_t i = 0;
  while (i < body.size()) {
    const char c = body[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    if (c == '|') {
      commands.emplace_back();
      ++i;
      continue;
    }
    if (c == '"' || c == '`') {
      std::size_t j = i + 1;
      while (j < body.size() && body[j] != c) {
        j += (c == '"' && body[j] == '\\') ? 2 : 1;
      }
      if (j >= body.size()) {
        return invalidArgument("unterminated quoted string in template");
      }
      commands.back().emplace_back(body.substr(i, j - i + 1));
      i = j + 1;
      continue;
    }
    if (c == '(' || c == ')') {
      return invalidArgument("parenthesised template expressions are not supported");
    }
    std::size_t j = i;
    while (j < body.size() && !std::isspace(static_cast<unsigned char>(body[j])) &&
           body[j] != '|') {
      ++j;
    }
    commands.back().emplace_back(body.substr(i, j - i));
    i = j;
  }
  for (const auto& cmd : commands) {
    if (cmd.empty()) {
      return invalidArgument("empty command in template pipeline");
    }
  }
  return commands;
}

}  // namespace

Result<Template> Template::parse(std::string_view text) {
  auto root = std::make_shared<Node>();
  // A stack of open lists: the root, then for each open if its current branch.
  std::vector<std::shared_ptr<Node>> lists{root};
  std::vector<std::shared_ptr<Node>> ifs;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto open = text.find("{{", pos);
    std::string literal(
        text.substr(pos, open == std::string_view::npos ? std::string_view::npos : open - pos));
    if (open == std::string_view::npos) {
      if (!literal.empty()) {
        auto n = std::make_shared<Node>();
        n->kind = Node::Kind::kText;
        n->text = literal;
        lists.back()->children.push_back(n);
      }
      break;
    }
    const auto close = text.find("}}", open + 2);
    if (close == std::string_view::npos) {
      return invalidArgument("template: unclosed action (missing }})");
    }
    std::string_view body = text.substr(open + 2, close - open - 2);
    bool trim_left = false;
    bool trim_right = false;
    if (body.size() >= 2 && body[0] == '-' && body[1] == ' ') {
      trim_left = true;
      body.remove_prefix(1);
    }
    if (body.size() >= 2 && body.back() == '-' && body[body.size() - 2] == ' ') {
      trim_right = true;
      body.remove_suffix(1);
    }
    if (trim_left) {
      while (!literal.empty() && std::isspace(static_cast<unsigned char>(literal.back()))) {
        literal.pop_back();
      }
    }
    if (!literal.empty()) {
      auto n = std::make_shared<Node>();
      n->kind = Node::Kind::kText;
      n->text = literal;
      lists.back()->children.push_back(n);
    }
    pos = close + 2;
    if (trim_right) {
      while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos]))) {
        ++pos;
      }
    }
    auto words = splitPipeline(body);
    if (!words) {
      return words.status();
    }
    const std::string& first = (*words)[0][0];
    if (first == "if") {
      auto n = std::make_shared<Node>();
      n->kind = Node::Kind::kIf;
      (*words)[0].erase((*words)[0].begin());
      if ((*words)[0].empty()) {
        return invalidArgument("template: missing value for if");
      }
      n->pipeline = std::move(*words);
      auto then_list = std::make_shared<Node>();
      n->children.push_back(then_list);
      lists.back()->children.push_back(n);
      ifs.push_back(n);
      lists.push_back(then_list);
    } else if (first == "else") {
      if (ifs.empty() || ifs.back()->children.size() != 1) {
        return invalidArgument("template: unexpected {{else}}");
      }
      auto else_list = std::make_shared<Node>();
      ifs.back()->children.push_back(else_list);
      lists.back() = else_list;
    } else if (first == "end") {
      if (ifs.empty()) {
        return invalidArgument("template: unexpected {{end}}");
      }
      ifs.pop_back();
      lists.pop_back();
    } else if (first == "range" || first == "with" || first == "define" || first == "template" ||
               first == "block") {
      return invalidArgument("template: {{" + first + "}} is not supported");
    } else {
      auto n = std::make_shared<Node>();
      n->kind = Node::Kind::kAction;
      n->pipeline = std::move(*words);
      lists.back()->children.push_back(n);
    }
  }
  if (!ifs.empty()) {
    return invalidArgument("template: unexpected EOF (an {{if}} has no {{end}})");
  }
  Template t;
  t.root_ = root;
  return t;
}

// ---- Execution -------------------------------------------------------------------------------

namespace {

Result<TValue> operand(const std::string& word, const TemplateData& data) {
  auto labelValue = [](const LabelSet* labels, const std::string& name) -> std::string {
    if (labels != nullptr) {
      for (const auto& l : *labels) {
        if (l.name == name) {
          return l.value;
        }
      }
    }
    return "";
  };
  if (word == "$value" || word == ".Value") {
    return TValue(data.value);
  }
  for (const char* prefix : {"$labels.", ".Labels."}) {
    if (word.rfind(prefix, 0) == 0) {
      return TValue(labelValue(data.labels, word.substr(std::string_view(prefix).size())));
    }
  }
  for (const char* prefix : {"$externalLabels.", ".ExternalLabels."}) {
    if (word.rfind(prefix, 0) == 0) {
      std::string name = word.substr(std::string_view(prefix).size());
      if (data.external_labels != nullptr) {
        if (auto it = data.external_labels->find(name); it != data.external_labels->end()) {
          return TValue(it->second);
        }
      }
      return TValue(std::string());
    }
  }
  if (data.fields != nullptr && word.size() > 1 && word[0] == '.') {
    if (auto v = (*data.fields)(word)) {
      return TValue(std::move(*v));
    }
    return invalidArgument("can't evaluate field " + word.substr(1));
  }
  if (word == "true" || word == "false") {
    return TValue(word == "true");
  }
  if (word.size() >= 2 && word.front() == '`') {
    return TValue(word.substr(1, word.size() - 2));
  }
  if (word.size() >= 2 && word.front() == '"') {
    std::string out;
    for (std::size_t i = 1; i + 1 < word.size(); ++i) {
      if (word[i] == '\\' && i + 2 < word.size()) {
        ++i;
        out += word[i] == 'n' ? '\n' : word[i] == 't' ? '\t' : word[i];
      } else {
        out += word[i];
      }
    }
    return TValue(out);
  }
  char* end = nullptr;
  const double num = std::strtod(word.c_str(), &end);
  if (!word.empty() && end == word.c_str() + word.size()) {
    return TValue(num);
  }
  return invalidArgument("template: unknown value \"" + word + "\"");
}

Result<TValue> call(const std::string& fn, const std::vector<TValue>& args) {
  auto need = [&](std::size_t n) -> Status {
    if (args.size() != n) {
      return invalidArgument("template: wrong number of args for " + fn + ": want " +
                             std::to_string(n) + " got " + std::to_string(args.size()));
    }
    return Status::ok();
  };
  auto number = [&](std::size_t i) { return toNumber(args[i]); };
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
    std::time_t secs = static_cast<std::time_t>(*v);
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
  if (fn == "reReplaceAll") {
    VIGIL_RETURN_IF_ERROR(need(3));
    RE2 re(toText(args[0]));
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
  if (fn == "eq" || fn == "ne" || fn == "lt" || fn == "le" || fn == "gt" || fn == "ge") {
    VIGIL_RETURN_IF_ERROR(need(2));
    int cmp = 0;
    if (std::holds_alternative<std::string>(args[0]) &&
        std::holds_alternative<std::string>(args[1])) {
      cmp = toText(args[0]).compare(toText(args[1]));
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

Result<TValue> runPipeline(const std::vector<std::vector<std::string>>& pipeline,
                           const TemplateData& data) {
  std::optional<TValue> previous;
  for (const auto& command : pipeline) {
    const std::string& head = command[0];
    const bool is_function = head.front() != '$' && head.front() != '.' && head.front() != '"' &&
                             head.front() != '`' &&
                             !std::isdigit(static_cast<unsigned char>(head.front())) &&
                             head.front() != '-' && head != "true" && head != "false";
    if (!is_function) {
      if (command.size() != 1 || previous) {
        return invalidArgument("template: can't give argument to non-function " + head);
      }
      auto v = operand(head, data);
      if (!v) {
        return v.status();
      }
      previous = *v;
      continue;
    }
    std::vector<TValue> args;
    for (std::size_t i = 1; i < command.size(); ++i) {
      auto v = operand(command[i], data);
      if (!v) {
        return v.status();
      }
      args.push_back(*v);
    }
    if (previous) {
      args.push_back(*previous);  // a pipeline passes the previous result as the last argument
    }
    auto r = call(head, args);
    if (!r) {
      return r.status();
    }
    previous = *r;
  }
  return *previous;
}

Status render(const Template::Node& node, const TemplateData& data, std::string& out) {
  switch (node.kind) {
    case Template::Node::Kind::kText:
      out += node.text;
      return Status::ok();
    case Template::Node::Kind::kAction: {
      auto v = runPipeline(node.pipeline, data);
      if (!v) {
        return v.status();
      }
      out += toText(*v);
      return Status::ok();
    }
    case Template::Node::Kind::kIf: {
      auto cond = runPipeline(node.pipeline, data);
      if (!cond) {
        return cond.status();
      }
      if (truthy(*cond)) {
        return render(*node.children[0], data, out);
      }
      if (node.children.size() > 1) {
        return render(*node.children[1], data, out);
      }
      return Status::ok();
    }
    case Template::Node::Kind::kList:
      for (const auto& child : node.children) {
        VIGIL_RETURN_IF_ERROR(render(*child, data, out));
      }
      return Status::ok();
  }
  return Status::ok();
}

}  // namespace

Result<std::string> Template::execute(const TemplateData& data) const {
  std::string out;
  if (root_) {
    VIGIL_RETURN_IF_ERROR(render(*root_, data, out));
  }
  return out;
}

}  // namespace vigil::promql
