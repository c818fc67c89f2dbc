#pragma once
// Parsing PromQL text into a type-checked syntax tree.

#include <string>
#include <string_view>

#include "vigil/rules/promql_ast.h"

namespace vigil::promql {

struct ParseError {
  int line = 1;    // 1-based
  int column = 1;  // 1-based, in bytes
  std::string message;
  /// "LINE:COL: parse error: MESSAGE", the shape Prometheus reports.
  std::string toString() const;
};

struct ParseResult {
  ExprPtr expr;  // null when there is an error
  std::optional<ParseError> error;
};

/// How deep an expression may nest: an expression deeper than this is a parse error.
inline constexpr int kMaxExprDepth = 256;

/// Parses and type-checks `text`. Never throws; every failure is a ParseError with a position.
ParseResult parse(std::string_view text);

}  // namespace vigil::promql
