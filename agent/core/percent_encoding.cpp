#include "vigil/percent_encoding.h"

#include <cctype>

namespace vigil {

void appendPercentEncoded(std::string& out, std::string_view text, bool space_as_plus) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (const unsigned char c : text) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else if (c == ' ' && space_as_plus) {
      out += '+';
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
}

}  // namespace vigil
