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
  auto rule = RelabelConfig::make(action, std::move(sources), std::move(regex), std::move(target),
                                  std::move(replacement));
  REQUIRE(rule.isOk());
  return *rule;
}

}  // namespace vigil::test
