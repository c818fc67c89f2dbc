#pragma once

namespace vigil {

/// The git revision (12 hex digits) the binary was built from, or "unknown" outside a git
/// checkout. Defined in a file the build writes afresh (cmake/build_revision.cmake).
const char* buildRevision();

}  // namespace vigil
