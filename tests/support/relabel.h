#pragma once
// A compiled relabel rule in one line, for tests.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "vigil/relabel.h"

namespace vigil::test {

inline RelabelConfig relabelRule(RelabelAction action, std::vector<std::string> sources,
                                 std::string regex, std::string target = "",
                                 std::string replacement = "$1") {
  RelabelConfig c;
  c.action = action;
  c.source_labels = std::move(sources);
  c.regex = std::move(regex);
  c.target_label = std::move(target);
  c.replacement = std::move(replacement);
  REQUIRE(c.compile().isOk());
  return c;
}

}  // namespace vigil::test
