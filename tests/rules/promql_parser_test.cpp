#include <catch2/catch.hpp>
#include <climits>
#include <cmath>
#include <random>

#include "vigil/rules/promql_parser.h"

using namespace vigil::promql;

namespace {

std::string roundTrip(const std::string& text) {
  auto r = parse(text);
  INFO(text << " -> " << (r.error ? r.error->toString() : ""));
  REQUIRE(r.expr);
  return toString(*r.expr);
}

std::string errorOf(const std::string& text) {
  auto r = parse(text);
  INFO(text);
  REQUIRE(r.error);
  CHECK_FALSE(r.expr);
  return r.error->toString();
}

}  // namespace

TEST_CASE("PromQL parser: selectors, matchers and modifiers", "[rules][promql]") {
  CHECK(roundTrip("up") == "up");
  CHECK(roundTrip("up{job=\"node\",instance!~'a.*',}") == "up{job=\"node\", instance!~\"a.*\"}");
  CHECK(roundTrip("{__name__=~\"node_.+\"}") == "{__name__=~\"node_.+\"}");
  CHECK(roundTrip("job:http_requests:rate5m") == "job:http_requests:rate5m");
  CHECK(roundTrip("rate(http_requests_total{code=~\"5..\"}[5m])") ==
        "rate(http_requests_total{code=~\"5..\"}[5m])");
  CHECK(roundTrip("foo[1h30m] offset 1d") == "foo[1h30m] offset 1d");
  CHECK(roundTrip("foo @ 1609746000") == "foo @ 1609746000.000");
  CHECK(roundTrip("foo @ start()") == "foo @ start()");
  CHECK(roundTrip("foo offset 5m @ end()") == "foo @ end() offset 5m");
  CHECK(roundTrip("max_over_time(rate(x[1m])[10m:30s])") == "max_over_time(rate(x[1m])[10m:30s])");
  CHECK(roundTrip("min_over_time(x[5m:] offset 1m)") == "min_over_time(x[5m:] offset 1m)");
  CHECK(roundTrip("x{a=\"\\x41\\u00e9\\n\\\\\"}") == "x{a=\"A\u00e9\\n\\\\\"}");
  CHECK(roundTrip("x{a=`raw\\n`}") == "x{a=\"raw\\\\n\"}");
}

TEST_CASE("PromQL parser: operator precedence and associativity", "[rules][promql]") {
  auto tree = [](const std::string& text) {
    auto r = parse(text);
    REQUIRE(r.expr);
    // Fully parenthesised rendering of binary structure.
    std::function<std::string(const Expr&)> show = [&](const Expr& e) -> std::string {
      if (e.kind == ExprKind::kBinary) {
        const auto& b = static_cast<const BinaryExpr&>(e);
        return "(" + show(*b.lhs) + " " + binaryOpName(b.op) + " " + show(*b.rhs) + ")";
      }
      if (e.kind == ExprKind::kUnary) {
        return "-" + show(*static_cast<const UnaryExpr&>(e).expr);
      }
      return toString(e);
    };
    return show(*r.expr);
  };
  CHECK(tree("a + b * c") == "(a + (b * c))");
  CHECK(tree("a - b - c") == "((a - b) - c)");
  CHECK(tree("a ^ b ^ c") == "(a ^ (b ^ c))");
  CHECK(tree("-a ^ b") == "-(a ^ b)");
  CHECK(tree("-a * b") == "(-a * b)");
  CHECK(tree("a or b and c unless d") == "(a or ((b and c) unless d))");
  CHECK(tree("a > b + c") == "(a > (b + c))");
  CHECK(tree("a atan2 b * c") == "((a atan2 b) * c)");
  CHECK(tree("a == bool b") == "(a == b)");
  CHECK(roundTrip("-1") == "-1");
  CHECK(roundTrip("2 ^ -1") == "2 ^ -1");
  CHECK(roundTrip("1 == bool 2") == "1 == bool 2");
}

TEST_CASE("PromQL parser: vector matching and aggregations", "[rules][promql]") {
  CHECK(roundTrip("a / on(instance, job) group_left(version) b") ==
        "a / on(instance, job) group_left(version) b");
  CHECK(roundTrip("a * ignoring(mode) b") == "a * ignoring(mode) b");
  CHECK(roundTrip("a and on() b") == "a and on() b");
  CHECK(roundTrip("sum by (job) (rate(x[5m]))") == "sum by (job) (rate(x[5m]))");
  CHECK(roundTrip("sum(rate(x[5m])) without (cpu, mode)") ==
        "sum without (cpu, mode) (rate(x[5m]))");
  CHECK(roundTrip("SUM(x) BY (job)") == "sum by (job) (x)");
  CHECK(roundTrip("topk(3, x)") == "topk (3, x)");
  CHECK(roundTrip("count_values(\"version\", build_info)") ==
        "count_values (\"version\", build_info)");
  CHECK(roundTrip("quantile by (le) (0.9, x)") == "quantile by (le) (0.9, x)");
  CHECK(roundTrip("sum by (on, group) (x)") == "sum by (on, group) (x)");

  auto r = parse("a + on(job) group_right b");
  REQUIRE(r.expr);
  const auto& b = static_cast<const BinaryExpr&>(*r.expr);
  REQUIRE(b.matching);
  CHECK(b.matching->card == Cardinality::kOneToMany);
  auto set = parse("a unless b");
  CHECK(static_cast<const BinaryExpr&>(*set.expr).matching->card == Cardinality::kManyToMany);
  CHECK_FALSE(static_cast<const BinaryExpr&>(*parse("1 + a").expr).matching.has_value());
}

