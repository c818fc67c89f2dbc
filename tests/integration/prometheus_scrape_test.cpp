// A real Prometheus (Debian's package) scrapes vigil over loopback.
#include <catch2/catch.hpp>

#include "tests/support/scraped_vigil.h"

using namespace vigil::test;
using namespace std::chrono_literals;

TEST_CASE("Prometheus scrapes vigil: up{job=\"vigil\"} is 1", "[integration][prometheus]") {
  ScrapedVigil stack("vigil");
  bool up = eventually(60s, [&] {
    // One series, value "1".
    return stack.hasData("up{job=\"vigil\"} == 1");
  });
  INFO("prometheus log:\n" << stack.prometheusLog());
  INFO("vigil log:\n" << stack.vigilLog());
  REQUIRE(up);
  // What the Node Exporter Full dashboard's variables hang on arrived too.
  CHECK_THAT(stack.query("node_uname_info"), Catch::Contains("\"nodename\":"));
  CHECK_THAT(stack.query("scrape_samples_scraped{job=\"vigil\"} > 100"),
             Catch::Contains("\"value\":["));
}
