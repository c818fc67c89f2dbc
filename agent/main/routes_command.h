#pragma once
// `vigil routes show|test`: amtool's `config routes` for vigil's alert routing.

#include <string>
#include <vector>

namespace vigil {

/// Runs `vigil routes ARGS...`; returns the exit code.
int routesCommand(const std::vector<std::string>& args);

}  // namespace vigil
