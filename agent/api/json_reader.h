#pragma once
// A fast path in front of nlohmann's SAX parser for the JSON that senders of alerts send:
// objects, arrays and strings of printable ASCII without escapes. nlohmann's lexer keeps a
// copy of every byte it reads for its error messages and reads ~185 MB/s here, about a
// quarter of the CPU vigil spent per alert received; this reads the subset several times
// faster and leaves everything else, errors included, to nlohmann.

#include <nlohmann/json.hpp>

#include <string_view>

namespace vigil {

enum class SimpleJsonParse {
  kParsed,       // the whole text was read; the handler saw what sax_parse would show it
  kStopped,      // the handler returned false (sax_parse would return false)
  kUnsupported,  // something outside the subset, or invalid JSON: use sax_parse
};

/// Reads `text` into `handler` as nlohmann::json::sax_parse would, if `text` is made only of
/// objects, arrays and strings of printable ASCII without escapes (whitespace anywhere JSON
/// allows it). On kUnsupported the handler may have seen part of the events: parse again with
/// a fresh handler through sax_parse, which reads all of JSON and names what is wrong.
SimpleJsonParse saxParseSimple(std::string_view text, nlohmann::json_sax<nlohmann::json>& handler);

}  // namespace vigil
