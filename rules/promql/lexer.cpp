#include "lexer.h"

#include <algorithm>
#include <cctype>

namespace vigil::promql {

namespace {

bool isAlpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isAlnum(char c) { return isAlpha(c) || isDigit(c); }

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

Tok keyword(const std::string& lowered) {
  static const std::pair<const char*, Tok> kKeywords[] = {
      {"and", Tok::kAnd},
      {"or", Tok::kOr},
      {"unless", Tok::kUnless},
      {"atan2", Tok::kAtan2},
      {"by", Tok::kBy},
      {"without", Tok::kWithout},
      {"on", Tok::kOn},
      {"ignoring", Tok::kIgnoring},
      {"group_left", Tok::kGroupLeft},
      {"group_right", Tok::kGroupRight},
      {"bool", Tok::kBool},
      {"offset", Tok::kOffset},
      {"sum", Tok::kAggregator},
      {"avg", Tok::kAggregator},
      {"count", Tok::kAggregator},
      {"min", Tok::kAggregator},
      {"max", Tok::kAggregator},
      {"group", Tok::kAggregator},
      {"stddev", Tok::kAggregator},
      {"stdvar", Tok::kAggregator},
      {"topk", Tok::kAggregator},
      {"bottomk", Tok::kAggregator},
      {"count_values", Tok::kAggregator},
      {"quantile", Tok::kAggregator},
  };
  for (const auto& [word, tok] : kKeywords) {
    if (lowered == word) {
      return tok;
    }
  }
  return Tok::kIdentifier;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

void appendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Lexer {
 public:
  explicit Lexer(std::string_view in) : in_(in) {}

  std::vector<Token> run() {
    std::vector<Token> out;
    for (;;) {
      Token t = next();
      const bool stop = t.type == Tok::kEof || t.type == Tok::kError;
      out.push_back(std::move(t));
      if (stop) {
        return out;
      }
    }
  }

 private:
  Token make(Tok type, int pos, std::string text) { return Token{type, pos, std::move(text)}; }
  Token error(int pos, std::string message) { return Token{Tok::kError, pos, std::move(message)}; }

  Token next() {
    // Whitespace and comments.
    for (;;) {
      while (pos_ < in_.size() && std::isspace(static_cast<unsigned char>(in_[pos_]))) {
        ++pos_;
      }
      if (pos_ < in_.size() && in_[pos_] == '#') {
        while (pos_ < in_.size() && in_[pos_] != '\n') {
          ++pos_;
        }
        continue;
      }
      break;
    }
    const int start = static_cast<int>(pos_);
    if (pos_ >= in_.size()) {
      return make(Tok::kEof, start, "");
    }
    const char c = in_[pos_];
    const char n = pos_ + 1 < in_.size() ? in_[pos_ + 1] : '\0';
    auto single = [&](Tok t) {
      ++pos_;
      return make(t, start, std::string(1, c));
    };
    auto twoChar = [&](Tok t) {
      pos_ += 2;
      return make(t, start, std::string(in_.substr(start, 2)));
    };
    switch (c) {
      case '(':
        return single(Tok::kLeftParen);
      case ')':
        return single(Tok::kRightParen);
      case '{':
        ++brace_depth_;
        return single(Tok::kLeftBrace);
      case '}':
        --brace_depth_;
        return single(Tok::kRightBrace);
      case '[':
        in_brackets_ = true;
        return single(Tok::kLeftBracket);
      case ']':
        in_brackets_ = false;
        return single(Tok::kRightBracket);
      case ',':
        return single(Tok::kComma);
      case ':':
        if (!in_brackets_ && brace_depth_ == 0) {
          break;  // part of a metric name such as job:rate5m
        }
        return single(Tok::kColon);
      case '@':
        return single(Tok::kAt);
      case '+':
        return single(Tok::kAdd);
      case '-':
        return single(Tok::kSub);
      case '*':
        return single(Tok::kMul);
      case '/':
        return single(Tok::kDiv);
      case '%':
        return single(Tok::kMod);
      case '^':
        return single(Tok::kPow);
      case '=':
        if (n == '=') {
          return twoChar(Tok::kEqlc);
        }
        if (n == '~') {
          return twoChar(Tok::kEqlRegex);
        }
        return single(Tok::kAssign);
      case '!':
        if (n == '=') {
          return twoChar(Tok::kNeq);
        }
        if (n == '~') {
          return twoChar(Tok::kNeqRegex);
        }
        return error(start, "unexpected character after '!': '" + std::string(1, n) + "'");
      case '<':
        return n == '=' ? twoChar(Tok::kLte) : single(Tok::kLss);
      case '>':
        return n == '=' ? twoChar(Tok::kGte) : single(Tok::kGtr);
      case '"':
      case '\'':
        return quoted(start, c);
      case '`':
        return raw(start);
      default:
        break;
    }
    if (isDigit(c) || (c == '.' && isDigit(n))) {
      return numberOrDuration(start);
    }
    if (isAlpha(c) || c == ':') {
      return identifier(start);
    }
    return error(start, "unexpected character: '" + std::string(1, c) + "'");
  }

  Token identifier(int start) {
    // Inside braces label names never contain ':'; outside, metric names may.
    const bool allow_colon = brace_depth_ == 0;
    while (pos_ < in_.size() && (isAlnum(in_[pos_]) || (allow_colon && in_[pos_] == ':'))) {
      ++pos_;
    }
    std::string word(in_.substr(start, pos_ - start));
    const std::string lowered = lower(word);
    if (brace_depth_ > 0) {
      return make(Tok::kIdentifier, start, word);  // label names are never keywords
    }
    if (lowered == "inf" || lowered == "nan") {
      return make(Tok::kNumber, start, word);
    }
    Tok kw = keyword(lowered);
    return make(kw, start, kw == Tok::kIdentifier ? word : lowered);
  }

  Token numberOrDuration(int start) {
    // A duration is digits followed by unit letters, repeated: 5m, 1h30m, 100ms.
    std::size_t p = pos_;
    bool duration = false;
    while (p < in_.size() && isDigit(in_[p])) {
      std::size_t digits_end = p;
      while (digits_end < in_.size() && isDigit(in_[digits_end])) {
        ++digits_end;
      }
      std::size_t unit_end = digits_end;
      while (unit_end < in_.size() &&
             std::string_view("smhdwy").find(in_[unit_end]) != std::string_view::npos) {
        ++unit_end;
      }
      if (unit_end == digits_end) {
        break;
      }
      duration = true;
      p = unit_end;
    }
    if (duration && (p >= in_.size() || !isAlnum(in_[p]))) {
      pos_ = p;
      return make(Tok::kDuration, start, std::string(in_.substr(start, p - start)));
    }
    // A number: decimal or hex integer, or a float with optional exponent.
    p = pos_;
    if (in_[p] == '0' && p + 1 < in_.size() && (in_[p + 1] == 'x' || in_[p + 1] == 'X')) {
      p += 2;
      while (p < in_.size() && hexValue(in_[p]) >= 0) {
        ++p;
      }
    } else {
      while (p < in_.size() && isDigit(in_[p])) {
        ++p;
      }
      if (p < in_.size() && in_[p] == '.') {
        ++p;
        while (p < in_.size() && isDigit(in_[p])) {
          ++p;
        }
      }
      if (p < in_.size() && (in_[p] == 'e' || in_[p] == 'E')) {
        std::size_t q = p + 1;
        if (q < in_.size() && (in_[q] == '+' || in_[q] == '-')) {
          ++q;
        }
        if (q < in_.size() && isDigit(in_[q])) {
          p = q;
          while (p < in_.size() && isDigit(in_[p])) {
            ++p;
          }
        }
      }
    }
    if (p < in_.size() && (isAlpha(in_[p]) || in_[p] == '.')) {
      return error(start, "bad number or duration syntax: \"" +
                              std::string(in_.substr(start, p + 1 - start)) + "\"");
    }
    pos_ = p;
    return make(Tok::kNumber, start, std::string(in_.substr(start, p - start)));
  }

  Token raw(int start) {
    ++pos_;
    std::string value;
    while (pos_ < in_.size() && in_[pos_] != '`') {
      value += in_[pos_++];
    }
    if (pos_ >= in_.size()) {
      return error(start, "unterminated raw string");
    }
    ++pos_;
    return make(Tok::kString, start, value);
  }

  // Go string escapes: \a \b \f \n \r \t \v \\ \' \" \xHH \uHHHH \UHHHHHHHH \ooo.
  Token quoted(int start, char quote) {
    ++pos_;
    std::string value;
    while (pos_ < in_.size() && in_[pos_] != quote) {
      char c = in_[pos_];
      if (c == '\n') {
        return error(start, "unterminated quoted string");
      }
      if (c != '\\') {
        value += c;
        ++pos_;
        continue;
      }
      const int esc_pos = static_cast<int>(pos_);
      ++pos_;
      if (pos_ >= in_.size()) {
        break;
      }
      const char e = in_[pos_++];
      switch (e) {
        case 'a':
          value += '\a';
          break;
        case 'b':
          value += '\b';
          break;
        case 'f':
          value += '\f';
          break;
        case 'n':
          value += '\n';
          break;
        case 'r':
          value += '\r';
          break;
        case 't':
          value += '\t';
          break;
        case 'v':
          value += '\v';
          break;
        case '\\':
          value += '\\';
          break;
        case '\'':
        case '"':
          if (e != quote) {
            return error(esc_pos, "unknown escape sequence \\" + std::string(1, e));
          }
          value += e;
          break;
        case 'x':
        case 'u':
        case 'U': {
          const int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          for (int i = 0; i < digits; ++i) {
            if (pos_ >= in_.size() || hexValue(in_[pos_]) < 0) {
              return error(esc_pos, "invalid escape sequence: expected " + std::to_string(digits) +
                                        " hex digits");
            }
            cp = cp * 16 + static_cast<uint32_t>(hexValue(in_[pos_++]));
          }
          if (e == 'x') {
            value += static_cast<char>(cp);
          } else {
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) {
              return error(esc_pos, "escape sequence is an invalid Unicode code point");
            }
            appendUtf8(value, cp);
          }
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t v = static_cast<uint32_t>(e - '0');
            for (int i = 0; i < 2; ++i) {
              if (pos_ >= in_.size() || in_[pos_] < '0' || in_[pos_] > '7') {
                return error(esc_pos, "invalid octal escape: expected 3 octal digits");
              }
              v = v * 8 + static_cast<uint32_t>(in_[pos_++] - '0');
            }
            if (v > 255) {
              return error(esc_pos, "octal escape value > 255");
            }
            value += static_cast<char>(v);
            break;
          }
          return error(esc_pos, "unknown escape sequence \\" + std::string(1, e));
      }
    }
    if (pos_ >= in_.size()) {
      return error(start, "unterminated quoted string");
    }
    ++pos_;
    return make(Tok::kString, start, value);
  }

 private:
  std::string_view in_;
  std::size_t pos_ = 0;
  int brace_depth_ = 0;
  bool in_brackets_ = false;
};

}  // namespace

std::vector<Token> lex(std::string_view input) {
  // start() and end() are keywords only right after '@'; a second pass marks them.
  std::vector<Token> tokens = Lexer(input).run();
  for (std::size_t i = 1; i < tokens.size(); ++i) {
    if (tokens[i - 1].type == Tok::kAt && tokens[i].type == Tok::kIdentifier) {
      const std::string l = lower(tokens[i].text);
      if (l == "start") {
        tokens[i].type = Tok::kStart;
      } else if (l == "end") {
        tokens[i].type = Tok::kEnd;
      }
    }
  }
  return tokens;
}

const char* tokenName(Tok t) {
  switch (t) {
    case Tok::kEof:
      return "end of input";
    case Tok::kError:
      return "error";
    case Tok::kIdentifier:
      return "identifier";
    case Tok::kNumber:
      return "number";
    case Tok::kDuration:
      return "duration";
    case Tok::kString:
      return "string";
    case Tok::kLeftParen:
      return "\"(\"";
    case Tok::kRightParen:
      return "\")\"";
    case Tok::kLeftBrace:
      return "\"{\"";
    case Tok::kRightBrace:
      return "\"}\"";
    case Tok::kLeftBracket:
      return "\"[\"";
    case Tok::kRightBracket:
      return "\"]\"";
    case Tok::kComma:
      return "\",\"";
    case Tok::kColon:
      return "\":\"";
    case Tok::kAt:
      return "\"@\"";
    case Tok::kAssign:
      return "\"=\"";
    case Tok::kEqlRegex:
      return "\"=~\"";
    case Tok::kNeqRegex:
      return "\"!~\"";
    case Tok::kAdd:
      return "\"+\"";
    case Tok::kSub:
      return "\"-\"";
    case Tok::kMul:
      return "\"*\"";
    case Tok::kDiv:
      return "\"/\"";
    case Tok::kMod:
      return "\"%\"";
    case Tok::kPow:
      return "\"^\"";
    case Tok::kEqlc:
      return "\"==\"";
    case Tok::kNeq:
      return "\"!=\"";
    case Tok::kGtr:
      return "\">\"";
    case Tok::kLss:
      return "\"<\"";
    case Tok::kGte:
      return "\">=\"";
    case Tok::kLte:
      return "\"<=\"";
    case Tok::kAnd:
      return "\"and\"";
    case Tok::kOr:
      return "\"or\"";
    case Tok::kUnless:
      return "\"unless\"";
    case Tok::kAtan2:
      return "\"atan2\"";
    case Tok::kBy:
      return "\"by\"";
    case Tok::kWithout:
      return "\"without\"";
    case Tok::kOn:
      return "\"on\"";
    case Tok::kIgnoring:
      return "\"ignoring\"";
    case Tok::kGroupLeft:
      return "\"group_left\"";
    case Tok::kGroupRight:
      return "\"group_right\"";
    case Tok::kBool:
      return "\"bool\"";
    case Tok::kOffset:
      return "\"offset\"";
    case Tok::kStart:
      return "\"start\"";
    case Tok::kEnd:
      return "\"end\"";
    case Tok::kAggregator:
      return "aggregation";
  }
  return "token";
}

}  // namespace vigil::promql
