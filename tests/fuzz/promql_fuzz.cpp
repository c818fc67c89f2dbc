// PromQL text -> parse: a tree whose printed form parses again (to the same print), or an
// error. The same property as tests/rules/promql_fuzz_test.cpp, with coverage guidance.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "vigil/rules/promql_ast.h"
#include "vigil/rules/promql_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto parsed = vigil::promql::parse(text);
  if (!parsed.expr) {
    return 0;
  }
  const std::string printed = vigil::promql::toString(*parsed.expr);
  auto again = vigil::promql::parse(printed);
  if (!again.expr) {
    std::abort();  // the printer wrote something the parser refuses
  }
  // Prometheus prints the literal +Inf with its sign, which reads back as a unary plus binding
  // looser than ^ (its printer has the same quirk); elsewhere printing is stable.
  if (printed.find("+Inf") == std::string::npos &&
      vigil::promql::toString(*again.expr) != printed) {
    std::abort();
  }
  return 0;
}