TEST_CASE("PromQL parser: numbers, strings and types", "[rules][promql]") {
  auto num = [](const std::string& text) {
    auto r = parse(text);
    REQUIRE(r.expr);
    REQUIRE(r.expr->kind == ExprKind::kNumber);
    return static_cast<const NumberLiteral&>(*r.expr).value;
  };
  CHECK(num("0x1F") == 31);
  CHECK(num("1e3") == 1000);
  CHECK(num(".5") == 0.5);
  CHECK(num("-2.5e-3") == -0.0025);
  CHECK(std::isinf(num("Inf")));
  CHECK(std::isinf(num("-inf")));
  CHECK(std::isnan(num("NaN")));
  CHECK(parse("time()").expr->type() == ValueType::kScalar);
  CHECK(parse("x[5m]").expr->type() == ValueType::kMatrix);
  CHECK(parse("\"s\"").expr->type() == ValueType::kString);
  CHECK(parse("scalar(x) * 2").expr->type() == ValueType::kScalar);
  CHECK(parse("vector(1) + 1").expr->type() == ValueType::kVector);
  CHECK(parse("round(x)").expr);
  CHECK(parse("round(x, 5)").expr);
  CHECK(parse("label_join(x, \"d\", \",\", \"a\", \"b\", \"c\")").expr);
  CHECK(parse("day_of_week()").expr);
  CHECK(parse("x # a comment\n + y").expr);
}

TEST_CASE("PromQL parser: errors give the position and what was expected", "[rules][promql]") {
  CHECK(errorOf("") == "1:1: parse error: no expression found in input");
  CHECK(errorOf("sum(x") ==
        "1:6: parse error: unexpected end of input in aggregation, "
        "expected \")\"");
  CHECK(errorOf("rate(x)") ==
        "1:6: parse error: expected type range vector in call to function \"rate\", got instant "
        "vector");
  CHECK(errorOf("rate(x[5m], 1)") ==
        "1:1: parse error: expected 1 argument(s) in call to \"rate\", got 2");
  CHECK(errorOf("nosuchfn(x)") == "1:1: parse error: unknown function with name \"nosuchfn\"");
  CHECK(errorOf("1 > 2") == "1:3: parse error: comparisons between scalars must use BOOL modifier");
  CHECK(errorOf("a + bool b") ==
        "1:3: parse error: bool modifier can only be used on comparison "
        "operators");
  CHECK(errorOf("1 and a") ==
        "1:3: parse error: set operator \"and\" not allowed in binary scalar expression");
  CHECK(errorOf("a and on(x) group_left b") ==
        "1:3: parse error: no grouping allowed for \"and\" operation");
  CHECK(errorOf("1 + on(x) a") ==
        "1:3: parse error: vector matching only allowed between instant vectors");
  CHECK(errorOf("sum(x[5m])") ==
        "1:5: parse error: expected type instant vector in aggregation "
        "expression, got range vector");
  CHECK(errorOf("topk(\"a\", x)") ==
        "1:6: parse error: expected type scalar in aggregation parameter, got string");
  CHECK(errorOf("{job=~\".*\"}") ==
        "1:1: parse error: vector selector must contain at least one non-empty matcher");
  CHECK(errorOf("foo{__name__=\"bar\"}") ==
        "1:5: parse error: metric name must not be set twice: \"foo\" or \"bar\"");
  CHECK(errorOf("sum(x)[5m]") == "1:1: parse error: ranges only allowed for vector selectors");
  CHECK(errorOf("x[5m][5m]") == "1:1: parse error: ranges only allowed for vector selectors");
  CHECK(errorOf("x offset 5m offset 1m") ==
        "1:13: parse error: offset may not be set multiple times");
  CHECK(errorOf("sum(x) offset 5m") ==
        "1:8: parse error: offset modifier must be preceded by an instant vector selector or "
        "range vector selector or a subquery");
  CHECK(errorOf("x offset -5m") == "1:3: parse error: negative offset is disabled");
  CHECK(errorOf("x[5 minutes]") ==
        "1:3: parse error: unexpected number \"5\" in subquery or "
        "range selector, expected duration");
  CHECK(errorOf("x{a=\"b\"") ==
        "1:8: parse error: unexpected end of input in label matching, "
        "expected \",\" or \"}\"");
  CHECK(errorOf("x{a=b}") ==
        "1:5: parse error: unexpected identifier \"b\" in label matching, "
        "expected string");
  CHECK(errorOf("x{a=~\"(\"}") ==
        "1:6: parse error: invalid regular expression \"(\": missing closing )");
  CHECK(errorOf("\"abc") == "1:1: parse error: unterminated quoted string");
  CHECK(errorOf("x $ y") == "1:3: parse error: unexpected character: '$'");
  CHECK(errorOf("1.5m") == "1:1: parse error: bad number or duration syntax: \"1.5m\"");
  CHECK(errorOf("x + 5m") == "1:5: parse error: unexpected duration \"5m\"");
  CHECK(errorOf("-\"a\"") ==
        "1:1: parse error: unary expression only allowed on expressions of "
        "type scalar or instant vector, got \"string\"");
  CHECK(errorOf("(x +\n  )") == "2:3: parse error: unexpected \")\"");
  CHECK(errorOf("x[5m:1m] [1m]") == "1:1: parse error: ranges only allowed for vector selectors");
  CHECK(errorOf("rate(x[5m])[5m]") == "1:1: parse error: ranges only allowed for vector selectors");
  CHECK(errorOf("x[0s]") == "1:2: parse error: duration must be greater than 0");
}

