// Replacing state files whole.
#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/support/process.h"
#include "vigil/atomic_file.h"
#include "vigil/store.h"

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

TEST_CASE("writeFileAtomically and checkpoints never replace what is not a regular file",
          "[agent]") {
  // Run as root, a rename over a device or through a link would replace it with a plain file.
  vigil::test::TempDir dir;
  const std::string target = dir.file("target");
  REQUIRE(vigil::writeFileAtomically(target, "kept\n").isOk());
  const std::string link = dir.file("link");
  std::filesystem::create_symlink(target, link);
  const std::string subdir = dir.file("subdir");
  std::filesystem::create_directory(subdir);

  for (const std::string& path : {link, subdir, std::string("/dev/null")}) {
    const vigil::Status st = vigil::writeFileAtomically(path, "x");
    CHECK(st.code() == vigil::StatusCode::kInvalidArgument);
    CHECK(st.message().find("refusing to replace " + path) != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  }
  CHECK(std::filesystem::is_symlink(link));
  CHECK(std::filesystem::is_directory(subdir));
  CHECK(std::filesystem::is_character_file("/dev/null"));
  CHECK(vigil::test::readFile(target) == "kept\n");

  auto store = vigil::makeMemStore();
  REQUIRE(store->append({{"__name__", "up"}}, 1000, 1).isOk());
  const vigil::Status st = store->saveCheckpoint(link);
  CHECK(st.code() == vigil::StatusCode::kInvalidArgument);
  CHECK(std::filesystem::is_symlink(link));
  CHECK(vigil::test::readFile(target) == "kept\n");
  CHECK(store->saveCheckpoint(dir.file("checkpoint")).isOk());
}
