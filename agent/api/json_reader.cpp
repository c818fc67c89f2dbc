#include "json_reader.h"

#include <string>
#include <vector>

namespace vigil {

namespace {

bool isJsonSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

}  // namespace

SimpleJsonParse saxParseSimple(std::string_view text, nlohmann::json_sax<nlohmann::json>& handler) {
  // nlohmann passes this as the size of every object and array it has not read yet.
  constexpr std::size_t kUnknownSize = static_cast<std::size_t>(-1);
  const char* p = text.data();
  const char* const end = p + text.size();
  std::vector<char> open;  // '{' or '[' for each container entered and not yet left
  std::string scratch;
  auto skipSpace = [&] {
    while (p != end && isJsonSpace(*p)) {
      ++p;
    }
  };
  // A string starting at p (a quote): into scratch, and p past it. False outside the subset.
  auto readString = [&] {
    const char* start = ++p;
    while (p != end) {
      const auto c = static_cast<unsigned char>(*p);
      if (c == '"') {
        scratch.assign(start, p);
        ++p;
        return true;
      }
      if (c < 0x20 || c >= 0x80 || c == '\\') {
        return false;  // a control character (invalid), UTF-8 or an escape: nlohmann's job
      }
      ++p;
    }
    return false;  // unterminated
  };
  enum class Expect { kValue, kKey, kAfterValue };
  Expect expect = Expect::kValue;
  for (;;) {
    skipSpace();
    if (expect == Expect::kAfterValue) {
      if (open.empty()) {
        return p == end ? SimpleJsonParse::kParsed : SimpleJsonParse::kUnsupported;
      }
      if (p == end) {
        return SimpleJsonParse::kUnsupported;
      }
      const char c = *p++;
      if (c == ',') {
        expect = open.back() == '{' ? Expect::kKey : Expect::kValue;
      } else if (c == '}' && open.back() == '{') {
        open.pop_back();
        if (!handler.end_object()) {
          return SimpleJsonParse::kStopped;
        }
      } else if (c == ']' && open.back() == '[') {
        open.pop_back();
        if (!handler.end_array()) {
          return SimpleJsonParse::kStopped;
        }
      } else {
        return SimpleJsonParse::kUnsupported;
      }
      continue;
    }
    if (expect == Expect::kKey) {
      if (p == end || *p != '"' || !readString()) {
        return SimpleJsonParse::kUnsupported;
      }
      skipSpace();
      if (p == end || *p != ':') {
        return SimpleJsonParse::kUnsupported;
      }
      ++p;
      if (!handler.key(scratch)) {
        return SimpleJsonParse::kStopped;
      }
      expect = Expect::kValue;
      continue;
    }
    if (p == end) {
      return SimpleJsonParse::kUnsupported;
    }
    const char c = *p;
    if (c == '"') {
      if (!readString()) {
        return SimpleJsonParse::kUnsupported;
      }
      if (!handler.string(scratch)) {
        return SimpleJsonParse::kStopped;
      }
      expect = Expect::kAfterValue;
    } else if (c == '{' || c == '[') {
      ++p;
      if (!(c == '{' ? handler.start_object(kUnknownSize) : handler.start_array(kUnknownSize))) {
        return SimpleJsonParse::kStopped;
      }
      skipSpace();
      if (p != end && *p == (c == '{' ? '}' : ']')) {
        // Empty: nlohmann reports the end at once, as here.
        ++p;
        if (!(c == '{' ? handler.end_object() : handler.end_array())) {
          return SimpleJsonParse::kStopped;
        }
        expect = Expect::kAfterValue;
      } else {
        open.push_back(c);
        expect = c == '{' ? Expect::kKey : Expect::kValue;
      }
    } else {
      return SimpleJsonParse::kUnsupported;  // a number or a literal: nlohmann's job
    }
  }
}

}  // namespace vigil
