#pragma once
// The PromQL lexer: text to tokens with byte positions.

#include <string>
#include <string_view>
#include <vector>

namespace vigil::promql {

enum class Tok {
  kEof,
  kError,
  kIdentifier,  // metric, label or function name
  kNumber,
  kDuration,  // only inside [] and after offset
  kString,
  kLeftParen,
  kRightParen,
  kLeftBrace,
  kRightBrace,
  kLeftBracket,
  kRightBracket,
  kComma,
  kColon,
  kAt,
  kAssign,    // =
  kEqlRegex,  // =~
  kNeqRegex,  // !~
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kPow,
  kEqlc,  // ==
  kNeq,
  kGtr,
  kLss,
  kGte,
  kLte,
  // Keywords (case-insensitive, as in Prometheus).
  kAnd,
  kOr,
  kUnless,
  kAtan2,
  kBy,
  kWithout,
  kOn,
  kIgnoring,
  kGroupLeft,
  kGroupRight,
  kBool,
  kOffset,
  kStart,
  kEnd,
  // Aggregators (case-insensitive).
  kAggregator,
};

struct Token {
  Tok type = Tok::kEof;
  int pos = 0;       // byte offset of the first character
  std::string text;  // as written, or the decoded value for strings, or the error message
};

/// Splits `input` into tokens, ending with kEof, or with kError (text: what is wrong) at the
/// first character that cannot start a token.
std::vector<Token> lex(std::string_view input);

const char* tokenName(Tok t);

}  // namespace vigil::promql
