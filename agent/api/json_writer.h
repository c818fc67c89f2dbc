#pragma once
// Writing JSON text directly, for responses too large to build as a tree first.

#include <string>
#include <string_view>

namespace vigil {

/// Appends `s` as a JSON string: quotes, backslashes and control characters escaped, valid
/// UTF-8 copied, every byte of an invalid sequence replaced by U+FFFD (as nlohmann's "replace"
/// error handler does).
void appendJsonString(std::string& out, std::string_view s);

}  // namespace vigil
