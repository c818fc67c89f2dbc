// Relabeling with Prometheus 2.42's semantics (its relabel_test.go cases where they apply).
#include <catch2/catch.hpp>

#include "tests/support/relabel.h"
#include "vigil/relabel.h"

using vigil::LabelSet;
using vigil::RelabelAction;
using vigil::RelabelConfig;

namespace {

using vigil::test::relabelRule;

LabelSet abc() { return {{"__name__", "m"}, {"a", "foo"}, {"b", "bar"}, {"c", "baz"}}; }

}  // namespace

TEST_CASE("replace: groups, separators, templates in the target, deletion on empty") {
  LabelSet l = abc();
  REQUIRE(vigil::relabel(
      {relabelRule(RelabelAction::kReplace, {"a", "b"}, "f(.*);(.*)r", "d", "$2-$1")}, l));
  CHECK(l == LabelSet{{"__name__", "m"}, {"a", "foo"}, {"b", "bar"}, {"c", "baz"}, {"d", "ba-oo"}});

  // Fully anchored: "o" does not match "foo", so nothing changes.
  l = abc();
  REQUIRE(vigil::relabel({relabelRule(RelabelAction::kReplace, {"a"}, "o", "d", "x")}, l));
  CHECK(l == abc());

  // The target is a template too; ${1}, named groups and $$.
  l = abc();
  REQUIRE(vigil::relabel(
      {relabelRule(RelabelAction::kReplace, {"a"}, "(?P<first>f)(.*)", "${first}_label", "$$${2}")},
      l));
  CHECK(l.back() == vigil::Label{"f_label", "$oo"});

  // "$1x" names group "1x", which does not exist: it expands to nothing, deleting the label.
  l = abc();
  REQUIRE(vigil::relabel({relabelRule(RelabelAction::kReplace, {"a"}, "(.*)", "b", "$1x")}, l));
  CHECK(l == LabelSet{{"__name__", "m"}, {"a", "foo"}, {"c", "baz"}});

  // An invalid target name after expansion leaves the labels as they are.
  l = abc();
  REQUIRE(vigil::relabel({relabelRule(RelabelAction::kReplace, {"a"}, "(.*)", "${1}-x", "v")}, l));
  CHECK(l == abc());
}

TEST_CASE("keep, drop, keepequal, dropequal") {
  LabelSet l = abc();
  CHECK(vigil::relabel({relabelRule(RelabelAction::kKeep, {"a"}, "f.*")}, l));
  CHECK_FALSE(vigil::relabel({relabelRule(RelabelAction::kKeep, {"a"}, "f")}, l));
  CHECK_FALSE(vigil::relabel({relabelRule(RelabelAction::kDrop, {"a", "b"}, "foo;bar")}, l));
  // A missing label counts as "".
  CHECK_FALSE(vigil::relabel({relabelRule(RelabelAction::kDrop, {"missing"}, "")}, l));
  CHECK(vigil::relabel({relabelRule(RelabelAction::kDrop, {"missing"}, ".+")}, l));

  RelabelConfig eq;
  eq.action = RelabelAction::kKeepEqual;
  eq.source_labels = {"a"};
  eq.target_label = "b";
  REQUIRE(eq.compile().isOk());
  CHECK_FALSE(vigil::relabel({eq}, l));
  l.push_back({"d", "foo"});
  eq.target_label = "d";
  CHECK(vigil::relabel({eq}, l));
  eq.action = RelabelAction::kDropEqual;
  CHECK_FALSE(vigil::relabel({eq}, l));
}

TEST_CASE("hashmod takes the low 64 bits of the MD5 as Prometheus does") {
  RelabelConfig c;
  c.action = RelabelAction::kHashMod;
  c.source_labels = {"c"};
  c.target_label = "d";
  c.modulus = 1000;
  REQUIRE(c.compile().isOk());
  LabelSet l = abc();
  REQUIRE(vigil::relabel({c}, l));
  CHECK(l.back() == vigil::Label{"d", "976"});  // Prometheus's relabel_test.go: baz -> 976
}

TEST_CASE("labelmap, labeldrop, labelkeep, lowercase, uppercase") {
  LabelSet l{{"__meta_kubernetes_pod_name", "api-1"}, {"__name__", "m"}, {"job", "x"}};
  REQUIRE(vigil::relabel({relabelRule(RelabelAction::kLabelMap, {}, "__meta_kubernetes_(.+)")}, l));
  CHECK(l == LabelSet{{"__meta_kubernetes_pod_name", "api-1"},
                      {"__name__", "m"},
                      {"job", "x"},
                      {"pod_name", "api-1"}});

  RelabelConfig drop;
  drop.action = RelabelAction::kLabelDrop;
  drop.regex = "__meta_.*";
  REQUIRE(drop.compile().isOk());
  REQUIRE(vigil::relabel({drop}, l));
  CHECK(l == LabelSet{{"__name__", "m"}, {"job", "x"}, {"pod_name", "api-1"}});

  RelabelConfig keep;
  keep.action = RelabelAction::kLabelKeep;
  keep.regex = "__name__|job";
  REQUIRE(keep.compile().isOk());
  REQUIRE(vigil::relabel({keep}, l));
  CHECK(l == LabelSet{{"__name__", "m"}, {"job", "x"}});

  l = {{"__name__", "m"}, {"team", "Payments"}};
  RelabelConfig lower;
  lower.action = RelabelAction::kLowercase;
  lower.source_labels = {"team"};
  lower.target_label = "team_lc";
  REQUIRE(lower.compile().isOk());
  RelabelConfig upper = lower;
  upper.action = RelabelAction::kUppercase;
  upper.target_label = "team_uc";
  REQUIRE(vigil::relabel({lower, upper}, l));
  CHECK(l == LabelSet{{"__name__", "m"},
                      {"team", "Payments"},
                      {"team_lc", "payments"},
                      {"team_uc", "PAYMENTS"}});
}

TEST_CASE("Invalid combinations are refused with the field they concern") {
  RelabelConfig c;
  c.action = RelabelAction::kReplace;
  CHECK(c.compile().message().find("target_label") != std::string::npos);
  c.target_label = "x";
  c.regex = "(unclosed";
  CHECK(c.compile().message().find("regex") != std::string::npos);
  RelabelConfig h;
  h.action = RelabelAction::kHashMod;
  h.target_label = "x";
  CHECK(h.compile().message().find("modulus") != std::string::npos);
  RelabelConfig d;
  d.action = RelabelAction::kLabelDrop;
  d.source_labels = {"a"};
  CHECK_FALSE(d.compile().isOk());
  CHECK(vigil::parseRelabelAction("LabelMap"));
  CHECK_FALSE(vigil::parseRelabelAction("rename"));
}
