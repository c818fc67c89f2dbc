#pragma once
// Percent-encoding of URL parts (RFC 3986): letters, digits and -_.~ kept, every other byte as
// %XX in upper-case hex.

#include <string>
#include <string_view>

namespace vigil {

/// `text` percent-encoded, appended to `out`; with `space_as_plus` a space becomes '+', as Go's
/// url.QueryEscape writes query values (and form bodies).
void appendPercentEncoded(std::string& out, std::string_view text, bool space_as_plus = false);

/// `text` percent-encoded.
inline std::string percentEncoded(std::string_view text, bool space_as_plus = false) {
  std::string out;
  appendPercentEncoded(out, text, space_as_plus);
  return out;
}

}  // namespace vigil
