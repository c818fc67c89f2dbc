#include "agent/api/json_reader.h"

#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

using vigil::SimpleJsonParse;
using json = nlohmann::json;

namespace {

// Writes down every event, and stops (returns false) at event number `stop_at` if set.
class Recorder : public nlohmann::json_sax<json> {
 public:
  explicit Recorder(int stop_at = -1) : stop_at_(stop_at) {}
  std::vector<std::string> events;

  bool null() override { return event("null"); }
  bool boolean(bool b) override { return event(b ? "true" : "false"); }
  bool number_integer(number_integer_t n) override { return event("int " + std::to_string(n)); }
  bool number_unsigned(number_unsigned_t n) override { return event("uint " + std::to_string(n)); }
  bool number_float(number_float_t, const string_t& s) override { return event("float " + s); }
  bool binary(binary_t&) override { return event("binary"); }
  bool string(string_t& s) override { return event("string " + s); }
  bool start_object(std::size_t n) override { return event("{ " + std::to_string(n)); }
  bool end_object() override { return event("}"); }
  bool start_array(std::size_t n) override { return event("[ " + std::to_string(n)); }
  bool end_array() override { return event("]"); }
  bool key(string_t& k) override { return event("key " + k); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return event("error");
  }

 private:
  bool event(std::string e) {
    events.push_back(std::move(e));
    return static_cast<int>(events.size()) != stop_at_;
  }
  int stop_at_;
};

// What the fast path did agrees with nlohmann's sax_parse, or it declined.
void checkAgainstNlohmann(const std::string& text, int stop_at = -1) {
  INFO("text: " << text << " stop_at: " << stop_at);
  Recorder fast(stop_at);
  const auto outcome = vigil::saxParseSimple(text, fast);
  if (outcome == SimpleJsonParse::kUnsupported) {
    return;
  }
  Recorder full(stop_at);
  const bool parsed = json::sax_parse(text, &full);
  CHECK(parsed == (outcome == SimpleJsonParse::kParsed));
  CHECK(fast.events == full.events);
}

const char* kAlerts =
    R"([{"labels":{"alertname":"HighLoad","instance":"node-1:9100","job":"node"},)"
    R"("annotations":{"summary":"Load is high on node-1"},"startsAt":"2026-11-30T05:00:00Z",)"
    R"("generatorURL":"http://prometheus:9090/graph?g0.expr=up"}, {"labels": {}} ,)"
    " \n\t{ \"labels\" : { \"a\" : \"\" } , \"annotations\" : { } } ]\r\n";

}  // namespace

TEST_CASE("JSON fast path: reads what alert senders send as nlohmann does") {
  Recorder fast;
  REQUIRE(vigil::saxParseSimple(kAlerts, fast) == SimpleJsonParse::kParsed);
  Recorder full;
  REQUIRE(json::sax_parse(std::string(kAlerts), &full));
  CHECK(fast.events == full.events);
  CHECK(fast.events.size() == 37);
  CHECK(fast.events.front() == "[ " + std::to_string(static_cast<std::size_t>(-1)));
  CHECK(fast.events[4] == "key alertname");
  CHECK(fast.events[5] == "string HighLoad");

  for (const char* text : {"[]", "{}", " [ ] ", "\"x\"", "[[],{},[[\"a\"]]]", "{\"\":\"\"}",
                           "{\"a\":{\"b\":{\"c\":[\"d\",\"e\"]}}}"}) {
    Recorder r;
    CHECK(vigil::saxParseSimple(text, r) == SimpleJsonParse::kParsed);
    checkAgainstNlohmann(text);
  }
}

TEST_CASE("JSON fast path: leaves anything else, and every error, to nlohmann") {
  for (const char* text : {"",
                           " ",
                           "[1]",
                           "[true]",
                           "[null]",
                           "{\"a\":-1.5}",
                           "[\"caf\xc3\xa9\"]",
                           "[\"a\\\"b\"]",
                           "[\"tab\there\"]",
                           "\xef\xbb\xbf[]",
                           "[",
                           "[\"a\"",
                           "[\"a\",]",
                           "{\"a\":\"b\",}",
                           "{\"a\" \"b\"}",
                           "{\"a\":}",
                           "[\"a\"]]",
                           "[] []",
                           "[\"a\"}",
                           "{\"a\":\"b\"]",
                           "{1:\"a\"}",
                           "[\"unterminated]",
                           "}"}) {
    Recorder r;
    INFO(text);
    CHECK(vigil::saxParseSimple(text, r) == SimpleJsonParse::kUnsupported);
  }
}

TEST_CASE("JSON fast path: a handler that stops stops it where nlohmann stops") {
  Recorder all;
  REQUIRE(vigil::saxParseSimple(kAlerts, all) == SimpleJsonParse::kParsed);
  for (int stop_at = 1; stop_at <= static_cast<int>(all.events.size()); ++stop_at) {
    Recorder r(stop_at);
    CHECK(vigil::saxParseSimple(kAlerts, r) == SimpleJsonParse::kStopped);
    checkAgainstNlohmann(kAlerts, stop_at);
  }
}

TEST_CASE("JSON fast path: agrees with nlohmann on every prefix and on random mutations") {
  const std::string text = kAlerts;
  for (std::size_t n = 0; n <= text.size(); ++n) {
    checkAgainstNlohmann(text.substr(0, n));
  }
  std::mt19937 rng(7);
  const std::string alphabet = "{}[]\",: \"ab\\1\x80";
  for (int i = 0; i < 3000; ++i) {
    std::string mutated = text;
    for (int k = 0; k < 3; ++k) {
      const std::size_t at = rng() % mutated.size();
      switch (rng() % 3) {
        case 0:
          mutated[at] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          mutated.erase(at, 1);
          break;
        default:
          mutated.insert(at, 1, alphabet[rng() % alphabet.size()]);
      }
    }
    checkAgainstNlohmann(mutated);
  }
}
