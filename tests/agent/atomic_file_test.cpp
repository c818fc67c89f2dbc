// Replacing state files whole.
#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/support/process.h"
#include "vigil/atomic_file.h"

TEST_CASE("writeFileAtomically replaces a file whole and names it when it cannot", "[agent]") {
  vigil::test::TempDir dir;
  const std::string path = dir.file("state.json");
  REQUIRE(vigil::writeFileAtomically(path, "first\n").isOk());
  REQUIRE(vigil::writeFileAtomically(path, "second\n", /*sync=*/true).isOk());
  CHECK(vigil::test::readFile(path) == "second\n");
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));

  const vigil::Status st = vigil::writeFileAtomically(dir.file("missing/state.json"), "x");
  CHECK(st.code() == vigil::StatusCode::kUnavailable);
  CHECK(st.message().find("missing/state.json.tmp") != std::string::npos);
  CHECK(vigil::test::readFile(path) == "second\n");
}
