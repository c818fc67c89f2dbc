#pragma once
// A service target's password, from where the configuration says: inline, a file (read at
// each connection, so a rotated secret needs no reload) or an environment variable.

#include <string>

#include "vigil/config.h"
#include "vigil/status.h"

namespace vigil::collectors {

/// The password, or "" when none is configured. Errors name the file or variable, never a
/// password.
Result<std::string> targetPassword(const ServiceTarget& target);

}  // namespace vigil::collectors
