#include <catch2/catch.hpp>
#include <random>
#include <vector>

#include "vigil/anomaly/multivariate.h"

using vigil::anomaly::MultivariateModel;

namespace {

// Three series: the first two driven by one hidden load (the second twice the first), the
// third independent. From `broken_from` on the second runs against the load: each series
// alone keeps the same distribution, only their relation changes.
std::vector<std::array<double, 3>> related(int n, int broken_from, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> unit(0, 1);
  std::vector<std::array<double, 3>> out;
  for (int i = 0; i < n; ++i) {
    const double load = unit(rng);
    const double sign = i >= broken_from ? -1 : 1;
    out.push_back({50 + 10 * load + unit(rng), 100 + sign * 20 * load + unit(rng), 7 + unit(rng)});
  }
  return out;
}

}  // namespace

TEST_CASE("Multivariate: a broken relation between series is caught, and who broke it",
          "[anomaly][multivariate]") {
  const auto rows = related(3000, 2500, 1);
  MultivariateModel model(3);
  int false_alarms = 0;
  int caught = 0;
  std::array<double, 3> blame{};
  for (int i = 0; i < static_cast<int>(rows.size()); ++i) {
    const double score = model.update(rows[i]);
    if (i >= 40 && i < 2500) {  // from just after the warm-up
      false_alarms += score > 0.9999 ? 1 : 0;
    }
    if (i >= 2500 && i < 2520 && score > 0.9999) {
      ++caught;
      for (std::size_t k = 0; k < 3; ++k) {
        blame[k] += model.contributions()[k];
      }
    }
  }
  INFO("false alarms " << false_alarms << ", caught " << caught << " of the first 20");
  // 0.9999 of a chi-square law: about one in 10,000 by chance.
  CHECK(false_alarms <= 3);
  CHECK(caught >= 10);
  // The evidence points at the two related series, not the independent third.
  CHECK(blame[0] + blame[1] > 10 * blame[2]);
}

TEST_CASE("Multivariate: missing values are skipped, state round-trips, memory is fixed",
          "[anomaly][multivariate]") {
  const auto rows = related(600, 10'000, 2);
  MultivariateModel a(3);
  for (int i = 0; i < 300; ++i) {
    a.update(rows[i]);
  }
  const std::array<double, 3> gap{1, std::nan(""), 2};
  CHECK(a.update(gap) == 0);
  MultivariateModel b(3);
  REQUIRE(b.restore(a.serialize()));
  for (int i = 300; i < 600; ++i) {
    CHECK(a.update(rows[i]) == b.update(rows[i]));
  }
  MultivariateModel other(4);
  CHECK_FALSE(other.restore(a.serialize()));  // a model of another size
  CHECK_FALSE(b.restore("garbage"));
  CHECK(a.memoryBytes() == MultivariateModel(16).memoryBytes());
  CHECK(a.memoryBytes() <= 8192);
  CHECK(MultivariateModel(40).features() == MultivariateModel::kMaxFeatures);
}
