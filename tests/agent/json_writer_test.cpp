#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "agent/api/json_writer.h"

TEST_CASE("JSON writer: escapes, UTF-8, and invalid bytes replaced", "[agent][api]") {
  auto write = [](std::string_view s) {
    std::string out;
    vigil::appendJsonString(out, s);
    return out;
  };
  CHECK(write("plain") == "\"plain\"");
  CHECK(write("a\"b\\c\nd\te\x01") == R"("a\"b\\c\nd\te\u0001")");
  CHECK(write("caf\xc3\xa9 \xe2\x82\xac") == "\"caf\xc3\xa9 \xe2\x82\xac\"");  // kept as is
  CHECK(write("bad\xff\xc3") == "\"bad\xef\xbf\xbd\xef\xbf\xbd\"");
  // What nlohmann reads back is the text, and equals its own rendering with "replace".
  for (std::string_view s : {"x\"y", "tab\there", "\xc3\xa9\x80", "\x7f\x1f"}) {
    const std::string mine = write(s);
    CHECK(nlohmann::json::parse(mine).get<std::string>().size() > 0);
    CHECK(mine == nlohmann::json(std::string(s))
                      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
}
