// NAB's scoring rules on hand-computed cases: a 20-row file (probation 3 rows) with one window
// over rows 10..13. Expected values are the formulas of SCORING.md evaluated by hand.
#include <catch2/catch.hpp>

#include "nab_scorer.h"

using namespace vigil::nab;
using Catch::Detail::Approx;

namespace {

const Profile& standard() { return profiles()[0]; }

ScoredFile file(std::vector<std::pair<std::size_t, double>> detections) {
  ScoredFile f{"test.csv", std::vector<double>(20, 0.0), {{10, 13}}};
  for (auto [row, score] : detections) {
    f.scores[row] = score;
  }
  return f;
}

double rawAt(std::vector<std::pair<std::size_t, double>> detections, const Profile& p) {
  return scoreAt({file(std::move(detections))}, p, 0.5).raw;
}

}  // namespace

TEST_CASE("NAB scorer: the scaled sigmoid and probation", "[nab]") {
  CHECK(scaledSigmoid(-1) == Approx(0.9866142981514305));
  CHECK(scaledSigmoid(-0.5) == Approx(0.8482836399575131));
  CHECK(scaledSigmoid(0) == Approx(0.0).margin(1e-12));
  CHECK(scaledSigmoid(1) == Approx(-0.9866142981514303));
  CHECK(scaledSigmoid(3.01) == -1.0);
  CHECK(probationRows(20) == 3);
  CHECK(probationRows(1000) == 150);
  CHECK(probationRows(100000) == 750);
}

TEST_CASE("NAB scorer: rewards, penalties and the missed window", "[nab]") {
  // First row of the window: exactly A_TP.
  CHECK(rawAt({{10, 1}}, standard()) == Approx(1.0));
  // Later in the window: S(-(13-12+1)/4) / S(-1).
  CHECK(rawAt({{12, 1}}, standard()) == Approx(0.8597925669097837));
  // Only the best detection of a window counts, later ones add nothing.
  CHECK(rawAt({{10, 1}, {11, 1}, {13, 1}}, standard()) == Approx(1.0));
  // Before any window ended: the full -A_FP; plus the missed window's -A_FN.
  CHECK(rawAt({{5, 1}}, standard()) == Approx(-1.11));
  // Just after the window: forgiven by the sigmoid, y = (15-13)/(4-1).
  CHECK(rawAt({{15, 1}}, standard()) == Approx(-1.10242205695343354));
  // Probation rows do not count at all.
  CHECK(rawAt({{1, 1}}, standard()) == Approx(-1.0));
  // Profiles weigh them differently.
  CHECK(rawAt({{5, 1}}, profiles()[1]) == Approx(-1.22));  // reward_low_FP_rate
  CHECK(rawAt({{5, 1}}, profiles()[2]) == Approx(-2.11));  // reward_low_FN_rate
}

TEST_CASE("NAB scorer: the threshold sweep and normalisation", "[nab]") {
  const auto f = file({{11, 0.9}, {16, 0.95}, {5, 0.3}});
  const Outcome o = optimize({f}, standard());
  // Thresholds 1.1, 0.95, 0.9, 0.3, 0: the best is 0.9, detecting rows 16 and 11.
  CHECK(o.threshold == 0.9);
  CHECK(o.raw == Approx(0.8584615150034032));
  CHECK(o.tp == 1);
  CHECK(o.fp == 1);
  // The null detector does better detecting everything on this small file than nothing.
  CHECK(o.null_score == Approx(-0.385655946990477));
  CHECK(o.perfect == 1.0);
  CHECK(o.normalized ==
        Approx(100 * (0.8584615150034032 + 0.385655946990477) / (1 + 0.385655946990477)));
  // A constant detector is the null detector: normalised 0 whatever its constant.
  const Outcome constant = optimize({file({})}, standard());
  CHECK(constant.raw == Approx(-0.385655946990477));
  CHECK(constant.normalized == Approx(0.0).margin(1e-9));
  // Ties keep the higher threshold.
  const Outcome tie = optimize({file({{10, 0.8}, {11, 0.7}})}, standard());
  CHECK(tie.threshold == 0.8);
}
