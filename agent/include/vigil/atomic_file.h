#pragma once
// Replacing a state file so that a reader, or vigil after a crash, finds either the old
// content or the new one, never half of it.

#include <string>
#include <string_view>

#include "vigil/status.h"

namespace vigil {

/// kOk when `path` does not exist or is a regular file; kInvalidArgument, naming it,
/// when it is anything else (a device, a directory, a symbolic link). Run as root, renaming
/// over /dev/null would replace the device with a file, so every writer that renames over a
/// path checks it first.
Status checkReplaceable(const std::string& path);

/// Writes `data` to PATH.tmp, fsyncs it when `sync` (for what must survive a power cut, not
/// only a crash of vigil), and renames it over `path`. kUnavailable, naming the file, on any
/// failure; the temporary file is then removed and `path` left as it was. Refuses (see
/// checkReplaceable) to replace anything but a regular file.
Status writeFileAtomically(const std::string& path, std::string_view data, bool sync = false);

}  // namespace vigil
