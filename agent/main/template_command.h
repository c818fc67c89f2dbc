#pragma once
// `vigil template render`: amtool's `template render` for vigil's notification templates.

#include <string>
#include <vector>

namespace vigil {

/// Runs `vigil template ARGS...`; returns the exit code.
int templateCommand(const std::vector<std::string>& args);

}  // namespace vigil
