#pragma once
// Replacing a state file so that a reader, or vigil after a crash, finds either the old
// content or the new one, never half of it.

#include <string>
#include <string_view>

#include "vigil/status.h"

namespace vigil {

/// Writes `data` to PATH.tmp, fsyncs it when `sync` (for what must survive a power cut, not
/// only a crash of vigil), and renames it over `path`. kUnavailable, naming the file, on any
/// failure; the temporary file is then removed and `path` left as it was.
Status writeFileAtomically(const std::string& path, std::string_view data, bool sync = false);

}  // namespace vigil