TEST_CASE("PromQL parser: random input never crashes and always explains a failure",
          "[rules][promql][fuzz]") {
  const std::vector<std::string> pieces = {"sum",
                                           "rate",
                                           "(",
                                           ")",
                                           "{",
                                           "}",
                                           "[",
                                           "]",
                                           "5m",
                                           ":",
                                           "x",
                                           "job",
                                           "=",
                                           "=~",
                                           "!=",
                                           "\"a\"",
                                           "'b'",
                                           ",",
                                           "+",
                                           "-",
                                           "*",
                                           "/",
                                           "^",
                                           "==",
                                           "bool",
                                           "on",
                                           "ignoring",
                                           "group_left",
                                           "by",
                                           "without",
                                           "offset",
                                           "@",
                                           "start()",
                                           "1",
                                           "0x10",
                                           "1e3",
                                           "NaN",
                                           "topk",
                                           "and",
                                           "or",
                                           "unless",
                                           "#",
                                           "\n",
                                           " ",
                                           "\\",
                                           "`",
                                           "$",
                                           "histogram_quantile",
                                           "label_replace",
                                           "1h30m"};
  std::mt19937 rng(11);
  int parsed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string text;
    const int n = 1 + static_cast<int>(rng() % 12);
    for (int j = 0; j < n; ++j) {
      text += pieces[rng() % pieces.size()];
      if (rng() % 3 == 0) {
        text += ' ';
      }
    }
    auto r = parse(text);
    if (r.expr) {
      ++parsed;
      // What was accepted prints to text that parses to the same thing again.
      auto again = parse(toString(*r.expr));
      INFO(text << " -> " << toString(*r.expr));
      REQUIRE(again.expr);
      CHECK(toString(*again.expr) == toString(*r.expr));
    } else {
      REQUIRE(r.error);
      CHECK_FALSE(r.error->message.empty());
      CHECK(r.error->line >= 1);
    }
  }
  CHECK(parsed > 100);
}

#include "vigil/rules/unit_test.h"

TEST_CASE("promtool test files: the expanding series notation", "[rules][unittest]") {
  auto v = expandSeriesValues("1 2 _ stale 3+2x2 10-1x2 7x1 _x2 1e3 -Inf");
  REQUIRE(v.isOk());
  std::vector<std::string> got;
  for (const auto& x : *v) {
    got.push_back(x.kind == SeriesValue::Kind::kMissing ? "_"
                  : x.kind == SeriesValue::Kind::kStale ? "stale"
                  : std::isinf(x.value)                 ? (x.value < 0 ? "-Inf" : "+Inf")
                                        : std::to_string(static_cast<long>(x.value)));
  }
  // "_x2" is two missing values, while "7x1" is two sevens: promtool's rules.
  CHECK(got == std::vector<std::string>{"1", "2", "_", "stale", "3", "5", "7", "10", "9", "8", "7",
                                        "7", "_", "_", "1000", "-Inf"});
  CHECK(std::isinf((*v).back().value));
  // Steps accumulate by repeated addition, as promtool's do.
  auto frac = expandSeriesValues("0.1+0.1x8");
  REQUIRE(frac.isOk());
  CHECK((*frac)[8].value == 0.8999999999999999);
  CHECK_THAT(expandSeriesValues("1 2 x3").status().message(), Catch::Contains("\"x3\""));
  CHECK_THAT(expandSeriesValues("1+ax3").status().message(), Catch::Contains("expected a step"));
  CHECK_FALSE(expandSeriesValues("1x-1").isOk());
  auto labels = parseSeriesLabels("up{job=\"node\",instance=\"a\"}");
  REQUIRE(labels.isOk());
  CHECK(labels->size() == 3);
  CHECK(parseSeriesLabels("{}")->empty());
  CHECK_FALSE(parseSeriesLabels("up{job=~\"a\"}").isOk());
}
